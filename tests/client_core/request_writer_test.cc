#include "client_core/http1/request_writer.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "client_core/http/header.h"
#include "client_core/http/request.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Built by hand rather than with ParseUrl, so these tests depend only on
// Url::Authority().
Url MakeUrl(std::string host, uint16_t port, std::string path_and_query,
            std::string scheme = "http", bool ipv6 = false) {
  Url url;
  url.scheme = std::move(scheme);
  url.host = std::move(host);
  url.host_is_ipv6 = ipv6;
  url.port = port;
  url.path_and_query = std::move(path_and_query);
  return url;
}

Request MakeRequest(std::string method, HeaderList headers = {},
                    std::string body = "") {
  Request request;
  request.method = std::move(method);
  request.url = MakeUrl("example.com", 80, "/a/b?c=d");
  request.headers = std::move(headers);
  request.body = std::move(body);
  return request;
}

void ExpectInvalid(const Request& request, std::string_view message) {
  const absl::Status status = ValidateRequest(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(message));
}

TEST(SerializeRequestHeadTest, GetWithoutHeaders) {
  const Request request = MakeRequest("GET");
  ASSERT_TRUE(ValidateRequest(request).ok());
  EXPECT_EQ(SerializeRequestHead(request),
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n");
}

TEST(SerializeRequestHeadTest, HostComesFromAuthority) {
  Request request = MakeRequest("GET");
  request.url = MakeUrl("example.com", 8080, "/");
  EXPECT_EQ(SerializeRequestHead(request),
            "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");

  request.url = MakeUrl("example.com", 443, "/", "https");
  EXPECT_EQ(SerializeRequestHead(request),
            "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");

  request.url = MakeUrl("::1", 8443, "/x", "https", /*ipv6=*/true);
  ASSERT_TRUE(ValidateRequest(request).ok());
  EXPECT_EQ(SerializeRequestHead(request),
            "GET /x HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
}

TEST(SerializeRequestHeadTest, HeadersKeepOrderSpellingAndRepeats) {
  const Request request =
      MakeRequest("GET", {{"X-B", "1"},
                          {"accept", "text/html, */*;q=0.1"},
                          {"X-B", "2"},
                          {"X-Empty", ""},
                          {"Authorization", "Bearer t0k3n"}});
  ASSERT_TRUE(ValidateRequest(request).ok());
  EXPECT_EQ(SerializeRequestHead(request),
            "GET /a/b?c=d HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "X-B: 1\r\n"
            "accept: text/html, */*;q=0.1\r\n"
            "X-B: 2\r\n"
            "X-Empty: \r\n"
            "Authorization: Bearer t0k3n\r\n"
            "\r\n");
}

TEST(SerializeRequestHeadTest, ContentLength) {
  struct Case {
    std::string method;
    std::string body;
    std::string_view content_length;  // empty: no header
  };
  for (const Case& c : std::vector<Case>{
           {"GET", "", ""},
           {"HEAD", "", ""},
           {"DELETE", "", ""},
           {"OPTIONS", "", ""},
           {"POST", "", "0"},
           {"PUT", "", "0"},
           {"PATCH", "", "0"},
           // Methods are case-sensitive: "post" is not POST.
           {"post", "", ""},
           {"POST", "hello", "5"},
           {"GET", "abc", "3"},
           {"DELETE", std::string(100000, 'x'), "100000"},
       }) {
    SCOPED_TRACE(c.method + " with " + std::to_string(c.body.size()) +
                 " body bytes");
    const Request request = MakeRequest(c.method, {{"X-A", "1"}}, c.body);
    ASSERT_TRUE(ValidateRequest(request).ok());
    std::string expected =
        c.method + " /a/b?c=d HTTP/1.1\r\n" + "Host: example.com\r\nX-A: 1\r\n";
    if (!c.content_length.empty()) {
      expected += "Content-Length: " + std::string(c.content_length) + "\r\n";
    }
    expected += "\r\n";
    // The body is written by the caller, after the head.
    EXPECT_EQ(SerializeRequestHead(request), expected);
  }
}

TEST(ValidateRequestTest, AcceptsTokenMethods) {
  for (std::string_view method :
       {"GET", "POST", "PROPFIND", "M-SEARCH", "x!#$%&'*+.^_`|~1"}) {
    EXPECT_TRUE(ValidateRequest(MakeRequest(std::string(method))).ok())
        << method;
  }
}

TEST(ValidateRequestTest, RejectsBadMethods) {
  ExpectInvalid(MakeRequest(""), "request method is empty");
  for (std::string_view method : std::vector<std::string_view>{
           "GE T", "GET\r\n", "GET /evil HTTP/1.1\r\nX:", "G\tT", "G(T)",
           "M\xc3\xa9THOD", std::string_view("GE\0T", 4)}) {
    ExpectInvalid(MakeRequest(std::string(method)),
                  "request method is not an HTTP token");
  }
}

TEST(ValidateRequestTest, RejectsManagedHeaders) {
  for (std::string_view name :
       {"Host", "Content-Length", "Transfer-Encoding", "Keep-Alive",
        "Upgrade", "TE", "Proxy-Connection", "host", "CONTENT-LENGTH",
        "transfer-encoding", "te", "proxy-connection", "KEEP-ALIVE",
        "upgrade"}) {
    SCOPED_TRACE(name);
    const Request request = MakeRequest(
        "POST", {{"X-Fine", "1"}, {std::string(name), "value"}}, "body");
    ExpectInvalid(request, "header '" + std::string(name) +
                               "' is managed by egressd and cannot be set");
  }
  ExpectInvalid(MakeRequest("GET", {{"Connection", "keep-alive"}}),
                "header 'Connection' is managed by egressd and cannot be set");
  ExpectInvalid(MakeRequest("GET", {{"Connection", "close, upgrade"}}),
                "header 'Connection' is managed by egressd and cannot be set");
}

// Issue 14: a caller's Proxy-Authorization went out beside egressd's own.
TEST(ValidateRequestTest, RejectsACallersProxyAuthorization) {
  for (std::string_view name : {"Proxy-Authorization", "proxy-authorization"}) {
    SCOPED_TRACE(name);
    ExpectInvalid(MakeRequest("GET", {{std::string(name), "Basic c2VjcmV0"}}),
                  "header 'Proxy-Authorization' cannot be set: egressd "
                  "authenticates to its proxies with the credentials of its "
                  "configuration (proxy.proxies[].username)");
  }
}

TEST(ValidateRequestTest, AcceptsConnectionCloseOnly) {
  EXPECT_TRUE(ValidateRequest(MakeRequest("GET", {{"Connection", "close"}})).ok());
  EXPECT_TRUE(
      ValidateRequest(MakeRequest("GET", {{"connection", " Close "}})).ok());
}

TEST(ValidateRequestTest, AcceptsHeadersThatOnlyLookManaged) {
  const Request request = MakeRequest("GET", {{"X-Host", "a"},
                                              {"Hosts", "b"},
                                              {"TE-X", "c"},
                                              {"X-Connection", "d"},
                                              {"Content-Length-X", "e"}});
  EXPECT_TRUE(ValidateRequest(request).ok());
}

TEST(ValidateRequestTest, RejectsBadHeaderFields) {
  ExpectInvalid(MakeRequest("GET", {{"X-A", "a\r\nEvil: 1"}}), "'X-A'");
  ExpectInvalid(MakeRequest("GET", {{"X-A", "a\nb"}}), "'X-A'");
  ExpectInvalid(MakeRequest("GET", {{"X-A", std::string("a\0b", 3)}}), "'X-A'");
  ExpectInvalid(MakeRequest("GET", {{"", "v"}}), "header name is empty");
  ExpectInvalid(MakeRequest("GET", {{"Bad Name", "v"}}), "token");
  ExpectInvalid(MakeRequest("GET", {{"X-A:", "v"}}), "token");
  ExpectInvalid(MakeRequest("GET", {{"X-A\r\nEvil", "v"}}), "token");
}

TEST(ValidateRequestTest, ErrorsNeverEchoHeaderValues) {
  const absl::Status status = ValidateRequest(
      MakeRequest("GET", {{"Authorization", "Bearer SECRET\r\nX: 1"}}));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("SECRET")));
}

TEST(ValidateRequestTest, RejectsTargetsThatWouldSplitTheRequest) {
  Request request = MakeRequest("GET");
  request.url.path_and_query = "/a b";
  ExpectInvalid(request, "request target contains byte 0x20 at offset 2");
  request.url.path_and_query = "/a\r\nEvil: 1";
  ExpectInvalid(request, "request target contains byte 0x0d at offset 2");
  request.url.path_and_query = "";
  ExpectInvalid(request, "request target does not start with '/'");
  request.url.path_and_query = "a";
  ExpectInvalid(request, "request target does not start with '/'");

  request = MakeRequest("GET");
  request.url.host = "";
  ExpectInvalid(request, "request URL has no host");
  request.url.host = "example.com\r\nEvil: 1";
  ExpectInvalid(request, "request host contains byte 0x0d at offset 11");
}

}  // namespace
}  // namespace egress
