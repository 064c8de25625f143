#include "client_core/connection/connector.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/ip/address.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/connection/http1_connection.h"
#include "client_core/http2/http2_connection.h"
#include "client_core/net/socket_deadline.h"
#include "client_core/proxy/http_tunnel.h"
#include "client_core/proxy/socks5.h"
#include "client_core/route/caching_resolver.h"
#include "client_core/route/route_selector.h"
#include "client_core/route/system_resolver.h"
#include "client_core/route/timer_deadline.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// One connection attempt on one route. Shared by the race and the attempt's
// completion handler, which may run after the race is over (a cancelled
// loser).
struct Attempt {
  Attempt(const asio::any_io_executor& executor, Route r)
      : route(std::move(r)), socket(executor) {}

  Route route;
  asio::ip::tcp::socket socket;
  absl::Time started;
  absl::Time give_up_at;  // connect_timeout after `started`, or the deadline
  // Set by the completion handler.
  bool completed = false;
  asio::error_code error;
  // The race has accounted for this attempt (won, failed, timed out or
  // cancelled); nothing more happens to it.
  bool settled = false;
};

// The race's wake-up call: attempts cancel `wake` when they complete.
struct Race {
  explicit Race(const asio::any_io_executor& executor) : wake(executor) {}
  asio::steady_timer wake;
  // The race returned; completions of cancelled attempts change nothing.
  bool over = false;
};

void AppendFailure(std::string& failures, const Route& route,
                   absl::string_view what) {
  absl::StrAppend(&failures, failures.empty() ? "" : "; ",
                  EndpointToString(route.endpoint), ": ", what);
}

std::shared_ptr<Resolver> MakeDefaultResolver(const ResolverOptions& options) {
  return std::make_shared<CachingResolver>(
      std::make_shared<SystemResolver>(options), options);
}

}  // namespace

std::shared_ptr<Resolver> DefaultResolver() {
  // Never destroyed: in-flight lookups on any event loop may still hold it
  // at exit.
  static auto* const resolver =
      new std::shared_ptr<Resolver>(MakeDefaultResolver(ResolverOptions{}));
  return *resolver;
}

Connector::Connector(const ConnectorOptions& options,
                     std::shared_ptr<Resolver> resolver)
    : options_(options),
      resolver_(resolver != nullptr ? std::move(resolver)
                                    : MakeDefaultResolver(options.resolver)),
      tls_(options.tls != nullptr ? options.tls
                                  : std::shared_ptr<TlsClient>(
                                        TlsClient::Create(DestinationRules())
                                            .value())),
      route_database_(options.failed_route_expiry) {
  if (options_.proxies != nullptr) {
    for (const std::shared_ptr<const Proxy>& proxy :
         options_.proxies->proxies()) {
      if (!proxy->has_credentials()) continue;
      proxy_asked_[proxy->name] =
          std::make_shared<std::atomic<bool>>(proxy->preemptive_auth);
    }
  }
}

std::shared_ptr<std::atomic<bool>> Connector::ProxyAskedForCredentials(
    const std::string& name) const {
  auto it = proxy_asked_.find(name);
  return it == proxy_asked_.end() ? nullptr : it->second;
}

bool Connector::SendsProxyCredentials(const std::string& name) const {
  auto it = proxy_asked_.find(name);
  return it != proxy_asked_.end() &&
         it->second->load(std::memory_order_relaxed);
}

std::string_view ConnectFailureName(ConnectFailure failure) {
  switch (failure) {
    case ConnectFailure::kEgressPolicy: return "egress_policy";
    case ConnectFailure::kDns: return "dns";
    case ConnectFailure::kRefused: return "refused";
    case ConnectFailure::kTimeout: return "timeout";
    case ConnectFailure::kNetwork: return "network";
    case ConnectFailure::kTls: return "tls";
    case ConnectFailure::kDeadline: return "deadline";
    case ConnectFailure::kProxy: return "proxy";
  }
  return "unknown";
}

std::array<uint64_t, kConnectFailureCount> Connector::failures() const {
  std::array<uint64_t, kConnectFailureCount> out{};
  for (size_t i = 0; i < kConnectFailureCount; ++i) {
    out[i] = failures_[i].load(std::memory_order_relaxed);
  }
  return out;
}

std::shared_ptr<const Proxy> Connector::FindProxy(
    const std::string& name) const {
  if (options_.proxies == nullptr) return nullptr;
  for (const std::shared_ptr<const Proxy>& proxy :
       options_.proxies->proxies()) {
    if (proxy->name == name) return proxy;
  }
  return nullptr;
}

absl::Status Connector::CheckOrigin(absl::string_view scheme,
                                    absl::string_view host,
                                    uint16_t port) const {
  if (options_.policy != nullptr) {
    PolicyDecision decision = options_.policy->CheckDestination(host, port);
    if (!decision.allowed) return decision.ToStatus(host);
  }
  if (scheme == "http" && !tls_->rules().For(host).allow_cleartext) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cleartext http:// to '", host,
        "' is not allowed by its destination rule (allow_cleartext: false)"));
  }
  return absl::OkStatus();
}

void Connector::CountFailure(ConnectFailure failure, const Address& address,
                             uint64_t connection_id) {
  failures_[static_cast<size_t>(failure)].fetch_add(1,
                                                    std::memory_order_relaxed);
  if (options_.listener != nullptr) {
    options_.listener->OnConnectFailed(connection_id, address, failure);
  }
}

asio::awaitable<absl::StatusOr<ConnectResult>> Connector::Connect(
    const Address& address, uint64_t connection_id, absl::Time deadline) {
  std::shared_ptr<const Proxy> proxy;
  if (absl::Status ready =
          CheckBeforeDialling(address, connection_id, deadline, &proxy);
      !ready.ok()) {
    co_return ready;
  }
  // Through a proxy: TCP goes to the proxy, which reaches the origin.
  Address dial_address = address;
  if (proxy != nullptr) {
    dial_address.host = proxy->host;
    dial_address.port = proxy->port;
  }
  // 1. Resolve (and let the egress policy judge the addresses).
  absl::Duration dns_time;
  absl::StatusOr<std::vector<asio::ip::address>> ips =
      co_await ResolveForDialling(address, connection_id, dial_address.host,
                                  proxy != nullptr, deadline, &dns_time);
  if (!ips.ok()) co_return ips.status();
  // 2, 3 and 6. Order the routes, race them, record the outcome.
  absl::StatusOr<RaceWinner> won = co_await RaceRoutes(
      address, dial_address, connection_id, *ips, deadline);
  if (!won.ok()) co_return won.status();
  ConnectResult result;
  result.route = won->route;
  result.dns_time = dns_time;
  result.connect_time = won->connect_time;
  result.attempts = won->attempts;
  asio::ip::tcp::socket socket = std::move(won->socket);
  // 4. Through the proxy to the origin.
  if (proxy != nullptr && !address.host.empty()) {
    absl::Status through = co_await ThroughProxy(
        socket, *proxy, address, result.route.endpoint, deadline);
    if (!through.ok()) {
      asio::error_code ignored;
      socket.close(ignored);
      CountFailure(absl::IsDeadlineExceeded(through) ? ConnectFailure::kDeadline
                                                     : ConnectFailure::kProxy,
                   address, connection_id);
      co_return through;
    }
  }
  // 5. TLS, and the protocol.
  absl::Status established =
      co_await Establish(std::move(socket), address, connection_id, proxy,
                         result.route, deadline, &result);
  if (!established.ok()) co_return established;
  co_return result;
}

absl::Status Connector::CheckBeforeDialling(
    const Address& address, uint64_t connection_id, absl::Time deadline,
    std::shared_ptr<const Proxy>* proxy) {
  // Judged before any DNS lookup, direct or through a proxy: a host the
  // rules refuse is never resolved or dialled. (An http:// Address through
  // an HTTP proxy has no host; HttpClient judges each request.)
  if (!address.host.empty()) {
    absl::Status allowed =
        CheckOrigin(address.scheme, address.host, address.port);
    if (!allowed.ok()) {
      CountFailure(ConnectFailure::kEgressPolicy, address, connection_id);
      return allowed;
    }
  }
  if (!address.proxy.empty()) {
    *proxy = FindProxy(address.proxy);
    if (*proxy == nullptr) {
      CountFailure(ConnectFailure::kProxy, address, connection_id);
      return absl::InternalError(absl::StrCat(
          "no proxy named '", address.proxy, "' is configured"));
    }
  }
  // The origin's IP, when the URL names one, is judged through a proxy too,
  // and counted here as the connection's admission (CheckOrigin counts only
  // denials). A name is the proxy's to resolve: the name rules are all
  // egressd can judge it by.
  if (*proxy != nullptr && options_.policy != nullptr &&
      !address.host.empty()) {
    const std::optional<asio::ip::address> origin_ip =
        Resolver::IpLiteral(address.host);
    if (origin_ip.has_value()) {
      PolicyDecision decision =
          options_.policy->Check(address.host, *origin_ip, address.port);
      if (!decision.allowed) {
        CountFailure(ConnectFailure::kEgressPolicy, address, connection_id);
        return decision.ToStatus(address.host);
      }
    }
  }
  if (absl::Now() >= deadline) {
    CountFailure(ConnectFailure::kDeadline, address, connection_id);
    return absl::DeadlineExceededError(absl::StrCat(
        "deadline exceeded before connecting to ", address.ToString()));
  }
  return absl::OkStatus();
}

asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>>
Connector::ResolveForDialling(const Address& address, uint64_t connection_id,
                              const std::string& dial_host, bool through_proxy,
                              absl::Time deadline, absl::Duration* dns_time) {
  const absl::Time dns_start = absl::Now();
  std::vector<asio::ip::address> ips;
  const std::optional<asio::ip::address> literal =
      Resolver::IpLiteral(dial_host);
  if (literal.has_value()) {
    ips.push_back(*literal);
  } else {
    absl::StatusOr<std::vector<asio::ip::address>> resolved =
        co_await resolver_->Resolve(dial_host, deadline);
    if (!resolved.ok()) {
      CountFailure(absl::IsDeadlineExceeded(resolved.status())
                       ? ConnectFailure::kDeadline
                       : ConnectFailure::kDns,
                   address, connection_id);
      co_return resolved.status();
    }
    ips = *std::move(resolved);
  }
  if (ips.empty()) {
    CountFailure(ConnectFailure::kDns, address, connection_id);
    co_return absl::UnavailableError(
        absl::StrCat("DNS lookup of '", dial_host, "' found no address"));
  }
  *dns_time = literal ? absl::ZeroDuration() : absl::Now() - dns_start;

  // The egress policy judges every resolved address, and only those it
  // allows are dialled: the address checked is the address connected to,
  // so DNS rebinding cannot slip past the check. A proxy's own addresses
  // are the operator's choice, not the caller's: they are not judged.
  if (options_.policy != nullptr && !through_proxy) {
    std::vector<asio::ip::address> allowed;
    absl::Status first_denial;
    for (const asio::ip::address& ip : ips) {
      PolicyDecision decision =
          options_.policy->Check(address.host, ip, address.port);
      if (decision.allowed) {
        allowed.push_back(ip);
      } else if (first_denial.ok()) {
        first_denial = decision.ToStatus(address.host);
      }
    }
    if (allowed.empty()) {
      CountFailure(ConnectFailure::kEgressPolicy, address, connection_id);
      co_return first_denial;
    }
    ips = std::move(allowed);
  }
  co_return ips;
}

asio::awaitable<absl::StatusOr<Connector::RaceWinner>> Connector::RaceRoutes(
    const Address& address, const Address& dial_address,
    uint64_t connection_id, const std::vector<asio::ip::address>& ips,
    absl::Time deadline) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  const absl::Time connect_start = absl::Now();
  // 2. Order the routes.
  const std::vector<Route> routes = RouteSelector(&route_database_)
                                        .Select(dial_address, ips, connect_start);

  // 3. Race them.
  auto race = std::make_shared<Race>(executor);
  std::vector<std::shared_ptr<Attempt>> attempts;
  size_t next = 0;  // routes[next] is the next route to try
  absl::Time next_start = connect_start;
  std::string failures;

  const auto start_attempt = [&](absl::Time now) {
    auto attempt = std::make_shared<Attempt>(executor, routes[next++]);
    attempt->started = now;
    attempt->give_up_at = std::min(deadline, now + options_.connect_timeout);
    attempt->socket.async_connect(attempt->route.endpoint,
                                  [race, attempt](const asio::error_code& ec) {
                                    attempt->completed = true;
                                    attempt->error = ec;
                                    if (!race->over) race->wake.cancel();
                                  });
    attempts.push_back(std::move(attempt));
    next_start = now + options_.fallback_delay;
  };
  // Ends the race: closes every attempt still pending (their handlers then
  // complete with operation_aborted and change nothing).
  const auto end_race = [&] {
    race->over = true;
    for (const std::shared_ptr<Attempt>& attempt : attempts) {
      if (attempt->settled) continue;
      attempt->settled = true;
      asio::error_code ignored;
      attempt->socket.close(ignored);
    }
  };

  std::shared_ptr<Attempt> winner;
  for (;;) {
    const absl::Time now = absl::Now();
    int failed_now = 0;
    // Completed attempts: the first success (in route order) wins.
    for (const std::shared_ptr<Attempt>& attempt : attempts) {
      if (attempt->settled || !attempt->completed) continue;
      if (!attempt->error) {
        if (winner == nullptr) {
          winner = attempt;
          attempt->settled = true;
        }
        continue;  // a second success in the same round is closed below
      }
      attempt->settled = true;
      AppendFailure(failures, attempt->route, attempt->error.message());
      route_database_.Failed(attempt->route, now);
      ++failed_now;
    }
    if (winner != nullptr) break;

    if (now >= deadline) {
      // Attempts cut short by the caller's deadline say nothing about their
      // routes: they are not marked failed.
      end_race();
      CountFailure(ConnectFailure::kDeadline, address, connection_id);
      co_return absl::DeadlineExceededError(absl::StrCat(
          "deadline exceeded while connecting to ", address.ToString(),
          failures.empty() ? "" : " (", failures, failures.empty() ? "" : ")"));
    }
    // Attempts past their connect timeout fail.
    for (const std::shared_ptr<Attempt>& attempt : attempts) {
      if (attempt->settled || attempt->completed || now < attempt->give_up_at) {
        continue;
      }
      attempt->settled = true;
      asio::error_code ignored;
      attempt->socket.close(ignored);
      AppendFailure(failures, attempt->route, "timed out");
      route_database_.Failed(attempt->route, now);
      ++failed_now;
    }

    // Start the next routes: one per failure, one when the fallback delay
    // has passed, one when nothing is pending.
    const auto any_pending = [&] {
      return std::any_of(attempts.begin(), attempts.end(),
                         [](const auto& a) { return !a->settled; });
    };
    while (next < routes.size() &&
           (failed_now > 0 || now >= next_start || !any_pending())) {
      if (failed_now > 0) --failed_now;
      start_attempt(now);
    }
    if (!any_pending()) {
      end_race();
      // Any refusal says "nothing listens there"; only timeouts say
      // "blackholed"; the rest is the network's.
      ConnectFailure why = ConnectFailure::kTimeout;
      for (const std::shared_ptr<Attempt>& attempt : attempts) {
        if (attempt->error == asio::error::connection_refused) {
          why = ConnectFailure::kRefused;
          break;
        }
        if (attempt->completed && attempt->error) why = ConnectFailure::kNetwork;
      }
      CountFailure(why, address, connection_id);
      co_return absl::UnavailableError(absl::StrCat(
          "connect to ", address.ToString(), " failed: ", failures));
    }

    absl::Time wake_at = deadline;
    if (next < routes.size()) wake_at = std::min(wake_at, next_start);
    for (const std::shared_ptr<Attempt>& attempt : attempts) {
      if (!attempt->settled) wake_at = std::min(wake_at, attempt->give_up_at);
    }
    ExpireAt(race->wake, wake_at);
    co_await race->wake.async_wait(kNoThrow);
  }

  // 6. Record the outcome; cancel the losers.
  const absl::Time now = absl::Now();
  for (const std::shared_ptr<Attempt>& attempt : attempts) {
    if (attempt == winner || attempt->settled) continue;
    if (!attempt->completed && attempt->started < winner->started) {
      route_database_.Failed(attempt->route, now);  // lost with a head start
    }
  }
  end_race();
  route_database_.Connected(winner->route);
  co_return RaceWinner{std::move(winner->socket), winner->route,
                       static_cast<int>(attempts.size()), now - connect_start};
}

asio::awaitable<absl::Status> Connector::ThroughProxy(
    asio::ip::tcp::socket& socket, const Proxy& proxy, const Address& address,
    const asio::ip::tcp::endpoint& proxy_endpoint, absl::Time deadline) {
  if (proxy.scheme == Proxy::Scheme::kSocks5) {
    absl::Status connected = co_await Socks5Connect(
        socket, proxy, address.host, address.port, deadline);
    co_return connected;
  }
  // An HTTP proxy's http:// connection carries absolute-form requests.
  if (address.scheme != "https") co_return absl::OkStatus();
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  const asio::ip::tcp::endpoint endpoint = proxy_endpoint;
  const absl::Duration connect_timeout = options_.connect_timeout;
  ProxyReconnect reconnect =
      [executor, endpoint, deadline,
       connect_timeout]() -> asio::awaitable<
                              absl::StatusOr<asio::ip::tcp::socket>> {
    asio::ip::tcp::socket again(executor);
    asio::error_code ec;
    {
      SocketDeadline guard(again, std::min(deadline, absl::Now() +
                                                        connect_timeout));
      std::tie(ec) = co_await again.async_connect(endpoint, kNoThrow);
    }
    if (ec) {
      co_return absl::UnavailableError(absl::StrCat(
          "reconnecting to the proxy at ", EndpointToString(endpoint),
          " failed: ", ec.message()));
    }
    co_return std::move(again);
  };
  TunnelOptions tunnel_options;
  const std::shared_ptr<std::atomic<bool>> asked =
      ProxyAskedForCredentials(proxy.name);
  tunnel_options.preemptive_auth =
      asked != nullptr && asked->load(std::memory_order_relaxed);
  absl::StatusOr<Tunnel> tunnel =
      co_await ConnectTunnel(std::move(socket), proxy, address.host,
                             address.port, deadline, nullptr, reconnect,
                             tunnel_options);
  // A tunnel that took more than one CONNECT answered a 407: the proxy
  // wants its credentials, so later tunnels send them at once.
  if (tunnel.ok() && asked != nullptr && tunnel->attempts > 1) {
    asked->store(true, std::memory_order_relaxed);
  }
  if (!tunnel.ok()) {
    socket = asio::ip::tcp::socket(executor);
    co_return tunnel.status();
  }
  socket = std::move(tunnel->socket);
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> Connector::Establish(
    asio::ip::tcp::socket socket, const Address& address,
    uint64_t connection_id, const std::shared_ptr<const Proxy>& proxy,
    const Route& route, absl::Time deadline, ConnectResult* result) {
  std::unique_ptr<Transport> transport;
  Protocol protocol = Protocol::kHttp11;
  if (address.scheme == "https") {
    const std::string peer = EndpointToString(route.endpoint);
    absl::StatusOr<TlsClient::Handshaken> handshaken =
        co_await tls_->Handshake(std::move(socket), address, peer, deadline);
    if (!handshaken.ok()) {
      CountFailure(absl::IsDeadlineExceeded(handshaken.status())
                       ? ConnectFailure::kDeadline
                       : ConnectFailure::kTls,
                   address, connection_id);
      co_return handshaken.status();
    }
    transport = std::move(handshaken->transport);
    result->tls_time = handshaken->handshake_time;
    if (transport->tls_info()->alpn == "h2") protocol = Protocol::kHttp2;
  } else {
    transport = std::make_unique<Transport>(std::move(socket));
    if (tls_->rules().For(address.host).protocols == HttpProtocols::kHttp2 &&
        proxy == nullptr) {
      protocol = Protocol::kHttp2;  // h2c with prior knowledge
    }
  }
  if (protocol == Protocol::kHttp2) {
    result->connection = std::make_shared<Http2Connection>(
        connection_id, address, std::move(transport), options_.http2);
  } else {
    auto http1 = std::make_shared<Http1Connection>(connection_id, address,
                                                   std::move(transport));
    // An HTTP proxy's own connection for http://: absolute-form requests.
    if (proxy != nullptr && proxy->scheme == Proxy::Scheme::kHttp &&
        address.scheme == "http") {
      http1->set_http_proxy(proxy, ProxyAskedForCredentials(proxy->name));
    }
    result->connection = std::move(http1);
  }
  result->connection->Start();
  co_return absl::OkStatus();
}

}  // namespace egress
