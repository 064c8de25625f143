// Issue 8 through egressd's gRPC front: the request limits and their flags,
// the per-caller limit keyed by metadata, redirects and decoding in
// FetchResponse and in a FetchStream head, and the read timeout flags.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_core/base/sync.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/support/egressd_process.h"
#include "tests/support/fault_origin.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

class FetchSafetyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    origin_ = new FaultOrigin();
    absl::StatusOr<std::unique_ptr<EgressdProcess>> started =
        EgressdProcess::Start({"--max_request_body_bytes=8388608",
                               "--max_in_flight_per_caller=1",
                               "--caller_metadata_key=x-egress-caller"});
    ASSERT_TRUE(started.ok()) << started.status();
    egressd_ = started->release();
  }
  static void TearDownTestSuite() {
    delete egressd_;
    delete origin_;
  }
  static FaultOrigin* origin_;
  static EgressdProcess* egressd_;
};

FaultOrigin* FetchSafetyTest::origin_ = nullptr;
EgressdProcess* FetchSafetyTest::egressd_ = nullptr;

TEST_F(FetchSafetyTest, TheRequestBodyLimitIsEgressdsNotGrpcs) {
  v1::FetchRequest request = Get(origin_->Url("/ok"));
  request.set_method("POST");
  // Over gRPC's default 4 MiB message limit, within egressd's 8 MiB.
  request.set_body(std::string(6 << 20, 'b'));
  v1::FetchResponse response;
  grpc::Status ok = egressd_->Fetch(request, &response);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(response.body(), "ok");

  request.set_body(std::string((8 << 20) + 1, 'b'));
  grpc::Status over = egressd_->Fetch(request, &response);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(over.error_message(),
            "request body is 8388609 bytes, over the limit of 8388608 "
            "(max_request_body_bytes)");
}

TEST_F(FetchSafetyTest, OutOfRangeOptionsAreInvalidArguments) {
  v1::FetchRequest request = Get(origin_->Url("/ok"));
  request.set_follow_redirects(true);
  request.set_max_redirects(21);
  v1::FetchResponse response;
  grpc::Status s = egressd_->Fetch(request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "max_redirects must be 0..20, got 21");
  v1::FetchRequest encoding = Get(origin_->Url("/ok"));
  encoding.set_decompress(true);
  v1::Header* h = encoding.add_headers();
  h->set_name("Accept-Encoding");
  h->set_value("gzip");
  EXPECT_EQ(egressd_->Fetch(encoding, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FetchSafetyTest, OneCallerPerMetadataKey) {
  // Caller "noisy" holds its one slot with a call the origin never answers.
  grpc::ClientContext hold;
  hold.AddMetadata("x-egress-caller", "noisy");
  hold.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::FetchResponse held_response;
  grpc::Status held_status;
  Notification held_done;
  const int before = origin_->requests_received();
  const v1::FetchRequest held_request = Get(origin_->Url("/never"));
  egressd_->fetcher().async()->Fetch(&hold, &held_request, &held_response,
                                     [&](grpc::Status s) {
                                       held_status = s;
                                       held_done.Notify();
                                     });
  ASSERT_TRUE(origin_->AwaitRequests(before + 1, absl::Seconds(10)));

  auto fetch_as = [&](const std::string& caller) {
    grpc::ClientContext context;
    if (!caller.empty()) context.AddMetadata("x-egress-caller", caller);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::FetchResponse response;
    return egressd_->fetcher().Fetch(&context, Get(origin_->Url("/ok")),
                                     &response);
  };
  grpc::Status refused = fetch_as("noisy");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "caller 'noisy' has 1 calls in flight (max_in_flight_per_caller=1)");
  EXPECT_TRUE(fetch_as("quiet").ok());
  EXPECT_TRUE(fetch_as("").ok()) << "no key: counted by IP, which is free";

  hold.TryCancel();
  held_done.WaitForNotification();
  EXPECT_EQ(held_status.error_code(), grpc::StatusCode::CANCELLED);
  // The slot is released once egressd has ended the aborted call.
  grpc::Status again;
  for (int i = 0; i < 100; ++i) {
    again = fetch_as("noisy");
    if (again.ok()) break;
    absl::SleepFor(absl::Milliseconds(20));  // egressd ends it promptly
  }
  EXPECT_TRUE(again.ok()) << again.error_message();
}

TEST_F(FetchSafetyTest, RedirectsAndDecodingAreReported) {
  v1::FetchRequest request = Get(origin_->Url("/redirect?status=301&to=/gzip"));
  request.set_follow_redirects(true);
  request.set_decompress(true);
  v1::FetchResponse response;
  grpc::Status s = egressd_->Fetch(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.status_code(), 200);
  EXPECT_THAT(response.body(), HasSubstr("hello, gzip! hello, gzip!"));
  EXPECT_EQ(response.decoded_content_encoding(), "gzip");
  ASSERT_EQ(response.redirects_size(), 1);
  EXPECT_EQ(response.redirects(0).status_code(), 301);
  EXPECT_EQ(response.redirects(0).url(),
            origin_->Url("/redirect?status=301&to=/gzip"));
  EXPECT_EQ(response.final_url(), origin_->Url("/gzip"));
  for (const v1::Header& h : response.headers()) {
    EXPECT_NE(h.name(), "Content-Encoding");
  }

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  std::unique_ptr<grpc::ClientReader<v1::FetchStreamResponse>> reader =
      egressd_->fetcher().FetchStream(&context, request);
  v1::FetchStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));
  ASSERT_TRUE(message.has_head());
  EXPECT_EQ(message.head().status_code(), 200);
  EXPECT_EQ(message.head().final_url(), origin_->Url("/gzip"));
  EXPECT_EQ(message.head().redirects_size(), 1);
  EXPECT_EQ(message.head().decoded_content_encoding(), "gzip");
  std::string body;
  while (reader->Read(&message)) body += message.body_chunk();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(body, response.body());
}

TEST(FetchSafetyFlagsTest, ReadTimeoutFlags) {
  FaultOrigin origin;
  absl::StatusOr<std::unique_ptr<EgressdProcess>> egressd =
      EgressdProcess::Start(
          {"--first_byte_timeout=300ms", "--idle_read_timeout=300ms"});
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  v1::FetchResponse response;
  grpc::Status never = (*egressd)->Fetch(Get(origin.Url("/never")), &response);
  EXPECT_EQ(never.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(never.error_message(), HasSubstr("within 300ms"));
  grpc::Status stalled =
      (*egressd)->Fetch(Get(origin.Url("/slow-body?ms=2000")), &response);
  EXPECT_EQ(stalled.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(stalled.error_message(), HasSubstr("idle_read timeout"));
  // A request may ask for shorter, not longer.
  v1::FetchRequest longer = Get(origin.Url("/slow-head?ms=100"));
  longer.mutable_first_byte_timeout()->set_seconds(30);
  const absl::Time start = absl::Now();
  grpc::Status capped = (*egressd)->Fetch(longer, &response);
  EXPECT_EQ(capped.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace egress::testing
