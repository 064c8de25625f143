// libFuzzer target for the HTTP/1.1 ResponseParser
// (client_core/http1/response_parser.h): what a hostile origin can send.
//
// Input: byte 0 holds flags, byte 1 a split seed, the rest is what the origin
// sends on one connection.
//   flags bit 0     the request was HEAD
//   flags bit 1     small limits: Http1Limits scaled down by bits 4..7, so
//                   every limit is reachable with a short input
//   flags bits 4..7 the scale of the small limits
// The stream is parsed three times: in one Feed, one byte per Feed, and in
// chunks whose sizes a PRNG seeded from byte 1 picks. The parser promises
// that any split gives the same result, so the three must agree (on the
// error status alone when one fails: how far parsing got before an error may
// depend on the split). When a response completes with bytes left over and
// the connection may be kept alive, the parser is Reset and the rest is the
// next response, as on a keep-alive connection; otherwise the rest must be
// refused as "unexpected bytes after the response body".
//
// Invariants checked on every Feed (see ResponseParser's header):
//   - Feed consumes at most what it was given, and less only when the
//     message is complete;
//   - message_complete() implies head_complete(); head_complete() never
//     goes back to false while the parser is healthy;
//   - never more body bytes than were fed; body_bytes() equals the bytes
//     TakeBody() handed out;
//   - a final head has a status code 200..999; no header or trailer value
//     and no reason phrase holds CR, LF or NUL; field names are tokens;
//   - no body after HEAD, 204 or 304; a Content-Length body is exactly that
//     long;
//   - errors are kUnavailable or kResourceExhausted with a message, are
//     sticky (Feed and FeedEof return the same error), and Reset makes the
//     parser usable again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client_core/http/header.h"
#include "client_core/http1/limits.h"
#include "client_core/http1/response_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace egress {
namespace {

// Responses parsed from one input at most; enough to exercise Reset.
constexpr int kMaxResponses = 8;

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

std::string Escaped(std::string_view s) {
  return absl::CHexEscape(AsAbsl(s.substr(0, 200)));
}

// How the stream is cut into Feed calls.
class Splitter {
 public:
  enum class Mode { kWhole, kBytewise, kRandom };

  Splitter(Mode mode, uint8_t seed)
      : mode_(mode),
        state_(0x9e3779b9u * (uint32_t{seed} + 1)),
        // Chunks up to 2..256 bytes, chosen by the seed's low bits.
        max_chunk_(uint32_t{2} << (seed % 8)) {}

  size_t Next(size_t remaining) {
    switch (mode_) {
      case Mode::kWhole:
        return remaining;
      case Mode::kBytewise:
        return 1;
      case Mode::kRandom: {
        // xorshift32: deterministic, so a reproducer reproduces.
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        const size_t n = 1 + state_ % max_chunk_;
        return n < remaining ? n : remaining;
      }
    }
    return remaining;
  }

 private:
  Mode mode_;
  uint32_t state_;
  uint32_t max_chunk_;
};

bool HasForbiddenByte(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) !=
         std::string_view::npos;
}

void CheckFields(const HeaderList& fields, const char* section) {
  for (const HeaderField& f : fields) {
    FUZZ_CHECK(IsHttpToken(f.name), "%s name '%s' is not a token", section,
               Escaped(f.name).c_str());
    FUZZ_CHECK(!HasForbiddenByte(f.value), "%s '%s' value has CR/LF/NUL: %s",
               section, Escaped(f.name).c_str(), Escaped(f.value).c_str());
  }
}

// The Content-Length a well-formed response framed by it must have, if the
// head says so unambiguously: no Transfer-Encoding, and every
// Content-Length element the same decimal number.
bool ExpectedContentLength(const HeaderList& headers, uint64_t* length) {
  bool found = false;
  for (const HeaderField& f : headers) {
    if (absl::EqualsIgnoreCase(f.name, "Transfer-Encoding")) return false;
    if (!absl::EqualsIgnoreCase(f.name, "Content-Length")) continue;
    for (absl::string_view element : absl::StrSplit(f.value, ',')) {
      element = absl::StripAsciiWhitespace(element);
      uint64_t value;
      if (element.empty() || element.size() > 19 ||
          !absl::SimpleAtoi(element, &value)) {
        return false;
      }
      if (found && value != *length) return false;
      *length = value;
      found = true;
    }
  }
  return found;
}

// Everything observable about a completed response, as text.
std::string Describe(const ResponseParser& parser, const std::string& body) {
  const ResponseHead& head = parser.head();
  std::string out =
      absl::StrCat("HTTP/1.", head.version_minor, " ", head.status_code, " \"",
                   absl::CHexEscape(head.reason), "\" {");
  for (const HeaderField& f : head.headers) {
    absl::StrAppend(&out, f.name, ": ", absl::CHexEscape(f.value), "; ");
  }
  absl::StrAppend(&out, "} trailers {");
  for (const HeaderField& f : parser.trailers()) {
    absl::StrAppend(&out, f.name, ": ", absl::CHexEscape(f.value), "; ");
  }
  absl::StrAppend(&out, "} body \"", absl::CHexEscape(body),
                  "\" keep_alive=", parser.KeepAlive(), "\n");
  return out;
}

void CheckCompleteResponse(const ResponseParser& parser,
                           const std::string& body, bool request_was_head) {
  FUZZ_CHECK(parser.head_complete(), "complete but head not complete");
  const ResponseHead& head = parser.head();
  FUZZ_CHECK(head.status_code >= 200 && head.status_code <= 999,
             "final status code %d", head.status_code);
  FUZZ_CHECK(head.version_minor == 0 || head.version_minor == 1,
             "version_minor %d", head.version_minor);
  FUZZ_CHECK(!HasForbiddenByte(head.reason), "reason has CR/LF/NUL: %s",
             Escaped(head.reason).c_str());
  CheckFields(head.headers, "header");
  CheckFields(parser.trailers(), "trailer");
  FUZZ_CHECK(parser.body_bytes() == body.size(),
             "body_bytes() %llu but TakeBody() gave %zu",
             static_cast<unsigned long long>(parser.body_bytes()), body.size());
  if (request_was_head || head.status_code == 204 || head.status_code == 304) {
    FUZZ_CHECK(body.empty(), "%zu body bytes after HEAD/204/304", body.size());
  }
  uint64_t content_length;
  if (!request_was_head && head.status_code != 204 && head.status_code != 304 &&
      ExpectedContentLength(head.headers, &content_length)) {
    FUZZ_CHECK(body.size() == content_length,
               "Content-Length %llu but body has %zu bytes",
               static_cast<unsigned long long>(content_length), body.size());
  }
}

void CheckError(ResponseParser& parser, const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kUnavailable ||
                 status.code() == absl::StatusCode::kResourceExhausted,
             "unexpected error code: %s", status.ToString().c_str());
  FUZZ_CHECK(!status.message().empty(), "error without a message");
  FUZZ_CHECK(!parser.head_complete() && !parser.message_complete(),
             "failed parser claims progress");
  const absl::StatusOr<size_t> again = parser.Feed("x");
  FUZZ_CHECK(!again.ok() && again.status() == status,
             "error not sticky on Feed: %s then %s", status.ToString().c_str(),
             again.status().ToString().c_str());
  const absl::Status eof = parser.FeedEof();
  FUZZ_CHECK(eof == status, "error not sticky on FeedEof: %s then %s",
             status.ToString().c_str(), eof.ToString().c_str());
  // Reset makes a failed parser whole again. (16 bytes: within the smallest
  // head limit the small limits use.)
  parser.Reset(/*request_was_head=*/false);
  const absl::StatusOr<size_t> fresh = parser.Feed("HTTP/1.1 204\r\n\r\n");
  FUZZ_CHECK(fresh.ok() && parser.message_complete(),
             "parser unusable after Reset: %s",
             fresh.status().ToString().c_str());
}

// Parses `stream` cut by `splitter`; returns a description of the outcome
// that must not depend on the cuts.
std::string ParseStream(std::string_view stream, const Http1Limits& limits,
                        bool request_was_head, Splitter splitter) {
  std::string outcome;
  ResponseParser parser(limits);
  parser.Reset(request_was_head);
  size_t pos = 0;
  for (int response = 0; response < kMaxResponses; ++response) {
    std::string body;
    uint64_t fed = 0;  // bytes of this response given to Feed
    bool head_seen = false;
    while (pos < stream.size() && !parser.message_complete()) {
      const std::string_view chunk =
          stream.substr(pos, splitter.Next(stream.size() - pos));
      const absl::StatusOr<size_t> consumed = parser.Feed(chunk);
      if (!consumed.ok()) {
        CheckError(parser, consumed.status());
        return absl::StrCat(outcome, "error ", consumed.status().ToString());
      }
      FUZZ_CHECK(*consumed <= chunk.size(), "consumed %zu of %zu", *consumed,
                 chunk.size());
      FUZZ_CHECK(*consumed == chunk.size() || parser.message_complete(),
                 "consumed %zu of %zu without completing", *consumed,
                 chunk.size());
      FUZZ_CHECK(!parser.nothing_received(), "fed bytes, nothing received");
      pos += *consumed;
      fed += *consumed;
      body += parser.TakeBody();
      FUZZ_CHECK(body.size() <= fed, "%zu body bytes from %llu fed",
                 body.size(), static_cast<unsigned long long>(fed));
      FUZZ_CHECK(!parser.message_complete() || parser.head_complete(),
                 "message complete before the head");
      FUZZ_CHECK(!head_seen || parser.head_complete(),
                 "head_complete went back to false");
      head_seen = parser.head_complete();
    }
    if (!parser.message_complete()) {
      // The origin closed the connection after the last byte.
      const absl::Status eof = parser.FeedEof();
      if (!eof.ok()) {
        CheckError(parser, eof);
        return absl::StrCat(outcome, "eof error ", eof.ToString());
      }
      FUZZ_CHECK(parser.message_complete(), "FeedEof OK but not complete");
      body += parser.TakeBody();
    }
    CheckCompleteResponse(parser, body, request_was_head);
    absl::StrAppend(&outcome, Describe(parser, body));
    if (pos == stream.size()) return outcome;
    if (!parser.KeepAlive()) {
      // The connection is done; whatever follows is a protocol error.
      const absl::StatusOr<size_t> rest = parser.Feed(stream.substr(pos));
      FUZZ_CHECK(!rest.ok(), "bytes after a final response were accepted");
      FUZZ_CHECK(absl::StrContains(rest.status().message(),
                                   "unexpected bytes after the response body"),
                 "%s", rest.status().ToString().c_str());
      return absl::StrCat(outcome, "trailing ", stream.size() - pos);
    }
    parser.Reset(request_was_head);
    FUZZ_CHECK(parser.nothing_received() && !parser.head_complete(),
               "Reset did not reset");
  }
  return absl::StrCat(outcome, "stopped after ", kMaxResponses);
}

}  // namespace
}  // namespace egress

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using egress::Splitter;
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const uint8_t seed = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2,
                                size - 2);
  const bool request_was_head = (flags & 1) != 0;
  egress::Http1Limits limits;
  if ((flags & 2) != 0) {
    const size_t scale = flags >> 4;  // 0..15
    limits.max_head_bytes = 24 + 16 * scale;
    limits.max_header_count = 1 + scale % 4;
    limits.max_chunk_line_bytes = 3 + scale;
    limits.max_interim_responses = scale % 3;
  }
  const std::string whole = egress::ParseStream(
      stream, limits, request_was_head, Splitter(Splitter::Mode::kWhole, 0));
  const std::string bytewise = egress::ParseStream(
      stream, limits, request_was_head, Splitter(Splitter::Mode::kBytewise, 0));
  FUZZ_CHECK(whole == bytewise,
             "one Feed and one byte per Feed disagree:\n  whole:    %s\n  "
             "bytewise: %s",
             whole.c_str(), bytewise.c_str());
  const std::string random =
      egress::ParseStream(stream, limits, request_was_head,
                          Splitter(Splitter::Mode::kRandom, seed));
  FUZZ_CHECK(whole == random,
             "one Feed and random splits disagree:\n  whole:  %s\n  random: %s",
             whole.c_str(), random.c_str());
  return 0;
}
