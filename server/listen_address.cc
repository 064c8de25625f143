#include "server/listen_address.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace egress {

std::string ListenAddress::ToString() const {
  return absl::StrCat(host, ":", port);
}

bool ListenAddress::IsLoopback() const {
  return absl::StartsWith(host, "127.") || host == "[::1]" ||
         host == "localhost";
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
