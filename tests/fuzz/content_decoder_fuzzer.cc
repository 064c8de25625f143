// libFuzzer target for ContentDecoder (client_core/http/content_decoder.h):
// the encoded body of a response, which a hostile origin controls.
//
// Input: byte 0 picks the coding (bits 0..1: gzip, deflate, br, gzip) and
// tight limits (bit 2); byte 1 seeds the piece sizes; the rest is the body.
//
// The body is decoded twice, fed in one piece and in pseudo-random pieces
// and read back in pseudo-random amounts. Invariants:
//   - Read never returns more than asked; decoded_bytes() is the sum of
//     what Read returned (at least that after an error), encoded_bytes()
//     never more than what was fed;
//   - without limits, both runs agree: the same decoded bytes when both
//     succeed, the same error code otherwise;
//   - with limits, the decoded total never passes max_decoded_bytes, and a
//     limit error says which limit (limit_hit());
//   - errors are kUnavailable (malformed, truncated, trailing bytes) or
//     kResourceExhausted (a limit), and sticky.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "client_core/http/content_decoder.h"
#include "tests/fuzz/fuzz_check.h"

namespace egress {
namespace {

// Decoded output examined per input at most (keeps each run fast).
constexpr uint64_t kMaxOutput = 4 << 20;

struct Outcome {
  absl::Status status;
  std::string decoded;
};

Outcome Decode(ContentCoding coding, const DecompressionLimits& limits,
               std::string_view body, bool one_piece, uint32_t seed) {
  std::minstd_rand random(seed + 1);
  std::unique_ptr<ContentDecoder> decoder =
      ContentDecoder::Create(coding, limits);
  Outcome out;
  uint64_t fed = 0;
  size_t pos = 0;
  while (pos < body.size() && out.status.ok()) {
    const size_t n = one_piece ? body.size() : 1 + random() % 64;
    const std::string_view piece = body.substr(pos, n);
    pos += piece.size();
    fed += piece.size();
    decoder->Feed(piece);
    for (;;) {
      const size_t max = 1 + random() % 4096;
      absl::StatusOr<std::string> got = decoder->Read(max);
      if (!got.ok()) {
        out.status = got.status();
        break;
      }
      FUZZ_CHECK(got->size() <= max, "Read(%zu) returned %zu", max,
                 got->size());
      if (got->empty()) break;
      out.decoded += *got;
      if (out.decoded.size() > kMaxOutput) {
        out.status = absl::CancelledError("output cap");  // not a finding
        return out;
      }
    }
    FUZZ_CHECK(decoder->encoded_bytes() <= fed, "consumed %llu of %llu fed",
               static_cast<unsigned long long>(decoder->encoded_bytes()),
               static_cast<unsigned long long>(fed));
  }
  if (out.status.ok()) out.status = decoder->Finish();
  // A Read that fails drops what it decoded (the limit check comes after).
  FUZZ_CHECK(out.status.ok() ? decoder->decoded_bytes() == out.decoded.size()
                             : decoder->decoded_bytes() >= out.decoded.size(),
             "decoded_bytes %llu, handed out %zu",
             static_cast<unsigned long long>(decoder->decoded_bytes()),
             out.decoded.size());
  if (!out.status.ok()) {
    const absl::StatusCode code = out.status.code();
    FUZZ_CHECK(code == absl::StatusCode::kUnavailable ||
                   code == absl::StatusCode::kResourceExhausted,
               "unexpected error %s", out.status.ToString().c_str());
    FUZZ_CHECK(!out.status.message().empty(), "error without a message");
    // Sticky.
    FUZZ_CHECK(decoder->Finish() == out.status, "Finish forgot the error");
    FUZZ_CHECK(decoder->Read(10).status() == out.status,
               "Read forgot the error");
    const bool limit = code == absl::StatusCode::kResourceExhausted;
    FUZZ_CHECK(limit == (decoder->limit_hit() !=
                         ContentDecoder::LimitHit::kNone) ||
                   absl::StrContains(out.status.message(), "out of memory"),
               "limit_hit() disagrees with %s", out.status.ToString().c_str());
  }
  if (limits.max_decoded_bytes > 0) {
    FUZZ_CHECK(out.decoded.size() <= limits.max_decoded_bytes,
               "decoded %zu past the limit %llu", out.decoded.size(),
               static_cast<unsigned long long>(limits.max_decoded_bytes));
  }
  return out;
}

}  // namespace
}  // namespace egress

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using egress::ContentCoding;
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const uint32_t seed = data[1];
  const std::string_view body(reinterpret_cast<const char*>(data) + 2,
                              size - 2);
  static constexpr ContentCoding kCodings[] = {
      ContentCoding::kGzip, ContentCoding::kDeflate, ContentCoding::kBrotli,
      ContentCoding::kGzip};
  const ContentCoding coding = kCodings[flags & 3];
  egress::DecompressionLimits limits;
  if (flags & 4) {
    limits.max_decoded_bytes = 1 + (seed << 6);
    limits.max_ratio = 2 + (flags >> 4);
    limits.ratio_floor_bytes = 256;
  }
  const egress::Outcome whole =
      egress::Decode(coding, limits, body, /*one_piece=*/true, seed);
  const egress::Outcome pieces =
      egress::Decode(coding, limits, body, /*one_piece=*/false, seed);
  const bool capped = absl::IsCancelled(whole.status) ||
                      absl::IsCancelled(pieces.status);
  if ((flags & 4) == 0 && !capped) {
    FUZZ_CHECK(whole.status.code() == pieces.status.code(),
               "split changed the outcome: %s vs %s",
               whole.status.ToString().c_str(),
               pieces.status.ToString().c_str());
    if (whole.status.ok()) {
      FUZZ_CHECK(whole.decoded == pieces.decoded,
                 "split changed the decoded body (%zu vs %zu bytes)",
                 whole.decoded.size(), pieces.decoded.size());
    }
  }
  return 0;
}
