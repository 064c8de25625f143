// Url: an absolute http or https URL, parsed per RFC 3986 into what egressd
// needs to pick a connection (scheme, host, port) and to write a request line
// (the origin-form target).
//
// Parsing is strict: anything egressd cannot send faithfully is rejected with
// an InvalidArgument status whose message says what is wrong and where.
// Rejected: schemes other than http/https; missing or empty host; userinfo
// ("user:pass@", credentials belong in headers, never in URLs that end up in
// logs); ports outside 1..65535; spaces, control characters and non-ASCII
// bytes anywhere (callers must percent-encode); malformed percent-escapes;
// malformed IP literals; IPvFuture literals; IPv6 zone identifiers.
// Accepted and normalised: scheme and reg-name host lower-cased; an empty path
// becomes "/"; the fragment is dropped (it is never sent).
#ifndef EGRESS_CLIENT_CORE_URL_URL_H_
#define EGRESS_CLIENT_CORE_URL_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace egress {

struct Url {
  // "http" or "https", lower case.
  std::string scheme;
  // Lower-cased reg-name (e.g. "example.com"), dotted-decimal IPv4
  // ("10.0.0.1"), or an IPv6 address without brackets ("::1").
  std::string host;
  bool host_is_ipv6 = false;
  // The explicit port, or the scheme's default (80, 443).
  uint16_t port = 0;
  // Path and query, as given (already percent-encoded); "/" when the URL has
  // no path. This is the request-target in origin form (RFC 9112 3.2.1).
  std::string path_and_query;

  // Default port of the scheme: 80 for http, 443 for https.
  uint16_t DefaultPort() const;
  // Value for the Host header: host, bracketed if IPv6, with ":port" only
  // when the port is not the scheme's default.
  std::string Authority() const;
  // The whole URL without fragment, e.g. "http://example.com:8080/a?b".
  std::string ToString() const;
  // The URL without its query string, safe for logs and error messages
  // (queries often carry tokens).
  std::string Redacted() const;
};

// Parses an absolute http(s) URL. Leading/trailing whitespace is an error,
// not trimmed: the caller should see exactly what it sent.
absl::StatusOr<Url> ParseUrl(std::string_view text);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_URL_URL_H_
