// ContentDecoder: gzip, deflate (zlib and raw), br; pieces of any size;
// truncated, corrupt and trailing data; the size and ratio limits that stop
// decompression bombs.
#include "client_core/http/content_decoder.h"

#include <zlib.h>

#include <random>
#include <string>

#include "absl/status/status.h"
#include "brotli/encode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

// `window_bits` as deflateInit2 takes them: 16+15 gzip, 15 zlib, -15 raw.
std::string Deflate(const std::string& data, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 9,
                         Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Gzip(const std::string& data) { return Deflate(data, 16 + 15); }

std::string Brotli(const std::string& data,
                   int quality = BROTLI_DEFAULT_QUALITY) {
  size_t size = BrotliEncoderMaxCompressedSize(data.size());
  std::string out(size, '\0');
  EXPECT_TRUE(BrotliEncoderCompress(
      quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC,
      data.size(), reinterpret_cast<const uint8_t*>(data.data()), &size,
      reinterpret_cast<uint8_t*>(out.data())));
  out.resize(size);
  return out;
}

std::string Text() {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "The quick brown fox " + std::to_string(i) + "\n";
  return text;
}

// Feeds `encoded` in pieces of `piece` bytes and reads `read` bytes at a
// time; returns the decoded body or the first error (Finish included).
absl::StatusOr<std::string> DecodeAll(ContentCoding coding,
                                      const std::string& encoded,
                                      size_t piece, size_t read,
                                      DecompressionLimits limits = {}) {
  std::unique_ptr<ContentDecoder> decoder =
      ContentDecoder::Create(coding, limits);
  std::string out;
  for (size_t i = 0; i < encoded.size(); i += piece) {
    decoder->Feed(std::string_view(encoded).substr(i, piece));
    for (;;) {
      absl::StatusOr<std::string> got = decoder->Read(read);
      if (!got.ok()) return got.status();
      if (got->empty()) break;
      EXPECT_LE(got->size(), read);
      out += *got;
    }
  }
  if (absl::Status s = decoder->Finish(); !s.ok()) return s;
  EXPECT_EQ(decoder->decoded_bytes(), out.size());
  EXPECT_EQ(decoder->encoded_bytes(), encoded.size());
  return out;
}

TEST(ContentDecoderTest, DecodesEveryCodingWhateverThePieces) {
  const std::string text = Text();
  const struct {
    ContentCoding coding;
    std::string encoded;
  } cases[] = {
      {ContentCoding::kGzip, Gzip(text)},
      {ContentCoding::kDeflate, Deflate(text, 15)},   // zlib, as RFC 9110 says
      {ContentCoding::kDeflate, Deflate(text, -15)},  // raw, as some send
      {ContentCoding::kBrotli, Brotli(text)},
  };
  for (const auto& c : cases) {
    for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}, c.encoded.size()}) {
      for (size_t read : {size_t{1}, size_t{100}, size_t{64 * 1024}}) {
        if (piece == 1 && read == 1) continue;  // slow, adds nothing
        absl::StatusOr<std::string> got =
            DecodeAll(c.coding, c.encoded, piece, read);
        ASSERT_TRUE(got.ok()) << ContentCodingName(c.coding) << " piece "
                              << piece << ": " << got.status();
        EXPECT_EQ(*got, text);
      }
    }
  }
}

TEST(ContentDecoderTest, ConcatenatedGzipMembersAreOneBody) {
  const std::string encoded = Gzip("hello, ") + Gzip("world");
  absl::StatusOr<std::string> got =
      DecodeAll(ContentCoding::kGzip, encoded, 3, 1024);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello, world");
}

TEST(ContentDecoderTest, AnEmptyBodyIsFine) {
  std::unique_ptr<ContentDecoder> decoder =
      ContentDecoder::Create(ContentCoding::kGzip, {});
  EXPECT_TRUE(decoder->Finish().ok());
}

TEST(ContentDecoderTest, TruncatedCorruptAndTrailingDataAreUnavailable) {
  const std::string gz = Gzip(Text());
  absl::StatusOr<std::string> truncated = DecodeAll(
      ContentCoding::kGzip, gz.substr(0, gz.size() / 2), 100, 1024);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated"));

  std::string corrupt = gz;
  corrupt[12] ^= 0x55;
  corrupt[13] ^= 0x55;
  absl::StatusOr<std::string> bad =
      DecodeAll(ContentCoding::kGzip, corrupt, 100, 1024);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(bad.status().message(), HasSubstr("gzip"));

  absl::StatusOr<std::string> trailing =
      DecodeAll(ContentCoding::kGzip, gz + "garbage", 100, 1024);
  EXPECT_EQ(trailing.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(trailing.status().message(),
              HasSubstr("7 bytes after the end of the gzip body"));

  absl::StatusOr<std::string> br =
      DecodeAll(ContentCoding::kBrotli, "not brotli at all", 100, 1024);
  EXPECT_EQ(br.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(br.status().message(), HasSubstr("malformed br body"));

  absl::StatusOr<std::string> not_gzip =
      DecodeAll(ContentCoding::kGzip, "plain text", 100, 1024);
  EXPECT_EQ(not_gzip.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ContentDecoderTest, ErrorsAreSticky) {
  std::unique_ptr<ContentDecoder> decoder =
      ContentDecoder::Create(ContentCoding::kGzip, {});
  decoder->Feed("definitely not gzip");
  const absl::StatusOr<std::string> first = decoder->Read(100);
  ASSERT_FALSE(first.ok());
  decoder->Feed(Gzip("x"));
  EXPECT_EQ(decoder->Read(100).status(), first.status());
  EXPECT_EQ(decoder->Finish(), first.status());
}

TEST(ContentDecoderTest, TheSizeLimitStopsABombEarly) {
  const std::string bomb = Gzip(std::string(64 << 20, '\0'));  // ~64 KiB
  DecompressionLimits limits;
  limits.max_decoded_bytes = 4 << 20;
  std::unique_ptr<ContentDecoder> decoder =
      ContentDecoder::Create(ContentCoding::kGzip, limits);
  decoder->Feed(bomb);
  uint64_t decoded = 0;
  absl::Status error;
  for (;;) {
    absl::StatusOr<std::string> piece = decoder->Read(64 * 1024);
    if (!piece.ok()) {
      error = piece.status();
      break;
    }
    ASSERT_FALSE(piece->empty()) << "ran out before the limit";
    decoded += piece->size();
  }
  EXPECT_EQ(error.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(error.message(),
              HasSubstr("gzip body decodes to more than 4194304 bytes"));
  EXPECT_EQ(decoder->limit_hit(), ContentDecoder::LimitHit::kDecodedBytes);
  EXPECT_LE(decoded, 4u << 20);
  // It stopped within one piece of the limit, not at 64 MiB.
  EXPECT_LE(decoder->decoded_bytes(), (4u << 20) + 64 * 1024);
}

TEST(ContentDecoderTest, TheRatioLimitStopsABombPastTheFloor) {
  DecompressionLimits limits;
  limits.max_ratio = 100;
  limits.ratio_floor_bytes = 1 << 20;
  // Zeros expand ~1000 times: past 1 MiB decoded the ratio is over 100.
  absl::StatusOr<std::string> bomb = DecodeAll(
      ContentCoding::kGzip, Gzip(std::string(16 << 20, '\0')), 4096,
      64 * 1024, limits);
  EXPECT_EQ(bomb.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(bomb.status().message(), HasSubstr("expands more than 100 times"));
  // Below the floor a high ratio is fine: small repetitive bodies are normal.
  absl::StatusOr<std::string> small = DecodeAll(
      ContentCoding::kGzip, Gzip(std::string(512 << 10, '\0')), 4096,
      64 * 1024, limits);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->size(), 512u << 10);
  // Ordinary text is far below the ratio.
  std::string text;
  std::minstd_rand random(1);
  while (text.size() < (2 << 20)) {
    text += static_cast<char>('a' + random() % 26);
    if (random() % 6 == 0) text += ' ';
  }
  absl::StatusOr<std::string> ordinary =
      DecodeAll(ContentCoding::kBrotli, Brotli(text, 5), 65536, 65536, limits);
  EXPECT_TRUE(ordinary.ok()) << ordinary.status();
}

TEST(DecodableCodingTest, OneKnownCodingOnly) {
  auto coding = [](HeaderList headers) { return DecodableCoding(headers); };
  EXPECT_EQ(coding({{"Content-Encoding", "gzip"}}), ContentCoding::kGzip);
  EXPECT_EQ(coding({{"content-encoding", " X-GZIP "}}), ContentCoding::kGzip);
  EXPECT_EQ(coding({{"Content-Encoding", "deflate"}}), ContentCoding::kDeflate);
  EXPECT_EQ(coding({{"Content-Encoding", "br"}}), ContentCoding::kBrotli);
  EXPECT_EQ(coding({{"Content-Encoding", "identity, gzip"}}),
            ContentCoding::kGzip);
  EXPECT_EQ(coding({}), std::nullopt);
  EXPECT_EQ(coding({{"Content-Encoding", "identity"}}), std::nullopt);
  EXPECT_EQ(coding({{"Content-Encoding", "zstd"}}), std::nullopt);
  EXPECT_EQ(coding({{"Content-Encoding", "gzip, br"}}), std::nullopt);
  EXPECT_EQ(coding({{"Content-Encoding", "gzip"}, {"Content-Encoding", "gzip"}}),
            std::nullopt);
}

}  // namespace
}  // namespace egress
