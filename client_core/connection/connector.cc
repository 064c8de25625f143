#include "client_core/connection/connector.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/connect.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/ip/address.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/net/socket_deadline.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<absl::StatusOr<std::shared_ptr<Connection>>> Connect(
    const Address& address, uint64_t connection_id,
    const ConnectOptions& options, absl::Time deadline) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;

  std::vector<asio::ip::tcp::endpoint> endpoints;
  asio::error_code parse_ec;
  const asio::ip::address literal =
      asio::ip::make_address(address.host, parse_ec);
  if (!parse_ec) {
    endpoints.emplace_back(literal, address.port);
  } else {
    asio::ip::tcp::resolver resolver(executor);
    auto [ec, results] = co_await resolver.async_resolve(
        address.host, std::to_string(address.port),
        asio::ip::resolver_base::numeric_service, kNoThrow);
    if (ec) {
      co_return absl::UnavailableError(absl::StrCat(
          "DNS lookup of '", address.host, "' failed: ", ec.message()));
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
    if (endpoints.empty()) {
      co_return absl::UnavailableError(
          absl::StrCat("DNS lookup of '", address.host, "' found no address"));
    }
  }

  std::string errors;
  for (const asio::ip::tcp::endpoint& endpoint : endpoints) {
    if (absl::Now() >= deadline) break;
    asio::ip::tcp::socket socket(executor);
    const absl::Time attempt_deadline =
        std::min(deadline, absl::Now() + options.connect_timeout);
    asio::error_code ec;
    bool expired = false;
    {
      SocketDeadline guard(socket, attempt_deadline);
      std::tie(ec) = co_await socket.async_connect(endpoint, kNoThrow);
      expired = guard.expired();
    }
    const std::string where =
        endpoint.address().is_v6()
            ? absl::StrCat("[", endpoint.address().to_string(), "]:",
                           endpoint.port())
            : absl::StrCat(endpoint.address().to_string(), ":",
                           endpoint.port());
    if (!ec) {
      co_return std::make_shared<Connection>(connection_id, address,
                                             std::move(socket));
    }
    absl::StrAppend(&errors, errors.empty() ? "" : "; ", where, ": ",
                    expired ? "timed out" : ec.message());
  }
  if (absl::Now() >= deadline) {
    co_return absl::DeadlineExceededError(absl::StrCat(
        "deadline exceeded while connecting to ", address.ToString(),
        errors.empty() ? "" : " (", errors, errors.empty() ? "" : ")"));
  }
  co_return absl::UnavailableError(absl::StrCat(
      "connect to ", address.ToString(), " failed: ", errors));
}

}  // namespace egress
