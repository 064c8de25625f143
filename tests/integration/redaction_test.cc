// Secrets never leave egressd through its own outputs. Fetches through a
// live egressd to a real nginx carry an Authorization header, a Cookie and
// a ?token= query; nginx answers with a Set-Cookie. The test provokes
// errors (an invalid header, a refused connect) and a leak (a FetchStream
// caller that stops reading), then checks that none of the secret values
// appears in egressd's stderr log (the access log included), the gRPC error
// messages, ListLeaks, the WatchPoolEvents stream, /metrics or the page's
// /api/pool.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/raw_http.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kQuerySecret[] = "qsecret7f3a";
constexpr char kAuthSecret[] = "authsecret91c2";
constexpr char kProxyAuthSecret[] = "proxyauthsecret5d";
constexpr char kCookieSecret[] = "cookiesecret04be";
constexpr char kSetCookieSecret[] = "setcookiesecret88";

const char* const kSecrets[] = {kQuerySecret, kAuthSecret, kProxyAuthSecret,
                                kCookieSecret, kSetCookieSecret};

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// GET `path` from 127.0.0.1:`port`: the reply's headers and body, for the
// secret search ("" if there was no reply).
std::string HttpGet(int port, const std::string& path) {
  absl::StatusOr<RawHttpReply> reply = RawHttp(port, "GET", path);
  if (!reply.ok()) return "";
  std::string all;
  for (const auto& [name, value] : reply->headers) {
    absl::StrAppend(&all, name, ": ", value, "\n");
  }
  return all + reply->body;
}

void AddSecretHeaders(v1::FetchRequest* request) {
  for (const auto& [name, value] :
       {std::pair<std::string, std::string>{
            "Authorization", absl::StrCat("Bearer ", kAuthSecret)},
        {"Cookie", absl::StrCat("session=", kCookieSecret)}}) {
    v1::Header* header = request->add_headers();
    header->set_name(name);
    header->set_value(value);
  }
}

class RedactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NginxOptions options;
    options.files["big.bin"] = std::string(32 << 20, 'b');
    options.server_directives = absl::StrCat(
        "location = /cookie.txt {\n"
        "  add_header Set-Cookie \"sid=",
        kSetCookieSecret,
        "; HttpOnly\";\n"
        "  return 200 \"cookie set\\n\";\n"
        "}\n");
    auto nginx = NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);

    // egressd with its stderr in a file (EgressdProcess lets it through).
    stderr_path_ = MakeTempDir("redaction") + "/egressd.stderr";
    absl::StatusOr<Subprocess> process = Subprocess::Start(
        {RunfilePath("server/egressd"), "--listen=127.0.0.1:0",
         "--admin_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
         "--allow_cidr=127.0.0.0/8", "--leak_threshold=300ms",
         "--log_level=debug"},
        stderr_path_);
    ASSERT_TRUE(process.ok()) << process.status();
    egressd_ = std::make_unique<Subprocess>(*std::move(process));
    absl::StatusOr<std::string> ready =
        egressd_->ReadLineMatching("EGRESSD_READY", absl::Seconds(20));
    ASSERT_TRUE(ready.ok()) << ready.status() << "\n"
                            << ReadFileOrEmpty(stderr_path_);
    for (absl::string_view field : absl::StrSplit(*ready, ' ')) {
      if (absl::ConsumePrefix(&field, "listen=")) {
        listen_ = std::string(field);
      } else if (absl::ConsumePrefix(&field, "admin_listen=")) {
        admin_listen_ = std::string(field);
      } else if (absl::ConsumePrefix(&field, "metrics_listen=")) {
        metrics_port_ = std::stoi(std::string(
            field.substr(field.rfind(':') + 1)));
      }
    }
    grpc::ChannelArguments args;
    args.SetInt("grpc.http2.bdp_probe", 0);  // small windows: stalls soon
    args.SetMaxReceiveMessageSize(64 << 20);
    fetcher_ = v1::Fetcher::NewStub(grpc::CreateCustomChannel(
        listen_, grpc::InsecureChannelCredentials(), args));
    admin_ = v1::PoolAdmin::NewStub(
        grpc::CreateChannel(admin_listen_, grpc::InsecureChannelCredentials()));
  }

  grpc::Status Fetch(const v1::FetchRequest& request,
                     v1::FetchResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    return fetcher_->Fetch(&context, request, response);
  }

  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<Subprocess> egressd_;
  std::string stderr_path_;
  std::string listen_;
  std::string admin_listen_;
  int metrics_port_ = 0;
  std::unique_ptr<v1::Fetcher::Stub> fetcher_;
  std::unique_ptr<v1::PoolAdmin::Stub> admin_;
};

TEST_F(RedactionTest, NoSecretInLogsErrorsLeaksEventsOrMetrics) {
  // Every event from here on, read on the side.
  grpc::ClientContext watch_context;
  watch_context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(90));
  auto watch =
      admin_->WatchPoolEvents(&watch_context, v1::WatchPoolEventsRequest());
  watch->WaitForInitialMetadata();
  std::string outputs;  // everything egressd said, but stderr

  // 1. A Fetch that succeeds, with every secret, and a Set-Cookie reply.
  v1::FetchRequest ok = Get(
      nginx_->Url(absl::StrCat("/cookie.txt?token=", kQuerySecret, "&x=1")));
  AddSecretHeaders(&ok);
  v1::FetchResponse response;
  grpc::Status status = Fetch(ok, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.status_code(), 200);
  bool saw_set_cookie = false;
  for (const v1::Header& h : response.headers()) {
    saw_set_cookie |= absl::StrContains(h.value(), kSetCookieSecret);
  }
  EXPECT_TRUE(saw_set_cookie) << "the caller gets its own response whole";

  // 2. Errors: a header value egressd refuses, and a refused connect.
  v1::FetchRequest bad_header = ok;
  v1::Header* broken = bad_header.add_headers();
  broken->set_name("X-Broken");
  broken->set_value(absl::StrCat(kAuthSecret, "\r\nInjected: ", kAuthSecret));
  status = Fetch(bad_header, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  outputs += status.error_message() + "\n";

  // A caller's Proxy-Authorization is refused (issue 14); its value is in
  // no message or log.
  v1::FetchRequest proxy_auth = ok;
  v1::Header* proxy_header = proxy_auth.add_headers();
  proxy_header->set_name("Proxy-Authorization");
  proxy_header->set_value(absl::StrCat("Basic ", kProxyAuthSecret));
  status = Fetch(proxy_auth, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  outputs += status.error_message() + "\n";

  v1::FetchRequest refused = Get(absl::StrCat(
      "http://127.0.0.1:", PickFreePort(), "/x?token=", kQuerySecret));
  AddSecretHeaders(&refused);
  status = Fetch(refused, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  outputs += status.error_message() + "\n";

  v1::FetchRequest bad_url = Get(absl::StrCat(
      "http://user:", kQuerySecret, "@127.0.0.1/?token=", kQuerySecret));
  status = Fetch(bad_url, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  outputs += status.error_message() + "\n";

  // 3. A leak: a FetchStream whose caller stops reading.
  grpc::ClientContext stream_context;
  stream_context.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(60));
  v1::FetchRequest big = Get(
      nginx_->Url(absl::StrCat("/big.bin?token=", kQuerySecret)));
  AddSecretHeaders(&big);
  auto stream = fetcher_->FetchStream(&stream_context, big);
  v1::FetchStreamResponse head;
  ASSERT_TRUE(stream->Read(&head));
  ASSERT_TRUE(head.has_head());
  // The watch says when the leak is detected.
  bool leaked = false;
  v1::PoolEvent event;
  while (!leaked && watch->Read(&event)) {
    outputs += event.DebugString();
    leaked = event.kind() == v1::PoolEvent::LEAK_DETECTED;
  }
  ASSERT_TRUE(leaked);
  EXPECT_EQ(event.leak().url(), nginx_->Url("/big.bin"));

  grpc::ClientContext leaks_context;
  v1::ListLeaksResponse leaks;
  ASSERT_TRUE(
      admin_->ListLeaks(&leaks_context, v1::ListLeaksRequest(), &leaks).ok());
  ASSERT_EQ(leaks.leaks_size(), 1);
  outputs += leaks.DebugString();
  stream_context.TryCancel();
  stream->Finish();

  // 4. The admin surfaces over HTTP.
  const std::string metrics = HttpGet(metrics_port_, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("egressd_leaks_total 1"));
  outputs += metrics;
  outputs += HttpGet(metrics_port_, "/api/pool");

  // 5. Stop egressd: its log is flushed; the watch ends with the pool's
  // last events.
  ASSERT_EQ(kill(egressd_->pid(), SIGTERM), 0);
  while (watch->Read(&event)) outputs += event.DebugString();
  EXPECT_TRUE(watch->Finish().ok());
  absl::StatusOr<int> exit = egressd_->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  const std::string log = ReadFileOrEmpty(stderr_path_);

  // The log did record the calls, as JSON lines.
  EXPECT_THAT(log, HasSubstr("\"msg\":\"access\""));
  EXPECT_THAT(log, HasSubstr("\"path\":\"/cookie.txt\""));
  EXPECT_THAT(log, HasSubstr("\"path\":\"/big.bin\""));
  EXPECT_THAT(log, HasSubstr("\"grpc_code\":\"UNAVAILABLE\""));
  EXPECT_THAT(log, HasSubstr("\"grpc_code\":\"INVALID_ARGUMENT\""));
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(line, "{\"ts\":\"") &&
                absl::EndsWith(line, "}"))
        << "not a JSON log line: " << line;
  }
  EXPECT_THAT(outputs, HasSubstr("LEAK_DETECTED"));

  for (const char* secret : kSecrets) {
    EXPECT_THAT(log, Not(HasSubstr(secret))) << "stderr log has " << secret;
    EXPECT_THAT(outputs, Not(HasSubstr(secret)))
        << "an admin output or error has " << secret;
  }
}

}  // namespace
}  // namespace egress::testing
