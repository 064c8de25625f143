#include "server/admin_token.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace egress {
namespace {

// Only the length leaks, which the token's owner chose anyway.
bool SameToken(absl::string_view given, absl::string_view token) {
  if (token.empty() || given.size() != token.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ token[i]);
  }
  return difference == 0;
}

}  // namespace

bool BearerTokenMatches(absl::string_view authorization,
                        absl::string_view token) {
  constexpr absl::string_view kScheme = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kScheme)) return false;
  return SameToken(authorization.substr(kScheme.size()), token);
}

bool AuthorizationCarriesToken(absl::string_view authorization,
                               absl::string_view token) {
  if (BearerTokenMatches(authorization, token)) return true;
  constexpr absl::string_view kScheme = "Basic ";
  if (!absl::StartsWithIgnoreCase(authorization, kScheme)) return false;
  std::string credentials;
  if (!absl::Base64Unescape(authorization.substr(kScheme.size()),
                            &credentials)) {
    return false;
  }
  const size_t colon = credentials.find(':');
  if (colon == std::string::npos) return false;
  return SameToken(absl::string_view(credentials).substr(colon + 1), token);
}

}  // namespace egress
