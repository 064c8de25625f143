// Issue 14: who can reach egressd's listeners, and what reaches egressd
// through them. A listener is judged on the address it binds, not on how its
// host is spelled: egressd runs here in a private mount namespace whose
// /etc/hosts maps names the test chooses ("127.attacker.example" to
// 0.0.0.0), as a hostile DNS or hosts file would. An over-limit request body
// reaches egressd's own limit, whatever its size.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/proto/health.grpc.pb.h"
#include "tests/proto/reflection.grpc.pb.h"
#include "tests/support/raw_http.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "exposure-admin-token-41d9";
// The hosts file egressd sees. 127.attacker.example looks like loopback and
// binds every interface; admin.egressd.test is a name for real loopback.
constexpr char kHosts[] =
    "127.0.0.1 localhost\n"
    "0.0.0.0 127.attacker.example\n"
    "127.0.0.1 admin.egressd.test\n";

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// `argv` run with /etc/hosts replaced by kHosts, in a user and mount
// namespace of its own (nothing outside the process sees the file). The
// command is exec'd, so its PID is the one started.
std::vector<std::string> WithHosts(const std::vector<std::string>& argv) {
  static const std::string* hosts = [] {
    auto* path = new std::string(MakeTempDir("hosts") + "/hosts");
    EXPECT_TRUE(WriteFile(*path, kHosts).ok());
    return path;
  }();
  std::vector<std::string> wrapped = {
      "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/sh",
      "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\"", *hosts};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

// Whether this machine lets the test give a process its own /etc/hosts.
bool PrivateHostsWork() {
  static const bool works = [] {
    const std::string err = MakeTempDir("probe") + "/stderr";
    absl::StatusOr<Subprocess> probe = Subprocess::Start(
        WithHosts({"/usr/bin/getent", "hosts", "127.attacker.example"}), err);
    if (!probe.ok()) return false;
    absl::StatusOr<std::string> line =
        probe->ReadLineMatching("127.attacker.example", absl::Seconds(10));
    probe->Wait(absl::Seconds(10)).IgnoreError();
    if (!line.ok() || !absl::StartsWith(*line, "0.0.0.0")) {
      std::fprintf(stderr, "private /etc/hosts: %s\n%s\n",
                   line.ok() ? line->c_str()
                             : std::string(line.status().message()).c_str(),
                   ReadFileOrEmpty(err).c_str());
      return false;
    }
    return true;
  }();
  return works;
}

#define SKIP_WITHOUT_PRIVATE_HOSTS()                                         \
  do {                                                                       \
    if (!PrivateHostsWork()) {                                               \
      std::fprintf(stderr,                                                   \
                   "SKIP: no user+mount namespace for a private /etc/hosts; " \
                   "names were NOT tested\n");                               \
      GTEST_SKIP() << "unshare --user --mount does not work here";           \
    }                                                                        \
  } while (0)

std::string WriteConfig(const std::string& yaml) {
  const std::string path = MakeTempDir("config") + "/egressd.yaml";
  EXPECT_TRUE(WriteFile(path, yaml).ok());
  return path;
}

// egressd started under WithHosts, either serving (its EGRESSD_READY fields
// parsed) or exited (its status and stderr).
struct Egressd {
  std::unique_ptr<Subprocess> process;
  bool ready = false;
  std::string listen, admin_listen, metrics_listen, health_listen;
  int exit_code = -1;
  std::string err;
  std::string err_path;  // egressd's stderr: its log lines

  // "127.0.0.1:PORT" for a field "ADDRESS:PORT": reaches a loopback or a
  // wildcard listener alike.
  static std::string OnLoopback(const std::string& field) {
    return absl::StrCat("127.0.0.1:", field.substr(field.rfind(':') + 1));
  }
};

// egressd with `flags` (after --listen=127.0.0.1:0 and, unless `flags` has
// its own, --metrics_listen=off), under WithHosts when `private_hosts`.
Egressd StartEgressd(const std::vector<std::string>& flags,
                     bool private_hosts = true) {
  std::vector<std::string> argv = {RunfilePath("server/egressd"),
                                   "--listen=127.0.0.1:0"};
  if (!std::any_of(flags.begin(), flags.end(), [](const std::string& f) {
        return absl::StartsWith(f, "--metrics_listen");
      })) {
    argv.push_back("--metrics_listen=off");
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  Egressd e;
  const std::string err_path = MakeTempDir("egressd") + "/stderr";
  e.err_path = err_path;
  absl::StatusOr<Subprocess> process =
      Subprocess::Start(private_hosts ? WithHosts(argv) : argv, err_path);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return e;
  e.process = std::make_unique<Subprocess>(*std::move(process));
  absl::StatusOr<std::string> ready =
      e.process->ReadLineMatching("EGRESSD_READY", absl::Seconds(20));
  if (ready.ok()) {
    e.ready = true;
    for (absl::string_view field : absl::StrSplit(*ready, ' ')) {
      for (auto [prefix, out] :
           {std::pair{"listen=", &e.listen},
            std::pair{"admin_listen=", &e.admin_listen},
            std::pair{"metrics_listen=", &e.metrics_listen},
            std::pair{"health_listen=", &e.health_listen}}) {
        if (absl::ConsumePrefix(&field, prefix)) *out = std::string(field);
      }
    }
    return e;
  }
  absl::StatusOr<int> status = e.process->Wait(absl::Seconds(20));
  EXPECT_TRUE(status.ok()) << status.status();
  if (status.ok() && WIFEXITED(*status)) e.exit_code = WEXITSTATUS(*status);
  e.err = ReadFileOrEmpty(err_path);
  return e;
}

grpc::Status GetPoolStats(const std::string& target, const std::string& token) {
  auto admin = v1::PoolAdmin::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (!token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  v1::PoolStats stats;
  return admin->GetPoolStats(&context, v1::GetPoolStatsRequest(), &stats);
}

TEST(AdminListenTest, ANameThatBindsEveryInterfaceNeedsTheToken) {
  SKIP_WITHOUT_PRIVATE_HOSTS();
  Egressd e = StartEgressd({"--admin_listen=127.attacker.example:0"});
  if (e.ready) {
    ADD_FAILURE() << "egressd serves PoolAdmin on " << e.admin_listen
                  << " without a token; GetPoolStats without one: "
                  << GetPoolStats(Egressd::OnLoopback(e.admin_listen), "")
                         .error_code();
    return;
  }
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_THAT(e.err, HasSubstr("listeners.admin_token: required because "
                               "listeners.admin_listen "
                               "(127.attacker.example:0) binds 0.0.0.0"));
}

TEST(AdminListenTest, CheckConfigJudgesTheNameByItsAddress) {
  SKIP_WITHOUT_PRIVATE_HOSTS();
  const std::string config =
      WriteConfig("listeners:\n  admin_listen: 127.attacker.example:9901\n");
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{RunfilePath("server/egressd"),
                                 absl::StrCat("--check_config=", config)},
        std::vector<std::string>{RunfilePath("server/config/check_config"),
                                 config}}) {
    SCOPED_TRACE(argv[0]);
    const std::string err_path = MakeTempDir("check") + "/stderr";
    absl::StatusOr<Subprocess> process =
        Subprocess::Start(WithHosts(argv), err_path);
    ASSERT_TRUE(process.ok()) << process.status();
    process->ReadLineMatching("\x01never\x01", absl::Seconds(20)).IgnoreError();
    absl::StatusOr<int> status = process->Wait(absl::Seconds(20));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 1) << process->output();
    EXPECT_THAT(ReadFileOrEmpty(err_path),
                HasSubstr("listeners.admin_token: required because "
                          "listeners.admin_listen (127.attacker.example:9901) "
                          "binds 0.0.0.0"));
  }
}

TEST(AdminListenTest, WithTheTokenTheWildcardNameServesOnlyWithIt) {
  SKIP_WITHOUT_PRIVATE_HOSTS();
  const std::string config = WriteConfig(absl::StrCat(
      "listeners:\n  admin_listen: 127.attacker.example:0\n  admin_token: ",
      kToken, "\n"));
  Egressd e = StartEgressd({absl::StrCat("--config=", config)});
  ASSERT_TRUE(e.ready) << e.err;
  EXPECT_TRUE(absl::StartsWith(e.admin_listen, "0.0.0.0:"))
      << "the ready line shows the address bound: " << e.admin_listen;
  const std::string target = Egressd::OnLoopback(e.admin_listen);
  EXPECT_EQ(GetPoolStats(target, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetPoolStats(target, kToken).ok());
}

TEST(AdminListenTest, ANameForLoopbackNeedsNoToken) {
  SKIP_WITHOUT_PRIVATE_HOSTS();
  Egressd e = StartEgressd({"--admin_listen=admin.egressd.test:0"});
  ASSERT_TRUE(e.ready) << e.err;
  EXPECT_TRUE(absl::StartsWith(e.admin_listen, "127.0.0.1:")) << e.admin_listen;
  EXPECT_TRUE(GetPoolStats(e.admin_listen, "").ok());
}

int PortOf(const std::string& field) {
  return std::stoi(field.substr(field.rfind(':') + 1));
}

// GET `path` on 127.0.0.1:`port` with the Host header `host` and, when not
// empty, `authorization`.
RawHttpReply Get(int port, const std::string& path, const std::string& host,
                 const std::string& authorization = "") {
  std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\n");
  if (!authorization.empty()) {
    absl::StrAppend(&request, "Authorization: ", authorization, "\r\n");
  }
  absl::StrAppend(&request, "Connection: close\r\n\r\n");
  absl::StatusOr<RawHttpReply> reply = RawHttpExchange(port, request);
  EXPECT_TRUE(reply.ok()) << reply.status();
  return reply.ok() ? *reply : RawHttpReply{};
}

TEST(PoolPageTest, OffLoopbackWithoutATokenOnlyMetricsAnswer) {
  Egressd e = StartEgressd({"--metrics_listen=0.0.0.0:0"},
                           /*private_hosts=*/false);
  ASSERT_TRUE(e.ready) << e.err;
  const int port = PortOf(e.metrics_listen);
  const std::string host = absl::StrCat("127.0.0.1:", port);
  EXPECT_EQ(Get(port, "/metrics", host).status, 200);
  for (const char* path : {"/", "/index.html", "/api/pool"}) {
    SCOPED_TRACE(path);
    RawHttpReply reply = Get(port, path, host);
    EXPECT_EQ(reply.status, 403);
    EXPECT_THAT(reply.body.substr(0, 200), HasSubstr("listeners.admin_token"));
  }
}

TEST(PoolPageTest, OffLoopbackTheTokenOpensItAsBearerOrBrowserPassword) {
  const std::string config =
      WriteConfig(absl::StrCat("listeners:\n  admin_token: ", kToken, "\n"));
  Egressd e = StartEgressd(
      {absl::StrCat("--config=", config), "--metrics_listen=0.0.0.0:0"},
      /*private_hosts=*/false);
  ASSERT_TRUE(e.ready) << e.err;
  const int port = PortOf(e.metrics_listen);
  const std::string host = absl::StrCat("127.0.0.1:", port);
  EXPECT_EQ(Get(port, "/metrics", host).status, 200);

  RawHttpReply ask = Get(port, "/", host);
  EXPECT_EQ(ask.status, 401);
  EXPECT_THAT(ask.headers["www-authenticate"], HasSubstr("Basic realm="));
  EXPECT_EQ(Get(port, "/", host, "Bearer wrong").status, 401);
  EXPECT_EQ(Get(port, "/", host,
                absl::StrCat("Basic ", absl::Base64Escape("me:wrong")))
                .status,
            401);

  EXPECT_EQ(Get(port, "/", host,
                absl::StrCat("Basic ", absl::Base64Escape(
                                           absl::StrCat("me:", kToken))))
                .status,
            200);
  RawHttpReply json =
      Get(port, "/api/pool", host, absl::StrCat("Bearer ", kToken));
  EXPECT_EQ(json.status, 200);
  EXPECT_THAT(json.body, HasSubstr("\"connections\""));
}

TEST(PoolPageTest, ANameThatBindsEveryInterfaceIsOffLoopback) {
  SKIP_WITHOUT_PRIVATE_HOSTS();
  Egressd e = StartEgressd({"--metrics_listen=127.attacker.example:0"});
  ASSERT_TRUE(e.ready) << e.err;
  EXPECT_TRUE(absl::StartsWith(e.metrics_listen, "0.0.0.0:"))
      << e.metrics_listen;
  const int port = PortOf(e.metrics_listen);
  EXPECT_EQ(Get(port, "/api/pool", "127.attacker.example").status, 403);
  EXPECT_EQ(Get(port, "/metrics", "127.attacker.example").status, 200);
}

TEST(PoolPageTest, TheHostHeaderMustNameTheListener) {
  const std::string config = WriteConfig(
      "listeners:\n  metrics_allowed_hosts: [Egressd.Example.com]\n");
  Egressd e = StartEgressd(
      {absl::StrCat("--config=", config), "--metrics_listen=127.0.0.1:0"},
      /*private_hosts=*/false);
  ASSERT_TRUE(e.ready) << e.err;
  const int port = PortOf(e.metrics_listen);
  // On loopback the page needs no token, but a rebound name is refused.
  for (const char* path : {"/", "/api/pool", "/metrics"}) {
    SCOPED_TRACE(path);
    RawHttpReply rebound = Get(port, path, "attacker.example");
    EXPECT_EQ(rebound.status, 403);
    EXPECT_THAT(rebound.body.substr(0, 200),
                HasSubstr("does not name this listener"));
    EXPECT_EQ(Get(port, path, absl::StrCat("attacker.example:", port)).status,
              403);
    EXPECT_EQ(Get(port, path, "10.9.9.9").status, 403) << "not this address";
    for (const std::string& host :
         {absl::StrCat("127.0.0.1:", port), std::string("127.0.0.1"),
          std::string("localhost:8080"), std::string("LOCALHOST"),
          std::string("egressd.example.com:443")}) {
      EXPECT_EQ(Get(port, path, host).status, 200) << host;
    }
  }
  absl::StatusOr<RawHttpReply> no_host = RawHttpExchange(
      port, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(no_host.ok()) << no_host.status();
  EXPECT_EQ(no_host->status, 400);
}

std::chrono::system_clock::time_point In(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

TEST(HealthListenTest, ServesHealthAndNothingElse) {
  Egressd e = StartEgressd({"--health_listen=127.0.0.1:0"},
                           /*private_hosts=*/false);
  ASSERT_TRUE(e.ready) << e.err;
  ASSERT_TRUE(absl::StartsWith(e.health_listen, "127.0.0.1:"))
      << "the ready line names the health listener: " << e.health_listen;
  auto channel =
      grpc::CreateChannel(e.health_listen, grpc::InsecureChannelCredentials());

  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const char* service : {"", "egress.v1.Fetcher"}) {
    SCOPED_TRACE(service);
    grpc::ClientContext context;
    context.set_deadline(In(10));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }

  // Not an egress proxy: Fetch, PoolAdmin and reflection are not here.
  {
    auto fetcher = v1::Fetcher::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(In(10));
    v1::FetchRequest request;
    request.set_method("GET");
    request.set_url("http://127.0.0.1:1/");
    v1::FetchResponse response;
    EXPECT_EQ(fetcher->Fetch(&context, request, &response).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  EXPECT_EQ(GetPoolStats(e.health_listen, "").error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  {
    auto reflection =
        grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(In(10));
    auto stream = reflection->ServerReflectionInfo(&context);
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("");
    stream->Write(request);
    stream->WritesDone();
    grpc::reflection::v1alpha::ServerReflectionResponse response;
    while (stream->Read(&response)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }

  // The Fetch listener still serves health too (probes of older manifests).
  auto fetch_health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(e.listen, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(In(10));
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(fetch_health
                  ->Check(&context, grpc::health::v1::HealthCheckRequest(),
                          &response)
                  .ok());
}

// The request limits' safety-event count in /metrics.
int RejectedRequestLimits(int metrics_port) {
  RawHttpReply metrics = Get(metrics_port, "/metrics",
                             absl::StrCat("127.0.0.1:", metrics_port));
  const std::string kSample =
      "egressd_safety_events_total{event=\"rejected_request_limits\"} ";
  const size_t at = metrics.body.find(kSample);
  if (at == std::string::npos) return -1;
  return std::stoi(metrics.body.substr(at + kSample.size()));
}

TEST(RequestBodyLimitTest, EveryOverLimitBodyGetsEgressdsMessageAndIsCounted) {
  Egressd e = StartEgressd({"--max_request_body_bytes=1048576",
                            "--metrics_listen=127.0.0.1:0"},
                           /*private_hosts=*/false);
  ASSERT_TRUE(e.ready) << e.err;
  const int metrics_port = PortOf(e.metrics_listen);
  const int rejected_before = RejectedRequestLimits(metrics_port);
  ASSERT_GE(rejected_before, 0);
  auto fetcher = v1::Fetcher::NewStub(
      grpc::CreateChannel(e.listen, grpc::InsecureChannelCredentials()));
  // Just over the limit, past the limit and its URL and header allowance
  // (gRPC's receive limit until now), and far past it.
  const int sizes[] = {(1 << 20) + 1, (1 << 20) + (512 << 10), 8 << 20};
  for (int size : sizes) {
    SCOPED_TRACE(size);
    v1::FetchRequest request;
    request.set_method("POST");
    request.set_url("http://127.0.0.1:1/upload");
    request.set_body(std::string(size, 'b'));
    grpc::ClientContext context;
    context.set_deadline(In(20));
    v1::FetchResponse response;
    grpc::Status status = fetcher->Fetch(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(status.error_message(),
              absl::StrCat("request body is ", size,
                           " bytes, over the limit of 1048576 "
                           "(max_request_body_bytes)"));
  }
  EXPECT_EQ(RejectedRequestLimits(metrics_port),
            rejected_before + static_cast<int>(std::size(sizes)));
  // One access log line per call, naming the status; all written once
  // egressd has stopped (it flushes its log on the way out).
  absl::StatusOr<int> stopped = e.process->Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  const std::string log = ReadFileOrEmpty(e.err_path);
  int logged = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "/upload") &&
        absl::StrContains(line, "RESOURCE_EXHAUSTED")) {
      ++logged;
    }
  }
  EXPECT_EQ(logged, static_cast<int>(std::size(sizes))) << log.substr(0, 4000);
}

TEST(HealthListenTest, SharesNoPortWithAnotherListener) {
  Egressd e = StartEgressd(
      {"--listen=127.0.0.1:7455", "--health_listen=0.0.0.0:7455"},
      /*private_hosts=*/false);
  ASSERT_FALSE(e.ready);
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_THAT(e.err, HasSubstr("listeners.health_listen: 0.0.0.0:7455 is the "
                               "same port as listeners.listen"));
}

}  // namespace
}  // namespace egress::testing
