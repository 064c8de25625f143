// libFuzzer target for ParseUrl (client_core/url/url.h): the URL of every
// Fetch comes from a caller.
//
// Input: the URL text, as is.
//
// Invariants:
//   - a rejection is kInvalidArgument with a short message;
//   - an accepted URL is http or https, has a host and a port 1..65535, and
//     a request target that starts with '/' and holds no fragment, space,
//     control or non-ASCII byte (it goes on the request line verbatim);
//   - an IPv6 host is a valid IPv6 address;
//   - ToString() re-parses to an equal Url, and is a fixed point
//     (ToString of the re-parse is the same text);
//   - Redacted() re-parses to the same scheme, host and port, with the path
//     and no query.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "client_core/url/url.h"
#include "tests/fuzz/fuzz_check.h"

namespace egress {
namespace {

// Messages echo at most a few short excerpts of the input.
constexpr size_t kMaxMessageBytes = 400;

std::string Escaped(std::string_view s) {
  return absl::CHexEscape(absl::string_view(s.data(), s.size()));
}

bool SameUrl(const Url& a, const Url& b) {
  return a.scheme == b.scheme && a.host == b.host &&
         a.host_is_ipv6 == b.host_is_ipv6 && a.port == b.port &&
         a.path_and_query == b.path_and_query;
}

std::string Describe(const Url& url) {
  return "scheme=" + Escaped(url.scheme) + " host=" + Escaped(url.host) +
         " ipv6=" + (url.host_is_ipv6 ? "1" : "0") +
         " port=" + std::to_string(url.port) +
         " target=" + Escaped(url.path_and_query);
}

bool IsRequestLineSafe(std::string_view s) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

void CheckUrl(std::string_view input, const Url& url) {
  FUZZ_CHECK(url.scheme == "http" || url.scheme == "https", "scheme %s",
             Escaped(url.scheme).c_str());
  FUZZ_CHECK(!url.host.empty(), "empty host from %s", Escaped(input).c_str());
  FUZZ_CHECK(url.port != 0, "port 0 from %s", Escaped(input).c_str());
  FUZZ_CHECK(!url.path_and_query.empty() && url.path_and_query[0] == '/',
             "target %s does not start with '/'",
             Escaped(url.path_and_query).c_str());
  FUZZ_CHECK(url.path_and_query.find('#') == std::string::npos,
             "fragment in target %s", Escaped(url.path_and_query).c_str());
  FUZZ_CHECK(IsRequestLineSafe(url.path_and_query), "unsafe byte in target %s",
             Escaped(url.path_and_query).c_str());
  FUZZ_CHECK(IsRequestLineSafe(url.host), "unsafe byte in host %s",
             Escaped(url.host).c_str());
  if (url.host_is_ipv6) {
    in6_addr addr;
    FUZZ_CHECK(inet_pton(AF_INET6, url.host.c_str(), &addr) == 1,
               "IPv6 host %s is not an IPv6 address",
               Escaped(url.host).c_str());
  }

  const std::string text = url.ToString();
  const absl::StatusOr<Url> again = ParseUrl(text);
  FUZZ_CHECK(again.ok(), "ToString() %s of %s does not parse: %s",
             Escaped(text).c_str(), Escaped(input).c_str(),
             again.status().ToString().c_str());
  FUZZ_CHECK(SameUrl(url, *again),
             "round trip changed the URL\n  input: %s\n  first: %s\n  text:  "
             "%s\n  again: %s",
             Escaped(input).c_str(), Describe(url).c_str(),
             Escaped(text).c_str(), Describe(*again).c_str());
  FUZZ_CHECK(again->ToString() == text, "ToString() not a fixed point: %s",
             Escaped(text).c_str());

  const std::string redacted = url.Redacted();
  const absl::StatusOr<Url> parsed_redacted = ParseUrl(redacted);
  FUZZ_CHECK(parsed_redacted.ok(), "Redacted() %s does not parse: %s",
             Escaped(redacted).c_str(),
             parsed_redacted.status().ToString().c_str());
  FUZZ_CHECK(parsed_redacted->scheme == url.scheme &&
                 parsed_redacted->host == url.host &&
                 parsed_redacted->port == url.port,
             "Redacted() %s names another origin", Escaped(redacted).c_str());
  FUZZ_CHECK(parsed_redacted->path_and_query.find('?') == std::string::npos,
             "Redacted() %s keeps a query", Escaped(redacted).c_str());
  FUZZ_CHECK(
      url.path_and_query.compare(0, parsed_redacted->path_and_query.size(),
                                 parsed_redacted->path_and_query) == 0,
      "Redacted() path %s is not a prefix of %s",
      Escaped(parsed_redacted->path_and_query).c_str(),
      Escaped(url.path_and_query).c_str());
}

}  // namespace
}  // namespace egress

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<egress::Url> url = egress::ParseUrl(input);
  if (!url.ok()) {
    FUZZ_CHECK(url.status().code() == absl::StatusCode::kInvalidArgument,
               "rejection with code %s", url.status().ToString().c_str());
    FUZZ_CHECK(!url.status().message().empty(), "rejection without message");
    FUZZ_CHECK(url.status().message().size() <= egress::kMaxMessageBytes,
               "%zu-byte message: %s", url.status().message().size(),
               url.status().ToString().c_str());
    return 0;
  }
  egress::CheckUrl(input, *url);
  return 0;
}
