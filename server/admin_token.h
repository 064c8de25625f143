// The admin token (listeners.admin_token) as callers present it, for every
// listener that serves pool data: PoolAdmin's gRPC metadata
// (admin_auth.h) and the pool page's HTTP Authorization header
// (metrics/metrics_server.h). No gRPC here.
//
// Thread-safety: pure functions.
#ifndef EGRESS_SERVER_ADMIN_TOKEN_H_
#define EGRESS_SERVER_ADMIN_TOKEN_H_

#include "absl/strings/string_view.h"

namespace egress {

// True if `authorization` (the "authorization" header's value) is
// "Bearer <token>". The scheme is case-insensitive (RFC 9110); the token is
// compared in time independent of where it differs. An empty `token` never
// matches.
bool BearerTokenMatches(absl::string_view authorization,
                        absl::string_view token);

// BearerTokenMatches, or "Basic <base64(user:token)>" with any user name
// (RFC 7617): what a browser sends once it asked its user for the token as
// a password. An empty `token` never matches.
bool AuthorizationCarriesToken(absl::string_view authorization,
                               absl::string_view token);

}  // namespace egress

#endif  // EGRESS_SERVER_ADMIN_TOKEN_H_
