// Issue 14, section 7: a live egressd against hostile origins, seen from a
// real gRPC client. Bytes 0x80-0xFF in header values, trailers and the
// reason phrase (legal obs-text) must reach the caller exactly, over
// HTTP/1.1 and HTTP/2. HTTP/2 attacks, each over h2c and over TLS with ALPN
// h2: a
// POST reset and then "refused" in one write is sent once;
// SETTINGS_MAX_CONCURRENT_STREAMS 0 fails calls fast; GOAWAY above an
// in-flight stream retries it exactly once; a session ended over the
// origin's protocol error (WINDOW_UPDATE overflow, PUSH_PROMISE, an HPACK
// bomb, CONTINUATION, PING and SETTINGS floods) fails the call promptly,
// naming the GOAWAY code where there is one, and egressd serves on.
#include <nghttp2/nghttp2.h>

#include <functional>
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
#include "tests/support/test_pki.h"

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

void ExpectObsTextTrailer(
    const google::protobuf::RepeatedPtrField<v1::Header>& trailers) {
  const v1::Header* trailer = Find(trailers, "x-trail");
  ASSERT_NE(trailer, nullptr);
  EXPECT_EQ(Exact(*trailer), kTrailer);
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
  ExpectObsTextTrailer(response.trailers());

  const Streamed streamed = FetchStream(**egressd, Get(origin.Url("/obs")));
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(streamed.body, "ok");
  EXPECT_EQ(streamed.head.reason_bytes(), kReason);
  ExpectObsTextHeaders(streamed.head.headers());
  ExpectObsTextTrailer(streamed.trailers);

  // A request value the caller sends as bytes reaches the origin exactly.
  v1::FetchRequest request = Get(origin.Url("/obs"));
  v1::Header* sent = request.add_headers();
  sent->set_name("X-Sent");
  sent->set_value_bytes("\xe9t\xe9");
  v1::FetchResponse echoed;
  ASSERT_TRUE(Fetch(**egressd, request, &echoed).ok());
  EXPECT_EQ(echoed.body(), "exact");
}

// ---------------------------------------------------------------------------
// HTTP/2 attacks, over h2c and over TLS with ALPN h2.

enum class Transport { kH2c, kTlsH2 };

std::string Name(const ::testing::TestParamInfo<Transport>& info) {
  return info.param == Transport::kH2c ? "H2c" : "TlsAlpnH2";
}

// An HPACK integer with an `prefix_bits`-bit prefix (RFC 7541 5.1).
std::string HpackInt(uint8_t first, int prefix_bits, size_t value) {
  const size_t max = (1u << prefix_bits) - 1;
  std::string out;
  if (value < max) {
    out += static_cast<char>(first | value);
    return out;
  }
  out += static_cast<char>(first | max);
  value -= max;
  while (value >= 128) {
    out += static_cast<char>(0x80 | (value & 0x7f));
    value >>= 7;
  }
  out += static_cast<char>(value);
  return out;
}

std::string Repeat(const std::string& frame, int n) {
  std::string out;
  out.reserve(frame.size() * n);
  for (int i = 0; i < n; ++i) out += frame;
  return out;
}

class HostileH2Test : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    absl::StatusOr<IssuedCert> leaf =
        pki_->IssueLeaf("origin", {.ip_addresses = {"127.0.0.1"}});
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    leaf_ = *leaf;
    const std::string config = MakeTempDir("hostile-h2") + "/egressd.yaml";
    ASSERT_TRUE(
        WriteFile(config,
                  GetParam() == Transport::kH2c
                      ? std::string("tls:\n  default:\n    protocol: h2c\n")
                      : absl::StrCat("tls:\n  default:\n    ca_file: ",
                                     pki_->ca_file(), "\n"))
            .ok());
    auto egressd = EgressdProcess::Start({absl::StrCat("--config=", config)});
    ASSERT_TRUE(egressd.ok()) << egressd.status();
    egressd_ = *std::move(egressd);
  }

  H2FaultServerOptions ServerOptions() const {
    H2FaultServerOptions options;
    if (GetParam() == Transport::kTlsH2) {
      options.tls = H2TlsFiles{leaf_.chain_file, leaf_.key_file};
    }
    return options;
  }

  // The call fails in well under its 20 s deadline with UNAVAILABLE or
  // RESOURCE_EXHAUSTED, and egressd then serves a healthy origin over the
  // same transport.
  grpc::Status FailsPromptly(const v1::FetchRequest& request) {
    const absl::Time start = absl::Now();
    v1::FetchResponse response;
    grpc::Status status = Fetch(*egressd_, request, &response);
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    EXPECT_THAT(status.error_code(),
                ::testing::AnyOf(grpc::StatusCode::UNAVAILABLE,
                                 grpc::StatusCode::RESOURCE_EXHAUSTED))
        << status.error_code() << " " << status.error_message();
    ExpectServes();
    return status;
  }

  void ExpectServes() {
    H2FaultServer healthy([](const H2Request&) {
      H2Reply reply;
      reply.body = "fine";
      return reply;
    }, ServerOptions());
    v1::FetchResponse ok;
    const grpc::Status status = Fetch(*egressd_, Get(healthy.Url("/")), &ok);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(ok.body(), "fine");
    EXPECT_EQ(ok.protocol(), "h2");
  }

  std::unique_ptr<TestPki> pki_;
  IssuedCert leaf_;
  std::unique_ptr<EgressdProcess> egressd_;
};

INSTANTIATE_TEST_SUITE_P(Transports, HostileH2Test,
                         ::testing::Values(Transport::kH2c,
                                           Transport::kTlsH2),
                         Name);

TEST_P(HostileH2Test, PostResetThenRefusedInOneWriteIsSentOnce) {
  H2FaultServer origin([](const H2Request&) {
    H2Reply reply;
    reply.reset_code = NGHTTP2_INTERNAL_ERROR;
    reply.second_reset_code = NGHTTP2_REFUSED_STREAM;
    return reply;
  }, ServerOptions());
  v1::FetchRequest post = Get(origin.Url("/pay"));
  post.set_method("POST");
  post.set_body("one payment");
  const grpc::Status status = FailsPromptly(post);
  EXPECT_THAT(status.error_message(), HasSubstr("INTERNAL_ERROR"));
  EXPECT_EQ(origin.stats().requests, 1);
}

TEST_P(HostileH2Test, NoStreamsAllowedFailsCallsFast) {
  H2FaultServerOptions options = ServerOptions();
  options.max_concurrent_streams = 0;
  H2FaultServer origin([](const H2Request&) { return H2Reply(); }, options);
  const grpc::Status status = FailsPromptly(Get(origin.Url("/x")));
  EXPECT_THAT(status.error_message(),
              HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS 0"));
}

TEST_P(HostileH2Test, GoawayAboveAnInFlightPostRetriesItOnce) {
  // The first connection sends GOAWAY(last stream 0) and never answers: the
  // POST was not processed, so it goes once more, on a new connection.
  H2FaultServer origin([](const H2Request& request) {
    H2Reply reply;
    reply.body = absl::StrCat("conn", request.connection);
    if (request.connection == 0) reply.goaway_last_stream_id = 0;
    return reply;
  }, ServerOptions());
  v1::FetchRequest post = Get(origin.Url("/pay"));
  post.set_method("POST");
  post.set_body("one payment");
  v1::FetchResponse response;
  const grpc::Status status = Fetch(*egressd_, post, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.body(), "conn1");
  EXPECT_EQ(origin.stats().requests, 2);
  EXPECT_EQ(origin.stats().connections_accepted, 2);
}

TEST_P(HostileH2Test, ProtocolErrorsNameTheGoawayCode) {
  struct Attack {
    std::string name;
    std::function<std::string(int32_t stream)> frames;
    std::string expected;  // in the message
  };
  const std::vector<Attack> attacks = {
      {"window update overflow",
       [](int32_t) {
         return H2Frame(NGHTTP2_WINDOW_UPDATE, 0, 0,
                        std::string("\x7f\xff\xff\xff", 4));
       },
       "GOAWAY (FLOW_CONTROL_ERROR)"},
      {"push promise",
       [](int32_t stream) {
         return H2Frame(NGHTTP2_PUSH_PROMISE, NGHTTP2_FLAG_END_HEADERS, stream,
                        std::string("\x00\x00\x00\x02\x82\x84\x86", 7));
       },
       "GOAWAY (PROTOCOL_ERROR)"},
      {"continuation flood",
       [](int32_t stream) {
         return H2Frame(NGHTTP2_HEADERS, 0, stream, "\x88") +
                Repeat(H2Frame(NGHTTP2_CONTINUATION, 0, stream, ""), 10000);
       },
       "Too many CONTINUATION frames"},
  };
  for (const Attack& attack : attacks) {
    SCOPED_TRACE(attack.name);
    H2FaultServer origin([&](const H2Request& request) {
      H2Reply reply;
      reply.no_reply = true;
      reply.raw_after = attack.frames(request.stream_id);
      return reply;
    }, ServerOptions());
    const grpc::Status status = FailsPromptly(Get(origin.Url("/x")));
    EXPECT_THAT(status.error_message(), HasSubstr(attack.expected));
  }
}

TEST_P(HostileH2Test, HpackBombIsRefusedAtTheHeaderListLimit) {
  // One 3000-byte value in HPACK's dynamic table, then referenced 1000
  // times: a 5 KB block that decodes to 3 MB.
  H2FaultServer origin([](const H2Request& request) {
    std::string block = "\x88";  // :status 200
    block += "\x40" + HpackInt(0, 7, 6) + "x-bomb" + HpackInt(0, 7, 3000) +
             std::string(3000, 'b');
    block += Repeat(HpackInt(0x80, 7, 62), 1000);
    H2Reply reply;
    reply.no_reply = true;
    reply.raw_after = H2Frame(NGHTTP2_HEADERS,
                              NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
                              request.stream_id, block);
    return reply;
  }, ServerOptions());
  const grpc::Status status = FailsPromptly(Get(origin.Url("/x")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_header_list_bytes"));
}

TEST_P(HostileH2Test, PingAndSettingsFloodsNeitherHangNorCrashEgressd) {
  // 20000 frames that each want an answer, then (200 ms later) the
  // response. egressd either keeps up and returns it, or ends the session
  // naming the flood; never the deadline, and it serves on.
  for (const std::string& flood :
       {Repeat(H2Frame(NGHTTP2_PING, 0, 0, std::string(8, 'p')), 20000),
        Repeat(H2Frame(NGHTTP2_SETTINGS, 0, 0, ""), 20000)}) {
    H2FaultServer origin([&](const H2Request&) {
      H2Reply reply;
      reply.body = "after the flood";
      reply.delay = absl::Milliseconds(200);
      reply.raw_after = flood;
      return reply;
    }, ServerOptions());
    const absl::Time start = absl::Now();
    v1::FetchResponse response;
    const grpc::Status status =
        Fetch(*egressd_, Get(origin.Url("/x")), &response);
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    if (status.ok()) {
      EXPECT_EQ(response.body(), "after the flood");
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
      EXPECT_THAT(status.error_message(), HasSubstr("Flooding was detected"));
    }
    ExpectServes();
  }
}

TEST_P(HostileH2Test, ObsTextReachesTheCallerExactly) {
  H2FaultServer origin([](const H2Request&) {
    H2Reply reply;
    reply.body = "ok";
    reply.headers = {{"x-obs", kObs}, {"x-utf8", kUtf8}};
    reply.trailers = {{"x-trail", kTrailer}};
    return reply;
  }, ServerOptions());
  v1::FetchResponse response;
  const grpc::Status status = Fetch(*egressd_, Get(origin.Url("/")), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.protocol(), "h2");
  ExpectObsTextHeaders(response.headers());
  ExpectObsTextTrailer(response.trailers());

  const Streamed streamed = FetchStream(*egressd_, Get(origin.Url("/")));
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(streamed.body, "ok");
  ExpectObsTextHeaders(streamed.head.headers());
  ExpectObsTextTrailer(streamed.trailers);
}

}  // namespace
}  // namespace egress::testing
