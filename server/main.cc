// egressd: the egress sidecar. Serves Fetcher (with gRPC health and server
// reflection) on listeners.listen, gRPC health alone on
// listeners.health_listen (when set, for probes) and PoolAdmin on
// listeners.admin_listen, all backed by one process-wide HttpClient and its
// connection pool.
//
// Configuration: built-in defaults < the --config file < flags given on the
// command line (server/egressd_config.h, docs/configuration.md).
// `egressd --check_config=FILE` prints the effective configuration and exits.
//
// Start-up prints one line a script can parse, after every port is bound,
// with the addresses bound (IPs, also where names were configured):
//   EGRESSD_READY listen=127.0.0.1:7070 health_listen=off
//       metrics_listen=127.0.0.1:9902 admin_listen=127.0.0.1:9901
//   (one line; off for a listener that is off)
// SIGTERM or SIGINT: health turns NOT_SERVING and egressd prints
//   EGRESSD_DRAINING grace=20s
// then the Fetcher stops taking calls, in-flight ones get
// timeouts.shutdown_grace to finish, the pool closes and egressd exits 0,
// as soon as the last Fetch has been answered.
//
// Everything else egressd says goes to stderr as JSON log lines
// (server/log/log.h), the access log included; only --check_config, a
// command a person reads, writes plain "egressd: ..." lines.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "asio/ip/tcp.hpp"
#include "client_core/call/http_client.h"
#include "grpc/grpc.h"
#include "grpc/support/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "server/admin_auth.h"
#include "server/config/config.h"
#include "server/egressd_config.h"
#include "server/fetch_service.h"
#include "server/listen_address.h"
#include "server/log/access_log.h"
#include "server/log/log.h"
#include "server/metrics/call_metrics.h"
#include "server/metrics/metrics_server.h"
#include "server/pool_admin_service.h"
#include "server/pool_events_hub.h"

ABSL_FLAG(std::string, config, "",
          "YAML configuration file (docs/configuration.md). Empty: the "
          "built-in defaults. Flags given on the command line override it.");
ABSL_FLAG(std::string, check_config, "",
          "Load this configuration file, apply the other flags, print the "
          "effective configuration (secrets redacted) and exit: 0 if egressd "
          "would start with it, 1 otherwise. Binds no port.");

// Each flag below overrides one field of the configuration, and only when it
// is given; the defaults shown are the fields' built-in defaults.
ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "HOST:PORT for the Fetcher service (with gRPC health and "
          "reflection). Port 0 picks a free port. (listeners.listen)");
ABSL_FLAG(std::string, health_listen, "off",
          "HOST:PORT serving only gRPC health (grpc.health.v1), with the "
          "same statuses as --listen, for probes that must reach the Pod IP "
          "while Fetch stays on loopback; \"off\" or \"\" turns it off. "
          "(listeners.health_listen)");
ABSL_FLAG(std::string, admin_listen, "127.0.0.1:9901",
          "HOST:PORT for the PoolAdmin service. Keep it on localhost; off "
          "loopback an admin token is required. (listeners.admin_listen)");
ABSL_FLAG(int, event_loops, 0,
          "Event-loop threads for HTTP I/O; 0 = one per CPU core. "
          "(threads.event_loops)");
ABSL_FLAG(int, completion_queues, 0,
          "gRPC completion queues (one thread each) for Fetch; 0 = one per "
          "CPU core. (threads.completion_queues)");
ABSL_FLAG(int, max_idle_connections, 256,
          "Most idle pooled connections over all addresses (0 = close each "
          "connection when it goes idle). (pool.max_idle_connections)");
ABSL_FLAG(int, max_idle_per_address, 64,
          "Most idle pooled connections for one address. "
          "(pool.max_idle_per_address)");
ABSL_FLAG(absl::Duration, keep_alive, absl::Seconds(30),
          "Idle connections are closed after this long. (pool.keep_alive)");
ABSL_FLAG(absl::Duration, health_check_after_idle, absl::ZeroDuration(),
          "Idle connections idle at least this long are checked before "
          "reuse (0 = always; the check is one non-blocking peek). "
          "(pool.health_check_after_idle)");
ABSL_FLAG(bool, partition_pool_by_caller, false,
          "Connections carry one caller's exchanges only (callers told apart "
          "as by --caller_metadata_key), so an origin's stray bytes can never "
          "reach another caller; costs a connection per caller and origin. "
          "(pool.partition_by_caller)");
ABSL_FLAG(absl::Duration, max_connection_lifetime, absl::ZeroDuration(),
          "Connections older than this take no new requests and close when "
          "their last one ends (0 = no limit). (pool.max_connection_lifetime)");
ABSL_FLAG(int64_t, max_connections, 16384,
          "Open and connecting connections over all addresses (0 = no "
          "limit); beyond it calls wait in the pending queue. "
          "(pool.max_connections)");
ABSL_FLAG(int64_t, max_connections_per_address, 1024,
          "Open and connecting connections per address (0 = no limit). "
          "(pool.max_connections_per_address)");
ABSL_FLAG(int64_t, max_requests_in_flight, 65536,
          "Calls in flight over all addresses; one more is "
          "RESOURCE_EXHAUSTED at once (0 = no limit). "
          "(pool.max_requests_in_flight)");
ABSL_FLAG(int64_t, max_requests_in_flight_per_address, 0,
          "Calls in flight per address (0 = no limit). "
          "(pool.max_requests_in_flight_per_address)");
ABSL_FLAG(int64_t, max_pending_per_address, 16384,
          "Calls waiting for a connection per address; one more is "
          "RESOURCE_EXHAUSTED. (pool.max_pending_per_address)");
ABSL_FLAG(absl::Duration, pending_timeout, absl::Seconds(10),
          "Longest wait in the pending queue (RESOURCE_EXHAUSTED after). "
          "(pool.pending_timeout)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(10),
          "Bound on one TCP connect attempt. (timeouts.connect)");
ABSL_FLAG(absl::Duration, default_call_timeout, absl::Seconds(60),
          "Call timeout when the caller sets no gRPC deadline and no "
          "FetchRequest.timeout. (timeouts.default_call)");
ABSL_FLAG(int64_t, max_response_body_bytes, 4 * 1024 * 1024,
          "Largest response body a Fetch returns (RESOURCE_EXHAUSTED past "
          "it). (limits.max_response_body_bytes)");
ABSL_FLAG(int64_t, max_request_body_bytes, 4 * 1024 * 1024,
          "Largest request body a Fetch sends (RESOURCE_EXHAUSTED past it, "
          "before anything is sent). (limits.max_request_body_bytes)");
ABSL_FLAG(int64_t, max_in_flight_per_caller, 0,
          "Calls one caller may have in flight; one more is "
          "RESOURCE_EXHAUSTED (0 = no limit). Callers are told apart by "
          "--caller_metadata_key, else by IP. "
          "(limits.max_in_flight_per_caller)");
ABSL_FLAG(std::string, caller_metadata_key, "",
          "gRPC metadata key whose value names the caller for "
          "--max_in_flight_per_caller, e.g. x-egress-caller (empty = the "
          "caller's IP address). (limits.caller_metadata_key)");
ABSL_FLAG(absl::Duration, first_byte_timeout, absl::ZeroDuration(),
          "From sending a request until the response's headers have all "
          "arrived; DEADLINE_EXCEEDED past it (0 = off). "
          "(timeouts.first_byte)");
ABSL_FLAG(absl::Duration, idle_read_timeout, absl::ZeroDuration(),
          "Longest pause while reading a response body; DEADLINE_EXCEEDED "
          "past it (0 = off). (timeouts.idle_read)");
ABSL_FLAG(std::vector<std::string>, allow_cidr, {},
          "Egress policy: destination CIDRs allowed even though a default "
          "rule denies them (e.g. 127.0.0.0/8 for local testing). Repeatable "
          "or comma-separated; replaces the file's list, `--allow_cidr=` "
          "empties it. (egress.allow_cidrs)");
ABSL_FLAG(std::vector<std::string>, deny_cidr, {},
          "Egress policy: destination CIDRs always denied. Repeatable or "
          "comma-separated; replaces the file's list. (egress.deny_cidrs)");
ABSL_FLAG(bool, egress_report_only, false,
          "Egress policy: count what would be denied, but allow it. "
          "(egress.report_only)");
ABSL_FLAG(std::string, resolve, "",
          "Static host addresses instead of DNS, curl-style: "
          "'host:IP[,IP...]' entries separated by ';' (IPv6 in brackets). "
          "No configuration field.");
ABSL_FLAG(absl::Duration, leak_threshold, absl::Seconds(30),
          "A FetchStream caller that stops reading for this long is reported "
          "as a leak (PoolAdmin.ListLeaks). (pool.leak_threshold)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(20),
          "On SIGTERM, how long in-flight Fetches may take to finish. "
          "(timeouts.shutdown_grace)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9902",
          "HOST:PORT for Prometheus /metrics and the pool's web page (/); "
          "\"off\" or \"\" turns both off. Port 0 picks a free port. "
          "(listeners.metrics_listen)");
ABSL_FLAG(bool, access_log, true,
          "One JSON line per Fetch and FetchStream on stderr "
          "(--noaccess_log turns it off). (logging.access_log)");
ABSL_FLAG(std::string, log_level, "info",
          "Least level of the log lines written to stderr: debug, info, "
          "warning or error. (logging.level)");
ABSL_FLAG(bool, metrics_per_address, false,
          "Also export per-address series (label `address`) in /metrics. "
          "Off by default: one set of series per origin can be many. No "
          "configuration field.");

namespace egress {
namespace {

// --check_config prints for a person; egressd running logs JSON lines.
bool plain_messages = false;

int Fail(const std::string& message) {
  if (plain_messages) {
    std::fprintf(stderr, "egressd: %s\n", message.c_str());
  } else {
    log::Error("egressd cannot start", {{"error", message}});
    log::Default().Flush();
  }
  return 1;
}

log::Level ToLogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return log::Level::kDebug;
    case LogLevel::kInfo: return log::Level::kInfo;
    case LogLevel::kWarning: return log::Level::kWarning;
    case LogLevel::kError: return log::Level::kError;
  }
  return log::Level::kInfo;
}

LogLevel ToConfigLevel(log::Level level) {
  switch (level) {
    case log::Level::kDebug: return LogLevel::kDebug;
    case log::Level::kInfo: return LogLevel::kInfo;
    case log::Level::kWarning: return LogLevel::kWarning;
    case log::Level::kError: return LogLevel::kError;
  }
  return LogLevel::kInfo;
}

// At log level debug, every pool event becomes a log line, written on the
// hub's thread. Returns the subscription (null at other levels); the hub
// must outlive it.
std::shared_ptr<PoolEventsHub::Subscription> LogPoolEvents(
    PoolEventsHub& hub) {
  if (!log::Default().Enabled(log::Level::kDebug)) return nullptr;
  auto holder =
      std::make_shared<std::shared_ptr<PoolEventsHub::Subscription>>();
  const auto drain = [&hub, weak = std::weak_ptr(holder)] {
    std::shared_ptr<std::shared_ptr<PoolEventsHub::Subscription>> held =
        weak.lock();
    if (held == nullptr || *held == nullptr) return;
    PoolEventsHub::Delivery d;
    while (hub.Next(**held, &d) == PoolEventsHub::NextResult::kEvent) {
      const PoolEventRecord& e = *d.event;
      std::vector<log::Field> fields = {{"event", PoolEventKindName(e.kind)},
                                        {"connection_id", e.connection_id},
                                        {"address", e.address}};
      if (!e.reason.empty()) fields.emplace_back("reason", e.reason);
      if (e.kind == PoolEventRecord::Kind::kAcquired) {
        fields.emplace_back("reused", e.reused);
      }
      if (e.kind == PoolEventRecord::Kind::kReleased) {
        fields.emplace_back("succeeded", e.succeeded);
      }
      if (e.leak.has_value()) {
        fields.emplace_back("call_id", e.leak->call_id);
        fields.emplace_back("url", e.leak->url);  // without its query
      }
      if (d.lost > 0) fields.emplace_back("lost", d.lost);
      log::Default().LogFields(log::Level::kDebug, "pool event", fields);
    }
  };
  *holder = hub.Subscribe("", drain);
  drain();  // arms the wake
  // The subscription's owner keeps the holder alive with it.
  return std::shared_ptr<PoolEventsHub::Subscription>(holder, holder->get());
}

// gRPC's own messages (gpr_log) as log lines too, so stderr stays JSON.
void GrpcLog(gpr_log_func_args* args) {
  const log::Level level = args->severity == GPR_LOG_SEVERITY_ERROR
                               ? log::Level::kError
                               : args->severity == GPR_LOG_SEVERITY_INFO
                                     ? log::Level::kInfo
                                     : log::Level::kDebug;
  log::Default().Log(level, args->message != nullptr ? args->message : "",
                     {{"source", "grpc"},
                      {"file", args->file != nullptr ? args->file : ""},
                      {"line", args->line}});
}

// The flag's value if it was given on the command line.
template <typename T>
std::optional<T> IfGiven(const absl::Flag<T>& flag,
                         const std::set<std::string>& given) {
  if (given.count(std::string(absl::GetFlagReflectionHandle(flag).Name())) ==
      0) {
    return std::nullopt;
  }
  return absl::GetFlag(flag);
}

FlagOverrides OverridesFromFlags(const std::set<std::string>& given) {
  FlagOverrides f;
  f.listen = IfGiven(FLAGS_listen, given);
  f.admin_listen = IfGiven(FLAGS_admin_listen, given);
  f.event_loops = IfGiven(FLAGS_event_loops, given);
  f.completion_queues = IfGiven(FLAGS_completion_queues, given);
  f.max_idle_connections = IfGiven(FLAGS_max_idle_connections, given);
  f.max_idle_per_address = IfGiven(FLAGS_max_idle_per_address, given);
  f.keep_alive = IfGiven(FLAGS_keep_alive, given);
  f.health_check_after_idle = IfGiven(FLAGS_health_check_after_idle, given);
  f.partition_pool_by_caller = IfGiven(FLAGS_partition_pool_by_caller, given);
  f.max_connection_lifetime = IfGiven(FLAGS_max_connection_lifetime, given);
  f.max_connections = IfGiven(FLAGS_max_connections, given);
  f.max_connections_per_address =
      IfGiven(FLAGS_max_connections_per_address, given);
  f.max_requests_in_flight = IfGiven(FLAGS_max_requests_in_flight, given);
  f.max_requests_in_flight_per_address =
      IfGiven(FLAGS_max_requests_in_flight_per_address, given);
  f.max_pending_per_address = IfGiven(FLAGS_max_pending_per_address, given);
  f.pending_timeout = IfGiven(FLAGS_pending_timeout, given);
  f.leak_threshold = IfGiven(FLAGS_leak_threshold, given);
  f.connect_timeout = IfGiven(FLAGS_connect_timeout, given);
  f.default_call_timeout = IfGiven(FLAGS_default_call_timeout, given);
  f.shutdown_grace = IfGiven(FLAGS_shutdown_grace, given);
  f.max_response_body_bytes = IfGiven(FLAGS_max_response_body_bytes, given);
  f.max_request_body_bytes = IfGiven(FLAGS_max_request_body_bytes, given);
  f.max_in_flight_per_caller = IfGiven(FLAGS_max_in_flight_per_caller, given);
  f.caller_metadata_key = IfGiven(FLAGS_caller_metadata_key, given);
  f.first_byte_timeout = IfGiven(FLAGS_first_byte_timeout, given);
  f.idle_read_timeout = IfGiven(FLAGS_idle_read_timeout, given);
  f.allow_cidr = IfGiven(FLAGS_allow_cidr, given);
  f.deny_cidr = IfGiven(FLAGS_deny_cidr, given);
  f.egress_report_only = IfGiven(FLAGS_egress_report_only, given);
  return f;
}

// A server option that drops every builder plugin, reflection included.
class WithoutPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(
      std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins)
      override {
    plugins->clear();
  }
};

// Builds a server listening on `endpoint` (an IP, never a name: see
// ResolveListenAddress), without SO_REUSEPORT so that a port already in use
// is an error instead of a silently shared port.
std::unique_ptr<grpc::Server> BuildServer(
    grpc::ServerBuilder& builder, const asio::ip::tcp::endpoint& endpoint,
    int* bound_port) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(EndpointString(endpoint),
                           grpc::InsecureServerCredentials(), bound_port);
  return builder.BuildAndStart();
}

int Run(int raw_argc, char** raw_argv) {
  // Debian builds abseil without NDEBUG, so absl::Mutex (which gRPC locks on
  // every call) keeps a global lock-order graph and would abort the process
  // on a cycle it suspects. That is a debugging aid: it showed up in `perf`
  // at saturation (GraphCycles), and a sidecar must not abort on a
  // suspicion. Our own locks are checked by the TSan suite instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // --help lists the flags of this file (abseil's default looks for a file
  // named after the binary, egressd.cc, and would list none).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "gRPC HTTP egress sidecar with a shared connection pool.\n"
      "Usage: egressd [--config=FILE] [--listen=HOST:PORT] ...\n"
      "       egressd --check_config=FILE [flags]");
  std::vector<std::string> args = JoinRepeatedListFlags(
      std::vector<std::string>(raw_argv, raw_argv + raw_argc));
  const std::set<std::string> given = FlagNamesOnCommandLine(args);
  plain_messages = given.count("check_config") > 0;
  std::vector<char*> arg_pointers;
  for (std::string& a : args) arg_pointers.push_back(a.data());
  std::vector<char*> positional = absl::ParseCommandLine(
      static_cast<int>(arg_pointers.size()), arg_pointers.data());
  if (positional.size() > 1) {
    return Fail(absl::StrCat("unexpected argument '", positional[1],
                             "' (egressd takes only --flags; see --help)"));
  }
  // Flags read from elsewhere would not count as given (see
  // FlagNamesOnCommandLine) and silently lose to the file.
  for (const char* indirect : {"flagfile", "fromenv", "tryfromenv"}) {
    if (given.count(indirect) > 0) {
      return Fail(absl::StrCat("--", indirect,
                               " is not supported; put settings in a "
                               "--config=FILE instead"));
    }
  }

  const std::string check_path = absl::GetFlag(FLAGS_check_config);
  const bool check_only = given.count("check_config") > 0;
  if (check_only && check_path.empty()) {
    return Fail("--check_config needs a file: --check_config=FILE");
  }
  // The image's entrypoint passes --config; `--check_config` of the same
  // file after it is fine, of another file ambiguous.
  if (check_only && !absl::GetFlag(FLAGS_config).empty() &&
      absl::GetFlag(FLAGS_config) != check_path) {
    return Fail(absl::StrCat("--check_config=", check_path, " and --config=",
                             absl::GetFlag(FLAGS_config),
                             " name different files; give one"));
  }
  const std::string config_path =
      check_only ? check_path : absl::GetFlag(FLAGS_config);
  EgressdConfig file_config;
  if (!config_path.empty()) {
    absl::StatusOr<EgressdConfig> loaded = LoadConfigFile(config_path);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    file_config = *std::move(loaded);
  }
  absl::StatusOr<EgressdConfig> config =
      ApplyFlags(std::move(file_config), OverridesFromFlags(given));
  if (!config.ok()) return Fail(std::string(config.status().message()));
  // --log_level and --access_log override logging.level and
  // logging.access_log (so --check_config shows them too).
  if (given.count("log_level") > 0) {
    const std::string value = absl::GetFlag(FLAGS_log_level);
    std::optional<log::Level> level = log::ParseLevel(value);
    if (!level.has_value()) {
      return Fail(absl::StrCat("--log_level (logging.level): '", value,
                               "' is not one of debug, info, warning, "
                               "error"));
    }
    config->logging.level = ToConfigLevel(*level);
  }
  if (given.count("access_log") > 0) {
    config->logging.access_log = absl::GetFlag(FLAGS_access_log);
  }
  log::Default().set_level(ToLogLevel(config->logging.level));
  log::SetAccessLogEnabled(config->logging.access_log);
  if (absl::Status s = CheckImplemented(*config); !s.ok()) {
    return Fail(config_path.empty()
                    ? std::string(s.message())
                    : absl::StrCat(config_path, ": ", s.message()));
  }
  absl::StatusOr<HttpClientOptions> client_options =
      ClientOptionsFromConfig(*config, absl::GetFlag(FLAGS_resolve));
  if (!client_options.ok()) {
    return Fail(std::string(client_options.status().message()));
  }
  // --metrics_listen overrides listeners.metrics_listen; "off" or ""
  // turns the endpoint off.
  std::optional<ListenAddress> metrics_listen =
      config->listeners.metrics_listen;
  if (given.count("metrics_listen") > 0) {
    const std::string value = absl::GetFlag(FLAGS_metrics_listen);
    if (value.empty() || value == "off") {
      metrics_listen.reset();
    } else {
      absl::StatusOr<ListenAddress> parsed =
          ParseListenAddress("--metrics_listen", value);
      if (!parsed.ok()) return Fail(std::string(parsed.status().message()));
      metrics_listen = *parsed;
    }
  }
  // --health_listen overrides listeners.health_listen; "off" or "" turns it
  // off. Validated again: it must not share a port with another listener.
  if (given.count("health_listen") > 0) {
    const std::string value = absl::GetFlag(FLAGS_health_listen);
    if (value.empty() || value == "off") {
      config->listeners.health_listen.reset();
    } else {
      absl::StatusOr<ListenAddress> parsed =
          ParseListenAddress("--health_listen", value);
      if (!parsed.ok()) return Fail(std::string(parsed.status().message()));
      config->listeners.health_listen = *parsed;
    }
    if (absl::Status s = ValidateConfig(*config); !s.ok()) {
      return Fail(absl::StrCat("--health_listen: ", s.message()));
    }
  }
  for (const std::string& warning : EgressdWarnings(*config)) {
    if (plain_messages) {
      std::fprintf(stderr, "egressd: warning: %s\n", warning.c_str());
    } else {
      log::Warning("configuration warning", {{"warning", warning}});
    }
  }
  if (check_only) {
    // What egressd would bind, resolved now (it resolves again at start);
    // --metrics_listen as given (an empty host is off).
    EgressdConfig effective = *config;
    effective.listeners.metrics_listen = metrics_listen.value_or(ListenAddress{});
    if (absl::Status s = CheckListenersResolve(effective); !s.ok()) {
      return Fail(absl::StrCat(config_path, ": ", s.message()));
    }
    std::fputs(RenderEffectiveConfig(*config).c_str(), stdout);
    return 0;
  }

  // Each listener's host is resolved once; that address is judged and bound
  // (never the name again, which could resolve elsewhere the second time).
  absl::StatusOr<asio::ip::tcp::endpoint> listen_endpoint =
      ResolveListenAddress(config->listeners.listen);
  if (!listen_endpoint.ok()) {
    return Fail(absl::StrCat("listeners.listen (--listen): ",
                             listen_endpoint.status().message()));
  }
  absl::StatusOr<asio::ip::tcp::endpoint> admin_endpoint =
      ResolveListenAddress(config->listeners.admin_listen);
  if (!admin_endpoint.ok()) {
    return Fail(absl::StrCat("listeners.admin_listen (--admin_listen): ",
                             admin_endpoint.status().message()));
  }
  if (absl::Status s =
          CheckAdminListenBound(config->listeners, admin_endpoint->address());
      !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::optional<asio::ip::tcp::endpoint> health_endpoint;
  if (config->listeners.health_listen.has_value()) {
    absl::StatusOr<asio::ip::tcp::endpoint> resolved =
        ResolveListenAddress(*config->listeners.health_listen);
    if (!resolved.ok()) {
      return Fail(absl::StrCat("listeners.health_listen (--health_listen): ",
                               resolved.status().message()));
    }
    health_endpoint = *resolved;
  }

  gpr_set_log_function(GrpcLog);

  // Signals are taken by sigwait below; every thread created from here on
  // inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The pool's and the Connector's listener: WatchPoolEvents streams from
  // it. Declared before the client, which must not outlive it.
  PoolEventsHub events;
  client_options->connector.listener = &events;
  HttpClient client(*client_options, &events);

  FetchServiceOptions fetch_options;
  fetch_options.completion_queues = config->threads.completion_queues;
  fetch_options.default_call_timeout = config->timeouts.default_call;
  fetch_options.caller_metadata_key = config->limits.caller_metadata_key;
  // Every request reaches egressd's own limits, which answer an oversized
  // body precisely, log it and count it (see the option).
  fetch_options.max_receive_message_bytes = -1;
  FetchService fetch_service(fetch_options, &client);

  const ListenAddress& listen = config->listeners.listen;
  const ListenAddress& admin_listen = config->listeners.admin_listen;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // The health listener serves health and nothing else: no plugin (gRPC's
  // reflection registers itself into every builder once linked).
  grpc::ServerBuilder health_builder;
  health_builder.SetOption(std::make_unique<WithoutPlugins>());
  // Every other method answers UNIMPLEMENTED through gRPC's default generic
  // service; a server with no service of its own is refused by the builder.
  grpc::CallbackGenericService health_unimplemented;
  health_builder.RegisterCallbackGenericService(&health_unimplemented);
  grpc::ServerBuilder fetch_builder;
  fetch_service.Register(fetch_builder);
  int fetch_port = 0;
  std::unique_ptr<grpc::Server> fetch_server =
      BuildServer(fetch_builder, *listen_endpoint, &fetch_port);
  if (fetch_server == nullptr || fetch_port == 0) {
    return Fail(absl::StrCat("cannot listen on ", listen.ToString(),
                             " (listeners.listen, --listen): address in use "
                             "or not local"));
  }

  PoolAdminService admin_service(&client, &events);
  const std::shared_ptr<PoolEventsHub::Subscription> debug_events =
      LogPoolEvents(events);
  // With a token, only the checking wrapper is registered.
  std::unique_ptr<TokenCheckedPoolAdmin> checked_admin;
  if (!config->listeners.admin_token.empty()) {
    checked_admin = std::make_unique<TokenCheckedPoolAdmin>(
        config->listeners.admin_token.value, &admin_service);
  }
  grpc::ServerBuilder admin_builder;
  if (checked_admin != nullptr) {
    admin_builder.RegisterService(checked_admin.get());
  } else {
    admin_builder.RegisterService(&admin_service);
  }
  int admin_port = 0;
  std::unique_ptr<grpc::Server> admin_server =
      BuildServer(admin_builder, *admin_endpoint, &admin_port);
  if (admin_server == nullptr || admin_port == 0) {
    fetch_server->Shutdown();
    fetch_service.Shutdown();
    return Fail(absl::StrCat("cannot listen on ", admin_listen.ToString(),
                             " (listeners.admin_listen, --admin_listen): "
                             "address in use or not local"));
  }
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (metrics_listen.has_value()) {
    metrics::MetricsServerOptions metrics_options;
    metrics_options.per_address = absl::GetFlag(FLAGS_metrics_per_address);
    metrics_options.admin_token = config->listeners.admin_token.value;
    metrics_options.allowed_hosts = config->listeners.metrics_allowed_hosts;
    absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> started =
        metrics::MetricsServer::Start(*metrics_listen, &client,
                                      &metrics::CallMetrics::Global(),
                                      metrics_options);
    if (!started.ok()) {
      admin_server->Shutdown();
      fetch_server->Shutdown();
      fetch_service.Shutdown();
      return Fail(absl::StrCat(started.status().message(),
                               " (listeners.metrics_listen, --metrics_listen; "
                               "--metrics_listen=off turns it off)"));
    }
    metrics_server = *std::move(started);
  }
  // Only the default health service, which gRPC adds at start.
  std::unique_ptr<grpc::Server> health_server;
  int health_port = 0;
  if (health_endpoint.has_value()) {
    health_server = BuildServer(health_builder, *health_endpoint, &health_port);
    if (health_server == nullptr || health_port == 0) {
      if (metrics_server != nullptr) metrics_server->Stop();
      admin_server->Shutdown();
      fetch_server->Shutdown();
      fetch_service.Shutdown();
      return Fail(absl::StrCat(
          "cannot listen on ", config->listeners.health_listen->ToString(),
          " (listeners.health_listen, --health_listen): address in use or "
          "not local"));
    }
  }
  // egressd's own listeners, as bound, are never egress destinations on any
  // route (the policy judges them before its allow lists). Set before the
  // Fetch service takes its first call.
  if (client_options->connector.policy != nullptr) {
    std::vector<OwnListener> own = {
        {listen_endpoint->address(), static_cast<uint16_t>(fetch_port),
         "Fetch"},
        {admin_endpoint->address(), static_cast<uint16_t>(admin_port),
         "admin"}};
    if (metrics_server != nullptr) {
      own.push_back(OwnListenerFor(metrics_server->bound(), "metrics"));
    }
    if (health_server != nullptr) {
      own.push_back({health_endpoint->address(),
                     static_cast<uint16_t>(health_port), "health"});
    }
    client_options->connector.policy->SetOwnListeners(std::move(own));
  }
  fetch_service.Start();
  // Each server has its own health service; both say the same.
  std::vector<grpc::HealthCheckServiceInterface*> healths = {
      fetch_server->GetHealthCheckService()};
  if (health_server != nullptr) {
    healths.push_back(health_server->GetHealthCheckService());
  }
  for (grpc::HealthCheckServiceInterface* health : healths) {
    health->SetServingStatus(true);
    health->SetServingStatus("egress.v1.Fetcher", true);
  }

  // The addresses bound, not the names configured.
  const std::string bound_listen = EndpointString(asio::ip::tcp::endpoint(
      listen_endpoint->address(), static_cast<uint16_t>(fetch_port)));
  const std::string bound_admin = EndpointString(asio::ip::tcp::endpoint(
      admin_endpoint->address(), static_cast<uint16_t>(admin_port)));
  const std::string bound_metrics =
      metrics_server != nullptr ? metrics_server->bound().ToString()
                                : std::string("off");
  const std::string bound_health =
      health_server != nullptr
          ? EndpointString(asio::ip::tcp::endpoint(
                health_endpoint->address(), static_cast<uint16_t>(health_port)))
          : std::string("off");
  // admin_listen stays last: scripts read it to the end of the line.
  std::printf(
      "EGRESSD_READY listen=%s health_listen=%s metrics_listen=%s "
      "admin_listen=%s\n",
      bound_listen.c_str(), bound_health.c_str(), bound_metrics.c_str(),
      bound_admin.c_str());
  std::fflush(stdout);
  log::Info("egressd started",
            {{"listen", bound_listen},
             {"health_listen", bound_health},
             {"admin_listen", bound_admin},
             {"metrics_listen", bound_metrics},
             {"log_level", LogLevelName(config->logging.level)},
             {"access_log", config->logging.access_log}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log::Info("shutting down",
            {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
             {"grace_ms", config->timeouts.shutdown_grace}});

  // Every service name, "" and egress.v1.Fetcher alike.
  for (grpc::HealthCheckServiceInterface* health : healths) {
    health->SetServingStatus(false);
  }
  const absl::Duration grace = config->timeouts.shutdown_grace;
  std::printf("EGRESSD_DRAINING grace=%s\n",
              absl::FormatDuration(grace).c_str());
  std::fflush(stdout);
  const absl::Time give_up = absl::Now() + grace;
  // Shutdown stops accepting calls and sends every connection a GOAWAY; it
  // waits for every call in flight and every connection to close until
  // give_up, then cancels what is left. Measured with gRPC 1.51, two things
  // besides Fetches kept it waiting after the last Fetch: an open health
  // Watch stream, until give_up (the default health service ends Watches
  // only when the server is destroyed); and an idle gRPC C++ client, up to
  // 5 s (it closes only when its channel's backup poller next runs). So it
  // runs on its own thread, and once no Fetch is left to answer, what
  // remains is cancelled at once: those connections are closed and the
  // Watches end (their callers have seen NOT_SERVING, or see the stream end;
  // both mean "go elsewhere").
  std::thread drain(
      [&] { fetch_server->Shutdown(absl::ToChronoTime(give_up)); });
  if (fetch_service.AwaitNoCalls(give_up)) {
    grpc_server_cancel_all_calls(fetch_server->c_server());
  }
  drain.join();
  // Probes have seen NOT_SERVING throughout the drain; open Watches end now.
  if (health_server != nullptr) health_server->Shutdown(absl::ToChronoTime(absl::Now()));
  client.Shutdown(absl::ZeroDuration());
  fetch_service.Shutdown();
  // WatchPoolEvents streams end (OK) once they have the pool's last events,
  // so the admin server need not cancel them.
  events.Close();
  admin_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  // Last, so the pool can be watched while it drains.
  if (metrics_server != nullptr) metrics_server->Stop();
  log::Info("egressd stopped");
  log::Default().Flush();
  return 0;
}

}  // namespace
}  // namespace egress

int main(int argc, char** argv) { return egress::Run(argc, argv); }
