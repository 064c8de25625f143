#include "bench/h2load_fetch/fetch_body.h"

#include <string>

#include "gtest/gtest.h"

namespace egress::bench {
namespace {

TEST(FetchBodyTest, PrefixThenMessage) {
  v1::FetchRequest request;
  request.set_method("GET");
  request.set_url("http://127.0.0.1:8080/1k");
  const std::string body = EncodeFetchBody(request);
  ASSERT_GE(body.size(), 5u);
  EXPECT_EQ(body[0], '\0');
  const uint32_t n = (static_cast<uint8_t>(body[1]) << 24) |
                     (static_cast<uint8_t>(body[2]) << 16) |
                     (static_cast<uint8_t>(body[3]) << 8) |
                     static_cast<uint8_t>(body[4]);
  EXPECT_EQ(n, body.size() - 5);
  v1::FetchRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(body.substr(5)));
  EXPECT_EQ(parsed.method(), "GET");
  EXPECT_EQ(parsed.url(), "http://127.0.0.1:8080/1k");
}

TEST(FetchBodyTest, LongMessageLengthIsBigEndian) {
  v1::FetchRequest request;
  request.set_body(std::string(70000, 'x'));
  const std::string body = EncodeFetchBody(request);
  const uint32_t n = (static_cast<uint8_t>(body[1]) << 24) |
                     (static_cast<uint8_t>(body[2]) << 16) |
                     (static_cast<uint8_t>(body[3]) << 8) |
                     static_cast<uint8_t>(body[4]);
  EXPECT_EQ(n, body.size() - 5);
  EXPECT_EQ(static_cast<uint8_t>(body[2]), 1);  // 70000 > 65535
}

TEST(FetchBodyTest, PathNamesTheMethod) {
  EXPECT_STREQ(kFetchPath, "/egress.v1.Fetcher/Fetch");
}

}  // namespace
}  // namespace egress::bench
