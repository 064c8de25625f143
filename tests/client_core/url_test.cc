#include "client_core/url/url.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Url MustParse(std::string_view text) {
  absl::StatusOr<Url> url = ParseUrl(text);
  EXPECT_TRUE(url.ok()) << text << ": " << url.status();
  return url.ok() ? *url : Url{};
}

// The message of a rejection; fails the test if `text` parses.
std::string Rejection(std::string_view text) {
  absl::StatusOr<Url> url = ParseUrl(text);
  EXPECT_FALSE(url.ok()) << "accepted: " << text;
  if (url.ok()) return "";
  EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << text;
  return std::string(url.status().message());
}

// --- Accepted URLs -------------------------------------------------------

TEST(ParseUrlTest, PlainHttp) {
  Url url = MustParse("http://example.com/a/b");
  EXPECT_EQ(url.scheme, "http");
  EXPECT_EQ(url.host, "example.com");
  EXPECT_FALSE(url.host_is_ipv6);
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.path_and_query, "/a/b");
}

TEST(ParseUrlTest, HttpsDefaultPort) {
  Url url = MustParse("https://example.com/");
  EXPECT_EQ(url.scheme, "https");
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.DefaultPort(), 443);
}

TEST(ParseUrlTest, ExplicitPort) {
  Url url = MustParse("http://example.com:8080/x");
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.path_and_query, "/x");
}

TEST(ParseUrlTest, PortBounds) {
  EXPECT_EQ(MustParse("http://h:1/").port, 1);
  EXPECT_EQ(MustParse("http://h:65535/").port, 65535);
}

TEST(ParseUrlTest, PortWithLeadingZerosIsDecimal) {
  EXPECT_EQ(MustParse("http://h:0080/").port, 80);
}

TEST(ParseUrlTest, EmptyPortMeansDefault) {
  // RFC 3986 6.2.3: "http://h:/" and "http://h/" are the same URL.
  EXPECT_EQ(MustParse("http://h:/").port, 80);
  EXPECT_EQ(MustParse("https://h:/").port, 443);
}

TEST(ParseUrlTest, EmptyPathBecomesSlash) {
  EXPECT_EQ(MustParse("http://example.com").path_and_query, "/");
  EXPECT_EQ(MustParse("http://example.com:81").path_and_query, "/");
}

TEST(ParseUrlTest, QueryIsKept) {
  EXPECT_EQ(MustParse("http://h/a/b?x=1").path_and_query, "/a/b?x=1");
  EXPECT_EQ(MustParse("http://h/a?x=1&y=/z?w").path_and_query, "/a?x=1&y=/z?w");
}

TEST(ParseUrlTest, QueryWithoutPathGetsSlash) {
  Url url = MustParse("http://h?x=1");
  EXPECT_EQ(url.host, "h");
  EXPECT_EQ(url.path_and_query, "/?x=1");
}

TEST(ParseUrlTest, EmptyQueryIsKept) {
  EXPECT_EQ(MustParse("http://h/a?").path_and_query, "/a?");
}

TEST(ParseUrlTest, FragmentIsDropped) {
  EXPECT_EQ(MustParse("http://h/a?x=1#frag").path_and_query, "/a?x=1");
  EXPECT_EQ(MustParse("http://h/a#frag?not-query").path_and_query, "/a");
  EXPECT_EQ(MustParse("http://h#frag").path_and_query, "/");
  EXPECT_EQ(MustParse("http://h:8080#").port, 8080);
}

TEST(ParseUrlTest, SchemeAndHostAreLowerCased) {
  Url url = MustParse("HTTPS://Example.COM:8443/Path?Q=V");
  EXPECT_EQ(url.scheme, "https");
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, 8443);
  // Path and query are case-sensitive and kept as given.
  EXPECT_EQ(url.path_and_query, "/Path?Q=V");
}

TEST(ParseUrlTest, MixedCaseScheme) {
  EXPECT_EQ(MustParse("hTtP://h/").scheme, "http");
}

TEST(ParseUrlTest, RegNameAcceptsAllRfc3986Characters) {
  Url url = MustParse("http://a-b_c~d.e!$&'()*+,;=f/");
  EXPECT_EQ(url.host, "a-b_c~d.e!$&'()*+,;=f");
}

TEST(ParseUrlTest, RegNamePercentEscapesAreNormalised) {
  // Letters lower-cased, escape hex digits upper-cased (RFC 3986 6.2.2.1).
  EXPECT_EQ(MustParse("http://A%c3%a9B/").host, "a%C3%A9b");
}

TEST(ParseUrlTest, NumericLookingRegNameWithTrailingLetters) {
  EXPECT_EQ(MustParse("http://1.2.3.com/").host, "1.2.3.com");
  EXPECT_EQ(MustParse("http://123abc/").host, "123abc");
  EXPECT_EQ(MustParse("http://0xg/").host, "0xg");
}

TEST(ParseUrlTest, Ipv4) {
  Url url = MustParse("http://10.0.0.1:8080/x");
  EXPECT_EQ(url.host, "10.0.0.1");
  EXPECT_FALSE(url.host_is_ipv6);
  EXPECT_EQ(url.port, 8080);
}

TEST(ParseUrlTest, Ipv4Bounds) {
  EXPECT_EQ(MustParse("http://0.0.0.0/").host, "0.0.0.0");
  EXPECT_EQ(MustParse("http://255.255.255.255/").host, "255.255.255.255");
}

TEST(ParseUrlTest, Ipv6) {
  Url url = MustParse("http://[::1]:8080/x?y");
  EXPECT_EQ(url.host, "::1");
  EXPECT_TRUE(url.host_is_ipv6);
  EXPECT_EQ(url.port, 8080);
  EXPECT_EQ(url.path_and_query, "/x?y");
}

TEST(ParseUrlTest, Ipv6Forms) {
  EXPECT_EQ(MustParse("https://[2001:db8::1]").host, "2001:db8::1");
  EXPECT_EQ(MustParse("http://[::ffff:192.0.2.1]/").host, "::ffff:192.0.2.1");
  EXPECT_EQ(MustParse("http://[1:2:3:4:5:6:7:8]/").host, "1:2:3:4:5:6:7:8");
  EXPECT_EQ(MustParse("http://[::]/").host, "::");
}

TEST(ParseUrlTest, Ipv6HexIsLowerCased) {
  EXPECT_EQ(MustParse("http://[2001:DB8::A]/").host, "2001:db8::a");
}

TEST(ParseUrlTest, Ipv6DefaultPort) {
  Url url = MustParse("https://[::1]/");
  EXPECT_EQ(url.port, 443);
}

TEST(ParseUrlTest, PathAcceptsPcharsAndEscapes) {
  const std::string path = "/a:b@c!$&'()*+,;=-._~/%2F%41%ff";
  EXPECT_EQ(MustParse("http://h" + path).path_and_query, path);
}

TEST(ParseUrlTest, DoubleSlashPathIsKept) {
  EXPECT_EQ(MustParse("http://h//a//b").path_and_query, "//a//b");
}

TEST(ParseUrlTest, AtSignInPathIsNotUserinfo) {
  Url url = MustParse("http://h/user@x");
  EXPECT_EQ(url.host, "h");
  EXPECT_EQ(url.path_and_query, "/user@x");
}

// --- Accessors -----------------------------------------------------------

TEST(UrlTest, DefaultPort) {
  Url url;
  url.scheme = "http";
  EXPECT_EQ(url.DefaultPort(), 80);
  url.scheme = "https";
  EXPECT_EQ(url.DefaultPort(), 443);
}

TEST(UrlTest, AuthorityOmitsDefaultPort) {
  EXPECT_EQ(MustParse("http://h:80/").Authority(), "h");
  EXPECT_EQ(MustParse("https://h:443/").Authority(), "h");
  EXPECT_EQ(MustParse("http://h:443/").Authority(), "h:443");
  EXPECT_EQ(MustParse("https://h:80/").Authority(), "h:80");
  EXPECT_EQ(MustParse("http://h:8080/").Authority(), "h:8080");
}

TEST(UrlTest, AuthorityBracketsIpv6) {
  EXPECT_EQ(MustParse("http://[::1]/").Authority(), "[::1]");
  EXPECT_EQ(MustParse("http://[::1]:8080/").Authority(), "[::1]:8080");
}

TEST(UrlTest, ToString) {
  EXPECT_EQ(MustParse("http://example.com:8080/a?b").ToString(),
            "http://example.com:8080/a?b");
  EXPECT_EQ(MustParse("HTTP://Example.com:80#frag").ToString(),
            "http://example.com/");
  EXPECT_EQ(MustParse("https://[::1]:8443/x?y=1#z").ToString(),
            "https://[::1]:8443/x?y=1");
}

TEST(UrlTest, ToStringRoundTrips) {
  for (std::string_view text :
       {"http://example.com/", "https://h:8443/a/b?c=d&e",
        "http://[2001:db8::1]:81/x", "http://10.0.0.1/?"}) {
    Url url = MustParse(text);
    EXPECT_EQ(url.ToString(), text);
    EXPECT_EQ(MustParse(url.ToString()).ToString(), text);
  }
}

TEST(UrlTest, RedactedDropsQuery) {
  EXPECT_EQ(MustParse("https://h/a/b?token=secret").Redacted(),
            "https://h/a/b");
  EXPECT_EQ(MustParse("http://h:8080?token=secret").Redacted(),
            "http://h:8080/");
  EXPECT_EQ(MustParse("http://[::1]/x").Redacted(), "http://[::1]/x");
  EXPECT_THAT(MustParse("http://h/?a=secret?b").Redacted(),
              Not(HasSubstr("secret")));
}

// --- Rejections ----------------------------------------------------------

TEST(ParseUrlRejectTest, Empty) {
  EXPECT_THAT(Rejection(""), HasSubstr("empty"));
}

TEST(ParseUrlRejectTest, Relative) {
  EXPECT_THAT(Rejection("/a/b"), HasSubstr("not absolute"));
  EXPECT_THAT(Rejection("example.com"), HasSubstr("not absolute"));
  EXPECT_THAT(Rejection("//example.com/a"), HasSubstr("not absolute"));
  EXPECT_THAT(Rejection("a/b:c"), HasSubstr("not absolute"));
  EXPECT_THAT(Rejection("?x:y"), HasSubstr("not absolute"));
}

TEST(ParseUrlRejectTest, EmptyScheme) {
  EXPECT_THAT(Rejection("://h/"), HasSubstr("scheme is empty"));
}

TEST(ParseUrlRejectTest, MalformedScheme) {
  EXPECT_THAT(Rejection("1http://h/"),
              HasSubstr("scheme has an invalid character '1' at offset 0"));
  EXPECT_THAT(Rejection("ht_tp://h/"),
              HasSubstr("scheme has an invalid character '_' at offset 2"));
}

TEST(ParseUrlRejectTest, UnsupportedScheme) {
  EXPECT_EQ(Rejection("ftp://h/"),
            "URL has unsupported scheme 'ftp' (only http and https)");
  EXPECT_THAT(Rejection("ws://h/"), HasSubstr("unsupported scheme 'ws'"));
  EXPECT_THAT(Rejection("file:///etc/passwd"),
              HasSubstr("unsupported scheme 'file'"));
  EXPECT_THAT(Rejection("httpx://h/"), HasSubstr("unsupported scheme"));
  EXPECT_THAT(Rejection("mailto:a@b"), Not(HasSubstr("'a")));
}

TEST(ParseUrlRejectTest, UnsupportedSchemeEchoIsCapped) {
  const std::string scheme(1000, 'a');
  const std::string message = Rejection(scheme + "://h/");
  EXPECT_THAT(message, HasSubstr("unsupported scheme"));
  EXPECT_LT(message.size(), 200u);
}

TEST(ParseUrlRejectTest, SchemelessCredentialsAreNotEchoed) {
  // "alice:secret@h" parses as scheme "alice"; the password must not leak.
  const std::string message = Rejection("alice:secret@h/x");
  EXPECT_THAT(message, HasSubstr("userinfo"));
  EXPECT_THAT(message, Not(HasSubstr("alice")));
  EXPECT_THAT(message, Not(HasSubstr("secret")));
}

TEST(ParseUrlRejectTest, NoAuthority) {
  EXPECT_THAT(Rejection("http:/x"), HasSubstr("no authority"));
  EXPECT_THAT(Rejection("http:x"), HasSubstr("no authority"));
  EXPECT_THAT(Rejection("https:"), HasSubstr("no authority"));
}

TEST(ParseUrlRejectTest, EmptyHost) {
  EXPECT_EQ(Rejection("http://"), "URL host is empty");
  EXPECT_EQ(Rejection("http:///x"), "URL host is empty");
  EXPECT_EQ(Rejection("http://:80/"), "URL host is empty");
  EXPECT_EQ(Rejection("http://?x"), "URL host is empty");
  EXPECT_EQ(Rejection("https://#f"), "URL host is empty");
}

TEST(ParseUrlRejectTest, Userinfo) {
  for (std::string_view text :
       {"http://user@h/", "http://user:hunter2@h/", "http://:hunter2@h/",
        "http://@h/", "https://user:hunter2@[::1]:8080/", "http://a:b@c/",
        "http://user:hunter2@h:99999/"}) {
    const std::string message = Rejection(text);
    EXPECT_EQ(message,
              "URL has userinfo ('user@'); send credentials in a header "
              "instead")
        << text;
    EXPECT_THAT(message, Not(HasSubstr("hunter2"))) << text;
  }
}

TEST(ParseUrlRejectTest, PortNotANumberIsNotEchoed) {
  // The authority ends at the first '/', so this "port" is half a password.
  const std::string message = Rejection("http://user:pa/ss@h/");
  EXPECT_THAT(message, HasSubstr("port is not a decimal number"));
  EXPECT_THAT(message, Not(HasSubstr("pa")));
  EXPECT_THAT(Rejection("http://h:abc/"), HasSubstr("not a decimal number"));
  EXPECT_THAT(Rejection("http://h:+80/"), HasSubstr("not a decimal number"));
  EXPECT_THAT(Rejection("http://h:-1/"), HasSubstr("not a decimal number"));
  EXPECT_THAT(Rejection("http://h:80:81/"), HasSubstr("not a decimal number"));
  EXPECT_THAT(Rejection("http://h:0x50/"), HasSubstr("not a decimal number"));
}

TEST(ParseUrlRejectTest, PortOutOfRange) {
  EXPECT_EQ(Rejection("http://h:99999/"),
            "URL port '99999' is out of range 1..65535");
  EXPECT_THAT(Rejection("http://h:0/"),
              HasSubstr("port '0' is out of range 1..65535"));
  EXPECT_THAT(Rejection("http://h:65536/"),
              HasSubstr("port '65536' is out of range"));
  EXPECT_THAT(Rejection("http://[::1]:70000/"),
              HasSubstr("port '70000' is out of range"));
  // Would wrap to 80 in 32 bits (2^32 + 80) or 16 bits (65536 + 80).
  EXPECT_THAT(Rejection("http://h:4294967376/"), HasSubstr("out of range"));
  EXPECT_THAT(Rejection("http://h:65616/"), HasSubstr("out of range"));
  EXPECT_THAT(Rejection("http://h:" + std::string(500, '9') + "/"),
              HasSubstr("out of range"));
}

TEST(ParseUrlRejectTest, Space) {
  EXPECT_EQ(Rejection("http://example.com/a b"),
            "URL contains a space at offset 20; percent-encode it");
  EXPECT_THAT(Rejection(" http://h/"), HasSubstr("space at offset 0"));
  EXPECT_THAT(Rejection("http://h/ "), HasSubstr("space at offset 9"));
  EXPECT_THAT(Rejection("http://h /"), HasSubstr("space at offset 8"));
}

TEST(ParseUrlRejectTest, ControlCharacters) {
  EXPECT_THAT(Rejection("http://h/\r\nX-Injected: 1"),
              HasSubstr("control character (0x0d) at offset 9"));
  EXPECT_THAT(Rejection("http://h/\n"),
              HasSubstr("control character (0x0a) at offset 9"));
  EXPECT_THAT(Rejection("\thttp://h/"),
              HasSubstr("control character (0x09) at offset 0"));
  EXPECT_THAT(Rejection("http://h/\x7f"),
              HasSubstr("control character (0x7f) at offset 9"));
  EXPECT_THAT(Rejection(std::string("http://h\0/", 10)),
              HasSubstr("control character (0x00) at offset 8"));
}

TEST(ParseUrlRejectTest, NonAscii) {
  EXPECT_EQ(Rejection("http://h/caf\xc3\xa9"),
            "URL contains a non-ASCII byte (0xc3) at offset 12; "
            "percent-encode it");
  EXPECT_THAT(Rejection("http://b\xc3\xbc"
                        "cher.de/"),
              HasSubstr("non-ASCII byte (0xc3) at offset 8"));
}

TEST(ParseUrlRejectTest, MalformedPercentEscapes) {
  EXPECT_THAT(Rejection("http://h/a%2"),
              HasSubstr("malformed percent-escape at offset 10"));
  EXPECT_THAT(Rejection("http://h/a%"),
              HasSubstr("malformed percent-escape at offset 10"));
  EXPECT_THAT(Rejection("http://h/a%zz/b"),
              HasSubstr("malformed percent-escape at offset 10"));
  EXPECT_THAT(Rejection("http://h/?x=%G0"),
              HasSubstr("malformed percent-escape at offset 12"));
  EXPECT_THAT(Rejection("http://h/#%"),
              HasSubstr("malformed percent-escape at offset 10"));
  EXPECT_THAT(Rejection("http://h%2/"),
              HasSubstr("malformed percent-escape at offset 8"));
  // An escape cut short by the end of the path is not completed by the query.
  EXPECT_THAT(Rejection("http://h/a%4?1"),
              HasSubstr("malformed percent-escape at offset 10"));
}

TEST(ParseUrlRejectTest, MalformedEscapeDoesNotEchoQuery) {
  EXPECT_THAT(Rejection("http://h/?token=s3cr3t%zz"), Not(HasSubstr("s3cr3t")));
}

TEST(ParseUrlRejectTest, InvalidPathCharacters) {
  EXPECT_EQ(Rejection("http://h/a|b"),
            "URL path has an invalid character '|' at offset 10; "
            "percent-encode it");
  for (char c : std::string_view("\"<>\\^`{}[]")) {
    EXPECT_THAT(Rejection(std::string("http://h/x") + c),
                HasSubstr(std::string("path has an invalid character '") + c +
                          "' at offset 10"));
  }
}

TEST(ParseUrlRejectTest, InvalidQueryCharacters) {
  EXPECT_THAT(Rejection("http://h/?a=<b>"),
              HasSubstr("query has an invalid character '<' at offset 12"));
  EXPECT_THAT(Rejection("http://h?a[]=1"),
              HasSubstr("query has an invalid character '['"));
}

TEST(ParseUrlRejectTest, InvalidFragmentCharacters) {
  EXPECT_THAT(Rejection("http://h/#a#b"),
              HasSubstr("fragment has an invalid character '#' at offset 11"));
}

TEST(ParseUrlRejectTest, InvalidHostCharacters) {
  EXPECT_EQ(Rejection("http://exa<mple.com/"),
            "URL host has an invalid character '<' at offset 10");
  EXPECT_THAT(Rejection("http://a]b/"),
              HasSubstr("host has an invalid character ']' at offset 8"));
  EXPECT_THAT(Rejection("http://a[::1]/"),
              HasSubstr("host has an invalid character '['"));
  EXPECT_THAT(Rejection("http://a\\b/"),
              HasSubstr("host has an invalid character '\\'"));
  EXPECT_THAT(Rejection("http://a\"b/"),
              HasSubstr("host has an invalid character '\"'"));
}

TEST(ParseUrlRejectTest, NumericHostMustBeDottedDecimal) {
  EXPECT_THAT(Rejection("http://1.2.3.999/"),
              HasSubstr("host '1.2.3.999' looks numeric but is not a "
                        "dotted-decimal IPv4 address"));
  for (std::string_view text :
       {"http://256.0.0.1/", "http://1.2.3/", "http://1.2.3.4.5/",
        "http://1.2.3.4./", "http://1..3.4/", "http://01.2.3.4/",
        "http://1.2.3.04/", "http://127.1/", "http://2130706433/",
        "http://0x7f.0.0.1/", "http://0x7f000001/", "http://1.2.3.0x4/",
        "http://example.123/", "http://1234.1.1.1/", "http://.1.2.3.4/",
        "http://0x/"}) {
    EXPECT_THAT(Rejection(text), HasSubstr("not a dotted-decimal IPv4"))
        << text;
  }
}

TEST(ParseUrlRejectTest, UnterminatedIpv6) {
  EXPECT_THAT(Rejection("http://[::1"),
              HasSubstr("unterminated IPv6 literal: '[' at offset 7"));
  EXPECT_THAT(Rejection("http://[::1/]"), HasSubstr("unterminated IPv6"));
  EXPECT_THAT(Rejection("http://[::1:80/"), HasSubstr("unterminated IPv6"));
}

TEST(ParseUrlRejectTest, JunkAfterIpv6) {
  EXPECT_THAT(Rejection("http://[::1]x/"),
              HasSubstr("unexpected character 'x' at offset 12 after the "
                        "IPv6 literal"));
  EXPECT_THAT(Rejection("http://[::1]]/"),
              HasSubstr("unexpected character ']'"));
  EXPECT_THAT(Rejection("http://[::1][::2]/"),
              HasSubstr("unexpected character '['"));
}

TEST(ParseUrlRejectTest, MalformedIpv6) {
  EXPECT_THAT(Rejection("http://[1.2.3.4]/"),
              HasSubstr("host '[1.2.3.4]' is not a valid IPv6 address"));
  for (std::string_view text :
       {"http://[::g]/", "http://[1:2:3:4:5:6:7:8:9]/", "http://[1::2::3]/",
        "http://[12345::]/", "http://[example.com]/", "http://[:]/",
        "http://[::1:]/", "http://[::ffff:1.2.3.999]/"}) {
    EXPECT_THAT(Rejection(text), HasSubstr("is not a valid IPv6 address"))
        << text;
  }
  EXPECT_THAT(Rejection("http://[]/"), HasSubstr("empty IPv6 literal"));
}

TEST(ParseUrlRejectTest, IpvFuture) {
  EXPECT_THAT(Rejection("http://[v1.x]/"), HasSubstr("IPvFuture"));
  EXPECT_THAT(Rejection("http://[V7.abc:def]/"), HasSubstr("IPvFuture"));
}

TEST(ParseUrlRejectTest, Ipv6ZoneId) {
  EXPECT_THAT(Rejection("http://[fe80::1%25eth0]/"),
              HasSubstr("zone identifier at offset 15"));
  EXPECT_THAT(Rejection("http://[fe80::1%eth0]/"),
              HasSubstr("zone identifier"));
}

// Nasty inputs: each must be rejected cleanly (no crash, no sanitizer report,
// always kInvalidArgument with a message).
TEST(ParseUrlRejectTest, NastyCorpus) {
  const std::string corpus[] = {
      std::string("\0", 1),
      std::string("http://h/\0", 10),
      std::string("http://\0h/", 10),
      std::string("\0http://h/", 10),
      "\r\n",
      "http://h/\r\n\r\nGET / HTTP/1.1",
      "http://h\r\n/",
      "http://h/%0d%0a\r",
      "\x80",
      "\xff\xfe",
      "http://\xe2\x98\x83.com/",
      "http://h/\xf0\x9f\x92\xa9",
      "http://h/\xed\xa0\x80",
      "http://h:99999999999999999999999999999999/",
      "http://h:18446744073709551696/",
      "http://h:4294967296/",
      "http://h:65536/",
      "http://h:0/",
      "http://h:-0/",
      "[::1",
      "http://[::1",
      "http://[",
      "http://]",
      "http://[]",
      "http://[::1]x/",
      "http://[::1]:x/",
      "http://a:b@c/",
      "http://@/",
      "http://@",
      "http://:@/",
      "http:",
      "http:/",
      "http:/x",
      "http://",
      "http:///",
      "http://:",
      "http://:/",
      ":",
      "://",
      "%",
      "http://%/",
      "http://h/%",
      "http://h/%%",
      "http://h/%%41",
      "http://[%]/",
      "http://[v]/",
      "http://[%25]/",
      "http://[::1%]/",
      "http://999.999.999.999/",
      "http://1.2.3.4.5.6.7.8.9.10/",
      "https://0/",
      "ftp://h/",
      "javascript:alert(1)",
      "data:text/plain,hi",
      "h\ttp://x/",
      " ",
      "http://h/ ",
      std::string(10000, 'a'),
      "http://" + std::string(10000, '['),
      "http://[" + std::string(10000, ':') + "]/",
      "http://h:" + std::string(10000, '1') + "/",
      "http://h/" + std::string(10000, '%'),
      std::string(10000, '\0'),
  };
  for (const std::string& text : corpus) {
    absl::StatusOr<Url> url = ParseUrl(text);
    ASSERT_FALSE(url.ok()) << "accepted: " << testing::PrintToString(text);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(text);
    EXPECT_FALSE(url.status().message().empty());
    EXPECT_THAT(std::string(url.status().message()), HasSubstr("URL"));
  }
}

// Every prefix of valid URLs either parses or is rejected cleanly; catches
// reads past the end of a component.
TEST(ParseUrlTest, PrefixesDoNotCrash) {
  for (std::string_view full :
       {"https://user@[2001:db8::1%25x]:8443/a%2Fb?x=%41#f%42",
        "http://1.2.3.4:65535/p?q", "http://[::ffff:1.2.3.4]/"}) {
    for (size_t n = 0; n <= full.size(); ++n) {
      absl::StatusOr<Url> url = ParseUrl(full.substr(0, n));
      if (!url.ok()) {
        EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument);
      }
    }
  }
}

}  // namespace
}  // namespace egress
