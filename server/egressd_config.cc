#include "server/egressd_config.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "asio/ip/address.hpp"
#include "client_core/connection/connector.h"
#include "client_core/policy/egress_policy.h"
#include "client_core/route/resolver.h"

namespace egress {
namespace {

// A flag that ApplyFlags applied, kept to name it in a later error.
struct Applied {
  const char* flag;
  const char* field;
};

absl::Status FlagError(const char* flag, const char* field,
                       absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " (", field, "): ", problem));
}

// Applies the overrides one kind at a time; the first bad value is the error.
// Each call writes one field and remembers which flag set it.
class Applier {
 public:
  absl::Status Listen(const std::optional<std::string>& value,
                      const char* flag, const char* field,
                      ListenAddress* out) {
    if (!value.has_value()) return absl::OkStatus();
    absl::StatusOr<ListenAddress> address =
        ParseListenAddress(absl::StrCat("--", flag), *value);
    if (!address.ok()) return address.status();
    *out = *std::move(address);
    applied_.push_back({flag, field});
    return absl::OkStatus();
  }

  // A count flag: >= 0, and no larger than `max` (the field's type).
  template <typename T>
  absl::Status Count(const std::optional<int64_t>& value, const char* flag,
                     const char* field, T* out, int64_t max = INT64_MAX) {
    if (!value.has_value()) return absl::OkStatus();
    if (*value < 0) {
      return FlagError(flag, field, absl::StrCat("must be >= 0, got ", *value));
    }
    if (*value > max) {
      return FlagError(flag, field,
                       absl::StrCat("must be <= ", max, ", got ", *value));
    }
    *out = static_cast<T>(*value);
    applied_.push_back({flag, field});
    return absl::OkStatus();
  }

  // Durations are range-checked by ValidateConfig, whose message ApplyFlags
  // then attributes to the flag.
  void Duration(const std::optional<absl::Duration>& value, const char* flag,
                const char* field, absl::Duration* out) {
    if (!value.has_value()) return;
    *out = *value;
    applied_.push_back({flag, field});
  }

  absl::Status Cidrs(const std::optional<std::vector<std::string>>& value,
                     const char* flag, const char* field,
                     std::vector<Cidr>* out) {
    if (!value.has_value()) return absl::OkStatus();
    std::vector<Cidr> cidrs;
    for (const std::string& entry : *value) {
      const absl::string_view text = absl::StripAsciiWhitespace(entry);
      if (text.empty()) continue;  // "--allow_cidr=" or a trailing comma
      absl::StatusOr<Cidr> cidr = ParseCidr(text);
      if (!cidr.ok()) {
        return FlagError(flag, field, cidr.status().message());
      }
      cidrs.push_back(*cidr);
    }
    *out = std::move(cidrs);
    applied_.push_back({flag, field});
    return absl::OkStatus();
  }

  void Bool(const std::optional<bool>& value, const char* flag,
            const char* field, bool* out) {
    if (!value.has_value()) return;
    *out = *value;
    applied_.push_back({flag, field});
  }

  // Checked by ValidateConfig, like durations.
  void String(const std::optional<std::string>& value, const char* flag,
              const char* field, std::string* out) {
    if (!value.has_value()) return;
    *out = *value;
    applied_.push_back({flag, field});
  }

  // ValidateConfig's "field: problem", with the flag named when a flag set
  // that field.
  absl::Status Attribute(const absl::Status& status) const {
    if (status.ok()) return status;
    for (const Applied& a : applied_) {
      absl::string_view message = status.message();
      if (absl::ConsumePrefix(&message, absl::StrCat(a.field, ": "))) {
        return FlagError(a.flag, a.field, message);
      }
    }
    return status;
  }

 private:
  std::vector<Applied> applied_;
};

// Why a field is refused by CheckImplemented; nullptr if it is not.
// None today; kept so a field this build parses but cannot enforce is
// refused rather than silently ignored.
const char* NotImplementedReason(absl::string_view path) {
  (void)path;
  return nullptr;
}

HostPattern ToHostPattern(const HostMatch& match) {
  switch (match.kind) {
    case HostMatch::Kind::kHost: return HostPattern::ForHost(match.name);
    case HostMatch::Kind::kSuffix: return HostPattern::ForSuffix(match.name);
    case HostMatch::Kind::kCidr:
      // The configuration checked it; IpRange reads the same text.
      return HostPattern::ForCidr(IpRange::Parse(match.cidr.ToString()).value());
  }
  return HostPattern::Any();
}

DestinationOptions ToDestinationOptions(const TlsSettings& t) {
  DestinationOptions o;
  o.verify = !t.insecure_skip_verify;
  o.allow_cleartext = t.allow_cleartext;
  o.ca_file = t.ca_file;
  o.client_cert_file = t.client_cert_file;
  o.client_key_file = t.client_key.file;
  o.spec = t.policy == TlsPolicy::kCompatible ? TlsSpec::kCompatible
                                              : TlsSpec::kModern;
  switch (t.protocol) {
    case HttpProtocol::kAuto: o.protocols = HttpProtocols::kAuto; break;
    case HttpProtocol::kHttp1: o.protocols = HttpProtocols::kHttp11; break;
    // h2 over TLS and h2c over cleartext are one choice per destination:
    // "speak HTTP/2" (ALPN must pick h2 for https; prior knowledge for
    // http).
    case HttpProtocol::kH2:
    case HttpProtocol::kH2c: o.protocols = HttpProtocols::kHttp2; break;
  }
  return o;
}

// The IP literal a listener is configured with (brackets dropped), or
// nullopt for a host name.
std::optional<asio::ip::address> ListenIp(const ListenAddress& listen) {
  std::string host = listen.host;
  if (host.size() > 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return ip;
}

// Every address of this host's interfaces (getifaddrs), the addresses a
// wildcard listener accepts on. Empty if they cannot be read.
std::vector<asio::ip::address> InterfaceAddresses() {
  std::vector<asio::ip::address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      out.push_back(asio::ip::address_v4(ntohl(in->sin_addr.s_addr)));
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), in6->sin6_addr.s6_addr, bytes.size());
      out.push_back(asio::ip::address_v6(bytes));
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ProxySelector>> ProxySelectorFromConfig(
    const ProxyConfig& config, std::map<std::string, std::string> environment) {
  ProxySelectorOptions options;
  for (const ProxyServer& p : config.proxies) {
    Proxy proxy;
    proxy.name = p.name;
    proxy.scheme = p.scheme == ProxyScheme::kSocks5 ? Proxy::Scheme::kSocks5
                                                    : Proxy::Scheme::kHttp;
    proxy.host = p.host;
    proxy.port = p.port;
    proxy.username = p.username;
    proxy.password = p.password.value;
    proxy.preemptive_auth = p.preemptive;
    options.proxies.push_back(std::move(proxy));
  }
  for (const ProxyRule& r : config.rules) {
    options.rules.push_back({ToHostPattern(r.match), r.via});
  }
  for (const HostMatch& m : config.no_proxy) {
    options.no_proxy.push_back(ToHostPattern(m));
  }
  options.default_via = config.default_via;
  options.use_environment = config.use_env_proxy;
  if (config.use_env_proxy) options.environment = std::move(environment);
  absl::StatusOr<ProxySelector> selector =
      ProxySelector::Create(std::move(options));
  if (!selector.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("proxy: ", selector.status().message()));
  }
  return std::make_shared<const ProxySelector>(*std::move(selector));
}

absl::StatusOr<std::shared_ptr<TlsClient>> TlsClientFromConfig(
    const TlsConfig& tls) {
  std::vector<DestinationRule> rules;
  for (size_t i = 0; i < tls.destinations.size(); ++i) {
    const TlsDestination& d = tls.destinations[i];
    DestinationRule rule;
    rule.options = ToDestinationOptions(d.settings);
    switch (d.match.kind) {
      case HostMatch::Kind::kHost: rule.host = d.match.name; break;
      case HostMatch::Kind::kSuffix: rule.domain_suffix = d.match.name; break;
      case HostMatch::Kind::kCidr: {
        absl::StatusOr<IpRange> range = IpRange::Parse(d.match.cidr.ToString());
        if (!range.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "tls.destinations[", i, "]: ", range.status().message()));
        }
        rule.cidr = *range;
        break;
      }
    }
    rules.push_back(std::move(rule));
  }
  absl::StatusOr<DestinationRules> made = DestinationRules::Create(
      ToDestinationOptions(tls.default_settings), std::move(rules));
  if (!made.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.destinations: ", made.status().message()));
  }
  absl::StatusOr<std::unique_ptr<TlsClient>> client =
      TlsClient::Create(*std::move(made));
  if (!client.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: ", client.status().message()));
  }
  return std::shared_ptr<TlsClient>(*std::move(client));
}

absl::StatusOr<EgressdConfig> ApplyFlags(EgressdConfig config,
                                         const FlagOverrides& f) {
  Applier apply;
  ListenersConfig& l = config.listeners;
  PoolConfig& p = config.pool;
  TimeoutsConfig& t = config.timeouts;
  // A braced list is evaluated left to right; the first error wins.
  for (const absl::Status& status : {
           apply.Listen(f.listen, "listen", "listeners.listen", &l.listen),
           apply.Listen(f.admin_listen, "admin_listen",
                        "listeners.admin_listen", &l.admin_listen),
           apply.Count(f.event_loops, "event_loops", "threads.event_loops",
                       &config.threads.event_loops, INT_MAX),
           apply.Count(f.completion_queues, "completion_queues",
                       "threads.completion_queues",
                       &config.threads.completion_queues, INT_MAX),
           apply.Count(f.max_idle_connections, "max_idle_connections",
                       "pool.max_idle_connections", &p.max_idle_connections),
           apply.Count(f.max_idle_per_address, "max_idle_per_address",
                       "pool.max_idle_per_address", &p.max_idle_per_address),
           apply.Count(f.max_connections, "max_connections",
                       "pool.max_connections", &p.max_connections),
           apply.Count(f.max_connections_per_address,
                       "max_connections_per_address",
                       "pool.max_connections_per_address",
                       &p.max_connections_per_address),
           apply.Count(f.max_requests_in_flight, "max_requests_in_flight",
                       "pool.max_requests_in_flight",
                       &p.max_requests_in_flight),
           apply.Count(f.max_requests_in_flight_per_address,
                       "max_requests_in_flight_per_address",
                       "pool.max_requests_in_flight_per_address",
                       &p.max_requests_in_flight_per_address),
           apply.Count(f.max_pending_per_address, "max_pending_per_address",
                       "pool.max_pending_per_address",
                       &p.max_pending_per_address),
           apply.Count(f.max_response_body_bytes, "max_response_body_bytes",
                       "limits.max_response_body_bytes",
                       &config.limits.max_response_body_bytes),
           apply.Count(f.max_request_body_bytes, "max_request_body_bytes",
                       "limits.max_request_body_bytes",
                       &config.limits.max_request_body_bytes),
           apply.Count(f.max_in_flight_per_caller, "max_in_flight_per_caller",
                       "limits.max_in_flight_per_caller",
                       &config.limits.max_in_flight_per_caller),
           apply.Cidrs(f.allow_cidr, "allow_cidr", "egress.allow_cidrs",
                       &config.egress.allow_cidrs),
           apply.Cidrs(f.deny_cidr, "deny_cidr", "egress.deny_cidrs",
                       &config.egress.deny_cidrs),
       }) {
    if (!status.ok()) return status;
  }
  apply.Duration(f.keep_alive, "keep_alive", "pool.keep_alive", &p.keep_alive);
  apply.Duration(f.health_check_after_idle, "health_check_after_idle",
                 "pool.health_check_after_idle", &p.health_check_after_idle);
  apply.Duration(f.max_connection_lifetime, "max_connection_lifetime",
                 "pool.max_connection_lifetime", &p.max_connection_lifetime);
  apply.Duration(f.pending_timeout, "pending_timeout", "pool.pending_timeout",
                 &p.pending_timeout);
  apply.Duration(f.leak_threshold, "leak_threshold", "pool.leak_threshold",
                 &p.leak_threshold);
  apply.Duration(f.connect_timeout, "connect_timeout", "timeouts.connect",
                 &t.connect);
  apply.Duration(f.default_call_timeout, "default_call_timeout",
                 "timeouts.default_call", &t.default_call);
  apply.Duration(f.shutdown_grace, "shutdown_grace", "timeouts.shutdown_grace",
                 &t.shutdown_grace);
  apply.Bool(f.egress_report_only, "egress_report_only", "egress.report_only",
             &config.egress.report_only);
  apply.Bool(f.partition_pool_by_caller, "partition_pool_by_caller",
             "pool.partition_by_caller", &p.partition_by_caller);
  apply.Duration(f.first_byte_timeout, "first_byte_timeout",
                 "timeouts.first_byte", &t.first_byte);
  apply.Duration(f.idle_read_timeout, "idle_read_timeout", "timeouts.idle_read",
                 &t.idle_read);
  apply.String(f.caller_metadata_key, "caller_metadata_key",
               "limits.caller_metadata_key",
               &config.limits.caller_metadata_key);
  if (absl::Status s = apply.Attribute(ValidateConfig(config)); !s.ok()) {
    return s;
  }
  return config;
}

absl::Status CheckImplemented(const EgressdConfig& config) {
  std::vector<std::string> refused;
  for (const std::string& path : ChangedFromDefaults(config)) {
    if (const char* reason = NotImplementedReason(path)) {
      refused.push_back(absl::StrCat(path, " (", reason, ")"));
    }
  }
  if (refused.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      refused.size() == 1 ? "a field is" : "fields are",
      " set that this build of egressd cannot act on; it refuses to start "
      "rather than run without them: ",
      absl::StrJoin(refused, "; "), ". Remove ",
      refused.size() == 1 ? "it" : "them", " from the configuration."));
}

std::vector<std::string> EgressdWarnings(const EgressdConfig& config) {
  std::vector<std::string> warnings = ConfigWarnings(config);
  const ListenAddress& metrics = config.listeners.metrics_listen;
  if (metrics.Ip().has_value() && !metrics.IsLoopback()) {
    // /metrics takes no token; the pool page and its API do off loopback.
    warnings.push_back(absl::StrCat(
        "listeners.metrics_listen (", metrics.ToString(),
        ") is not a loopback address: /metrics needs no token, so limit who "
        "can reach it (a NetworkPolicy in Kubernetes); the pool page and "
        "/api/ answer only with listeners.admin_token",
        config.listeners.admin_token.empty() ? ", which is not set" : ""));
  }
  return warnings;
}

absl::StatusOr<HttpClientOptions> ClientOptionsFromConfig(
    const EgressdConfig& config, absl::string_view resolve) {
  HttpClientOptions options;
  // Fields are validated (ValidateConfig): every count is >= 0.
  options.event_loops = static_cast<size_t>(config.threads.event_loops);
  const PoolConfig& p = config.pool;
  options.pool.max_idle_connections =
      static_cast<size_t>(p.max_idle_connections);
  options.pool.max_idle_per_address =
      static_cast<size_t>(p.max_idle_per_address);
  options.pool.keep_alive = p.keep_alive;
  options.pool.health_check_after_idle = p.health_check_after_idle;
  options.partition_pool_by_caller = p.partition_by_caller;
  options.pool.max_connection_lifetime = p.max_connection_lifetime;
  options.pool.max_connections = static_cast<size_t>(p.max_connections);
  options.pool.max_connections_per_address =
      static_cast<size_t>(p.max_connections_per_address);
  options.pool.max_requests_in_flight =
      static_cast<size_t>(p.max_requests_in_flight);
  options.pool.max_requests_in_flight_per_address =
      static_cast<size_t>(p.max_requests_in_flight_per_address);
  options.pool.max_pending_per_address =
      static_cast<size_t>(p.max_pending_per_address);
  options.pool.pending_timeout = p.pending_timeout;
  options.leak_threshold = p.leak_threshold;
  options.connector.connect_timeout = config.timeouts.connect;
  const Http2Config& h2 = config.http2;
  options.connector.http2.max_concurrent_streams =
      static_cast<uint32_t>(h2.max_concurrent_streams);
  options.connector.http2.stream_window_bytes =
      static_cast<uint32_t>(h2.stream_window);
  options.connector.http2.connection_window_bytes =
      static_cast<uint32_t>(h2.connection_window);
  options.connector.http2.ping_interval = h2.ping_interval;
  options.connector.http2.ping_timeout = h2.ping_timeout;
  options.connector.http2.ping_before_reuse_after_idle =
      h2.ping_before_reuse_after_idle;
  options.max_response_body_bytes = config.limits.max_response_body_bytes;
  const LimitsConfig& limits = config.limits;
  options.request_limits.max_url_bytes =
      static_cast<size_t>(limits.max_request_url_bytes);
  options.request_limits.max_header_count =
      static_cast<size_t>(limits.max_request_header_count);
  options.request_limits.max_header_bytes =
      static_cast<size_t>(limits.max_request_header_bytes);
  options.request_limits.max_body_bytes = limits.max_request_body_bytes;
  options.max_decompression_ratio =
      static_cast<uint64_t>(limits.max_decompression_ratio);
  options.max_decompressed_bytes = limits.max_decompressed_bytes;
  options.max_in_flight_per_caller =
      static_cast<size_t>(limits.max_in_flight_per_caller);
  options.first_byte_timeout = config.timeouts.first_byte;
  options.idle_read_timeout = config.timeouts.idle_read;
  options.retry_budget.budget_percent =
      static_cast<double>(config.retries.budget_percent);
  options.retry_budget.min_retry_concurrency =
      static_cast<uint32_t>(config.retries.min_retry_concurrency);

  EgressPolicyOptions policy;
  for (const Cidr& c : config.egress.allow_cidrs) {
    policy.allow_cidrs.push_back(c.ToString());
  }
  for (const Cidr& c : config.egress.deny_cidrs) {
    policy.deny_cidrs.push_back(c.ToString());
  }
  // "Only these hosts": the policy's host allow-list (checked before DNS),
  // not its exempt_* lists, which widen egress. The configuration has
  // already lower-cased the hosts and dropped the suffixes' leading dots.
  policy.host_allowlist = config.egress.allow_hosts;
  policy.domain_suffix_allowlist = config.egress.allow_domain_suffixes;
  policy.allowed_ports = config.egress.allowed_ports;
  policy.report_only = config.egress.report_only;
  // egressd's own listening addresses are never egress destinations; a
  // wildcard listener listens on every interface address. A host name
  // ("localhost") is not an address and is left out: its listener is judged
  // as a wildcard (OwnListenerFor).
  std::vector<const ListenAddress*> listeners = {
      &config.listeners.listen, &config.listeners.admin_listen,
      &config.listeners.metrics_listen};
  if (config.listeners.health_listen.has_value()) {
    listeners.push_back(&*config.listeners.health_listen);
  }
  for (const ListenAddress* a : listeners) {
    const std::optional<asio::ip::address> ip = ListenIp(*a);
    if (!ip.has_value()) continue;
    if (ip->is_unspecified()) {
      for (const asio::ip::address& local : InterfaceAddresses()) {
        policy.self_addresses.push_back(local);
      }
    }
    policy.self_addresses.push_back(*ip);
  }
  absl::StatusOr<std::unique_ptr<EgressPolicy>> compiled =
      EgressPolicy::Create(std::move(policy));
  if (!compiled.ok()) {
    // The policy names its list ("allow_cidrs[1]: ..."), which is the
    // egress section's field of the same name, except for the host
    // allow-list, whose fields the file calls allow_hosts and
    // allow_domain_suffixes.
    absl::string_view message = compiled.status().message();
    std::string field = "egress.";
    if (absl::ConsumePrefix(&message, "host_allowlist")) {
      field = "egress.allow_hosts";
    } else if (absl::ConsumePrefix(&message, "domain_suffix_allowlist")) {
      field = "egress.allow_domain_suffixes";
    }
    return absl::InvalidArgumentError(absl::StrCat(field, message));
  }
  options.connector.policy =
      std::shared_ptr<const EgressPolicy>(std::move(*compiled));

  absl::StatusOr<std::shared_ptr<TlsClient>> tls = TlsClientFromConfig(config.tls);
  if (!tls.ok()) return tls.status();
  options.connector.tls = *std::move(tls);
  absl::StatusOr<std::shared_ptr<const ProxySelector>> proxies =
      ProxySelectorFromConfig(config.proxy, ProcessProxyEnvironment());
  if (!proxies.ok()) return proxies.status();
  options.connector.proxies = *std::move(proxies);

  if (!resolve.empty()) {
    std::vector<std::string> entries = absl::StrSplit(
        resolve, absl::ByAnyChar("; "), absl::SkipWhitespace());
    absl::StatusOr<StaticHostMap> hosts = ParseStaticHosts(entries);
    if (!hosts.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--resolve: ", hosts.status().message()));
    }
    // Hosts not listed still go to DNS.
    options.resolver = std::make_shared<StaticResolver>(*std::move(hosts),
                                                        DefaultResolver());
  }
  return options;
}

std::vector<std::string> JoinRepeatedListFlags(
    const std::vector<std::string>& args) {
  const std::vector<std::string> names = {"allow_cidr", "deny_cidr"};
  std::vector<std::string> out;
  std::vector<std::string> joined(names.size());
  std::vector<bool> given(names.size(), false);
  bool after_terminator = false;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (i == 0 || after_terminator) {
      out.emplace_back(arg);
      continue;
    }
    if (arg == "--") after_terminator = true;
    absl::string_view name = arg;
    bool taken = false;
    if (absl::ConsumePrefix(&name, "--") || absl::ConsumePrefix(&name, "-")) {
      for (size_t f = 0; f < names.size(); ++f) {
        absl::string_view value = name;
        if (absl::ConsumePrefix(&value, names[f]) &&
            absl::ConsumePrefix(&value, "=")) {
          if (!value.empty()) {
            absl::StrAppend(&joined[f], joined[f].empty() ? "" : ",", value);
          }
          given[f] = true;
          taken = true;
        }
      }
    }
    if (!taken) out.emplace_back(arg);
  }
  // Before a "--" terminator, if any, so abseil still reads them as flags.
  auto insert_at = out.end();
  for (auto it = out.begin() + (out.empty() ? 0 : 1); it != out.end(); ++it) {
    if (*it == "--") {
      insert_at = it;
      break;
    }
  }
  std::vector<std::string> lists;
  for (size_t f = 0; f < names.size(); ++f) {
    if (given[f]) lists.push_back(absl::StrCat("--", names[f], "=", joined[f]));
  }
  out.insert(insert_at, lists.begin(), lists.end());
  return out;
}

std::set<std::string> FlagNamesOnCommandLine(
    const std::vector<std::string>& args) {
  std::set<std::string> names;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) {
      continue;  // a value or a positional argument
    }
    const absl::string_view name = arg.substr(0, arg.find('='));
    if (name.empty()) continue;
    names.emplace(name);
    absl::string_view positive = name;
    if (absl::ConsumePrefix(&positive, "no") && !positive.empty()) {
      names.emplace(positive);
    }
  }
  return names;
}

OwnListener OwnListenerFor(const ListenAddress& bound, std::string name) {
  OwnListener listener;
  const std::optional<asio::ip::address> ip = ListenIp(bound);
  listener.address = ip.value_or(asio::ip::address(asio::ip::address_v4::any()));
  listener.port = bound.port;
  listener.name = std::move(name);
  return listener;
}

}  // namespace egress
