// The admin token as gRPC metadata and as an HTTP Authorization header.
#include "server/admin_token.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

TEST(AdminTokenTest, BearerOrBasicWithTheTokenAsPassword) {
  const std::string basic =
      absl::StrCat("Basic ", absl::Base64Escape("anyone:s3cret"));
  EXPECT_TRUE(AuthorizationCarriesToken("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(AuthorizationCarriesToken("bearer s3cret", "s3cret"));
  EXPECT_TRUE(AuthorizationCarriesToken(basic, "s3cret"));
  EXPECT_TRUE(AuthorizationCarriesToken(
      absl::StrCat("basic ", absl::Base64Escape(":s3cret")), "s3cret"));
  EXPECT_FALSE(AuthorizationCarriesToken("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(AuthorizationCarriesToken("Bearer s3cret!", "s3cret"));
  EXPECT_FALSE(AuthorizationCarriesToken(
      absl::StrCat("Basic ", absl::Base64Escape("s3cret")), "s3cret"))
      << "no user:password";
  EXPECT_FALSE(AuthorizationCarriesToken(
      absl::StrCat("Basic ", absl::Base64Escape("s3cret:x")), "s3cret"))
      << "the token is the password, not the user";
  EXPECT_FALSE(AuthorizationCarriesToken("Basic !!!", "s3cret"));
  EXPECT_FALSE(AuthorizationCarriesToken("", "s3cret"));
  EXPECT_FALSE(AuthorizationCarriesToken("Bearer ", ""));
  EXPECT_FALSE(AuthorizationCarriesToken(
      absl::StrCat("Basic ", absl::Base64Escape("a:")), ""));
  // PoolAdmin's metadata takes only Bearer.
  EXPECT_FALSE(BearerTokenMatches(basic, "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
}

}  // namespace
}  // namespace egress
