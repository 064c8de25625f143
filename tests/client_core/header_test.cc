#include "client_core/http/header.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

// --- FindHeader ----------------------------------------------------------

TEST(FindHeaderTest, FindsCaseInsensitively) {
  const HeaderList headers = {{"Content-Type", "text/plain"}, {"X-Id", "7"}};
  EXPECT_THAT(FindHeader(headers, "content-type"),
              Optional(std::string_view("text/plain")));
  EXPECT_THAT(FindHeader(headers, "CONTENT-TYPE"),
              Optional(std::string_view("text/plain")));
  EXPECT_THAT(FindHeader(headers, "x-id"), Optional(std::string_view("7")));
}

TEST(FindHeaderTest, ReturnsFirstOfRepeatedFields) {
  const HeaderList headers = {
      {"Set-Cookie", "a=1"}, {"Other", "x"}, {"set-cookie", "b=2"}};
  EXPECT_THAT(FindHeader(headers, "Set-Cookie"),
              Optional(std::string_view("a=1")));
}

TEST(FindHeaderTest, MissingIsNullopt) {
  const HeaderList headers = {{"A", "1"}};
  EXPECT_EQ(FindHeader(headers, "B"), std::nullopt);
  EXPECT_EQ(FindHeader(headers, "AA"), std::nullopt);
  EXPECT_EQ(FindHeader(headers, ""), std::nullopt);
  EXPECT_EQ(FindHeader({}, "A"), std::nullopt);
}

TEST(FindHeaderTest, EmptyValueIsFound) {
  const HeaderList headers = {{"X-Empty", ""}};
  EXPECT_THAT(FindHeader(headers, "x-empty"), Optional(std::string_view("")));
}

TEST(FindHeaderTest, ViewPointsIntoList) {
  const HeaderList headers = {{"A", "value"}};
  std::optional<std::string_view> found = FindHeader(headers, "a");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->data(), headers[0].value.data());
}

// --- HeaderHasToken ------------------------------------------------------

TEST(HeaderHasTokenTest, SingleValue) {
  const HeaderList headers = {{"Connection", "close"}};
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "close"));
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "keep-alive"));
}

TEST(HeaderHasTokenTest, CaseInsensitiveNameAndToken) {
  const HeaderList headers = {{"connection", "Keep-Alive"}};
  EXPECT_TRUE(HeaderHasToken(headers, "CONNECTION", "keep-alive"));
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "KEEP-ALIVE"));
}

TEST(HeaderHasTokenTest, CommaSeparatedWithOptionalWhitespace) {
  const HeaderList headers = {{"Connection", "Upgrade,  close\t, \tTE"}};
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "upgrade"));
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "close"));
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "te"));
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "keep-alive"));
}

TEST(HeaderHasTokenTest, EmptyElementsAreIgnored) {
  const HeaderList headers = {{"Connection", ", ,close,,"}};
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "close"));
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", ""));
}

TEST(HeaderHasTokenTest, WholeElementsOnly) {
  const HeaderList headers = {{"Connection", "closed, xclose, close-it"}};
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "close"));
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "clos"));
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "closed, xclose"));
}

TEST(HeaderHasTokenTest, LooksAtEveryFieldOfThatName) {
  const HeaderList headers = {{"Connection", "keep-alive"},
                              {"X-Other", "close"},
                              {"connection", "upgrade, close"}};
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "close"));
  EXPECT_TRUE(HeaderHasToken(headers, "Connection", "keep-alive"));
  EXPECT_FALSE(HeaderHasToken(headers, "X-Other", "keep-alive"));
}

TEST(HeaderHasTokenTest, OtherNamesAreIgnored) {
  const HeaderList headers = {{"X-Connection", "close"}};
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "close"));
  EXPECT_FALSE(HeaderHasToken({}, "Connection", "close"));
}

TEST(HeaderHasTokenTest, OnlySpaceAndTabAreWhitespace) {
  // CR, LF and VT are not OWS; they must not be trimmed into a match.
  const HeaderList headers = {{"Connection", "\vclose\r"}};
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "close"));
}

TEST(HeaderHasTokenTest, EmptyValue) {
  const HeaderList headers = {{"Connection", ""}};
  EXPECT_FALSE(HeaderHasToken(headers, "Connection", "close"));
}

// --- IsHttpToken ---------------------------------------------------------

TEST(IsHttpTokenTest, Accepts) {
  EXPECT_TRUE(IsHttpToken("GET"));
  EXPECT_TRUE(IsHttpToken("Content-Type"));
  EXPECT_TRUE(IsHttpToken("x"));
  EXPECT_TRUE(IsHttpToken("0"));
  EXPECT_TRUE(IsHttpToken("!#$%&'*+-.^_`|~"));
  EXPECT_TRUE(IsHttpToken("abcXYZ019"));
}

TEST(IsHttpTokenTest, RejectsEmpty) { EXPECT_FALSE(IsHttpToken("")); }

TEST(IsHttpTokenTest, RejectsEverySeparatorAndControl) {
  for (char c : std::string_view("\"(),/:;<=>?@[\\]{} \t")) {
    EXPECT_FALSE(IsHttpToken(std::string("A") + c + "B")) << c;
  }
  for (int c = 0; c < 0x20; ++c) {
    EXPECT_FALSE(IsHttpToken(std::string(1, static_cast<char>(c)))) << c;
  }
  EXPECT_FALSE(IsHttpToken("\x7f"));
  EXPECT_FALSE(IsHttpToken("caf\xc3\xa9"));
  EXPECT_FALSE(IsHttpToken(std::string("A\0B", 3)));
}

TEST(IsHttpTokenTest, ExactlyTheTcharSet) {
  const std::string_view tchar_symbols = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    const bool expected =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z') ||
        tchar_symbols.find(static_cast<char>(c)) != std::string_view::npos;
    EXPECT_EQ(IsHttpToken(std::string(1, static_cast<char>(c))), expected) << c;
  }
}

// --- ValidateHeaderField -------------------------------------------------

TEST(ValidateHeaderFieldTest, AcceptsOrdinaryFields) {
  EXPECT_TRUE(ValidateHeaderField("Content-Type", "text/plain").ok());
  EXPECT_TRUE(ValidateHeaderField("X-Empty", "").ok());
  EXPECT_TRUE(ValidateHeaderField("X-Spaces", " a\tb ").ok());
  EXPECT_TRUE(ValidateHeaderField("X-Utf8", "caf\xc3\xa9").ok());
  EXPECT_TRUE(ValidateHeaderField("!#$%&'*+-.^_`|~", "v").ok());
}

TEST(ValidateHeaderFieldTest, EmptyName) {
  absl::Status status = ValidateHeaderField("", "v");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("header name is empty"));
}

TEST(ValidateHeaderFieldTest, NameNotAToken) {
  absl::Status status = ValidateHeaderField("X Foo", "v");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("header name 'X Foo'"));
  EXPECT_THAT(status.message(), HasSubstr("a space (0x20) at offset 1"));

  status = ValidateHeaderField("X-Foo:", "v");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("':' (0x3a) at offset 5"));

  status = ValidateHeaderField("caf\xc3\xa9", "v");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("byte 0xc3 at offset 3"));
}

// Issue 14: control bytes other than CR, LF and NUL were sent unchanged.
// RFC 9110's field-value allows VCHAR, obs-text, SP and HTAB only.
TEST(ValidateHeaderFieldTest, EveryControlByteButTabAndDelAreRefused) {
  for (int c = 0; c < 0x100; ++c) {
    SCOPED_TRACE(c);
    const std::string value = absl::StrCat("a", std::string(1, static_cast<char>(c)), "b");
    absl::Status status = ValidateHeaderField("X-Value", value);
    const bool legal = c == '\t' || (c >= 0x20 && c != 0x7f);
    EXPECT_EQ(status.ok(), legal) << status;
    if (!legal) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(status.message(), HasSubstr("header 'X-Value' value contains"));
      EXPECT_THAT(status.message(), HasSubstr("at offset 1"));
    }
  }
  EXPECT_THAT(ValidateHeaderField("X-Value", "a\x01" "b").message(),
              HasSubstr("byte 0x01 at offset 1"));
  EXPECT_THAT(ValidateHeaderField("X-Value", "a\x7f").message(),
              HasSubstr("byte 0x7f at offset 1"));
}

TEST(ValidateHeaderFieldTest, InjectedNameIsEscapedInMessage) {
  absl::Status status = ValidateHeaderField("X-A\r\nX-Evil", "v");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("a CR (0x0d) at offset 3"));
  EXPECT_THAT(status.message(), HasSubstr("X-A\\r\\nX-Evil"));
  EXPECT_THAT(status.message(), Not(HasSubstr("\r")));
  EXPECT_THAT(status.message(), Not(HasSubstr("\n")));
}

TEST(ValidateHeaderFieldTest, LongNameIsCappedInMessage) {
  const std::string name = std::string(10000, 'a') + " ";
  absl::Status status = ValidateHeaderField(name, "v");
  EXPECT_THAT(status.message(), HasSubstr("at offset 10000"));
  EXPECT_LT(status.message().size(), 300u);
}

TEST(ValidateHeaderFieldTest, ValueWithCr) {
  absl::Status status = ValidateHeaderField("X-A", "abc\rdef");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "header 'X-A' value contains a CR (0x0d) at offset 3");
}

TEST(ValidateHeaderFieldTest, ValueWithLf) {
  absl::Status status = ValidateHeaderField("X-A", "ab\nX-Evil: 1");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      status.message(),
      HasSubstr("header 'X-A' value contains an LF (0x0a) at offset 2"));
}

TEST(ValidateHeaderFieldTest, ValueWithNul) {
  absl::Status status = ValidateHeaderField("X-A", std::string_view("a\0b", 3));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("value contains a NUL (0x00) at offset 1"));
}

TEST(ValidateHeaderFieldTest, ValueIsNeverEchoed) {
  absl::Status status =
      ValidateHeaderField("Authorization", "Bearer s3cr3t-token\r\nX: y");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("header 'Authorization'"));
  EXPECT_THAT(status.message(), Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(status.message(), Not(HasSubstr("Bearer")));
}

TEST(ValidateHeaderFieldTest, FirstOffendingByteIsReported) {
  absl::Status status = ValidateHeaderField("X-A", "ok\n\r");
  EXPECT_THAT(status.message(), HasSubstr("an LF (0x0a) at offset 2"));
}

TEST(ValidateHeaderFieldTest, NameCheckedBeforeValue) {
  absl::Status status = ValidateHeaderField("X A", "\r");
  EXPECT_THAT(status.message(), HasSubstr("header name"));
}

TEST(ValidateHeaderFieldTest, NastyCorpus) {
  const std::pair<std::string, std::string> corpus[] = {
      {"", ""},
      {std::string(1, '\0'), "v"},
      {"X", std::string(1, '\0')},
      {"X", "\r\n"},
      {"X", "\n"},
      {"X", "a\r"},
      {"X-A\r\n", "v"},
      {"X-A:", "v"},
      {":authority", "h"},
      {"X\xff", "v"},
      {"\xc3\xa9", "v"},
      {" X", "v"},
      {"X ", "v"},
      {"X\t", "v"},
      {"X", std::string(10000, 'a') + "\n"},
      {std::string(10000, '\n'), std::string(10000, '\n')},
  };
  for (const auto& [name, value] : corpus) {
    absl::Status status = ValidateHeaderField(name, value);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(name) << " " << testing::PrintToString(value);
    EXPECT_THAT(status.message(), HasSubstr("header"));
    EXPECT_THAT(status.message(), Not(HasSubstr("\n")));
  }
}

}  // namespace
}  // namespace egress
