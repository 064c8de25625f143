// Issue 8's proto fields: FetchRequest's options onto Request, Response's
// redirects and decoding onto FetchResponse and ResponseHead, and the caller
// identity FetchService derives from metadata or the peer.
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/support/string_ref.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/fetch.pb.h"
#include "server/fetch_service.h"
#include "server/proto_mapping.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1000000);

absl::StatusOr<Request> Map(const v1::FetchRequest& proto) {
  return ToRequest(proto, kNow, absl::InfiniteFuture(), absl::Seconds(60));
}

TEST(FetchMappingTest, RequestOptions) {
  v1::FetchRequest proto;
  proto.set_method("GET");
  proto.set_url("http://example.com/");
  absl::StatusOr<Request> plain = Map(proto);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->follow_redirects);
  EXPECT_EQ(plain->max_redirects, 10);
  EXPECT_FALSE(plain->decompress);
  EXPECT_EQ(plain->connect_retries, 0);
  EXPECT_EQ(plain->first_byte_timeout, absl::ZeroDuration());

  proto.set_follow_redirects(true);
  proto.set_max_redirects(3);
  proto.set_allow_insecure_redirects(true);
  proto.set_decompress(true);
  proto.set_connect_retries(2);
  proto.mutable_first_byte_timeout()->set_seconds(2);
  proto.mutable_idle_read_timeout()->set_nanos(500000000);
  absl::StatusOr<Request> r = Map(proto);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->follow_redirects);
  EXPECT_EQ(r->max_redirects, 3);
  EXPECT_TRUE(r->allow_insecure_redirects);
  EXPECT_TRUE(r->decompress);
  EXPECT_EQ(r->connect_retries, 2);
  EXPECT_EQ(r->first_byte_timeout, absl::Seconds(2));
  EXPECT_EQ(r->idle_read_timeout, absl::Milliseconds(500));

  // Ranges are HttpClient's to refuse; the mapping keeps huge values huge.
  proto.set_max_redirects(4000000000u);
  absl::StatusOr<Request> huge = Map(proto);
  ASSERT_TRUE(huge.ok());
  EXPECT_GT(huge->max_redirects, 20);
  EXPECT_FALSE(HttpClient::ValidateCallOptions(*huge).ok());

  proto.mutable_idle_read_timeout()->set_nanos(0);
  EXPECT_THAT(std::string(Map(proto).status().message()),
              HasSubstr("idle_read_timeout must be positive"));
}

TEST(FetchMappingTest, ResponseRedirectsAndDecoding) {
  Response response;
  response.status_code = 200;
  response.redirects = {{"http://a/x?t=1", 301}, {"http://b/y", 307}};
  response.final_url = "http://c/z";
  response.decoded_content_encoding = "gzip";
  response.connect_retries = 2;
  v1::ResponseHead head;
  ToResponseHead(response, 7, &head);
  ASSERT_EQ(head.redirects_size(), 2);
  EXPECT_EQ(head.redirects(0).url(), "http://a/x?t=1");
  EXPECT_EQ(head.redirects(0).status_code(), 301);
  EXPECT_EQ(head.final_url(), "http://c/z");
  EXPECT_EQ(head.decoded_content_encoding(), "gzip");
  EXPECT_EQ(head.connect_retries(), 2u);

  v1::FetchResponse proto;
  ToFetchResponse(std::move(response), &proto);
  ASSERT_EQ(proto.redirects_size(), 2);
  EXPECT_EQ(proto.redirects(1).url(), "http://b/y");
  EXPECT_EQ(proto.redirects(1).status_code(), 307);
  EXPECT_EQ(proto.final_url(), "http://c/z");
  EXPECT_EQ(proto.decoded_content_encoding(), "gzip");
  EXPECT_EQ(proto.connect_retries(), 2u);
}

TEST(FetchMappingTest, ObsTextReachesTheCallerExactly) {
  // Bytes 0x80-0xFF are legal in field values and reason phrases; a proto3
  // string must be UTF-8, or the caller's library cannot parse the reply.
  const std::string obs = "caf\xe9 \xff\x80";
  const std::string utf8 = "caf\xc3\xa9";  // valid UTF-8 stays as it is
  Response response;
  response.status_code = 200;
  response.reason = "D\xe9j\xe0 vu";
  response.headers = {{"x-obs", obs}, {"x-utf8", utf8}, {"x-ascii", "plain"}};
  response.trailers = {{"x-trail", "\xb5"}};
  v1::ResponseHead head;
  ToResponseHead(response, 1, &head);
  v1::FetchResponse proto;
  ToFetchResponse(std::move(response), &proto);

  // What a caller's library parses: proto3 checks string fields' UTF-8.
  v1::FetchResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(proto.SerializeAsString()));
  EXPECT_EQ(parsed.reason_bytes(), "D\xe9j\xe0 vu");
  EXPECT_EQ(parsed.reason(), "D\xc3\xa9j\xc3\xa0 vu");  // ISO-8859-1 read
  ASSERT_EQ(parsed.headers_size(), 3);
  EXPECT_EQ(parsed.headers(0).value_bytes(), obs);
  EXPECT_EQ(parsed.headers(0).value(), "caf\xc3\xa9 \xc3\xbf\xc2\x80");
  EXPECT_EQ(parsed.headers(1).value(), utf8);
  EXPECT_EQ(parsed.headers(1).value_bytes(), "");
  EXPECT_EQ(parsed.headers(2).value(), "plain");
  EXPECT_EQ(parsed.headers(2).value_bytes(), "");
  ASSERT_EQ(parsed.trailers_size(), 1);
  EXPECT_EQ(parsed.trailers(0).value_bytes(), "\xb5");
  EXPECT_EQ(parsed.trailers(0).value(), "\xc2\xb5");

  v1::ResponseHead parsed_head;
  ASSERT_TRUE(parsed_head.ParseFromString(head.SerializeAsString()));
  EXPECT_EQ(parsed_head.reason_bytes(), "D\xe9j\xe0 vu");
  EXPECT_EQ(parsed_head.headers(0).value_bytes(), obs);
}

TEST(FetchMappingTest, Utf8CheckMatchesProtobuf) {
  for (const std::string& bytes :
       {std::string("ascii"), std::string("\xc3\xa9"),
        std::string("\xf0\x9f\x98\x80"), std::string("\xc0\xaf"),
        std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
        std::string("\xe2\x82"), std::string("\x80"),
        std::string("\xef\xbf\xbd"), std::string("a\0b", 3)}) {
    v1::Header header;
    header.set_value(bytes);
    v1::Header parsed;
    EXPECT_EQ(IsValidUtf8(bytes),
              parsed.ParseFromString(header.SerializeAsString()))
        << absl::CHexEscape(bytes);
  }
}

TEST(FetchMappingTest, RequestValueBytesAreSent) {
  v1::FetchRequest proto;
  proto.set_method("GET");
  proto.set_url("http://example.com/");
  v1::Header* obs = proto.add_headers();
  obs->set_name("x-obs");
  obs->set_value("ignored");
  obs->set_value_bytes("caf\xe9");
  v1::Header* text = proto.add_headers();
  text->set_name("x-text");
  text->set_value("plain");
  absl::StatusOr<Request> r = Map(proto);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->headers.size(), 2u);
  EXPECT_EQ(r->headers[0].value, "caf\xe9");
  EXPECT_EQ(r->headers[1].value, "plain");
}

TEST(CallerIdentityTest, MetadataValueElsePeerWithoutPort) {
  std::multimap<grpc::string_ref, grpc::string_ref> metadata;
  const std::string key = "x-egress-caller";
  const std::string value = "billing";
  EXPECT_EQ(CallerIdentity(metadata, key, "ipv4:10.0.0.7:51234"),
            "ipv4:10.0.0.7");
  EXPECT_EQ(CallerIdentity(metadata, "", "ipv6:[::1]:443"), "ipv6:[::1]");
  EXPECT_EQ(CallerIdentity(metadata, "", "unix:/tmp/sock"), "unix:/tmp/sock");
  metadata.emplace(key, value);
  EXPECT_EQ(CallerIdentity(metadata, key, "ipv4:10.0.0.7:51234"), "billing");
  EXPECT_EQ(CallerIdentity(metadata, "", "ipv4:10.0.0.7:51234"),
            "ipv4:10.0.0.7")
      << "no key configured: the metadata is not trusted for identity";
  std::multimap<grpc::string_ref, grpc::string_ref> odd;
  const std::string binary("a\nb\0c", 5);
  const std::string long_value(300, 'v');
  odd.emplace(key, binary);
  EXPECT_EQ(CallerIdentity(odd, key, "p"), "a?b?c");
  std::multimap<grpc::string_ref, grpc::string_ref> long_one;
  long_one.emplace(key, long_value);
  EXPECT_EQ(CallerIdentity(long_one, key, "p").size(), 128u);
}

}  // namespace
}  // namespace egress
