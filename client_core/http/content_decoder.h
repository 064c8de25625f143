// ContentDecoder: decodes a response body's Content-Encoding (RFC 9110
// section 8.4) as it arrives, under limits that stop decompression bombs.
//
// Codings: gzip (also "x-gzip"; concatenated members are one body, as gzip(1)
// reads them), deflate (the zlib format RFC 9110 means, and the raw DEFLATE
// some servers send instead, told apart by the first two bytes), and br
// (Brotli, RFC 7932). A body with any other coding, or with more than one
// coding applied, is not decoded at all (DecodableCoding returns nullopt)
// and reaches the caller as the origin sent it.
//
// Pull interface, so that a small encoded piece never turns into a large
// buffer: Feed() hands over encoded bytes, Read(max) returns at most `max`
// decoded bytes at a time, and an empty Read() means everything fed was
// consumed. A bomb therefore costs at most `max` bytes of memory per Read,
// and the limits stop it long before it is expanded:
//   - max_decoded_bytes: the decoded body's size;
//   - max_ratio: decoded / encoded bytes, checked once the decoded body is
//     past ratio_floor_bytes (small, very repetitive bodies are normal).
// A limit hit is kResourceExhausted and says which (limit_hit()).
//
// Errors are sticky: once Read or Finish failed, every later call returns
// the same status. Malformed or truncated data is kUnavailable (the origin
// misbehaved, as DESIGN.md maps origin failures). Messages name the coding
// and never quote body bytes, e.g. "malformed gzip body: invalid block type",
// "gzip body ended before its end marker", "3 bytes after the end of the br
// body".
//
// Thread-compatible: one decoder per response, used by one thread at a time.
#ifndef EGRESS_CLIENT_CORE_HTTP_CONTENT_DECODER_H_
#define EGRESS_CLIENT_CORE_HTTP_CONTENT_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/http/header.h"

namespace egress {

enum class ContentCoding { kGzip, kDeflate, kBrotli };

// "gzip", "deflate", "br".
std::string_view ContentCodingName(ContentCoding coding);

// The Accept-Encoding value egressd sends when a call asks for decoding:
// every coding ContentDecoder supports.
inline constexpr std::string_view kAcceptEncoding = "gzip, deflate, br";

// The one coding egressd can decode that `headers`' Content-Encoding fields
// name (case-insensitive; "identity" entries ignored), or nullopt when the
// body is not encoded, uses an unknown coding, or stacks several codings.
std::optional<ContentCoding> DecodableCoding(const HeaderList& headers);

struct DecompressionLimits {
  // Largest decoded body. 0: no limit.
  uint64_t max_decoded_bytes = 0;
  // Largest decoded / encoded ratio once the decoded body exceeds
  // ratio_floor_bytes. 0: no limit. A gzip of zeros expands about 1000
  // times; typical text and JSON 3 to 20 times.
  uint64_t max_ratio = 0;
  uint64_t ratio_floor_bytes = 1 << 20;
};

class ContentDecoder {
 public:
  // Which limit stopped the decoder.
  enum class LimitHit { kNone, kDecodedBytes, kRatio };

  static std::unique_ptr<ContentDecoder> Create(ContentCoding coding,
                                                const DecompressionLimits& limits);
  virtual ~ContentDecoder();

  ContentDecoder(const ContentDecoder&) = delete;
  ContentDecoder& operator=(const ContentDecoder&) = delete;

  ContentCoding coding() const { return coding_; }

  // Hands over the next piece of the encoded body. Bytes fed earlier and not
  // yet consumed are kept.
  void Feed(std::string_view encoded);

  // Decodes at most `max_bytes` (> 0) of what was fed. Empty: everything
  // fed so far is consumed and no decoded byte is pending; Feed more or
  // Finish.
  absl::StatusOr<std::string> Read(size_t max_bytes);

  // The encoded body ended. OK when the coded stream ended with it, or when
  // nothing was ever fed (an empty body, e.g. for HEAD); kUnavailable when it
  // is truncated or has bytes after its end. Call after Read returned empty.
  absl::Status Finish();

  uint64_t encoded_bytes() const { return encoded_bytes_; }
  uint64_t decoded_bytes() const { return decoded_bytes_; }
  LimitHit limit_hit() const { return limit_hit_; }

 protected:
  ContentDecoder(ContentCoding coding, const DecompressionLimits& limits);

  // One decoding step: consumes from `in` (possibly nothing) and writes up
  // to `out_size` bytes to `out`. Sets *ended when the coded stream's end
  // marker was decoded (no output is pending then).
  struct Step {
    size_t consumed = 0;
    size_t produced = 0;
    bool ended = false;
  };
  virtual absl::StatusOr<Step> Decode(std::string_view in, char* out,
                                      size_t out_size) = 0;
  // Whether `rest`, after the end of the coded stream, starts another member
  // the decoder continues with (gzip); it then resets itself. nullopt: not
  // enough bytes to tell yet.
  virtual std::optional<bool> StartsNextMember(std::string_view rest) {
    (void)rest;
    return false;
  }

 private:
  absl::Status Fail(absl::Status status);

  const ContentCoding coding_;
  const DecompressionLimits limits_;
  std::string input_;  // fed, not yet consumed, from input_pos_ on
  size_t input_pos_ = 0;
  uint64_t encoded_bytes_ = 0;
  uint64_t decoded_bytes_ = 0;
  bool fed_ = false;
  bool ended_ = false;  // the coded stream's end marker was decoded
  LimitHit limit_hit_ = LimitHit::kNone;
  absl::Status error_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP_CONTENT_DECODER_H_
