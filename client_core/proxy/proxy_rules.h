// Proxy selection: which proxies (or none) a connection to a destination
// goes through, in the order to try them.
//
// Vocabulary:
//   proxy       a server egressd tunnels or forwards through (Proxy): an
//               HTTP proxy (CONNECT for https://, absolute-form requests for
//               http://) or a SOCKS5 proxy (both schemes). It may carry
//               credentials (Basic for HTTP, RFC 1929 for SOCKS5).
//   choice      one way out for a connection: a proxy, or *direct*
//               (ProxyChoice). Select() returns the choices for a
//               destination in order: the first is tried first, the next
//               when it fails (they become routes).
//   pattern     which destination hosts an entry covers (HostPattern): any
//               host ("*"), an exact host, a domain suffix, or a CIDR range
//               of IP-literal hosts. Matching is on the URL's host, before
//               DNS: a host name never matches a CIDR pattern.
//   rule        a pattern and its `via` list: proxy names or "direct", in
//               order (ProxySelectorRule).
//   postponed   a choice that failed recently (ProxyDatabase): Select() with
//               a database moves it behind the others, so a failed proxy is
//               tried last until it connects again or its failure expires.
//
// Selection for (scheme, host), first step that applies wins:
//   1. `no_proxy` matches the host: direct;
//   2. the first rule (in order) whose pattern matches: its via list;
//   3. `default_via`, when not empty;
//   4. with `use_environment`: the environment's NO_PROXY / no_proxy, then
//      http_proxy / HTTP_PROXY (for http://) or https_proxy / HTTPS_PROXY
//      (for https://);
//   5. direct.
// This is the order server/config's ProxyConfig documents, so a ProxyConfig
// maps field by field onto ProxySelectorOptions.
//
// Credentials: Proxy::password is a secret. Describe(), Url() and every
// error message of this folder leave it out (and the username too, which is
// often half of the secret); equality compares it, so two proxies differing
// only in credentials never share a pooled connection.
//
// Thread-safety: Proxy, HostPattern and ProxyChoice are value types. A
// ProxySelector is immutable after Create(): share it freely (Select() is
// const and lock-free). ProxyDatabase is thread-safe.
#ifndef EGRESS_CLIENT_CORE_PROXY_PROXY_RULES_H_
#define EGRESS_CLIENT_CORE_PROXY_PROXY_RULES_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "client_core/policy/cidr.h"

namespace egress {

// A proxy server. (Named after OkHttp's / java.net's Proxy; server/config's
// ProxyServer is the configuration file's spelling of the same thing.)
struct Proxy {
  enum class Scheme {
    kHttp,    // "http://": CONNECT for https://, absolute-form for http://
    kSocks5,  // "socks5://": RFC 1928, for both schemes
  };

  // Unique among a selector's proxies; never "direct". Shown in stats and
  // errors.
  std::string name;
  Scheme scheme = Scheme::kHttp;
  // Host name or IP literal (IPv6 without brackets).
  std::string host;
  uint16_t port = 0;
  // Credentials; both empty for none. A secret: see the file comment.
  std::string username;
  std::string password;
  // Credentials go with the first request (CONNECT or absolute-form)
  // instead of only after a 407 challenge. Off by default: a proxy that
  // does not consume Proxy-Authorization would hand it to the origin.
  bool preemptive_auth = false;

  bool has_credentials() const { return !username.empty(); }

  // "proxy.corp:3128", "[::1]:1080".
  std::string Authority() const;
  // "http://proxy.corp:3128", "socks5://[::1]:1080". Never credentials.
  std::string Url() const;
  // "proxy 'corp' (http://proxy.corp:3128)". Never credentials. For logs
  // and error messages.
  std::string Describe() const;

  // OK when the proxy can be used: a name other than "direct", a host
  // without spaces, control or non-ASCII bytes, a port, and credentials
  // either complete (username and password) or absent. HTTP (Basic, RFC
  // 7617) usernames cannot contain ':'; SOCKS5 (RFC 1929) usernames and
  // passwords are 1..255 bytes. Errors are kInvalidArgument naming the
  // proxy and the field, never the password.
  absl::Status Validate() const;

  friend bool operator==(const Proxy& a, const Proxy& b) {
    return a.port == b.port && a.scheme == b.scheme && a.name == b.name &&
           a.host == b.host && a.username == b.username &&
           a.password == b.password && a.preemptive_auth == b.preemptive_auth;
  }
  friend bool operator!=(const Proxy& a, const Proxy& b) { return !(a == b); }
  // The password takes part in equality but not in the hash (equal
  // proxies still hash equally; the secret is kept out of anything derived).
  template <typename H>
  friend H AbslHashValue(H h, const Proxy& p) {
    return H::combine(std::move(h), p.name, p.scheme, p.host, p.port,
                      p.username);
  }
};

// "http", "socks5".
std::string_view ProxySchemeName(Proxy::Scheme scheme);

// Parses a proxy URL as environment variables give them: "http://h:p",
// "socks5://h:p" (also "socks5h://", the same for egressd: the proxy always
// resolves names), or a bare "h:p" (an HTTP proxy). Optional "user:pass@"
// credentials are percent-decoded; a trailing "/" is accepted; IPv6 hosts
// are bracketed. The port defaults to 80 for http:// (curl's habit) and 1080
// for socks5://. The result is named `name`. Errors are kInvalidArgument;
// they quote the text only when it holds no credentials.
absl::StatusOr<Proxy> ParseProxyUrlWithCredentials(absl::string_view text,
                                                   absl::string_view name);

// Which destination hosts an entry covers.
class HostPattern {
 public:
  enum class Kind { kAny, kHost, kSuffix, kCidr };

  // Every host ("*" in NO_PROXY).
  static HostPattern Any();
  // Exactly `host` (case-insensitive; a trailing dot ignored). An IP
  // literal (IPv6 with or without brackets) becomes a single-address CIDR,
  // so "::1" and "0:0::1" are the same host.
  static HostPattern ForHost(absl::string_view host);
  // `domain` and every name under it: "example.com" covers example.com and
  // a.b.example.com, not badexample.com. A leading "." or "*." is dropped.
  static HostPattern ForSuffix(absl::string_view domain);
  // IP-literal hosts in `range`.
  static HostPattern ForCidr(const IpRange& range);

  // One NO_PROXY entry, with the usual semantics (curl's, which Go and
  // most tools share): "*" = every host; "10.0.0.0/8" a CIDR; an IP
  // literal ("10.1.2.3", "::1", "[::1]") that address; a name
  // ("example.com", ".example.com", "*.example.com") that domain and its
  // subdomains. A ":port" suffix is accepted and ignored (the entry then
  // covers every port). Errors: kInvalidArgument quoting the (capped)
  // entry, for an empty entry, a malformed CIDR, or bytes no host has.
  static absl::StatusOr<HostPattern> ParseNoProxyEntry(absl::string_view entry);
  // A whole NO_PROXY value: entries separated by commas and/or whitespace;
  // empty entries skipped.
  static absl::StatusOr<std::vector<HostPattern>> ParseNoProxyList(
      absl::string_view list);

  Kind kind() const { return kind_; }
  // kHost, kSuffix: the lower-case name.
  const std::string& name() const { return name_; }
  // kCidr: the range.
  const std::optional<IpRange>& cidr() const { return cidr_; }

  // True when the pattern covers `host` (a URL's host: lower or upper case,
  // IPv6 with or without brackets, a trailing dot ignored).
  bool Matches(absl::string_view host) const;

  // "any host", "host a.example.com", "suffix example.com",
  // "cidr 10.0.0.0/8".
  std::string Describe() const;

 private:
  HostPattern() = default;
  Kind kind_ = Kind::kAny;
  std::string name_;
  std::optional<IpRange> cidr_;
};

// One way out for a connection: through `proxy`, or direct (null).
struct ProxyChoice {
  std::shared_ptr<const Proxy> proxy;

  static ProxyChoice Direct() { return ProxyChoice(); }
  bool is_direct() const { return proxy == nullptr; }
  // "direct" or proxy->Describe().
  std::string Describe() const;
  // The ProxyDatabase's key: "direct" or proxy->Url() (the server, whatever
  // its name or credentials: a dead server is dead for everyone).
  std::string Key() const;

  friend bool operator==(const ProxyChoice& a, const ProxyChoice& b) {
    if (a.proxy == nullptr || b.proxy == nullptr) return a.proxy == b.proxy;
    return *a.proxy == *b.proxy;
  }
  friend bool operator!=(const ProxyChoice& a, const ProxyChoice& b) {
    return !(a == b);
  }
  template <typename H>
  friend H AbslHashValue(H h, const ProxyChoice& c) {
    if (c.proxy == nullptr) return H::combine(std::move(h), false);
    return H::combine(std::move(h), true, *c.proxy);
  }
};

// ProxyDatabase: the choices that failed recently, tried last (the proxy
// counterpart of RouteDatabase, with the same expiry semantics: a choice is
// *failed* from a failure until it connects again or `expiry` passes).
//
// What counts as a failure is the caller's call; the suggested rule: the TCP
// connect to the proxy failed or timed out, the proxy closed or answered
// garbage, or it answered the tunnel request with a 5xx / SOCKS5 server
// failure. Not: a 407 or 403 (the proxy works and said no; another proxy
// would likely say the same), nor the call's own deadline or abort.
//
// Thread-safe; O(1) per operation. Holds at most one entry per distinct
// proxy server plus "direct", so it needs no sweeping.
class ProxyDatabase {
 public:
  static constexpr absl::Duration kDefaultExpiry = absl::Minutes(5);

  explicit ProxyDatabase(absl::Duration expiry = kDefaultExpiry);
  ProxyDatabase(const ProxyDatabase&) = delete;
  ProxyDatabase& operator=(const ProxyDatabase&) = delete;

  // Connecting through `choice` failed at `now` (a later failure renews it).
  void Failed(const ProxyChoice& choice, absl::Time now = absl::Now());
  // Connecting through `choice` succeeded: it is not failed any more.
  void Connected(const ProxyChoice& choice);
  // True while `choice` is failed and unexpired at `now`.
  bool ShouldPostpone(const ProxyChoice& choice,
                      absl::Time now = absl::Now()) const;

  absl::Duration expiry() const { return expiry_; }
  size_t size() const;

 private:
  const absl::Duration expiry_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> failed_ ABSL_GUARDED_BY(mu_);
};

// Destinations `match` covers go through `via`, in order: proxy names or
// "direct".
struct ProxySelectorRule {
  HostPattern match = HostPattern::Any();
  std::vector<std::string> via;
};

// Everything a ProxySelector is built from. Each field maps onto
// server/config's ProxyConfig (HostMatch kHost -> HostPattern::ForHost,
// kSuffix -> ForSuffix, kCidr -> ForCidr(IpRange::Parse(cidr.ToString()))).
struct ProxySelectorOptions {
  // The proxies rules and default_via name. Default: none.
  std::vector<Proxy> proxies;
  // First match wins. Default: none.
  std::vector<ProxySelectorRule> rules;
  // Always direct. Default: none.
  std::vector<HostPattern> no_proxy;
  // For destinations no rule matches. Default: empty (direct, or the
  // environment with use_environment).
  std::vector<std::string> default_via;
  // Honour http_proxy / HTTP_PROXY, https_proxy / HTTPS_PROXY and
  // no_proxy / NO_PROXY from `environment` (the lower-case spelling wins
  // when both are set, as in curl; an empty value counts as unset). Default
  // false. Cannot be combined with default_via (one of them decides the
  // rest).
  bool use_environment = false;
  // The environment consulted with use_environment: variable -> value.
  // Injected so tests never touch the process's environment; egressd passes
  // ProcessProxyEnvironment().
  std::map<std::string, std::string> environment;
};

// The proxy variables of this process's environment (http_proxy,
// HTTP_PROXY, https_proxy, HTTPS_PROXY, no_proxy, NO_PROXY), for
// ProxySelectorOptions::environment. Reads getenv; call it at start-up.
std::map<std::string, std::string> ProcessProxyEnvironment();

class ProxySelector {
 public:
  // Everything direct.
  ProxySelector();

  // Validates and builds. Errors are kInvalidArgument: a proxy failing
  // Proxy::Validate, two proxies with one name, a rule or default_via naming
  // an unknown proxy or the same one twice, an empty via list, default_via
  // together with use_environment, or an environment variable that does not
  // parse (named, its value quoted only when it holds no credentials).
  static absl::StatusOr<ProxySelector> Create(ProxySelectorOptions options);

  // The choices for a connection to `host` by `scheme` ("http" or "https"),
  // in the order to try them; never empty. With a `database`, postponed
  // choices move to the end (each group keeps its order). O(rules) pattern
  // matches; no I/O, no allocation beyond the returned vector.
  std::vector<ProxyChoice> Select(absl::string_view scheme,
                                  absl::string_view host,
                                  const ProxyDatabase* database = nullptr,
                                  absl::Time now = absl::Now()) const;

  // Why Select() decides as it does, for logs and admin output:
  // "no_proxy suffix internal.example.com", "rule 2 (host a.example.com)",
  // "default_via", "environment https_proxy", "environment no_proxy cidr
  // 10.0.0.0/8", "no rule: direct".
  std::string Explain(absl::string_view scheme, absl::string_view host) const;

  // The proxies (configured ones, then those from the environment).
  const std::vector<std::shared_ptr<const Proxy>>& proxies() const {
    return proxies_;
  }

 private:
  struct CompiledRule {
    HostPattern match;
    std::vector<ProxyChoice> via;
  };
  // The decision before failure ordering, and its reason.
  const std::vector<ProxyChoice>& Decide(absl::string_view scheme,
                                         absl::string_view host,
                                         std::string* reason) const;

  std::vector<std::shared_ptr<const Proxy>> proxies_;
  std::vector<HostPattern> no_proxy_;
  std::vector<CompiledRule> rules_;
  std::vector<ProxyChoice> default_via_;
  // From the environment (empty when not used / not set).
  std::vector<HostPattern> env_no_proxy_;
  std::string env_no_proxy_variable_;
  std::vector<ProxyChoice> env_http_;
  std::string env_http_variable_;
  std::vector<ProxyChoice> env_https_;
  std::string env_https_variable_;
  // {direct}
  std::vector<ProxyChoice> direct_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_PROXY_PROXY_RULES_H_
