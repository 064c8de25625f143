// Redirects: RFC 3986's reference resolution examples, and the next request
// (method, body, credentials, downgrade) for each redirect status.
#include "client_core/call/redirect.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

Url MustParse(const std::string& text) {
  absl::StatusOr<Url> url = ParseUrl(text);
  EXPECT_TRUE(url.ok()) << text << ": " << url.status();
  return url.ok() ? *url : Url{};
}

std::string Resolve(const std::string& base, const std::string& reference) {
  absl::StatusOr<Url> url = ResolveReference(MustParse(base), reference);
  if (!url.ok()) return "error: " + std::string(url.status().message());
  return url->ToString();
}

// RFC 3986 section 5.4, with http://a/b/c/d;p?q as the base (fragments are
// dropped: egressd never sends them).
TEST(ResolveReferenceTest, Rfc3986NormalExamples) {
  const std::string base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> cases[] = {
      {"g", "http://a/b/c/g"},
      {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},
      {"//g", "http://g/"},
      {"?y", "http://a/b/c/d;p?y"},
      {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q"},
      {"g#s", "http://a/b/c/g"},
      {"g?y#s", "http://a/b/c/g?y"},
      {";x", "http://a/b/c/;x"},
      {"g;x", "http://a/b/c/g;x"},
      {"", "error: Location is empty"},
      {".", "http://a/b/c/"},
      {"./", "http://a/b/c/"},
      {"..", "http://a/b/"},
      {"../", "http://a/b/"},
      {"../g", "http://a/b/g"},
      {"../..", "http://a/"},
      {"../../", "http://a/"},
      {"../../g", "http://a/g"},
  };
  for (const auto& [reference, want] : cases) {
    EXPECT_EQ(Resolve(base, reference), want) << reference;
  }
}

TEST(ResolveReferenceTest, Rfc3986AbnormalExamples) {
  const std::string base = "http://a/b/c/d;p?q";
  const std::pair<const char*, const char*> cases[] = {
      {"../../../g", "http://a/g"},
      {"../../../../g", "http://a/g"},
      {"/./g", "http://a/g"},
      {"/../g", "http://a/g"},
      {"g.", "http://a/b/c/g."},
      {".g", "http://a/b/c/.g"},
      {"g..", "http://a/b/c/g.."},
      {"..g", "http://a/b/c/..g"},
      {"./../g", "http://a/b/g"},
      {"./g/.", "http://a/b/c/g/"},
      {"g/./h", "http://a/b/c/g/h"},
      {"g/../h", "http://a/b/c/h"},
      {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
      {"g;x=1/../y", "http://a/b/c/y"},
      {"g?y/./x", "http://a/b/c/g?y/./x"},
      {"g?y/../x", "http://a/b/c/g?y/../x"},
  };
  for (const auto& [reference, want] : cases) {
    EXPECT_EQ(Resolve(base, reference), want) << reference;
  }
}

TEST(ResolveReferenceTest, AbsoluteSchemeRelativeAndLooseLocations) {
  EXPECT_EQ(Resolve("https://a.example/x", "http://b.example:8080/y?z"),
            "http://b.example:8080/y?z");
  EXPECT_EQ(Resolve("https://a.example/x", "//b.example/y"),
            "https://b.example/y");
  EXPECT_EQ(Resolve("http://a:8080/x/y", "z"), "http://a:8080/x/z");
  EXPECT_EQ(Resolve("http://a/", "HTTPS://B.example/"), "https://b.example/");
  // What servers should have encoded, encoded as browsers do.
  EXPECT_EQ(Resolve("http://a/", "/a b/\xc3\xa9?q=|x|"),
            "http://a/a%20b/%C3%A9?q=%7Cx%7C");
  EXPECT_EQ(Resolve("http://a/", "  /padded  "), "http://a/padded");
  EXPECT_THAT(Resolve("http://a/", "ftp://b/"), HasSubstr("unsupported scheme"));
  EXPECT_THAT(Resolve("http://a/", "http:relative"), HasSubstr("no authority"));
  EXPECT_THAT(Resolve("http://a/", "http://user:pw@b/"), HasSubstr("userinfo"));
  EXPECT_THAT(Resolve("http://a/", "/x\r\nSet-Cookie: a=b"),
              HasSubstr("control character"));
}

Request MakeRequest(const std::string& method, const std::string& url) {
  Request r;
  r.method = method;
  r.url = MustParse(url);
  r.body = method == "GET" || method == "HEAD" ? "" : "payload";
  r.headers = {{"Authorization", "Bearer secret"},
               {"Cookie", "a=b"},
               {"Proxy-Authorization", "Basic x"},
               {"Content-Type", "application/json"},
               {"X-Trace", "1"}};
  r.follow_redirects = true;
  return r;
}

bool HasField(const Request& r, const std::string& name) {
  return FindHeader(r.headers, name).has_value();
}

TEST(RedirectRequestTest, SeeOtherFamilyBecomesGetWithoutBody) {
  for (int status : {301, 302, 303}) {
    absl::StatusOr<Request> next =
        RedirectRequest(MakeRequest("POST", "http://a/form"), status, "/done");
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(next->method, "GET") << status;
    EXPECT_EQ(next->body, "");
    EXPECT_FALSE(HasField(*next, "Content-Type"));
    // Same origin: credentials stay.
    EXPECT_TRUE(HasField(*next, "Authorization"));
    EXPECT_TRUE(HasField(*next, "Cookie"));
    EXPECT_TRUE(HasField(*next, "X-Trace"));
    EXPECT_EQ(next->url.ToString(), "http://a/done");
  }
  absl::StatusOr<Request> head =
      RedirectRequest(MakeRequest("HEAD", "http://a/x"), 303, "/y");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->method, "HEAD");
}

TEST(RedirectRequestTest, TemporaryAndPermanentKeepMethodAndBody) {
  for (int status : {307, 308}) {
    absl::StatusOr<Request> next =
        RedirectRequest(MakeRequest("PUT", "http://a/x"), status, "/y");
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(next->method, "PUT");
    EXPECT_EQ(next->body, "payload");
    EXPECT_TRUE(HasField(*next, "Content-Type"));
  }
}

TEST(RedirectRequestTest, CredentialsStayWithTheirOrigin) {
  for (const char* location :
       {"http://b/x", "http://a:8080/x", "https://a/x"}) {
    absl::StatusOr<Request> next =
        RedirectRequest(MakeRequest("GET", "http://a/"), 302, location);
    ASSERT_TRUE(next.ok()) << location << ": " << next.status();
    EXPECT_FALSE(HasField(*next, "Authorization")) << location;
    EXPECT_FALSE(HasField(*next, "Proxy-Authorization")) << location;
    EXPECT_FALSE(HasField(*next, "Cookie")) << location;
    EXPECT_TRUE(HasField(*next, "X-Trace")) << location;
  }
}

TEST(RedirectRequestTest, DowngradeToCleartextIsRefusedUnlessAllowed) {
  Request request = MakeRequest("GET", "https://a/secret?token=t");
  absl::StatusOr<Request> refused =
      RedirectRequest(request, 302, "http://a/plain");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("allow_insecure_redirects"));
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::Not(HasSubstr("token=t")));
  request.allow_insecure_redirects = true;
  absl::StatusOr<Request> allowed =
      RedirectRequest(request, 302, "http://a/plain");
  ASSERT_TRUE(allowed.ok());
  EXPECT_FALSE(HasField(*allowed, "Authorization"));  // another origin
}

TEST(RedirectRequestTest, AnInvalidLocationIsTheOriginsFault) {
  absl::StatusOr<Request> next =
      RedirectRequest(MakeRequest("GET", "http://a/"), 302, "gopher://x/");
  EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(next.status().message(), HasSubstr("invalid Location"));
}

TEST(RedirectTest, FollowedStatuses) {
  for (int s : {301, 302, 303, 307, 308}) EXPECT_TRUE(IsFollowedRedirect(s));
  for (int s : {200, 300, 304, 305, 306, 309, 400}) {
    EXPECT_FALSE(IsFollowedRedirect(s));
  }
}

}  // namespace
}  // namespace egress
