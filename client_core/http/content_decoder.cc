#include "client_core/http/content_decoder.h"

#include <zlib.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "brotli/decode.h"

namespace egress {
namespace {

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

absl::string_view CodingName(ContentCoding coding) {
  return AsAbsl(ContentCodingName(coding));
}

// zlib counts in uInt; feed and drain it in pieces that fit.
constexpr size_t kMaxZlibChunk = 1u << 30;

// gzip (RFC 1952) or zlib/raw DEFLATE (RFC 1950/1951) through zlib's
// inflate.
class ZlibDecoder final : public ContentDecoder {
 public:
  ZlibDecoder(ContentCoding coding, const DecompressionLimits& limits)
      : ContentDecoder(coding, limits) {}
  ~ZlibDecoder() override {
    if (initialised_) inflateEnd(&stream_);
  }

 protected:
  absl::StatusOr<Step> Decode(std::string_view in, char* out,
                              size_t out_size) override {
    if (!initialised_) {
      int window_bits = 16 + MAX_WBITS;  // gzip only
      if (coding() == ContentCoding::kDeflate) {
        // RFC 9110's "deflate" is the zlib format; some servers send raw
        // DEFLATE. A zlib header is two bytes: CM = 8 in the low nibble of
        // the first, and the pair a multiple of 31 (RFC 1950 2.2).
        if (in.size() < 2) return Step{};
        const unsigned cmf = static_cast<unsigned char>(in[0]);
        const unsigned flg = static_cast<unsigned char>(in[1]);
        const bool zlib_header = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 &&
                                 (cmf * 256 + flg) % 31 == 0;
        window_bits = zlib_header ? MAX_WBITS : -MAX_WBITS;
      }
      if (inflateInit2(&stream_, window_bits) != Z_OK) {
        return absl::ResourceExhaustedError(
            absl::StrCat("cannot start a ", CodingName(coding()),
                         " decoder (out of memory)"));
      }
      initialised_ = true;
    }
    stream_.next_in =
        reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    stream_.avail_in = static_cast<uInt>(std::min(in.size(), kMaxZlibChunk));
    stream_.next_out = reinterpret_cast<Bytef*>(out);
    stream_.avail_out = static_cast<uInt>(std::min(out_size, kMaxZlibChunk));
    const uInt in_before = stream_.avail_in;
    const uInt out_before = stream_.avail_out;
    const int rc = inflate(&stream_, Z_NO_FLUSH);
    Step step;
    step.consumed = in_before - stream_.avail_in;
    step.produced = out_before - stream_.avail_out;
    switch (rc) {
      case Z_OK:
        return step;
      case Z_BUF_ERROR:  // no progress possible: needs input (or room)
        return step;
      case Z_STREAM_END:
        step.ended = true;
        return step;
      case Z_MEM_ERROR:
        return absl::ResourceExhaustedError(absl::StrCat(
            "out of memory decoding the ", CodingName(coding()),
            " body"));
      default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
        return absl::UnavailableError(absl::StrCat(
            "malformed ", CodingName(coding()), " body: ",
            rc == Z_NEED_DICT ? "it needs a preset dictionary"
            : stream_.msg != nullptr ? stream_.msg
                                     : "invalid data"));
    }
  }

  std::optional<bool> StartsNextMember(std::string_view rest) override {
    if (coding() != ContentCoding::kGzip) return false;
    // Another gzip member starts with the magic bytes 1f 8b (RFC 1952 2.3.1).
    if (rest.size() < 2) {
      if (!rest.empty() && static_cast<unsigned char>(rest[0]) != 0x1f) {
        return false;
      }
      return std::nullopt;
    }
    if (static_cast<unsigned char>(rest[0]) != 0x1f ||
        static_cast<unsigned char>(rest[1]) != 0x8b) {
      return false;
    }
    inflateReset(&stream_);
    return true;
  }

 private:
  z_stream stream_{};
  bool initialised_ = false;
};

class BrotliDecoder final : public ContentDecoder {
 public:
  explicit BrotliDecoder(const DecompressionLimits& limits)
      : ContentDecoder(ContentCoding::kBrotli, limits),
        state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override {
    if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
  }

 protected:
  absl::StatusOr<Step> Decode(std::string_view in, char* out,
                              size_t out_size) override {
    if (state_ == nullptr) {
      return absl::ResourceExhaustedError(
          "cannot start a br decoder (out of memory)");
    }
    size_t available_in = in.size();
    const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
    size_t available_out = out_size;
    uint8_t* next_out = reinterpret_cast<uint8_t*>(out);
    const BrotliDecoderResult rc = BrotliDecoderDecompressStream(
        state_, &available_in, &next_in, &available_out, &next_out, nullptr);
    Step step;
    step.consumed = in.size() - available_in;
    step.produced = out_size - available_out;
    switch (rc) {
      case BROTLI_DECODER_RESULT_SUCCESS:
        step.ended = true;
        return step;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
      case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
        return step;
      case BROTLI_DECODER_RESULT_ERROR:
      default: {
        const BrotliDecoderErrorCode code = BrotliDecoderGetErrorCode(state_);
        if (code <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
            code >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES) {
          return absl::ResourceExhaustedError(
              "out of memory decoding the br body");
        }
        // The name is a constant such as "_ERROR_FORMAT_PADDING_1".
        std::string name = BrotliDecoderErrorString(code);
        absl::string_view shown = name;
        absl::ConsumePrefix(&shown, "_");
        return absl::UnavailableError(
            absl::StrCat("malformed br body: ", absl::AsciiStrToLower(shown)));
      }
    }
  }

 private:
  BrotliDecoderState* const state_;
};

}  // namespace

std::string_view ContentCodingName(ContentCoding coding) {
  switch (coding) {
    case ContentCoding::kGzip:
      return "gzip";
    case ContentCoding::kDeflate:
      return "deflate";
    case ContentCoding::kBrotli:
      return "br";
  }
  return "gzip";
}

std::optional<ContentCoding> DecodableCoding(const HeaderList& headers) {
  std::optional<ContentCoding> found;
  int codings = 0;
  for (const HeaderField& field : headers) {
    if (!absl::EqualsIgnoreCase(AsAbsl(field.name), "Content-Encoding")) {
      continue;
    }
    for (absl::string_view element : absl::StrSplit(field.value, ',')) {
      element = absl::StripAsciiWhitespace(element);
      if (element.empty() || absl::EqualsIgnoreCase(element, "identity")) {
        continue;
      }
      ++codings;
      if (absl::EqualsIgnoreCase(element, "gzip") ||
          absl::EqualsIgnoreCase(element, "x-gzip")) {
        found = ContentCoding::kGzip;
      } else if (absl::EqualsIgnoreCase(element, "deflate")) {
        found = ContentCoding::kDeflate;
      } else if (absl::EqualsIgnoreCase(element, "br")) {
        found = ContentCoding::kBrotli;
      } else {
        return std::nullopt;  // a coding egressd does not know
      }
    }
  }
  // Stacked codings ("gzip, br") are legal but rare enough that passing the
  // body through beats decoding half of it.
  if (codings != 1) return std::nullopt;
  return found;
}

std::unique_ptr<ContentDecoder> ContentDecoder::Create(
    ContentCoding coding, const DecompressionLimits& limits) {
  if (coding == ContentCoding::kBrotli) {
    return std::make_unique<BrotliDecoder>(limits);
  }
  return std::make_unique<ZlibDecoder>(coding, limits);
}

ContentDecoder::ContentDecoder(ContentCoding coding,
                               const DecompressionLimits& limits)
    : coding_(coding), limits_(limits) {}

ContentDecoder::~ContentDecoder() = default;

void ContentDecoder::Feed(std::string_view encoded) {
  if (encoded.empty()) return;
  fed_ = true;
  if (input_pos_ == input_.size()) {
    input_.assign(encoded.data(), encoded.size());
    input_pos_ = 0;
  } else {
    input_.erase(0, input_pos_);
    input_pos_ = 0;
    input_.append(encoded.data(), encoded.size());
  }
}

absl::Status ContentDecoder::Fail(absl::Status status) {
  error_ = std::move(status);
  input_.clear();
  input_pos_ = 0;
  return error_;
}

absl::StatusOr<std::string> ContentDecoder::Read(size_t max_bytes) {
  if (!error_.ok()) return error_;
  std::string out;
  if (max_bytes == 0) return out;
  out.resize(max_bytes);
  size_t produced = 0;
  while (produced < max_bytes) {
    const std::string_view rest(input_.data() + input_pos_,
                                input_.size() - input_pos_);
    if (ended_) {
      if (rest.empty()) break;
      const std::optional<bool> next = StartsNextMember(rest);
      if (!next.has_value()) break;  // wait for more bytes
      if (!*next) {
        return Fail(absl::UnavailableError(
            absl::StrCat(rest.size(), " bytes after the end of the ",
                         CodingName(coding_), " body")));
      }
      ended_ = false;
    }
    absl::StatusOr<Step> step =
        Decode(rest, out.data() + produced, max_bytes - produced);
    if (!step.ok()) return Fail(step.status());
    input_pos_ += step->consumed;
    encoded_bytes_ += step->consumed;
    produced += step->produced;
    decoded_bytes_ += step->produced;
    if (step->ended) ended_ = true;
    if (limits_.max_decoded_bytes > 0 &&
        decoded_bytes_ > limits_.max_decoded_bytes) {
      limit_hit_ = LimitHit::kDecodedBytes;
      return Fail(absl::ResourceExhaustedError(absl::StrCat(
          CodingName(coding_), " body decodes to more than ",
          limits_.max_decoded_bytes, " bytes")));
    }
    // decoded > ratio * encoded, without overflow (encoded >= 1 here: a
    // decoder produces nothing before it consumed something).
    if (limits_.max_ratio > 0 && decoded_bytes_ > limits_.ratio_floor_bytes &&
        (decoded_bytes_ - 1) / std::max<uint64_t>(encoded_bytes_, 1) >=
            limits_.max_ratio) {
      limit_hit_ = LimitHit::kRatio;
      return Fail(absl::ResourceExhaustedError(absl::StrCat(
          CodingName(coding_), " body expands more than ",
          limits_.max_ratio, " times (", decoded_bytes_, " bytes from ",
          encoded_bytes_, ")")));
    }
    if (step->consumed == 0 && step->produced == 0 && !step->ended) break;
  }
  if (input_pos_ == input_.size()) {
    input_.clear();
    input_pos_ = 0;
  }
  out.resize(produced);
  return out;
}

absl::Status ContentDecoder::Finish() {
  if (!error_.ok()) return error_;
  if (!fed_) return absl::OkStatus();
  const size_t rest = input_.size() - input_pos_;
  if (ended_ && rest > 0) {
    return Fail(absl::UnavailableError(
        absl::StrCat(rest, " bytes after the end of the ",
                     CodingName(coding_), " body")));
  }
  if (!ended_) {
    return Fail(absl::UnavailableError(
        absl::StrCat(CodingName(coding_),
                     " body ended before its end marker (truncated)")));
  }
  return absl::OkStatus();
}

}  // namespace egress
