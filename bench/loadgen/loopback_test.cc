#include "bench/loadgen/loopback.h"

#include "gtest/gtest.h"

namespace egress::bench {
namespace {

TEST(LoopbackTest, Hosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.255.3.4"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("LocalHost"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("127.1"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.example.com"));
  EXPECT_FALSE(IsLoopbackHost("example.com"));
  EXPECT_FALSE(IsLoopbackHost(""));
}

TEST(LoopbackTest, Targets) {
  EXPECT_TRUE(IsLoopbackTarget("127.0.0.1:7070"));
  EXPECT_TRUE(IsLoopbackTarget("[::1]:80"));
  EXPECT_TRUE(IsLoopbackTarget("localhost:1"));
  EXPECT_FALSE(IsLoopbackTarget("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackTarget("127.0.0.1:0"));
  EXPECT_FALSE(IsLoopbackTarget("127.0.0.1:70000"));
  EXPECT_FALSE(IsLoopbackTarget("192.168.1.1:80"));
  EXPECT_FALSE(IsLoopbackTarget(":80"));
}

TEST(LoopbackTest, Urls) {
  EXPECT_TRUE(IsLoopbackUrl("http://127.0.0.1:8080/1k"));
  EXPECT_TRUE(IsLoopbackUrl("http://localhost/"));
  EXPECT_TRUE(IsLoopbackUrl("https://[::1]:8443/x?y"));
  EXPECT_TRUE(IsLoopbackUrl("http://127.0.0.1"));
  EXPECT_FALSE(IsLoopbackUrl("http://127.0.0.1@example.com/"));
  EXPECT_FALSE(IsLoopbackUrl("http://example.com/127.0.0.1"));
  EXPECT_FALSE(IsLoopbackUrl("ftp://127.0.0.1/"));
  EXPECT_FALSE(IsLoopbackUrl("http://[::2]/"));
  EXPECT_FALSE(IsLoopbackUrl("http://[::1]x/"));
}

}  // namespace
}  // namespace egress::bench
