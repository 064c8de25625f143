#include "client_core/http1/response_parser.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client_core/http/header.h"

namespace egress {
namespace {

// A status line is quoted in errors up to this many bytes: enough to tell
// "HTTP/2.0 ..." or a TLS record from a real status line, too little to carry
// much of whatever the origin put there.
constexpr size_t kExcerptBytes = 32;
// "HTTP/1.1 200" is the shortest status line.
constexpr size_t kMinStatusLineBytes = 12;

// Debian's Abseil has its own absl::string_view, which std::string_view does
// not convert to implicitly.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status Malformed(std::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("malformed response: ", AsAbsl(what)));
}

absl::Status ClosedEarly(std::string_view what) {
  return absl::UnavailableError(absl::StrCat(
      "connection closed before the response was complete: ", AsAbsl(what)));
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 9110 OWS is SP and HTAB only; CR, LF and the like are never trimmed,
// they must be rejected.
std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// VCHAR, obs-text, SP or HTAB (RFC 9110 5.5). A NUL, bare CR or other control
// byte in a value could be read as framing by whatever the value is handed to
// next.
bool IsFieldByte(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// Calls fn(element) for each OWS-trimmed element of a comma-separated list,
// empty ones included, until fn returns false.
template <typename Fn>
void ForEachListElement(std::string_view list, Fn fn) {
  while (true) {
    const size_t comma = list.find(',');
    if (!fn(TrimOws(list.substr(0, comma)))) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Excerpt(std::string_view line) {
  if (line.size() <= kExcerptBytes) {
    return absl::StrCat("\"", absl::CHexEscape(AsAbsl(line)), "\"");
  }
  return absl::StrCat(
      "\"", absl::CHexEscape(AsAbsl(line.substr(0, kExcerptBytes))), "...\"");
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ]
// (RFC 9112 4), also accepting no SP before an empty reason, which some
// servers send. Any HTTP/1.x is accepted: minor versions are compatible
// (RFC 9110 2.5), and anything above 1.0 is read as 1.1.
bool ParseStatusLineText(std::string_view line, int* version_minor,
                         int* status_code, std::string_view* reason) {
  if (line.size() < kMinStatusLineBytes ||
      !absl::StartsWith(AsAbsl(line), "HTTP/1.")) {
    return false;
  }
  if (!IsDigit(line[7]) || line[8] != ' ') return false;
  // The first digit is the class and 0 is none (RFC 9110 15); 6xx..9xx are
  // left to the caller, which RFC 9110 asks to treat them as 5xx.
  if (line[9] < '1' || line[9] > '9' || !IsDigit(line[10]) ||
      !IsDigit(line[11])) {
    return false;
  }
  std::string_view rest = line.substr(kMinStatusLineBytes);
  if (!rest.empty()) {
    if (rest.front() != ' ') return false;
    rest.remove_prefix(1);
  }
  for (char c : rest) {
    if (!IsFieldByte(c)) return false;
  }
  *version_minor = line[7] == '0' ? 0 : 1;
  *status_code =
      (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  *reason = rest;
  return true;
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 5). `section` is
// "header" or "trailer", for messages. Values never reach a message.
absl::Status ParseFieldLine(std::string_view line, size_t offset,
                            std::string_view section, HeaderList* out) {
  // A recipient that unfolded obs-fold would see one field where another
  // parser sees two; RFC 9112 5.2 lets a user agent reject it instead.
  if (IsOws(line.front())) {
    return Malformed(absl::StrFormat(
        "obsolete line folding (a line starting with whitespace) at offset "
        "%d of the %s section",
        offset, section));
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Malformed(
        absl::StrFormat("%s line at offset %d has no colon", section, offset));
  }
  std::string_view name = line.substr(0, colon);
  if (!name.empty() && IsOws(name.back())) {
    // RFC 9112 5.1 requires rejecting this: parsers that strip the space and
    // parsers that do not disagree on the field name (a smuggling vector).
    name = TrimOws(name);
    if (IsHttpToken(name)) {
      return Malformed(absl::StrFormat(
          "whitespace between %s field name '%s' and the colon at offset %d",
          section, name, offset));
    }
    return Malformed(absl::StrFormat(
        "whitespace before the colon of a %s field at offset %d", section,
        offset));
  }
  if (!IsHttpToken(name)) {
    return Malformed(
        absl::StrFormat("invalid %s field name at offset %d", section, offset));
  }
  const std::string_view value = TrimOws(line.substr(colon + 1));
  for (char c : value) {
    if (!IsFieldByte(c)) {
      return Malformed(
          absl::StrFormat("%s '%s' value contains control character 0x%02x",
                          section, name, static_cast<unsigned char>(c)));
    }
  }
  out->push_back(HeaderField{std::string(name), std::string(value)});
  return absl::OkStatus();
}

// chunk-size [ chunk-ext ], CRLF already removed (RFC 9112 7.1).
absl::StatusOr<uint64_t> ParseChunkSizeLine(std::string_view line) {
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    const int digit = HexValue(line[i]);
    if (digit < 0) break;
    if (size > (std::numeric_limits<uint64_t>::max() >> 4)) {
      return Malformed("invalid chunk size (more than 64 bits)");
    }
    size = (size << 4) | static_cast<uint64_t>(digit);
  }
  if (i == 0) return Malformed("invalid chunk size");
  while (i < line.size() && IsOws(line[i])) ++i;
  if (i < line.size() && line[i] != ';') return Malformed("invalid chunk size");
  // Extensions are ignored, but a control byte in one means the line is not
  // what it seems.
  for (; i < line.size(); ++i) {
    if (!IsFieldByte(line[i])) return Malformed("invalid chunk extension");
  }
  return size;
}

}  // namespace

ResponseParser::ResponseParser(const Http1Limits& limits) : limits_(limits) {
  Reset(/*request_was_head=*/false);
}

void ResponseParser::Reset(bool request_was_head) {
  request_was_head_ = request_was_head;
  state_ = State::kHead;
  line_buffer_.clear();
  head_ = ResponseHead();
  trailers_.clear();
  body_.clear();
  remaining_ = 0;
  body_bytes_ = 0;
  bytes_received_ = 0;
  interim_responses_ = 0;
  close_delimited_ = false;
  section_bytes_ = 0;
  have_status_line_ = false;
  chunk_crlf_seen_ = 0;
  force_close_ = false;
  error_ = absl::OkStatus();
}

absl::StatusOr<size_t> ResponseParser::Feed(std::string_view data) {
  if (state_ == State::kError) return error_;
  bytes_received_ += data.size();
  if (state_ == State::kComplete) {
    if (data.empty()) return 0;
    return Fail(Malformed("unexpected bytes after the response body"));
  }
  size_t pos = 0;
  while (pos < data.size() && state_ != State::kComplete) {
    absl::Status status;
    switch (state_) {
      case State::kHead:
      case State::kTrailers:
        status = FeedFieldSection(data, &pos);
        break;
      case State::kChunkSize:
        status = FeedChunkSize(data, &pos);
        break;
      case State::kBodyLength:
      case State::kChunkData:
      case State::kBodyUntilEof:
        status = FeedBody(data, &pos);
        break;
      case State::kChunkDataEnd:
        status = FeedChunkDataEnd(data, &pos);
        break;
      case State::kComplete:
      case State::kError:
        break;
    }
    if (!status.ok()) return Fail(std::move(status));
  }
  return pos;
}

absl::Status ResponseParser::FeedEof() {
  switch (state_) {
    case State::kError:
      return error_;
    case State::kComplete:
      return absl::OkStatus();
    case State::kBodyUntilEof:
      state_ = State::kComplete;
      return absl::OkStatus();
    case State::kHead:
      if (!have_status_line_) {
        return Fail(ClosedEarly(line_buffer_.empty()
                                    ? "no status line"
                                    : "incomplete status line"));
      }
      return Fail(ClosedEarly("incomplete header section"));
    case State::kBodyLength:
      return Fail(ClosedEarly(
          absl::StrFormat("%d more body bytes expected", remaining_)));
    case State::kChunkSize:
    case State::kChunkData:
    case State::kChunkDataEnd:
      return Fail(ClosedEarly("chunked body ended before the last chunk"));
    case State::kTrailers:
      return Fail(ClosedEarly("incomplete trailer section"));
  }
  return absl::OkStatus();
}

std::string ResponseParser::TakeBody() {
  std::string out;
  out.swap(body_);
  return out;
}

bool ResponseParser::KeepAlive() const {
  if (!head_complete() || close_delimited_ || force_close_) return false;
  if (HeaderHasToken(head_.headers, "Connection", "close")) return false;
  if (head_.version_minor == 0) {
    return HeaderHasToken(head_.headers, "Connection", "keep-alive");
  }
  return true;
}

absl::Status ResponseParser::FeedFieldSection(std::string_view data,
                                              size_t* pos) {
  const bool trailers = state_ == State::kTrailers;
  size_t newline = data.find('\n', *pos);
  size_t end = newline == std::string_view::npos ? data.size() : newline + 1;
  // A peer that is not speaking HTTP/1.x (a TLS record, an HTTP/2 preface)
  // should fail fast, not hold the call until the head limit or a timeout,
  // so an unterminated status line is checked once it holds kCheckAt + 1
  // bytes: at least kCheckAt of the line itself, enough for the same excerpt
  // as the complete line would get. Stopping at exactly that length however
  // the input is split keeps the outcome independent of the split.
  constexpr size_t kCheckAt = kExcerptBytes + 1;
  const bool check_status_prefix =
      !trailers && !have_status_line_ && line_buffer_.size() <= kCheckAt;
  if (check_status_prefix) {
    const size_t cap = kCheckAt + 1 - line_buffer_.size();
    if (end - *pos > cap) {
      end = *pos + cap;
      newline = std::string_view::npos;
    }
  }
  const size_t n = end - *pos;
  // Checked before buffering, so a head with no end costs at most the limit.
  if (section_bytes_ + line_buffer_.size() + n > limits_.max_head_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "response %s section exceeds %d bytes", trailers ? "trailer" : "header",
        limits_.max_head_bytes));
  }
  line_buffer_.append(data.substr(*pos, n));
  *pos = end;

  if (newline == std::string_view::npos) {
    if (check_status_prefix && line_buffer_.size() > kCheckAt) {
      std::string_view partial = line_buffer_;
      if (partial.back() == '\r') partial.remove_suffix(1);
      int version_minor, status_code;
      std::string_view reason;
      if (!ParseStatusLineText(partial, &version_minor, &status_code,
                               &reason)) {
        return Malformed(
            absl::StrCat("malformed status line ", Excerpt(partial)));
      }
    }
    return absl::OkStatus();
  }

  const size_t offset = section_bytes_;
  section_bytes_ += line_buffer_.size();
  // RFC 9112 2.2 lets a recipient accept a bare LF as the line terminator of
  // the head and trailers (not of chunk framing, see FeedChunkSize).
  std::string_view line = line_buffer_;
  line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  absl::Status status =
      trailers ? OnTrailerLine(line, offset) : OnHeadLine(line, offset);
  line_buffer_.clear();
  return status;
}

absl::Status ResponseParser::OnHeadLine(std::string_view line, size_t offset) {
  if (!have_status_line_) {
    have_status_line_ = true;
    return ParseStatusLine(line);
  }
  if (line.empty()) return FinishHead();
  absl::Status status = ParseFieldLine(line, offset, "header", &head_.headers);
  if (!status.ok()) return status;
  return CheckFieldCount();
}

absl::Status ResponseParser::OnTrailerLine(std::string_view line,
                                           size_t offset) {
  if (line.empty()) {
    state_ = State::kComplete;
    return absl::OkStatus();
  }
  absl::Status status = ParseFieldLine(line, offset, "trailer", &trailers_);
  if (!status.ok()) return status;
  return CheckFieldCount();
}

absl::Status ResponseParser::ParseStatusLine(std::string_view line) {
  int version_minor = 0;
  int status_code = 0;
  std::string_view reason;
  if (!ParseStatusLineText(line, &version_minor, &status_code, &reason)) {
    return Malformed(absl::StrCat("malformed status line ", Excerpt(line)));
  }
  head_.version_minor = version_minor;
  head_.status_code = status_code;
  head_.reason = std::string(reason);
  return absl::OkStatus();
}

namespace {

// A response that has no body by its status yet carries a body framing (a
// non-zero Content-Length, any Transfer-Encoding): its origin may well send
// the body it announced, after the response ends, where the next request's
// response is expected.
bool InvitesStrayBytes(const HeaderList& headers) {
  for (const HeaderField& field : headers) {
    if (absl::EqualsIgnoreCase(field.name, "Transfer-Encoding")) return true;
    if (absl::EqualsIgnoreCase(field.name, "Content-Length") &&
        absl::StripAsciiWhitespace(field.value) != "0") {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::Status ResponseParser::FinishHead() {
  const int code = head_.status_code;
  if (code >= 200) return StartBody();
  if (code != 101 && InvitesStrayBytes(head_.headers)) force_close_ = true;
  if (code == 101) {
    return Malformed(
        "unexpected 101 Switching Protocols (egressd never asks for an "
        "upgrade)");
  }
  if (++interim_responses_ > limits_.max_interim_responses) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("response has more than %d interim (1xx) responses",
                        limits_.max_interim_responses));
  }
  // The final response follows on the same connection.
  head_ = ResponseHead();
  section_bytes_ = 0;
  have_status_line_ = false;
  return absl::OkStatus();
}

absl::Status ResponseParser::StartBody() {
  const int code = head_.status_code;
  if (request_was_head_ || code == 204 || code == 304) {
    // (A HEAD's Content-Length is the GET's: normal.)
    if (code == 204 || code == 304) {
      if (InvitesStrayBytes(head_.headers)) force_close_ = true;
    }
    state_ = State::kComplete;
    return absl::OkStatus();
  }

  bool has_transfer_encoding = false;
  std::string_view final_coding;
  std::optional<uint64_t> content_length;
  bool has_content_length = false;
  for (const HeaderField& field : head_.headers) {
    if (absl::EqualsIgnoreCase(field.name, "Transfer-Encoding")) {
      has_transfer_encoding = true;
      ForEachListElement(field.value, [&final_coding](std::string_view coding) {
        if (!coding.empty()) final_coding = coding;
        return true;
      });
    } else if (absl::EqualsIgnoreCase(field.name, "Content-Length")) {
      has_content_length = true;
    }
  }

  if (has_transfer_encoding) {
    if (final_coding.empty()) {
      return Malformed("Transfer-Encoding names no coding");
    }
    // Both framings at once, or chunking from an HTTP/1.0 peer, suggests a
    // smuggling attempt or a broken intermediary (RFC 9112 6.1, 6.3): use the
    // Transfer-Encoding for this response and never reuse the connection.
    if (has_content_length || head_.version_minor == 0) force_close_ = true;
    if (absl::EqualsIgnoreCase(AsAbsl(final_coding), "chunked")) {
      state_ = State::kChunkSize;
    } else {
      close_delimited_ = true;
      state_ = State::kBodyUntilEof;
    }
    return absl::OkStatus();
  }

  if (has_content_length) {
    for (const HeaderField& field : head_.headers) {
      if (!absl::EqualsIgnoreCase(field.name, "Content-Length")) continue;
      // RFC 9110 8.6 allows a list of identical values ("42, 42"), the trace
      // of a duplicated field being merged.
      absl::Status status = absl::OkStatus();
      ForEachListElement(field.value, [&](std::string_view element) {
        if (element.empty() ||
            !std::all_of(element.begin(), element.end(), IsDigit)) {
          status = Malformed("invalid Content-Length");
          return false;
        }
        uint64_t value = 0;
        if (!absl::SimpleAtoi(AsAbsl(element), &value)) {
          status = Malformed("Content-Length exceeds 64 bits");
          return false;
        }
        if (content_length.has_value() && *content_length != value) {
          status = Malformed("conflicting Content-Length values");
          return false;
        }
        content_length = value;
        return true;
      });
      if (!status.ok()) return status;
    }
    remaining_ = *content_length;
    state_ = remaining_ == 0 ? State::kComplete : State::kBodyLength;
    return absl::OkStatus();
  }

  close_delimited_ = true;
  state_ = State::kBodyUntilEof;
  return absl::OkStatus();
}

absl::Status ResponseParser::FeedChunkSize(std::string_view data, size_t* pos) {
  const size_t newline = data.find('\n', *pos);
  const size_t end =
      newline == std::string_view::npos ? data.size() : newline + 1;
  const size_t n = end - *pos;
  if (line_buffer_.size() + n > limits_.max_chunk_line_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("response chunk-size line exceeds %d bytes",
                        limits_.max_chunk_line_bytes));
  }
  line_buffer_.append(data.substr(*pos, n));
  *pos = end;
  if (newline == std::string_view::npos) return absl::OkStatus();

  // Chunk framing gets no bare-LF leniency: parsers that disagree on where a
  // chunk ends disagree on where the next response starts.
  std::string_view line = line_buffer_;
  if (line.size() < 2 || line[line.size() - 2] != '\r') {
    return Malformed("chunk-size line does not end with CRLF");
  }
  line.remove_suffix(2);
  absl::StatusOr<uint64_t> size = ParseChunkSizeLine(line);
  line_buffer_.clear();
  if (!size.ok()) return size.status();
  if (*size == 0) {
    section_bytes_ = 0;
    state_ = State::kTrailers;
  } else {
    remaining_ = *size;
    state_ = State::kChunkData;
  }
  return absl::OkStatus();
}

absl::Status ResponseParser::FeedBody(std::string_view data, size_t* pos) {
  size_t n = data.size() - *pos;
  if (state_ != State::kBodyUntilEof) {
    n = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
  }
  body_.append(data.substr(*pos, n));
  *pos += n;
  body_bytes_ += n;
  if (state_ == State::kBodyUntilEof) return absl::OkStatus();
  remaining_ -= n;
  if (remaining_ == 0) {
    if (state_ == State::kBodyLength) {
      state_ = State::kComplete;
    } else {
      chunk_crlf_seen_ = 0;
      state_ = State::kChunkDataEnd;
    }
  }
  return absl::OkStatus();
}

absl::Status ResponseParser::FeedChunkDataEnd(std::string_view data,
                                              size_t* pos) {
  constexpr std::string_view kCrlf = "\r\n";
  while (*pos < data.size() && chunk_crlf_seen_ < 2) {
    if (data[*pos] != kCrlf[chunk_crlf_seen_]) {
      return Malformed("chunk data is not followed by CRLF");
    }
    ++*pos;
    ++chunk_crlf_seen_;
  }
  if (chunk_crlf_seen_ == 2) state_ = State::kChunkSize;
  return absl::OkStatus();
}

absl::Status ResponseParser::CheckFieldCount() const {
  if (head_.headers.size() + trailers_.size() > limits_.max_header_count) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "response has more than %d header fields", limits_.max_header_count));
  }
  return absl::OkStatus();
}

absl::Status ResponseParser::Fail(absl::Status status) {
  state_ = State::kError;
  error_ = status;
  return status;
}

}  // namespace egress
