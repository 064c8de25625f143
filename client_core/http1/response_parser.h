// ResponseParser: an incremental HTTP/1.1 response parser (RFC 9112).
//
// Bytes arrive as the socket delivers them; Feed() takes any split, down to
// one byte at a time, and never buffers more than one header section (bounded
// by Http1Limits::max_head_bytes). Body bytes are handed out as they are
// parsed (TakeBody), so a caller can stream a large body without holding it.
//
// Framing, in RFC 9112 section 6.3's order:
//   - no body for a response to HEAD, and for 1xx, 204 and 304;
//   - Transfer-Encoding whose final coding is "chunked": chunked;
//     any other Transfer-Encoding: close-delimited;
//   - Content-Length (all copies must agree, digits only): that many bytes;
//   - otherwise: close-delimited (ends at FeedEof()).
// 1xx interim responses (100 Continue, 103 Early Hints) are skipped; 101
// Switching Protocols is an error (egressd never asks for an upgrade).
// Chunk extensions are ignored; trailers are parsed into trailers().
//
// Errors: a malformed response is kUnavailable ("the origin misbehaved",
// as DESIGN.md maps origin failures), a response over a limit is
// kResourceExhausted; see Feed.
//
// Thread-compatible: one parser per connection, used by one thread at a time.
#ifndef EGRESS_CLIENT_CORE_HTTP1_RESPONSE_PARSER_H_
#define EGRESS_CLIENT_CORE_HTTP1_RESPONSE_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/http/header.h"
#include "client_core/http1/limits.h"

namespace egress {

// The status line and header section of a final response.
struct ResponseHead {
  // 0 for HTTP/1.0, 1 for HTTP/1.1.
  int version_minor = 1;
  int status_code = 0;
  std::string reason;
  HeaderList headers;
};

class ResponseParser {
 public:
  explicit ResponseParser(const Http1Limits& limits = Http1Limits());

  // Prepares for the response to a new request. `request_was_head` says the
  // request method was HEAD (the response then has no body whatever its
  // headers say).
  void Reset(bool request_was_head);

  // Parses as much of `data` as belongs to the current response and returns
  // how many bytes that was. Fewer than data.size() means the response ended
  // inside `data` (message_complete() is then true) and the rest belongs to
  // no request: the caller must treat it as a protocol error for the
  // connection (see Feed after completion below).
  //
  // Errors (the parser is then unusable until Reset): kUnavailable when the
  // response is malformed, kResourceExhausted when a limit in Http1Limits was
  // exceeded. The message says what was wrong, e.g.
  // "malformed status line", "invalid chunk size", "response header section
  // exceeds 65536 bytes". Feeding non-empty data after message_complete()
  // is the error "unexpected bytes after the response body".
  absl::StatusOr<size_t> Feed(std::string_view data);

  // The peer closed the connection. Completes a close-delimited body; before
  // that point it is the error "connection closed before the response was
  // complete" (with what was missing: status line, headers, N more body
  // bytes, the last chunk).
  absl::Status FeedEof();

  // The final response's status line and headers are parsed.
  bool head_complete() const { return state_ > State::kHead; }
  // Valid once head_complete().
  const ResponseHead& head() const { return head_; }
  // Trailer fields of a chunked body; valid once message_complete().
  const HeaderList& trailers() const { return trailers_; }
  // The whole response has been parsed.
  bool message_complete() const { return state_ == State::kComplete; }
  // No byte of this response has been received yet. A connection that fails
  // in this state failed before the origin answered (the keep-alive race).
  bool nothing_received() const { return bytes_received_ == 0; }

  // Moves out the body bytes parsed since the last call (possibly empty).
  std::string TakeBody();
  // Total body bytes parsed for this response (after de-chunking).
  uint64_t body_bytes() const { return body_bytes_; }

  // Whether the connection may carry another request after this response:
  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
  // "Connection: keep-alive"; never for a close-delimited body, nor after
  // framing that invites stray bytes (Transfer-Encoding with Content-Length;
  // a 1xx, 204 or 304 with Transfer-Encoding or a non-zero Content-Length,
  // whose announced body may follow where the next response is expected).
  // Valid once head_complete().
  bool KeepAlive() const;

 private:
  enum class State {
    // First, so that head_complete() (state_ > kHead) and message_complete()
    // are both false once the parser has failed: head() may then hold a
    // half-parsed response that no caller should act on.
    kError,
    kHead,          // status line and headers (interim responses skipped)
    kBodyLength,    // Content-Length body
    kChunkSize,     // a chunk-size line
    kChunkData,     // chunk data
    kChunkDataEnd,  // the CRLF after chunk data
    kTrailers,      // trailer section after the last chunk
    kBodyUntilEof,  // close-delimited body
    kComplete,
  };

  // Implementation helpers are free to be added here.

  // Each consumes from data[*pos] on and advances *pos.
  absl::Status FeedFieldSection(std::string_view data, size_t* pos);
  absl::Status FeedChunkSize(std::string_view data, size_t* pos);
  absl::Status FeedBody(std::string_view data, size_t* pos);
  absl::Status FeedChunkDataEnd(std::string_view data, size_t* pos);

  // One complete line of the head or trailer section, terminator removed;
  // `offset` is where it starts in its section.
  absl::Status OnHeadLine(std::string_view line, size_t offset);
  absl::Status OnTrailerLine(std::string_view line, size_t offset);
  absl::Status ParseStatusLine(std::string_view line);
  // The empty line ending a response head: skips an interim response or
  // starts the body.
  absl::Status FinishHead();
  absl::Status StartBody();
  absl::Status CheckFieldCount() const;
  // Enters kError, remembering `status` for later calls.
  absl::Status Fail(absl::Status status);

  Http1Limits limits_;
  bool request_was_head_ = false;
  State state_ = State::kHead;
  std::string line_buffer_;  // the unterminated head, chunk or trailer line
  ResponseHead head_;
  HeaderList trailers_;
  std::string body_;
  uint64_t remaining_ = 0;   // bytes left in Content-Length body or chunk
  uint64_t body_bytes_ = 0;
  uint64_t bytes_received_ = 0;
  size_t interim_responses_ = 0;
  bool close_delimited_ = false;
  // Bytes of the current head or trailer section in completed lines.
  size_t section_bytes_ = 0;
  bool have_status_line_ = false;
  // Bytes of the CRLF after chunk data seen so far (0..2).
  int chunk_crlf_seen_ = 0;
  // The framing was suspicious (RFC 9112 6.1, 6.3): finish this response,
  // then close the connection.
  bool force_close_ = false;
  absl::Status error_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP1_RESPONSE_PARSER_H_
