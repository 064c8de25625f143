// Redirects: which responses egressd follows and what the next request is.
//
// Followed (when Request::follow_redirects): 301, 302, 303, 307 and 308 with
// a Location field. Others (300, 304, 305, a 3xx without Location) are
// responses like any other.
//
// The next request, as browsers and OkHttp make it:
//   - 301, 302, 303: GET without a body (HEAD stays HEAD), and without the
//     fields that describe the body (Content-Type, Content-Encoding,
//     Content-Language, Content-Location);
//   - 307, 308: the same method and body;
//   - to another origin (scheme, host or port differ): without
//     Authorization, Proxy-Authorization, Cookie and Cookie2, so credentials
//     meant for one origin never reach another;
//   - https:// to http:// is refused (kPermissionDenied) unless
//     Request::allow_insecure_redirects: the caller asked for TLS.
// Each hop is a new call through the pool, so the egress policy judges every
// hop's resolved addresses (the Connector does) like the first one.
//
// Location is a URI reference resolved against the request's URL (RFC 3986
// section 5.2, dot segments removed). Bytes a server should have
// percent-encoded (spaces, non-ASCII, "<>\"^`{|}\\") are encoded first, as
// browsers do; control characters make it invalid.
//
// Thread-safety: pure functions.
#ifndef EGRESS_CLIENT_CORE_CALL_REDIRECT_H_
#define EGRESS_CLIENT_CORE_CALL_REDIRECT_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "client_core/http/request.h"
#include "client_core/url/url.h"

namespace egress {

// Largest Request::max_redirects (and the default when a caller follows
// redirects without saying how many: 10, like curl's and Go's).
inline constexpr int kMaxRedirectsLimit = 20;
inline constexpr int kDefaultMaxRedirects = 10;

// 301, 302, 303, 307 or 308.
bool IsFollowedRedirect(int status_code);

// Resolves `reference` (a Location value) against `base`. Errors are
// kInvalidArgument naming the problem, e.g. "URL has unsupported scheme
// 'ftp' (only http and https)", "Location is empty".
absl::StatusOr<Url> ResolveReference(const Url& base,
                                     std::string_view reference);

// Same scheme, host and port.
bool SameOrigin(const Url& a, const Url& b);

// The request that follows `request` after a `status_code` response with
// `location`. Errors:
//   - kUnavailable: the Location cannot be resolved to an http(s) URL
//     ("redirect from http://a/x has an invalid Location: ...");
//   - kPermissionDenied: an https:// to http:// redirect without
//     allow_insecure_redirects.
absl::StatusOr<Request> RedirectRequest(const Request& request,
                                        int status_code,
                                        std::string_view location);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_REDIRECT_H_
