// libFuzzer target for redirects (client_core/call/redirect.h): the Location
// of a 3xx response, which a hostile origin controls.
//
// Input: byte 0 picks the request (its URL, method and whether it allows
// insecure redirects) and the status code; the rest is the Location value.
//
// Invariants:
//   - ResolveReference fails with kInvalidArgument, or gives an http(s) URL
//     whose ToString() parses back to the same URL, whose path holds no dot
//     segment ("/./", "/../", or ending in "/." or "/.."), and whose target
//     holds no byte that cannot go on a request line;
//   - RedirectRequest fails with kUnavailable (bad Location) or
//     kPermissionDenied (https to http without allow_insecure_redirects),
//     and nothing else; on success the next request:
//       - goes to the resolved URL;
//       - is GET without a body after 301/302/303 unless the method was
//         HEAD, and keeps method and body after 307/308;
//       - carries Authorization, Proxy-Authorization, Cookie, Cookie2 only
//         to the same origin;
//       - never leaves https for http unless allowed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "client_core/call/redirect.h"
#include "client_core/url/url.h"
#include "tests/fuzz/fuzz_check.h"

namespace egress {
namespace {

std::string Escaped(std::string_view s) {
  return absl::CHexEscape(absl::string_view(s.data(), s.size()));
}

bool HasDotSegment(std::string_view path) {
  const absl::string_view p(path.data(), path.size());
  return absl::StrContains(p, "/./") || absl::StrContains(p, "/../") ||
         absl::EndsWith(p, "/.") || absl::EndsWith(p, "/..");
}

bool IsCredential(const std::string& name) {
  for (const char* c :
       {"authorization", "proxy-authorization", "cookie", "cookie2"}) {
    if (absl::EqualsIgnoreCase(name, c)) return true;
  }
  return false;
}

void CheckResolved(std::string_view location, const Url& url) {
  FUZZ_CHECK(url.scheme == "http" || url.scheme == "https", "scheme %s",
             Escaped(url.scheme).c_str());
  const std::string text = url.ToString();
  const absl::StatusOr<Url> again = ParseUrl(text);
  FUZZ_CHECK(again.ok() && again->ToString() == text,
             "resolved %s of %s does not round-trip", Escaped(text).c_str(),
             Escaped(location).c_str());
  const std::string_view target = url.path_and_query;
  FUZZ_CHECK(!HasDotSegment(target.substr(0, target.find('?'))),
             "dot segment left in %s (Location %s)", Escaped(target).c_str(),
             Escaped(location).c_str());
  for (char c : target) {
    const unsigned char u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u > 0x20 && u < 0x7f, "unsafe byte in target %s",
               Escaped(target).c_str());
  }
}

}  // namespace
}  // namespace egress

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace egress;
  if (size < 1) return 0;
  static const char* const kBases[] = {
      "http://a.example/b/c/d;p?q", "https://a.example:8443/x/",
      "http://[::1]:8080/", "https://10.0.0.1/a/b?c=d"};
  static const char* const kMethods[] = {"GET", "POST", "HEAD", "PUT"};
  static const int kStatuses[] = {301, 302, 303, 307, 308, 301, 302, 303};
  const uint8_t pick = data[0];
  const std::string_view location(reinterpret_cast<const char*>(data) + 1,
                                  size - 1);
  Request request;
  request.url = *ParseUrl(kBases[pick & 3]);
  request.method = kMethods[(pick >> 2) & 3];
  request.body = request.method == "GET" ? "" : "body";
  request.headers = {{"Authorization", "a"}, {"Cookie", "c"},
                     {"Content-Type", "t"}, {"X-Other", "o"}};
  request.follow_redirects = true;
  request.allow_insecure_redirects = (pick & 0x80) != 0;
  const int status = kStatuses[(pick >> 4) & 7];

  const absl::StatusOr<Url> resolved = ResolveReference(request.url, location);
  if (resolved.ok()) {
    CheckResolved(location, *resolved);
  } else {
    FUZZ_CHECK(resolved.status().code() == absl::StatusCode::kInvalidArgument,
               "ResolveReference: %s", resolved.status().ToString().c_str());
  }

  const absl::StatusOr<Request> next =
      RedirectRequest(request, status, location);
  if (!next.ok()) {
    const absl::StatusCode code = next.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kUnavailable ||
                   code == absl::StatusCode::kPermissionDenied,
               "RedirectRequest: %s", next.status().ToString().c_str());
    FUZZ_CHECK((code == absl::StatusCode::kUnavailable) == !resolved.ok(),
               "RedirectRequest and ResolveReference disagree: %s",
               next.status().ToString().c_str());
    return 0;
  }
  FUZZ_CHECK(resolved.ok(), "a redirect to an unresolvable Location");
  FUZZ_CHECK(next->url.ToString() == resolved->ToString(),
             "next URL %s, resolved %s", Escaped(next->url.ToString()).c_str(),
             Escaped(resolved->ToString()).c_str());
  FUZZ_CHECK(request.allow_insecure_redirects ||
                 !(request.url.scheme == "https" && next->url.scheme == "http"),
             "https to http without allow_insecure_redirects");
  const bool to_get =
      (status == 301 || status == 302 || status == 303) &&
      request.method != "HEAD";
  if (to_get) {
    FUZZ_CHECK(next->method == "GET" && next->body.empty(),
               "%d after %s gave %s with %zu body bytes", status,
               request.method.c_str(), next->method.c_str(),
               next->body.size());
  } else {
    FUZZ_CHECK(next->method == request.method && next->body == request.body,
               "%d changed the method or body", status);
  }
  if (!SameOrigin(request.url, next->url)) {
    for (const HeaderField& field : next->headers) {
      FUZZ_CHECK(!IsCredential(field.name), "%s went to another origin %s",
                 field.name.c_str(), Escaped(next->url.ToString()).c_str());
    }
  }
  return 0;
}
