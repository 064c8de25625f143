#include "server/listen_address.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace egress {

std::string ListenAddress::ToString() const {
  return absl::StrCat(host, ":", port);
}

std::optional<asio::ip::address> ListenAddress::Ip() const {
  absl::string_view text = host;
  if (absl::ConsumePrefix(&text, "[") && !absl::ConsumeSuffix(&text, "]")) {
    return std::nullopt;
  }
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return ip;
}

bool ListenAddress::IsLoopback() const {
  const std::optional<asio::ip::address> ip = Ip();
  return ip.has_value() && IsLoopbackAddress(*ip);
}

absl::StatusOr<asio::ip::tcp::endpoint> ResolveListenAddress(
    const ListenAddress& address) {
  if (std::optional<asio::ip::address> ip = address.Ip()) {
    return asio::ip::tcp::endpoint(*ip, address.port);
  }
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* results = nullptr;
  const int error =
      getaddrinfo(address.host.c_str(), nullptr, &hints, &results);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve '", address.host, "' (", address.ToString(),
                     "): ", gai_strerror(error)));
  }
  std::optional<asio::ip::tcp::endpoint> first;
  for (const addrinfo* r = results; r != nullptr && !first; r = r->ai_next) {
    if (r->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(r->ai_addr);
      asio::ip::address_v4::bytes_type bytes;
      std::memcpy(bytes.data(), &in->sin_addr, bytes.size());
      first.emplace(asio::ip::address_v4(bytes), address.port);
    } else if (r->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(r->ai_addr);
      asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), &in6->sin6_addr, bytes.size());
      first.emplace(asio::ip::address_v6(bytes, in6->sin6_scope_id),
                    address.port);
    }
  }
  freeaddrinfo(results);
  if (!first) {
    return absl::UnavailableError(absl::StrCat(
        "cannot resolve '", address.host, "' (", address.ToString(),
        "): no IPv4 or IPv6 address"));
  }
  return *first;
}

bool IsLoopbackAddress(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6())
        .is_loopback();
  }
  return address.is_loopback();
}

std::string EndpointString(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address ip = endpoint.address();
  if (ip.is_v6()) return absl::StrCat("[", ip.to_string(), "]:", endpoint.port());
  return absl::StrCat(ip.to_string(), ":", endpoint.port());
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view flag,
                                                 absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": '", text, "' ", why, " (e.g. 127.0.0.1:7070, [::1]:7070)"));
  };
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return bad("has no :PORT");
  ListenAddress address;
  address.host = std::string(text.substr(0, colon));
  const absl::string_view port = text.substr(colon + 1);
  if (address.host.empty()) return bad("has no host");
  if (address.host.front() == '[') {
    if (address.host.back() != ']' || address.host.size() < 3) {
      return bad("has a malformed IPv6 address");
    }
  } else if (address.host.find(':') != std::string::npos) {
    return bad("has an IPv6 address without brackets");
  }
  for (char c : address.host) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']')) {
      return bad("has an invalid character in the host");
    }
  }
  uint32_t value = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &value) || value > 65535 ||
      !absl::ascii_isdigit(port.front())) {
    return bad("has an invalid port (0..65535)");
  }
  address.port = static_cast<uint16_t>(value);
  return address;
}

}  // namespace egress
