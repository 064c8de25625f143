#include "bench/loadgen/loopback.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace egress::bench {

bool IsLoopbackHost(const std::string& raw) {
  const std::string host = absl::AsciiStrToLower(raw);
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr v4;
  // inet_pton accepts only the dotted-quad form, so "127.1" or
  // "127.0.0.1.evil" are refused.
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 &&
         (ntohl(v4.s_addr) >> 24) == 127;
}

bool IsLoopbackTarget(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  int port = 0;
  if (!absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return false;
  }
  return IsLoopbackHost(host_port.substr(0, colon));
}

bool IsLoopbackUrl(const std::string& url) {
  std::string rest;
  if (absl::StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (absl::StartsWith(url, "https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string::npos) return false;  // no userinfo
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    const std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return false;
    return IsLoopbackHost(authority.substr(0, close + 1));
  }
  const size_t colon = authority.find(':');
  return IsLoopbackHost(authority.substr(0, colon));
}

}  // namespace egress::bench
