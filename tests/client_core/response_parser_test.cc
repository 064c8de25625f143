#include "client_core/http1/response_parser.h"

#include <cstddef>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client_core/http/header.h"
#include "client_core/http1/limits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Debian's Abseil has its own absl::string_view, which std::string_view does
// not convert to implicitly; tests concatenate with streams instead.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

struct Options {
  bool head_request = false;
  // Call FeedEof() after the input, as when the origin closes.
  bool eof = true;
  Http1Limits limits;
};

// Everything observable about one parse, so that parses of the same bytes
// split differently can be compared.
struct Result {
  absl::Status status;
  bool head_complete = false;
  bool complete = false;
  ResponseHead head;
  HeaderList trailers;
  std::string body;
  uint64_t body_bytes = 0;
  bool keep_alive = false;
  // Bytes Feed() accepted; less than the input when bytes followed the
  // response.
  size_t consumed = 0;

  // A canonical text form. Only the status is kept for failures: how much
  // was parsed before the error depends on where the input was split.
  std::string ToString() const {
    if (!status.ok()) return status.ToString();
    std::string out =
        Cat("OK head_complete=", head_complete, " complete=", complete,
            " HTTP/1.", head.version_minor, " ", head.status_code, " \"",
            absl::CHexEscape(head.reason), "\" headers={");
    for (const HeaderField& f : head.headers) {
      absl::StrAppend(&out, f.name, ": ", absl::CHexEscape(f.value), "; ");
    }
    absl::StrAppend(&out, "} trailers={");
    for (const HeaderField& f : trailers) {
      absl::StrAppend(&out, f.name, ": ", absl::CHexEscape(f.value), "; ");
    }
    absl::StrAppend(&out, "} body=\"", absl::CHexEscape(body),
                    "\" body_bytes=", body_bytes, " keep_alive=", keep_alive,
                    " consumed=", consumed);
    return out;
  }
};

// Feeds `pieces` in order, the way a connection would, and collects the
// outcome. Bytes after a complete response are fed once more, as a
// connection would, to get the parser's verdict on them.
Result FeedPieces(const std::vector<std::string_view>& pieces,
                  const Options& options) {
  ResponseParser parser(options.limits);
  parser.Reset(options.head_request);
  Result result;
  bool stopped = false;
  for (std::string_view piece : pieces) {
    absl::StatusOr<size_t> fed = parser.Feed(piece);
    if (!fed.ok()) {
      result.status = fed.status();
      stopped = true;
      break;
    }
    EXPECT_LE(*fed, piece.size());
    result.consumed += *fed;
    result.body += parser.TakeBody();
    if (*fed < piece.size()) {
      EXPECT_TRUE(parser.message_complete());
      absl::StatusOr<size_t> rest = parser.Feed(piece.substr(*fed));
      EXPECT_FALSE(rest.ok());
      result.status = rest.status();
      stopped = true;
      break;
    }
  }
  if (!stopped && options.eof) result.status = parser.FeedEof();
  result.head_complete = parser.head_complete();
  result.complete = parser.message_complete();
  if (result.head_complete) {
    result.head = parser.head();
    result.keep_alive = parser.KeepAlive();
  }
  if (result.complete) result.trailers = parser.trailers();
  result.body_bytes = parser.body_bytes();
  if (result.status.ok()) {
    EXPECT_EQ(result.body_bytes, result.body.size());
  } else {
    EXPECT_FALSE(result.complete);
    EXPECT_FALSE(result.head_complete);
    // The parser stays failed.
    EXPECT_EQ(parser.Feed("x").status(), result.status);
    EXPECT_EQ(parser.FeedEof(), result.status);
  }
  return result;
}

Result ParseWhole(std::string_view input, const Options& options = {}) {
  return FeedPieces({input}, options);
}

Result ParseBytewise(std::string_view input, const Options& options = {}) {
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < input.size(); ++i)
    pieces.push_back(input.substr(i, 1));
  return FeedPieces(pieces, options);
}

// Parses `input` whole, one byte at a time and split in two at every offset;
// all must agree. Returns the whole-input result.
Result Parse(std::string_view input, const Options& options = {}) {
  const Result whole = ParseWhole(input, options);
  EXPECT_EQ(ParseBytewise(input, options).ToString(), whole.ToString())
      << "fed one byte at a time";
  for (size_t cut = 1; cut < input.size(); ++cut) {
    const Result split =
        FeedPieces({input.substr(0, cut), input.substr(cut)}, options);
    EXPECT_EQ(split.ToString(), whole.ToString()) << "split at " << cut;
    if (split.ToString() != whole.ToString()) break;  // one report is enough
  }
  return whole;
}

void ExpectError(const Result& result, absl::StatusCode code,
                 std::string_view message) {
  EXPECT_EQ(result.status.code(), code) << result.status;
  EXPECT_THAT(std::string(result.status.message()), HasSubstr(message));
}

void ExpectMalformed(std::string_view input, std::string_view message,
                     const Options& options = {}) {
  SCOPED_TRACE(absl::CHexEscape(AsAbsl(input)));
  const Result result = Parse(input, options);
  ExpectError(result, absl::StatusCode::kUnavailable, message);
  EXPECT_THAT(std::string(result.status.message()),
              HasSubstr("malformed response: "));
}

HeaderList Fields(
    std::initializer_list<std::pair<const char*, const char*>> l) {
  HeaderList out;
  for (const auto& [name, value] : l) out.push_back(HeaderField{name, value});
  return out;
}

MATCHER_P(FieldsAre, expected, "") {
  if (arg.size() != expected.size()) return false;
  for (size_t i = 0; i < arg.size(); ++i) {
    if (arg[i].name != expected[i].name || arg[i].value != expected[i].value) {
      return false;
    }
  }
  return true;
}

// --- Valid responses --------------------------------------------------------

TEST(ResponseParserTest, ContentLengthBody) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
      "\r\nhello",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.head.version_minor, 1);
  EXPECT_EQ(r.head.status_code, 200);
  EXPECT_EQ(r.head.reason, "OK");
  EXPECT_THAT(r.head.headers, FieldsAre(Fields({{"Content-Type", "text/plain"},
                                                {"Content-Length", "5"}})));
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.body_bytes, 5u);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_TRUE(r.trailers.empty());
}

TEST(ResponseParserTest, ContentLengthZeroCompletesWithTheHead) {
  const Result r =
      Parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "");
  EXPECT_TRUE(r.keep_alive);
}

TEST(ResponseParserTest, AgreeingContentLengthCopies) {
  for (std::string_view head :
       {"Content-Length: 3\r\nContent-Length: 3\r\n",
        "Content-Length: 3, 3\r\n", "content-length:003 \r\n"}) {
    const Result r =
        Parse(Cat("HTTP/1.1 200 OK\r\n", head, "\r\nabc"), {.eof = false});
    ASSERT_TRUE(r.status.ok()) << head << ": " << r.status;
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.body, "abc");
  }
}

TEST(ResponseParserTest, ChunkedWithExtensionsAndTrailers) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "5;name=value\r\nhello\r\n"
      "1 ; a=\"b c\";d\r\n \r\n"
      "A\r\n0123456789\r\n"
      "0000000000000000000005\r\nworld\r\n"
      "0;last\r\n"
      "X-Checksum: abc\r\n"
      "X-Other:1\r\n"
      "\r\n",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "hello 0123456789world");
  EXPECT_EQ(r.body_bytes, 21u);
  EXPECT_THAT(r.trailers,
              FieldsAre(Fields({{"X-Checksum", "abc"}, {"X-Other", "1"}})));
  EXPECT_TRUE(r.keep_alive);
}

TEST(ResponseParserTest, ChunkedWithoutTrailersAndEmptyBody) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n0\r\n\r\n",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "");
  EXPECT_TRUE(r.trailers.empty());
  EXPECT_TRUE(r.keep_alive);
}

TEST(ResponseParserTest, CloseDelimitedBodyEndsAtEof) {
  constexpr std::string_view kInput =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
  const Result r = Parse(kInput);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "until the end");
  EXPECT_FALSE(r.keep_alive);

  const Result open = Parse(kInput, {.eof = false});
  ASSERT_TRUE(open.status.ok()) << open.status;
  EXPECT_TRUE(open.head_complete);
  EXPECT_FALSE(open.complete);
  EXPECT_EQ(open.body, "until the end");
}

TEST(ResponseParserTest, NonChunkedTransferEncodingIsCloseDelimited) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nabc");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.body, "5\r\nabc");
  EXPECT_FALSE(r.keep_alive);
}

TEST(ResponseParserTest, TransferEncodingWinsOverContentLengthAndCloses) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "abc");
  EXPECT_FALSE(r.keep_alive);
}

TEST(ResponseParserTest, Http10ChunkedIsNotReused) {
  const Result r = Parse(
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
      "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.body, "a");
  EXPECT_FALSE(r.keep_alive);
}

TEST(ResponseParserTest, HeadResponseHasNoBody) {
  const Result r = Parse("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
                         {.head_request = true, .eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "");
  EXPECT_TRUE(r.keep_alive);

  const Result chunked =
      Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            {.head_request = true, .eof = false});
  ASSERT_TRUE(chunked.status.ok()) << chunked.status;
  EXPECT_TRUE(chunked.complete);
}

TEST(ResponseParserTest, NoContentAndNotModifiedHaveNoBody) {
  // keep_alive: a body framing on a bodiless status invites the announced
  // body to follow where the next response is expected (issue 14).
  for (auto [input, keep_alive] : std::vector<std::pair<std::string_view, bool>>{
           {"HTTP/1.1 204 No Content\r\n\r\n", true},
           {"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", true},
           {"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
            false},
           {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false},
           {"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", true}}) {
    SCOPED_TRACE(input);
    const Result r = Parse(input, {.eof = false});
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.keep_alive, keep_alive);
  }
}

TEST(ResponseParserTest, AnInterimResponseWithABodyFramingEndsKeepAlive) {
  const Result r = Parse(
      "HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "ok");
  EXPECT_FALSE(r.keep_alive);
}

TEST(ResponseParserTest, InterimResponsesAreSkipped) {
  const Result r = Parse(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.head.status_code, 201);
  EXPECT_EQ(r.head.reason, "Created");
  EXPECT_THAT(r.head.headers, FieldsAre(Fields({{"Content-Length", "2"}})));
  EXPECT_EQ(r.body, "ok");
}

TEST(ResponseParserTest, InterimResponsesBeforeHeadResponse) {
  const Result r = Parse(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
      "Content-Length: 7\r\n\r\n",
      {.head_request = true, .eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.head.status_code, 200);
}

TEST(ResponseParserTest, TooManyInterimResponses) {
  std::string input;
  for (int i = 0; i < 3; ++i) input += "HTTP/1.1 100 Continue\r\n\r\n";
  input += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  Options options{.eof = false};
  options.limits.max_interim_responses = 2;
  ExpectError(Parse(input, options), absl::StatusCode::kResourceExhausted,
              "more than 2 interim (1xx) responses");
  options.limits.max_interim_responses = 3;
  EXPECT_TRUE(Parse(input, options).status.ok());
}

TEST(ResponseParserTest, SwitchingProtocolsIsAnError) {
  ExpectMalformed(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n\r\n",
      "101 Switching Protocols");
}

TEST(ResponseParserTest, Http10KeepAlive) {
  const Result plain =
      Parse("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", {.eof = false});
  ASSERT_TRUE(plain.status.ok()) << plain.status;
  EXPECT_EQ(plain.head.version_minor, 0);
  EXPECT_TRUE(plain.complete);
  EXPECT_FALSE(plain.keep_alive);

  const Result kept = Parse(
      "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n"
      "\r\nok",
      {.eof = false});
  ASSERT_TRUE(kept.status.ok()) << kept.status;
  EXPECT_TRUE(kept.keep_alive);

  // Keep-alive cannot help when only the close ends the body.
  const Result close_delimited =
      Parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody");
  ASSERT_TRUE(close_delimited.status.ok()) << close_delimited.status;
  EXPECT_EQ(close_delimited.body, "body");
  EXPECT_FALSE(close_delimited.keep_alive);
}

TEST(ResponseParserTest, ConnectionClose) {
  for (std::string_view connection :
       {"close", "Close", "x-foo, close", " keep-alive , CLOSE "}) {
    const Result r = Parse(Cat("HTTP/1.1 200 OK\r\nConnection: ", connection,
                               "\r\nContent-Length: 2\r\n\r\nok"),
                           {.eof = false});
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_TRUE(r.complete);
    EXPECT_FALSE(r.keep_alive) << connection;
  }
}

TEST(ResponseParserTest, StatusLineVariants) {
  struct Case {
    std::string_view line;
    int minor;
    int code;
    std::string_view reason;
  };
  for (const Case& c : std::vector<Case>{
           {"HTTP/1.1 200 OK", 1, 200, "OK"},
           {"HTTP/1.1 404 Not Found", 1, 404, "Not Found"},
           {"HTTP/1.1 200 ", 1, 200, ""},
           {"HTTP/1.1 200", 1, 200, ""},
           {"HTTP/1.1 500 \tweird  reason ", 1, 500, "\tweird  reason "},
           {"HTTP/1.1 200 caf\xc3\xa9", 1, 200, "caf\xc3\xa9"},
           {"HTTP/1.0 503 Busy", 0, 503, "Busy"},
           {"HTTP/1.2 200 OK", 1, 200, "OK"},
           {"HTTP/1.1 799 Custom", 1, 799, "Custom"},
       }) {
    SCOPED_TRACE(c.line);
    const Result r =
        Parse(Cat(c.line, "\r\nContent-Length: 0\r\n\r\n"), {.eof = false});
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.head.version_minor, c.minor);
    EXPECT_EQ(r.head.status_code, c.code);
    EXPECT_EQ(r.head.reason, c.reason);
  }
}

TEST(ResponseParserTest, BareLfLineEndingsInHeadAndTrailers) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\r\nX-A: 1\n\n"
      "2\r\nok\r\n0\r\nX-T: 2\n\n",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.head.reason, "OK");
  EXPECT_THAT(
      r.head.headers,
      FieldsAre(Fields({{"Transfer-Encoding", "chunked"}, {"X-A", "1"}})));
  EXPECT_EQ(r.body, "ok");
  EXPECT_THAT(r.trailers, FieldsAre(Fields({{"X-T", "2"}})));
}

TEST(ResponseParserTest, FieldValuesAreTrimmedAndKeptInOrder) {
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\n"
      "Set-Cookie: a=1\r\n"
      "X-Empty:\r\n"
      "X-Spaces: \t padded value \t\r\n"
      "set-cookie:b=2\r\n"
      "X-Obs-Text: \xff\x80\r\n"
      "Content-Length: 0\r\n\r\n",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.head.headers, FieldsAre(Fields({{"Set-Cookie", "a=1"},
                                                {"X-Empty", ""},
                                                {"X-Spaces", "padded value"},
                                                {"set-cookie", "b=2"},
                                                {"X-Obs-Text", "\xff\x80"},
                                                {"Content-Length", "0"}})));
}

TEST(ResponseParserTest, HeadSectionAtTheLimitIsAccepted) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  Options options{.eof = false};
  options.limits.max_head_bytes = head.size();
  EXPECT_TRUE(Parse(head, options).status.ok());
  options.limits.max_head_bytes = head.size() - 1;
  ExpectError(
      Parse(head, options), absl::StatusCode::kResourceExhausted,
      Cat("response header section exceeds ", head.size() - 1, " bytes"));
}

TEST(ResponseParserTest, HeaderCountAtTheLimitIsAccepted) {
  std::string input = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 127; ++i) absl::StrAppend(&input, "X-", i, ": v\r\n");
  input += "Content-Length: 0\r\n\r\n";
  const Result r = ParseWhole(input, {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.head.headers.size(), 128u);
  EXPECT_EQ(ParseBytewise(input, {.eof = false}).ToString(), r.ToString());
}

TEST(ResponseParserTest, LargeBodyIsStreamed) {
  const std::string body(200000, 'b');
  const std::string input =
      Cat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  ResponseParser parser;
  parser.Reset(false);
  std::string got;
  size_t max_piece = 0;
  for (size_t pos = 0; pos < input.size(); pos += 4096) {
    absl::StatusOr<size_t> fed = parser.Feed(input.substr(pos, 4096));
    ASSERT_TRUE(fed.ok()) << fed.status();
    std::string piece = parser.TakeBody();
    max_piece = std::max(max_piece, piece.size());
    got += piece;
  }
  EXPECT_TRUE(parser.message_complete());
  EXPECT_EQ(got, body);
  EXPECT_EQ(parser.body_bytes(), body.size());
  EXPECT_LE(max_piece, 4096u);
  EXPECT_EQ(parser.TakeBody(), "");
}

TEST(ResponseParserTest, BytesAfterTheResponseAreRefused) {
  constexpr std::string_view kResponse =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string input = Cat(kResponse, "HTTP/1.1 200 OK\r\n");

  ResponseParser parser;
  parser.Reset(false);
  absl::StatusOr<size_t> fed = parser.Feed(input);
  ASSERT_TRUE(fed.ok()) << fed.status();
  EXPECT_EQ(*fed, kResponse.size());
  EXPECT_TRUE(parser.message_complete());
  EXPECT_EQ(parser.TakeBody(), "ok");
  EXPECT_TRUE(parser.Feed("").ok());

  absl::StatusOr<size_t> rest = parser.Feed(input.substr(*fed));
  ASSERT_FALSE(rest.ok());
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(rest.status().message()),
              HasSubstr("unexpected bytes after the response body"));

  // Every split agrees.
  const Result r = Parse(input, {.eof = false});
  ExpectError(r, absl::StatusCode::kUnavailable,
              "unexpected bytes after the response body");

  // The same after a response without a body.
  ExpectMalformed("HTTP/1.1 204 No Content\r\n\r\nX",
                  "unexpected bytes after the response body");
  ExpectMalformed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                  "unexpected bytes after the response body",
                  {.head_request = true});
}

TEST(ResponseParserTest, EofAfterCompleteResponseIsFine) {
  ResponseParser parser;
  parser.Reset(false);
  ASSERT_TRUE(parser.Feed("HTTP/1.1 204 No Content\r\n\r\n").ok());
  EXPECT_TRUE(parser.FeedEof().ok());
  EXPECT_TRUE(parser.message_complete());
}

TEST(ResponseParserTest, NothingReceivedAndReset) {
  ResponseParser parser;
  parser.Reset(false);
  EXPECT_TRUE(parser.nothing_received());
  EXPECT_FALSE(parser.head_complete());
  ASSERT_TRUE(parser.Feed("").ok());
  EXPECT_TRUE(parser.nothing_received());
  ASSERT_TRUE(parser.Feed("H").ok());
  EXPECT_FALSE(parser.nothing_received());
  ASSERT_TRUE(parser.Feed("TTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na").ok());
  EXPECT_TRUE(parser.message_complete());

  // The next exchange on the connection starts clean.
  parser.Reset(true);
  EXPECT_TRUE(parser.nothing_received());
  EXPECT_FALSE(parser.head_complete());
  EXPECT_FALSE(parser.message_complete());
  EXPECT_EQ(parser.body_bytes(), 0u);
  absl::StatusOr<size_t> fed =
      parser.Feed("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
  ASSERT_TRUE(fed.ok()) << fed.status();
  EXPECT_TRUE(parser.message_complete());
  EXPECT_EQ(parser.head().status_code, 200);

  // A failure before the origin answered: nothing was received.
  parser.Reset(false);
  absl::Status eof = parser.FeedEof();
  EXPECT_EQ(eof.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(eof.message()), HasSubstr("no status line"));
  EXPECT_TRUE(parser.nothing_received());

  // Reset also clears a failure.
  parser.Reset(false);
  ASSERT_TRUE(parser.Feed("HTTP/1.1 204 No Content\r\n\r\n").ok());
  EXPECT_TRUE(parser.message_complete());
}

// --- Malformed responses ----------------------------------------------------

TEST(ResponseParserTest, BadStatusLine) {
  for (std::string_view line : {
           "garbage",
           "HTTP/2.0 200 OK",
           "HTTP/1.1 2000 OK",
           "HTTP/1.1 OK",
           "HTTP/1.1  200 OK",
           "HTTP/1.1 20 OK",
           "HTTP/1.1 099 Low",
           "HTTP/1.1 2x0 OK",
           "http/1.1 200 OK",
           "HTTP/1.x 200 OK",
           "HTTP/1.1\t200 OK",
           "HTTP/1.1 200\tOK",
           "HTTP/1.1 200 O\x01K",
           "HTTP/1.1 200 O\rK",
           " HTTP/1.1 200 OK",
           "",
       }) {
    ExpectMalformed(Cat(line, "\r\nContent-Length: 0\r\n\r\n"),
                    "malformed status line");
  }
}

TEST(ResponseParserTest, BadStatusLineExcerptIsShortAndEscaped) {
  const std::string line =
      Cat("\x16\x03\x01\r", std::string(100, 'A'), "SECRET");
  const Result r = Parse(Cat(line, "\r\n\r\n"));
  ExpectError(r, absl::StatusCode::kUnavailable, "malformed status line");
  const std::string message(r.status.message());
  EXPECT_THAT(message, HasSubstr("\"\\x16\\x03\\x01\\r"));
  EXPECT_THAT(message, HasSubstr("...\""));
  EXPECT_THAT(message, Not(HasSubstr("SECRET")));
  EXPECT_LT(message.size(), 120u);
}

TEST(ResponseParserTest, NonHttpPeerFailsWithoutALineEnd) {
  // A peer speaking something else must not hold the call until EOF.
  ResponseParser parser;
  parser.Reset(false);
  absl::StatusOr<size_t> fed = parser.Feed(std::string(64, '\x17'));
  ASSERT_FALSE(fed.ok());
  EXPECT_EQ(fed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(fed.status().message()),
              HasSubstr("malformed status line"));
}

TEST(ResponseParserTest, BadHeaderLine) {
  struct Case {
    std::string_view line;
    std::string_view message;
  };
  for (const Case& c : std::vector<Case>{
           {"NoColon", "header line at offset 17 has no colon"},
           {": empty-name", "invalid header field name at offset 17"},
           {"Bad Name: v", "invalid header field name"},
           {"Bad(Name): v", "invalid header field name"},
           {"Content-Length : 5",
            "whitespace between header field name "
            "'Content-Length' and the colon"},
           {"X-A\t: v", "whitespace between header field name 'X-A'"},
           {"X-A: a\x01z",
            "header 'X-A' value contains control character 0x01"},
           {std::string_view("X-A: a\0b", 8), "control character 0x00"},
           {"X-A: a\rb", "control character 0x0d"},
           {"X-A: a\x7f", "control character 0x7f"},
           {"X-A: a\r", "control character 0x0d"},
       }) {
    ExpectMalformed(
        Cat("HTTP/1.1 200 OK\r\n", c.line, "\r\nContent-Length: 0\r\n\r\n"),
        c.message);
  }
}

TEST(ResponseParserTest, HeaderErrorsNeverEchoValues) {
  const Result r =
      Parse("HTTP/1.1 200 OK\r\nAuthorization: Bearer SECRET\x01TOKEN\r\n\r\n");
  ExpectError(r, absl::StatusCode::kUnavailable, "'Authorization'");
  EXPECT_THAT(std::string(r.status.message()), Not(HasSubstr("SECRET")));
  EXPECT_THAT(std::string(r.status.message()), Not(HasSubstr("TOKEN")));
}

TEST(ResponseParserTest, ObsFoldIsRejected) {
  ExpectMalformed(
      "HTTP/1.1 200 OK\r\nX-A: first\r\n  continued\r\nContent-Length: 0"
      "\r\n\r\n",
      "obsolete line folding");
  ExpectMalformed("HTTP/1.1 200 OK\r\n\tX-A: v\r\n\r\n",
                  "obsolete line folding");
  ExpectMalformed(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n"
      " b\r\n\r\n",
      "obsolete line folding (a line starting with whitespace) at offset 8 of "
      "the trailer section");
}

TEST(ResponseParserTest, BadChunkSize) {
  struct Case {
    std::string_view line;
    std::string_view message;
  };
  for (const Case& c : std::vector<Case>{
           {"zz", "invalid chunk size"},
           {"ffffffffffffffffff", "invalid chunk size (more than 64 bits)"},
           {"10000000000000000", "invalid chunk size (more than 64 bits)"},
           {"-1", "invalid chunk size"},
           {"+5", "invalid chunk size"},
           {"0x5", "invalid chunk size"},
           {"", "invalid chunk size"},
           {" 5", "invalid chunk size"},
           {"5 x", "invalid chunk size"},
           {"5;a=\x01", "invalid chunk extension"},
       }) {
    ExpectMalformed(Cat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                        c.line, "\r\nhello\r\n0\r\n\r\n"),
                    c.message);
  }
  // The largest size is fine (the connection would end first).
  const Result r = Parse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "ffffffffffffffff\r\nabc",
      {.eof = false});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.body, "abc");
}

TEST(ResponseParserTest, ChunkFramingNeedsCrlf) {
  constexpr std::string_view kHead =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  ExpectMalformed(Cat(kHead, "5\nhello\r\n0\r\n\r\n"),
                  "chunk-size line does not end with CRLF");
  ExpectMalformed(Cat(kHead, "5\r\nhelloX\r\n0\r\n\r\n"),
                  "chunk data is not followed by CRLF");
  ExpectMalformed(Cat(kHead, "5\r\nhello\n0\r\n\r\n"),
                  "chunk data is not followed by CRLF");
  ExpectMalformed(Cat(kHead, "5\r\nhello\r0\r\n\r\n"),
                  "chunk data is not followed by CRLF");
  ExpectMalformed(Cat(kHead, "5\r\nhello world\r\n0\r\n\r\n"),
                  "chunk data is not followed by CRLF");
}

TEST(ResponseParserTest, OversizeHead) {
  const std::string big_value(70000, 'v');
  const std::string input = Cat("HTTP/1.1 200 OK\r\nX-Big: ", big_value,
                                "\r\nContent-Length: 0\r\n\r\n");
  // Not Parse(): 70000 two-way splits of 70 KB would take too long.
  const Result whole = ParseWhole(input);
  ExpectError(whole, absl::StatusCode::kResourceExhausted,
              "response header section exceeds 65536 bytes");
  EXPECT_EQ(ParseBytewise(input).ToString(), whole.ToString());

  // A head that never ends also stops at the limit.
  ResponseParser parser;
  parser.Reset(false);
  ASSERT_TRUE(parser.Feed("HTTP/1.1 200 OK\r\n").ok());
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) {
    status = parser.Feed(std::string(1000, 'x')).status();
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);

  Options small;
  small.limits.max_head_bytes = 64;
  ExpectError(
      Parse(Cat("HTTP/1.1 200 OK\r\nX-A: ", std::string(40, 'a'), "\r\n\r\n"),
            small),
      absl::StatusCode::kResourceExhausted,
      "response header section exceeds 64 bytes");
  // Interim responses count on their own.
  ExpectError(Parse(Cat("HTTP/1.1 100 Continue\r\nX-A: ", std::string(40, 'a'),
                        "\r\n\r\n"),
                    small),
              absl::StatusCode::kResourceExhausted,
              "response header section exceeds 64 bytes");
  EXPECT_TRUE(Parse(Cat("HTTP/1.1 100 Continue\r\nX-A: ", std::string(20, 'a'),
                        "\r\n\r\nHTTP/1.1 200 OK\r\nX-B: ",
                        std::string(10, 'b'), "\r\nContent-Length: 0\r\n\r\n"),
                    {.eof = false, .limits = small.limits})
                  .status.ok());
}

TEST(ResponseParserTest, TooManyHeaders) {
  std::string input = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 129; ++i) absl::StrAppend(&input, "X-", i, ": v\r\n");
  input += "Content-Length: 0\r\n\r\n";
  const Result whole = ParseWhole(input);
  ExpectError(whole, absl::StatusCode::kResourceExhausted,
              "response has more than 128 header fields");
  EXPECT_EQ(ParseBytewise(input).ToString(), whole.ToString());

  // Trailers count too.
  Options options{.eof = false};
  options.limits.max_header_count = 3;
  ExpectError(Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                    "X-A: 1\r\n\r\n0\r\nX-T1: 1\r\nX-T2: 2\r\n\r\n",
                    options),
              absl::StatusCode::kResourceExhausted,
              "response has more than 3 header fields");
}

TEST(ResponseParserTest, OversizeChunkLineAndTrailers) {
  constexpr std::string_view kHead =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  ExpectError(ParseWhole(Cat(kHead, "5;ext=", std::string(2000, 'e'),
                             "\r\nhello\r\n0\r\n\r\n")),
              absl::StatusCode::kResourceExhausted,
              "response chunk-size line exceeds 1024 bytes");

  Options small;
  small.limits.max_head_bytes = 64;
  ExpectError(
      Parse(Cat(kHead, "0\r\nX-T: ", std::string(60, 't'), "\r\n\r\n"), small),
      absl::StatusCode::kResourceExhausted,
      "response trailer section exceeds 64 bytes");
}

TEST(ResponseParserTest, TruncatedResponses) {
  struct Case {
    std::string_view input;
    std::string_view message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "no status line"},
           {"HTTP/1.1 20", "incomplete status line"},
           {"HTTP/1.1 200 OK\r\n", "incomplete header section"},
           {"HTTP/1.1 200 OK\r\nContent-", "incomplete header section"},
           {"HTTP/1.1 100 Continue\r\n\r\n", "no status line"},
           {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
            "5 more body bytes expected"},
           {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            "10 more body bytes expected"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "chunked body ended before the last chunk"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            "chunked body ended before the last chunk"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r",
            "chunked body ended before the last chunk"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n",
            "chunked body ended before the last chunk"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
            "incomplete trailer section"},
       }) {
    SCOPED_TRACE(c.input);
    const Result r = Parse(c.input);
    ExpectError(r, absl::StatusCode::kUnavailable,
                Cat("connection closed before the response was "
                    "complete: ",
                    c.message));
  }
}

TEST(ResponseParserTest, BadContentLength) {
  struct Case {
    std::string_view fields;
    std::string_view message;
  };
  for (const Case& c : std::vector<Case>{
           {"Content-Length: 5\r\nContent-Length: 6\r\n",
            "conflicting Content-Length values"},
           {"Content-Length: 5, 6\r\n", "conflicting Content-Length values"},
           {"Content-Length: +5\r\n", "invalid Content-Length"},
           {"Content-Length: -1\r\n", "invalid Content-Length"},
           {"Content-Length: 5a\r\n", "invalid Content-Length"},
           {"Content-Length: 0x5\r\n", "invalid Content-Length"},
           {"Content-Length: 5 5\r\n", "invalid Content-Length"},
           {"Content-Length:\r\n", "invalid Content-Length"},
           {"Content-Length: 5,\r\n", "invalid Content-Length"},
           {"Content-Length: 99999999999999999999999\r\n",
            "Content-Length exceeds 64 bits"},
           {"Transfer-Encoding: \r\n", "Transfer-Encoding names no coding"},
           {"Transfer-Encoding: ,\r\n", "Transfer-Encoding names no coding"},
       }) {
    ExpectMalformed(Cat("HTTP/1.1 200 OK\r\n", c.fields, "\r\nhello"),
                    c.message);
  }
}

TEST(ResponseParserTest, ErrorsAreSticky) {
  ResponseParser parser;
  parser.Reset(false);
  absl::StatusOr<size_t> fed =
      parser.Feed("HTTP/1.1 200 OK\r\nBad Name: v\r\n");
  ASSERT_FALSE(fed.ok());
  EXPECT_FALSE(parser.head_complete());
  EXPECT_FALSE(parser.message_complete());
  EXPECT_FALSE(parser.KeepAlive());
  EXPECT_EQ(parser.Feed("\r\n").status(), fed.status());
  EXPECT_EQ(parser.FeedEof(), fed.status());
}

// --- Robustness -------------------------------------------------------------

// Random edits of valid responses, fed in random splits, must end in OK or a
// clean error, and the same verdict whatever the split.
TEST(ResponseParserTest, RandomMutationsNeverCrash) {
  const std::vector<std::string> corpus = {
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
      "\r\nhello",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n"
      "3\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody until close",
      "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n",
      "HTTP/1.1 404 Not Found\nContent-Length: 3\n\nnot",
  };
  static constexpr char kInterestingBytes[] =
      "\r\n :;,0159afFxHTP/.\t\x00\x7f\xff";
  constexpr std::string_view kInteresting(kInterestingBytes,
                                          sizeof(kInterestingBytes) - 1);
  std::mt19937 rng(20240601);
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  int ok = 0;
  int failed = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::string input = corpus[pick(corpus.size())];
    const size_t edits = 1 + pick(4);
    for (size_t e = 0; e < edits && !input.empty(); ++e) {
      const size_t at = pick(input.size());
      const char c = pick(2) == 0 ? kInteresting[pick(kInteresting.size())]
                                  : static_cast<char>(pick(256));
      switch (pick(5)) {
        case 0:
          input[at] = c;
          break;
        case 1:
          input.insert(input.begin() + at, c);
          break;
        case 2:
          input.erase(at, 1 + pick(3));
          break;
        case 3:
          input.insert(at, input.substr(pick(input.size()), 1 + pick(8)));
          break;
        case 4:
          input.resize(at);
          break;
      }
    }
    Options options;
    options.head_request = pick(8) == 0;
    options.eof = pick(4) != 0;
    if (pick(2) == 0) {
      options.limits.max_head_bytes = 16 + pick(64);
      options.limits.max_header_count = 1 + pick(3);
      options.limits.max_chunk_line_bytes = 2 + pick(8);
      options.limits.max_interim_responses = pick(2);
    }
    std::vector<std::string_view> pieces;
    for (size_t pos = 0; pos < input.size();) {
      const size_t n = std::min(input.size() - pos, 1 + pick(12));
      pieces.push_back(std::string_view(input).substr(pos, n));
      pos += n;
    }
    SCOPED_TRACE(absl::CHexEscape(input));
    const Result split = FeedPieces(pieces, options);
    const Result whole = ParseWhole(input, options);
    ASSERT_EQ(split.ToString(), whole.ToString());
    if (whole.status.ok()) {
      ++ok;
    } else {
      ++failed;
      const absl::StatusCode code = whole.status.code();
      ASSERT_TRUE(code == absl::StatusCode::kUnavailable ||
                  code == absl::StatusCode::kResourceExhausted)
          << whole.status;
    }
  }
  // The mutations reach both outcomes.
  EXPECT_GT(ok, 100);
  EXPECT_GT(failed, 100);
}

}  // namespace
}  // namespace egress
