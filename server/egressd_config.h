// How egressd turns its configuration file and its command line into the
// options of its parts. Everything here is pure (no gRPC, no global flags) so
// that tests can check precedence and mapping without starting a process;
// server/main.cc reads the flags and calls these in order:
//
//   1. JoinRepeatedListFlags, FlagNamesOnCommandLine  (before absl parses)
//   2. LoadConfigFile (server/config) or the built-in EgressdConfig{}
//   3. ApplyFlags       file < flag actually given on the command line
//   4. CheckImplemented refuse fields this build cannot act on
//   5. ClientOptionsFromConfig, and EgressdWarnings to print
//
// Vocabulary:
//   given     a flag is given when its name appears on the command line
//             (--name, --name=V, -name, --noname), even with the default's
//             value: `--keep_alive=30s` overrides a file's `keep_alive: 10s`.
//   override  a flag's value replacing one field of the configuration
//             (FlagOverrides; docs/configuration.md lists the pairs).
//
// Thread-safety: free functions, thread-compatible; no shared state.
#ifndef EGRESS_SERVER_EGRESSD_CONFIG_H_
#define EGRESS_SERVER_EGRESSD_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/call/http_client.h"
#include "client_core/proxy/proxy_rules.h"
#include "client_core/tls/tls_client.h"
#include "server/config/config.h"

namespace egress {

// The flags that override a configuration field, each engaged only when the
// flag was given. Counts are int64_t whatever the flag's type, so a negative
// value reaches ApplyFlags and is refused there with the flag's name.
struct FlagOverrides {
  std::optional<std::string> listen;        // listeners.listen
  std::optional<std::string> admin_listen;  // listeners.admin_listen
  std::optional<int64_t> event_loops;        // threads.event_loops
  std::optional<int64_t> completion_queues;  // threads.completion_queues
  std::optional<int64_t> max_idle_connections;
  std::optional<int64_t> max_idle_per_address;
  std::optional<absl::Duration> keep_alive;
  std::optional<absl::Duration> health_check_after_idle;
  std::optional<bool> partition_pool_by_caller;  // pool.partition_by_caller
  std::optional<absl::Duration> max_connection_lifetime;
  std::optional<int64_t> max_connections;
  std::optional<int64_t> max_connections_per_address;
  std::optional<int64_t> max_requests_in_flight;
  std::optional<int64_t> max_requests_in_flight_per_address;
  std::optional<int64_t> max_pending_per_address;
  std::optional<absl::Duration> pending_timeout;
  std::optional<absl::Duration> leak_threshold;        // pool.leak_threshold
  std::optional<absl::Duration> connect_timeout;       // timeouts.connect
  std::optional<absl::Duration> default_call_timeout;  // timeouts.default_call
  std::optional<absl::Duration> shutdown_grace;  // timeouts.shutdown_grace
  std::optional<int64_t> max_response_body_bytes;  // limits.*
  std::optional<int64_t> max_request_body_bytes;   // limits.*
  std::optional<int64_t> max_in_flight_per_caller;  // limits.*
  std::optional<std::string> caller_metadata_key;   // limits.*
  std::optional<absl::Duration> first_byte_timeout;  // timeouts.first_byte
  std::optional<absl::Duration> idle_read_timeout;   // timeouts.idle_read
  // egress.allow_cidrs / deny_cidrs: the whole list, replacing the file's.
  // Given but empty (`--allow_cidr=`) empties it.
  std::optional<std::vector<std::string>> allow_cidr;
  std::optional<std::vector<std::string>> deny_cidr;
  std::optional<bool> egress_report_only;  // egress.report_only
};

// Returns `config` with every engaged override applied, then validated as a
// whole (ValidateConfig). Errors are kInvalidArgument and name the flag, e.g.
//   --keep_alive (pool.keep_alive): must be > 0, got -5s
//   --allow_cidr: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?
// An error that a flag did not cause keeps ValidateConfig's message.
absl::StatusOr<EgressdConfig> ApplyFlags(EgressdConfig config,
                                         const FlagOverrides& flags);

// Refuses a configuration that sets a field this build of egressd cannot act
// on yet, instead of silently running without it (no such field today). The
// kInvalidArgument message names every such field.
absl::Status CheckImplemented(const EgressdConfig& config);

// ConfigWarnings(config), plus one when listeners.metrics_listen is not a
// loopback address (the metrics and the pool page take no token). One
// sentence each, no prefix.
std::vector<std::string> EgressdWarnings(const EgressdConfig& config);

// The HttpClient's options for `config`: threads.event_loops, pool.*,
// timeouts.connect, first_byte and idle_read, limits.* (but
// caller_metadata_key, which the Fetcher reads), retries.*, and the egress
// policy
// (egress.*, with egressd's own listening IPs as self addresses, and every
// interface address for a wildcard listener), compiled. The listeners'
// bound ports are given to the policy later (OwnListenerFor).
// `resolve` is --resolve's value ("host:IP[,IP...]" entries separated by ';'
// or spaces; empty: DNS only). Errors are kInvalidArgument naming the field
// or flag.
absl::StatusOr<HttpClientOptions> ClientOptionsFromConfig(
    const EgressdConfig& config, absl::string_view resolve);

// The egress policy's record of one of egressd's listeners as bound: its
// address, or the unspecified address (a wildcard) when `bound.host` is
// 0.0.0.0, [::] or a name (a name is judged as a wildcard: whatever it
// resolved to, loopback and egressd's own addresses on that port are
// covered). `name` says what it serves ("Fetch", "admin", "metrics").
OwnListener OwnListenerFor(const ListenAddress& bound, std::string name);

// The proxy selector for the proxy section: its proxies (credentials from
// the file or its secret files), rules, no_proxy and default_via, and with
// use_env_proxy the HTTP_PROXY / HTTPS_PROXY / NO_PROXY values in
// `environment` (egressd passes ProcessProxyEnvironment()). Errors are
// kInvalidArgument.
absl::StatusOr<std::shared_ptr<const ProxySelector>> ProxySelectorFromConfig(
    const ProxyConfig& config, std::map<std::string, std::string> environment);

// The TLS client for the tls section: one DestinationRule per
// tls.destinations entry (host, suffix or cidr), defaults from tls.default.
// Files are loaded now; errors are kInvalidArgument naming the entry and the
// file.
absl::StatusOr<std::shared_ptr<TlsClient>> TlsClientFromConfig(
    const TlsConfig& tls);

// Abseil keeps only the last occurrence of a flag; egressd's list flags
// (--allow_cidr, --deny_cidr) are meant to repeat, so every `--F=V`
// occurrence (also `-F=V`) is taken out and their values are joined into one
// `--F=V1,V2` at the end. A list flag given only as `--F=` stays given, as
// `--F=`. Arguments after a lone "--" are left alone. argv[0] stays first.
std::vector<std::string> JoinRepeatedListFlags(
    const std::vector<std::string>& args);

// The names of the flags given in `args` (argv, program name first): "--name",
// "--name=V", "-name", "-name=V", and for booleans "--noname" (which yields
// both "noname" and "name"). Stops at a lone "--". A value passed as a
// separate argument ("--listen 127.0.0.1:0") is not a name; one that starts
// with '-' ("--keep_alive -5s") yields a name no flag has, which is harmless.
std::set<std::string> FlagNamesOnCommandLine(
    const std::vector<std::string>& args);

}  // namespace egress

#endif  // EGRESS_SERVER_EGRESSD_CONFIG_H_
