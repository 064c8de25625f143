#include "client_core/proxy/socks5.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/ip/address.hpp"
#include "asio/read.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "client_core/net/socket_deadline.h"
#include "client_core/proxy/http_tunnel.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

constexpr uint8_t kVersion = 0x05;
constexpr uint8_t kMethodNoAuth = 0x00;
constexpr uint8_t kMethodUserPass = 0x02;
constexpr uint8_t kMethodNone = 0xff;
constexpr uint8_t kCommandConnect = 0x01;
constexpr uint8_t kAtypIpv4 = 0x01;
constexpr uint8_t kAtypDomain = 0x03;
constexpr uint8_t kAtypIpv6 = 0x04;
constexpr uint8_t kReplyNotAllowed = 0x02;

bool IsSafeTargetHost(const std::string& host) {
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(), [](char ch) {
    const unsigned char c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f && c != '/' && c != '@';
  });
}

std::string_view MethodName(uint8_t method) {
  switch (method) {
    case kMethodNoAuth:
      return "no authentication";
    case 0x01:
      return "GSSAPI";
    case kMethodUserPass:
      return "username/password";
    default:
      return "an unassigned method";
  }
}

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

std::string_view Socks5ReplyName(uint8_t reply) {
  switch (reply) {
    case 0x00:
      return "succeeded";
    case 0x01:
      return "general SOCKS server failure";
    case 0x02:
      return "connection not allowed by ruleset";
    case 0x03:
      return "network unreachable";
    case 0x04:
      return "host unreachable";
    case 0x05:
      return "connection refused by destination";
    case 0x06:
      return "TTL expired";
    case 0x07:
      return "command not supported";
    case 0x08:
      return "address type not supported";
    default:
      return "unassigned reply code";
  }
}

asio::awaitable<absl::Status> Socks5Connect(asio::ip::tcp::socket& socket,
                                            const Proxy& proxy,
                                            const std::string& target_host,
                                            uint16_t target_port,
                                            absl::Time deadline,
                                            CallAbort* abort) {
  const std::string who = absl::StrCat("SOCKS5 ", proxy.Describe());
  if (proxy.scheme != Proxy::Scheme::kSocks5) {
    co_return absl::InvalidArgumentError(
        absl::StrCat(proxy.Describe(), " is not a SOCKS5 proxy"));
  }
  if (!IsSafeTargetHost(target_host) || target_host.size() > 255) {
    co_return absl::InvalidArgumentError(
        "SOCKS5 target host is empty, longer than 255 bytes, or holds bytes "
        "no host has");
  }
  const std::string target = TunnelAuthority(target_host, target_port);

  SocketDeadline guard(socket, deadline, abort);
  const auto io_error = [&](const asio::error_code& ec,
                            absl::string_view during) -> absl::Status {
    if (guard.aborted()) {
      return absl::CancelledError(absl::StrCat(
          "the call was cancelled during the handshake with ", who,
          " (CONNECT to ", target, ")"));
    }
    if (guard.expired()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "deadline exceeded during the handshake with ", who,
          " (CONNECT to ", target, ")"));
    }
    if (ec == asio::error::eof) {
      return absl::UnavailableError(absl::StrCat(
          who, " closed the connection while ", during, " (CONNECT to ",
          target, ")"));
    }
    return absl::UnavailableError(absl::StrCat(
        "connection to ", who, " failed while ", during, " (CONNECT to ",
        target, "): ", ec.message()));
  };
  const auto protocol_error = [&](absl::string_view what) {
    return absl::UnavailableError(absl::StrCat(
        who, " broke the SOCKS5 protocol (CONNECT to ", target, "): ", what));
  };
  if (guard.aborted()) {
    co_return io_error(asio::error::operation_aborted, "starting");
  }

  // 1. Greeting.
  std::vector<uint8_t> greeting = {kVersion, 1, kMethodNoAuth};
  if (proxy.has_credentials()) {
    greeting = {kVersion, 2, kMethodNoAuth, kMethodUserPass};
  }
  {
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(greeting), kNoThrow);
    if (ec) co_return io_error(ec, "sending the greeting");
  }
  std::array<uint8_t, 2> choice{};
  {
    auto [ec, n] =
        co_await asio::async_read(socket, asio::buffer(choice), kNoThrow);
    if (ec) co_return io_error(ec, "reading the method choice");
  }
  if (choice[0] != kVersion) {
    co_return protocol_error(
        absl::StrFormat("answered with version %d, not 5", choice[0]));
  }
  const uint8_t method = choice[1];
  if (method == kMethodNone) {
    co_return absl::PermissionDeniedError(absl::StrCat(
        who, " accepts none of the offered authentication methods (",
        proxy.has_credentials() ? "no authentication, username/password"
                                : "no authentication; no credentials are "
                                  "configured for it",
        ")"));
  }
  if (method == kMethodUserPass && proxy.has_credentials()) {
    // 2. RFC 1929.
    std::string auth;
    auth.push_back(0x01);
    auth.push_back(static_cast<char>(proxy.username.size()));
    auth.append(proxy.username);
    auth.push_back(static_cast<char>(proxy.password.size()));
    auth.append(proxy.password);
    auto [wec, wn] =
        co_await asio::async_write(socket, asio::buffer(auth), kNoThrow);
    if (wec) co_return io_error(wec, "sending the username/password");
    std::array<uint8_t, 2> verdict{};
    auto [rec, rn] =
        co_await asio::async_read(socket, asio::buffer(verdict), kNoThrow);
    if (rec) co_return io_error(rec, "reading the authentication verdict");
    if (verdict[1] != 0x00) {
      co_return absl::PermissionDeniedError(absl::StrFormat(
          "%s rejected the configured username/password (status %d)",
          AsAbsl(who), verdict[1]));
    }
  } else if (method != kMethodNoAuth) {
    const std::string_view name = MethodName(method);
    co_return protocol_error(absl::StrFormat(
        "chose %s (method %d), which was not offered", AsAbsl(name), method));
  }

  // 3. CONNECT.
  std::string request = {static_cast<char>(kVersion),
                         static_cast<char>(kCommandConnect), 0};
  asio::error_code parse_error;
  const asio::ip::address ip = asio::ip::make_address(target_host, parse_error);
  if (!parse_error && ip.is_v4()) {
    request.push_back(static_cast<char>(kAtypIpv4));
    const auto bytes = ip.to_v4().to_bytes();
    request.append(bytes.begin(), bytes.end());
  } else if (!parse_error && ip.is_v6()) {
    request.push_back(static_cast<char>(kAtypIpv6));
    const auto bytes = ip.to_v6().to_bytes();
    request.append(bytes.begin(), bytes.end());
  } else {
    request.push_back(static_cast<char>(kAtypDomain));
    request.push_back(static_cast<char>(target_host.size()));
    request.append(target_host);
  }
  request.push_back(static_cast<char>(target_port >> 8));
  request.push_back(static_cast<char>(target_port & 0xff));
  {
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(request), kNoThrow);
    if (ec) co_return io_error(ec, "sending CONNECT");
  }

  // 4. The reply: VER REP RSV ATYP, then the bound address and port.
  std::array<uint8_t, 4> reply{};
  {
    auto [ec, n] =
        co_await asio::async_read(socket, asio::buffer(reply), kNoThrow);
    if (ec) co_return io_error(ec, "reading the CONNECT reply");
  }
  if (reply[0] != kVersion) {
    co_return protocol_error(
        absl::StrFormat("replied with version %d, not 5", reply[0]));
  }
  if (reply[1] != 0x00) {
    const std::string_view name = Socks5ReplyName(reply[1]);
    const std::string message =
        absl::StrFormat("%s refused CONNECT to %s: %s (reply %d)", AsAbsl(who),
                        target, AsAbsl(name), reply[1]);
    co_return reply[1] == kReplyNotAllowed
        ? absl::PermissionDeniedError(message)
        : absl::UnavailableError(message);
  }
  size_t address_bytes = 0;
  switch (reply[3]) {
    case kAtypIpv4:
      address_bytes = 4;
      break;
    case kAtypIpv6:
      address_bytes = 16;
      break;
    case kAtypDomain: {
      uint8_t length = 0;
      auto [ec, n] = co_await asio::async_read(
          socket, asio::buffer(&length, 1), kNoThrow);
      if (ec) co_return io_error(ec, "reading the CONNECT reply");
      address_bytes = length;
      break;
    }
    default:
      co_return protocol_error(
          absl::StrFormat("reply has address type %d", reply[3]));
  }
  std::array<uint8_t, 255 + 2> bound{};
  {
    auto [ec, n] = co_await asio::async_read(
        socket, asio::buffer(bound.data(), address_bytes + 2), kNoThrow);
    if (ec) co_return io_error(ec, "reading the CONNECT reply");
  }
  co_return absl::OkStatus();
}

}  // namespace egress
