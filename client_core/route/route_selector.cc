#include "client_core/route/route_selector.h"

#include <functional>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace egress {
namespace {

struct IpHash {
  size_t operator()(const asio::ip::address& ip) const {
    return std::hash<asio::ip::address>()(ip);
  }
};

}  // namespace

std::vector<Route> RouteSelector::Select(
    const Address& address, absl::Span<const asio::ip::address> ips,
    absl::Time now) const {
  // 1. Distinct IPs, split by family, each in the resolver's order.
  absl::flat_hash_set<asio::ip::address, IpHash> seen;
  seen.reserve(ips.size());
  std::vector<asio::ip::address> v6;
  std::vector<asio::ip::address> v4;
  for (const asio::ip::address& ip : ips) {
    if (!seen.insert(ip).second) continue;
    (ip.is_v6() ? v6 : v4).push_back(ip);
  }
  if (seen.empty()) return {};

  // 2. Interleave, starting with the first answer's family.
  const bool v6_first = ips.front().is_v6();
  const std::vector<asio::ip::address>& first = v6_first ? v6 : v4;
  const std::vector<asio::ip::address>& second = v6_first ? v4 : v6;
  std::vector<Route> routes;
  routes.reserve(seen.size());
  for (size_t i = 0; i < first.size() || i < second.size(); ++i) {
    if (i < first.size()) {
      routes.push_back(
          Route{address, asio::ip::tcp::endpoint(first[i], address.port)});
    }
    if (i < second.size()) {
      routes.push_back(
          Route{address, asio::ip::tcp::endpoint(second[i], address.port)});
    }
  }
  if (database_ == nullptr) return routes;

  // 3. Postponed routes last, both groups in order.
  std::vector<Route> ordered;
  std::vector<Route> postponed;
  ordered.reserve(routes.size());
  for (Route& route : routes) {
    (database_->ShouldPostpone(route, now) ? postponed : ordered)
        .push_back(std::move(route));
  }
  for (Route& route : postponed) ordered.push_back(std::move(route));
  return ordered;
}

}  // namespace egress
