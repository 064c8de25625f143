// EgressdConfig: egressd's configuration file, one YAML document.
//
// Vocabulary:
//   field path  a dotted path into the file, with list indexes:
//               "pool.keep_alive", "tls.destinations[2].ca_file". Every error
//               names one, and docs/configuration.md lists them all.
//   default     the value a field has when the file does not set it. Each
//               field below states its default; an empty file (or no file)
//               is the built-in configuration, identical to egressd's flag
//               defaults.
//   secret      a value that must never be printed: the admin token, proxy
//               passwords, TLS client keys. A secret is given inline or, the
//               Kubernetes way, through a `*_file` field naming a mounted
//               file. Files are read once, at load time; a rotated Secret
//               takes effect on the next start.
//   effective   the configuration egressd runs with: every field resolved
//               (defaults filled in, files read, relative paths made
//               absolute). RenderEffectiveConfig prints it as YAML with every
//               secret replaced by "<redacted>".
//
// Strictness: unknown keys, a key given twice, wrong types, out-of-range
// values and contradictions (e.g. both `admin_token` and `admin_token_file`)
// are errors, because a typo in an egress sidecar's configuration otherwise
// silently runs the defaults. Durations are strings absl::ParseDuration takes
// ("30s", "250ms", "5m", "1h30m"); booleans are `true` or `false` only (not
// YAML 1.1's yes/no/on/off); sizes are integers in bytes or strings with a
// binary unit ("4MiB", "64KiB").
//
// Errors are kInvalidArgument with a message of the form
//   "<source>:<line>: <field path>: <problem>"
// e.g. "/etc/egressd/config.yaml:7: pool.keep_alive: 'abc' is not a duration
// (e.g. 30s)". Messages about secrets name the field and the file, never the
// content.
//
// Thread-safety: the functions are pure (apart from reading files) and
// thread-compatible; an EgressdConfig is a value type.
#ifndef EGRESS_SERVER_CONFIG_CONFIG_H_
#define EGRESS_SERVER_CONFIG_CONFIG_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/listen_address.h"

namespace egress {

// What RenderEffectiveConfig prints in place of a secret, and a value the
// parser refuses as a secret (someone pasted rendered output back).
inline constexpr absl::string_view kRedacted = "<redacted>";

// A secret value and where it came from. `value` is the secret itself and must
// not be logged; `file` is the path it was read from (not secret), empty when
// the value was inline or unset.
struct Secret {
  std::string value;
  std::string file;

  bool empty() const { return value.empty(); }
};

// An IPv4 or IPv6 address, in network byte order. IPv4 uses bytes[0..3].
struct IpAddress {
  bool is_ipv6 = false;
  std::array<uint8_t, 16> bytes = {};

  // "10.0.0.1", "2001:db8::1" (no brackets).
  std::string ToString() const;
  bool operator==(const IpAddress& other) const = default;
};

// Parses a dotted-quad IPv4 address or an IPv6 address, with or without
// brackets. Errors name the text.
absl::StatusOr<IpAddress> ParseIpAddress(absl::string_view text);

// A CIDR range, e.g. 10.0.0.0/8 or fd00::/8. Host bits are always zero (the
// parser refuses "10.0.0.1/8" and suggests "10.0.0.0/8"). A bare address is
// a /32 or /128.
struct Cidr {
  IpAddress base;
  int prefix_length = 0;

  // True if `address` is in the range. An IPv4 address is never in an IPv6
  // range and vice versa: IPv4-mapped IPv6 addresses are the egress policy's
  // business (it judges the embedded address), not this type's.
  bool Contains(const IpAddress& address) const;
  // True if every address of `other` is in this range.
  bool Covers(const Cidr& other) const;
  std::string ToString() const;  // "10.0.0.0/8"
  bool operator==(const Cidr& other) const = default;
};

absl::StatusOr<Cidr> ParseCidr(absl::string_view text);

// Which destinations an entry applies to. Host names are lower-case; a host
// matches case-insensitively.
//   kHost    exactly that host name or IP literal ("api.example.com").
//   kSuffix  the domain and every subdomain: suffix "example.com" matches
//            "example.com" and "a.b.example.com", not "badexample.com". A
//            leading "." in the file is accepted and dropped (NO_PROXY
//            habit).
//   kCidr    a destination given as an IP literal in the range. Matching is on
//            the URL's host, before DNS: a host name never matches a CIDR
//            entry. (The egress policy, which checks resolved addresses, has
//            its own CIDR lists.)
struct HostMatch {
  enum class Kind { kHost, kSuffix, kCidr };
  Kind kind = Kind::kHost;
  std::string name;  // kHost, kSuffix
  Cidr cidr;         // kCidr

  bool Matches(absl::string_view host) const;
  // True if every host this entry matches is also matched by `other`, so an
  // entry after `other` in a first-match list could never be used.
  bool ShadowedBy(const HostMatch& other) const;
  // "host api.example.com", "suffix example.com", "cidr 10.0.0.0/8".
  std::string ToString() const;
  bool operator==(const HostMatch& other) const = default;
};

// True if `host` is `suffix` or a subdomain of it (both lower-case).
bool HostHasDomainSuffix(absl::string_view host, absl::string_view suffix);

struct ListenersConfig {
  // Fetcher, gRPC health and reflection. Default 127.0.0.1:7070: only
  // processes in the same network namespace (the pod) can call it. The
  // sidecar manifests in deploy/k8s keep it there and probe health_listen;
  // the gateway's listens on 0.0.0.0:7070 for its clients.
  ListenAddress listen = {"127.0.0.1", 7070};
  // gRPC health (grpc.health.v1) alone, for probes: the same statuses as on
  // `listen` ("" and egress.v1.Fetcher), and no other service. Lets Fetch
  // stay on loopback while kubelet probes the Pod IP. Default: off
  // ("off" in the file).
  std::optional<ListenAddress> health_listen;
  // PoolAdmin. Default 127.0.0.1:9901. Bound off loopback, an admin token
  // is required (the configuration is refused otherwise): judged on the
  // address bound, so a name is judged once resolved (CheckAdminListenBound).
  ListenAddress admin_listen = {"127.0.0.1", 9901};
  // Prometheus /metrics and the pool's web page. Default 127.0.0.1:9902;
  // set 0.0.0.0:9902 for Prometheus to scrape the Pod IP.
  ListenAddress metrics_listen = {"127.0.0.1", 9902};
  // Names (or IPs) a request to metrics_listen may carry in its Host header
  // besides the address it connected to, the configured host and
  // "localhost"; any other Host gets 403 (against DNS rebinding). Lower-case.
  // Default: none.
  std::vector<std::string> metrics_allowed_hosts;
  // Token PoolAdmin callers send as gRPC metadata. Default: none. From
  // `admin_token` (inline) or `admin_token_file`; a file's trailing newline
  // is dropped.
  Secret admin_token;
};

struct ThreadsConfig {
  // Event-loop threads for HTTP I/O. Default 0: one per CPU core.
  int event_loops = 0;
  // gRPC completion queues (one thread each) for Fetch. Default 0: one per
  // CPU core.
  int completion_queues = 0;
};

// The pool. 0 means "no limit" for every max_* count below except
// max_idle_connections and max_idle_per_address, where 0 means "keep none".
struct PoolConfig {
  // Idle connections kept over all addresses. Default 256.
  int64_t max_idle_connections = 256;
  // Idle connections kept per address. Default 64.
  int64_t max_idle_per_address = 64;
  // Idle connections close after this. Default 30s, below common servers'
  // and load balancers' idle timeouts (nginx 75 s, AWS ALB 60 s). > 0.
  absl::Duration keep_alive = absl::Seconds(30);
  // A connection idle at least this long is checked before reuse. Default
  // 0s: always (one non-blocking syscall).
  absl::Duration health_check_after_idle = absl::ZeroDuration();
  // Open and connecting connections over all addresses; beyond it calls wait
  // in the pending queue. Default 16384: well below a sidecar's usual
  // file-descriptor limit.
  int64_t max_connections = 16384;
  // Open and connecting connections per address. Default 1024 (Envoy's
  // max_connections circuit breaker).
  int64_t max_connections_per_address = 1024;
  // Calls in flight over all addresses; one more fails at once with
  // RESOURCE_EXHAUSTED. Default 65536.
  int64_t max_requests_in_flight = 65536;
  // Calls in flight per address. Default 0: unlimited.
  int64_t max_requests_in_flight_per_address = 0;
  // Calls waiting for a connection to one address while its connection limit
  // is reached; one more is RESOURCE_EXHAUSTED. Default 16384.
  int64_t max_pending_per_address = 16384;
  // How long a call may wait in that queue before RESOURCE_EXHAUSTED (the
  // call's deadline may end it sooner). Default 10s. > 0.
  absl::Duration pending_timeout = absl::Seconds(10);
  // A connection older than this takes no new requests and closes when its
  // last one ends, so the next one resolves DNS afresh (blue/green deploys).
  // Default 0s: off.
  absl::Duration max_connection_lifetime = absl::ZeroDuration();
  // A FetchStream caller that holds a body piece this long without reading
  // on is reported as a leak (PoolAdmin.ListLeaks). Default 30s. > 0.
  absl::Duration leak_threshold = absl::Seconds(30);
  // Connections carry one caller's exchanges only (the caller as in
  // limits.caller_metadata_key): no caller can read bytes an origin meant
  // for another. Costs a connection per caller and origin. Default false.
  bool partition_by_caller = false;
};

// How egressd runs HTTP/2 connections to origins.
struct Http2Config {
  // egressd's own cap on concurrent streams per connection (the peer's
  // SETTINGS_MAX_CONCURRENT_STREAMS caps it too). Default 100. 0: the
  // peer's limit alone.
  int64_t max_concurrent_streams = 100;
  // Receive windows: per stream and per connection. Default 1MiB and 16MiB.
  uint64_t stream_window = 1 << 20;
  uint64_t connection_window = 16 << 20;
  // A PING after this long without a frame from the peer; no answer within
  // ping_timeout closes the connection (ping_timeout). Default 30s; 0s: off.
  absl::Duration ping_interval = absl::Seconds(30);
  absl::Duration ping_timeout = absl::Seconds(5);
  // A connection idle at least this long is PINGed before it serves a call.
  // Default 10s.
  absl::Duration ping_before_reuse_after_idle = absl::Seconds(10);
};

struct TimeoutsConfig {
  // One TCP connect attempt. Default 10s. > 0.
  absl::Duration connect = absl::Seconds(10);
  // A Fetch with no gRPC deadline and no FetchRequest.timeout. Default 60s.
  // > 0.
  absl::Duration default_call = absl::Seconds(60);
  // On SIGTERM, how long in-flight Fetches may take to finish. Default 20s.
  // Keep shutdown_grace + the preStop sleep below the pod's
  // terminationGracePeriodSeconds (deploy/k8s: 20 s + 5 s < 30 s).
  absl::Duration shutdown_grace = absl::Seconds(20);
  // From starting to send a request until the response's status line and
  // headers have all arrived (a head trickling in byte by byte has not
  // arrived). DEADLINE_EXCEEDED past it. Default 0s: off (the call's
  // deadline alone). >= 0.
  absl::Duration first_byte = absl::ZeroDuration();
  // While reading a response body, the longest time without a byte
  // arriving (time FetchStream waits for its caller does not count).
  // DEADLINE_EXCEEDED past it. Default 0s: off. >= 0.
  absl::Duration idle_read = absl::ZeroDuration();
};

struct LimitsConfig {
  // Largest response body a unary Fetch returns. Default 4 MiB (gRPC's
  // default largest message).
  uint64_t max_response_body_bytes = 4 * 1024 * 1024;
  // Largest request body a Fetch sends (RESOURCE_EXHAUSTED past it, before
  // anything is sent). Default 4 MiB.
  uint64_t max_request_body_bytes = 4 * 1024 * 1024;
  // Longest request URL, in bytes. Default 16 KiB (above nginx's and
  // Apache's 8 KiB request lines). 0: no limit.
  uint64_t max_request_url_bytes = 16 * 1024;
  // Most request header fields, and their total size (name: value CRLF).
  // Default 100 and 64 KiB, like Envoy's. 0: no limit.
  int64_t max_request_header_count = 100;
  uint64_t max_request_header_bytes = 64 * 1024;
  // Decoding (FetchRequest.decompress): the largest decoded / encoded ratio,
  // checked once the decoded body passes 1 MiB (a gzip of zeros expands
  // about 1000 times, text 3-20 times). Default 100. 0: no limit.
  int64_t max_decompression_ratio = 100;
  // Largest decoded body a FetchStream delivers (a unary Fetch stops at
  // max_response_body_bytes). Default 1 GiB. 0: no limit.
  uint64_t max_decompressed_bytes = uint64_t{1} << 30;
  // Calls one caller may have in flight; one more is RESOURCE_EXHAUSTED.
  // Default 0: no limit.
  int64_t max_in_flight_per_caller = 0;
  // The gRPC metadata key whose value names the caller (e.g.
  // "x-egress-caller"). Default empty: callers are told apart by their IP
  // address (the gRPC peer without its port), and a call without the key
  // is counted by its IP too.
  std::string caller_metadata_key;
};

// Connect retries (FetchRequest.connect_retries) are bounded by a budget:
// retries in flight <= max(min_retry_concurrency, budget_percent% of the
// calls in flight), so retries cannot multiply the load during an outage
// (Envoy's retry budget).
struct RetriesConfig {
  // Default 20 (Envoy's). 0..100.
  int64_t budget_percent = 20;
  // Default 3 (Envoy's). >= 0.
  int64_t min_retry_concurrency = 3;
};

// How egressd speaks to an origin.
enum class HttpProtocol {
  kAuto,   // "auto": ALPN offers h2 and http/1.1 (HTTP/1.1 for http://)
  kHttp1,  // "http1": HTTP/1.1 only
  kH2,     // "h2": HTTP/2 only (ALPN must pick h2)
  kH2c,    // "h2c": HTTP/2 with prior knowledge over cleartext (http://)
};

// TLS versions and cipher suites, like OkHttp's ConnectionSpec.
enum class TlsPolicy {
  kModern,      // "modern": TLS 1.2+, forward-secret AEAD suites
  kCompatible,  // "compatible": also older suites, for legacy origins
};

struct TlsSettings {
  // Extra CA bundle (PEM) trusted in addition to the system store. Default:
  // none. `ca_pem` holds the file's content, read at load time.
  std::string ca_file;
  std::string ca_pem;
  // Client certificate chain (PEM) for mTLS; requires client_key_file.
  std::string client_cert_file;
  std::string client_cert_pem;
  // The client certificate's private key (PEM), a secret.
  Secret client_key;
  // Turns certificate verification off. Default false. Never set it for
  // production traffic: anyone on the path can read and change it.
  // ConfigWarnings() reports each destination where it is on.
  bool insecure_skip_verify = false;
  // Whether http:// (cleartext) fetches may go to these destinations.
  // Default true; false makes them PERMISSION_DENIED (OkHttp's CLEARTEXT
  // spec left out).
  bool allow_cleartext = true;
  // Default auto.
  HttpProtocol protocol = HttpProtocol::kAuto;
  // Default modern.
  TlsPolicy policy = TlsPolicy::kModern;
};

// Settings for the destinations `match` selects. Fields the file does not set
// are taken from tls.default.
struct TlsDestination {
  HostMatch match;
  TlsSettings settings;
};

struct TlsConfig {
  // Destinations no entry matches. Default: the TlsSettings defaults.
  TlsSettings default_settings;
  // First match wins, in file order; an entry shadowed by an earlier one
  // (e.g. host a.example.com after suffix example.com) is an error.
  std::vector<TlsDestination> destinations;

  // The settings for `host` (lower-case).
  const TlsSettings& For(absl::string_view host) const;
};

enum class ProxyScheme {
  kHttp,    // "http://": forward proxy, CONNECT for https
  kSocks5,  // "socks5://"
};

struct ProxyServer {
  // Referred to by rules, default_via and in PoolStats. Unique; not "direct".
  std::string name;
  ProxyScheme scheme = ProxyScheme::kHttp;
  // Host name or IP literal (IPv6 without brackets).
  std::string host;
  uint16_t port = 0;
  // Basic / SOCKS5 credentials. Default: none. A username without a
  // password, or the reverse, is refused.
  std::string username;
  Secret password;
  // Send the credentials with the first request (a CONNECT, or an http://
  // request in absolute form) instead of only after the proxy's 407
  // challenge. Default false: credentials never go out unasked, so a proxy
  // that does not consume Proxy-Authorization cannot hand them to an
  // origin. Set true for a proxy known to require authentication, to save
  // the challenge's round trip.
  bool preemptive = false;

  // "http://proxy.corp:3128": never holds credentials.
  std::string Url() const;
};

// Destinations `match` selects go through `via`: proxy names tried in order
// (a failed one is tried last next time); "direct" means no proxy.
struct ProxyRule {
  HostMatch match;
  std::vector<std::string> via;
};

// Proxy selection for a destination host: no_proxy → direct; else the first
// matching rule; else default_via; else, with use_env_proxy, HTTP_PROXY /
// HTTPS_PROXY / NO_PROXY from the environment; else direct.
struct ProxyConfig {
  std::vector<ProxyServer> proxies;
  std::vector<ProxyRule> rules;
  // Always direct. Default: empty.
  std::vector<HostMatch> no_proxy;
  // For destinations no rule matches. Default: empty (direct).
  std::vector<std::string> default_via;
  // Honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY. Default false. Cannot be
  // combined with default_via (one of them decides the rest).
  bool use_env_proxy = false;
};

// The egress policy's configurable part. The built-in denials (loopback,
// link-local, private ranges, ...) belong to the policy itself; these lists
// adjust them.
struct EgressConfig {
  // Resolved addresses allowed even if a built-in denial covers them, e.g.
  // 10.0.0.0/8 to reach cluster services. Default: empty.
  std::vector<Cidr> allow_cidrs;
  // Resolved addresses always denied. Default: empty.
  std::vector<Cidr> deny_cidrs;
  // If this or allow_domain_suffixes is non-empty, only matching hosts may be
  // fetched. Default: empty (any host).
  std::vector<std::string> allow_hosts;
  std::vector<std::string> allow_domain_suffixes;
  // Destination ports allowed. Default: empty (any port).
  std::vector<uint16_t> allowed_ports;
  // Log and count what would be denied, deny nothing. Default false.
  bool report_only = false;
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

struct LoggingConfig {
  // One JSON line per Fetch. Default true.
  bool access_log = true;
  // Default info.
  LogLevel level = LogLevel::kInfo;
};

struct EgressdConfig {
  ListenersConfig listeners;
  ThreadsConfig threads;
  PoolConfig pool;
  Http2Config http2;
  TimeoutsConfig timeouts;
  LimitsConfig limits;
  RetriesConfig retries;
  TlsConfig tls;
  ProxyConfig proxy;
  EgressConfig egress;
  LoggingConfig logging;
};

// Parses and validates one YAML document. `source` names the text in error
// messages (a file path, or "<config>"). Relative `*_file` paths are resolved
// against `base_dir` (the current directory when empty) and the files are read
// here. An empty document is the default configuration.
absl::StatusOr<EgressdConfig> ParseConfigYaml(
    absl::string_view text, absl::string_view source = "<config>",
    absl::string_view base_dir = "");

// Reads `path` and parses it; relative `*_file` paths are resolved against the
// file's directory. A missing or unreadable file is kInvalidArgument naming
// the path (egressd must not start with a configuration it cannot read).
absl::StatusOr<EgressdConfig> LoadConfigFile(absl::string_view path);

// Checks what only the whole configuration can tell (e.g. admin_listen off
// loopback without a token, two listeners on one port). ParseConfigYaml calls
// it; call it again after applying command-line flags on top of a file.
absl::Status ValidateConfig(const EgressdConfig& config);

// The admin token rule on the address listeners.admin_listen really binds
// (ResolveListenAddress): off loopback, listeners.admin_token is required.
// ValidateConfig applies it to an IP; a host name is judged only by this,
// on the address it resolved to, never by its spelling
// ("127.attacker.example" may resolve to 0.0.0.0). kInvalidArgument naming
// listeners.admin_token and the address.
absl::Status CheckAdminListenBound(const ListenersConfig& listeners,
                                   const asio::ip::address& bound);

// What --check_config adds to ValidateConfig: every listener's host resolves
// (kUnavailable naming the field otherwise) and CheckAdminListenBound holds
// for the address admin_listen resolves to now. egressd itself judges the
// address it binds, resolved once at start-up.
absl::Status CheckListenersResolve(const EgressdConfig& config);

// Things that are allowed but dangerous, one sentence each, for egressd to
// log at start-up and for --check_config to print: insecure_skip_verify on a
// destination, Fetch listening off loopback, report-only egress policy.
std::vector<std::string> ConfigWarnings(const EgressdConfig& config);

// The effective configuration as YAML (the same shape the parser reads), with
// every secret shown as "<redacted>" (or "" when unset) and file contents
// omitted: the output never holds a secret. Warnings appear as comments at the
// top. Parsing the output again gives the same configuration, except that
// redacted inline secrets are refused.
std::string RenderEffectiveConfig(const EgressdConfig& config);

// Field paths whose effective value differs from the built-in default, in
// file order ("pool.keep_alive", "tls.default.ca_file"; a list is one path,
// e.g. "tls.destinations" or "egress.allow_cidrs"). Lets
// egressd refuse fields its build does not implement yet instead of silently
// ignoring them.
std::vector<std::string> ChangedFromDefaults(const EgressdConfig& config);

absl::string_view HttpProtocolName(HttpProtocol protocol);
absl::string_view TlsPolicyName(TlsPolicy policy);
absl::string_view LogLevelName(LogLevel level);

}  // namespace egress

#endif  // EGRESS_SERVER_CONFIG_CONFIG_H_
