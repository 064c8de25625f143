// egressd as a process with a configuration file: the file reaches the pool,
// a flag given on the command line beats it, --check_config prints the
// effective configuration without binding anything, fields egressd cannot act
// on stop start-up by name, and a configured admin token guards PoolAdmin.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/egressd_process.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "s3cret-admin-token-7f1c";

std::string WriteConfig(const std::string& yaml) {
  const std::string path = MakeTempDir("config") + "/egressd.yaml";
  EXPECT_TRUE(WriteFile(path, yaml).ok());
  return path;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs egressd with `args` to its end (it must exit by itself).
RunResult RunEgressd(const std::vector<std::string>& args) {
  const std::string err_path = MakeTempDir("egressd-err") + "/stderr";
  std::vector<std::string> argv = {RunfilePath("server/egressd")};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv, err_path);
  EXPECT_TRUE(process.ok()) << process.status();
  RunResult run;
  if (!process.ok()) return run;
  // Reads stdout to its end: no line holds this.
  process->ReadLineMatching("\x01never\x01", absl::Seconds(20)).IgnoreError();
  absl::StatusOr<int> status = process->Wait(absl::Seconds(20));
  EXPECT_TRUE(status.ok()) << status.status();
  if (status.ok() && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  run.out = process->output();
  run.err = ReadFileOrEmpty(err_path);
  return run;
}

// A TCP socket listening on 127.0.0.1, held for the test's duration.
class HeldPort {
 public:
  HeldPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_, 1), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~HeldPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(ConfigStartupTest, TheFileReachesThePoolAndAGivenFlagBeatsIt) {
  const std::string config = WriteConfig(R"(
pool:
  keep_alive: 11s
  max_idle_per_address: 3
  max_connections: 77
)");
  auto egressd = EgressdProcess::Start(
      {absl::StrCat("--config=", config), "--max_connections=78"});
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  absl::StatusOr<v1::PoolStats> stats = (*egressd)->PoolStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->config().keep_alive().seconds(), 11);
  EXPECT_EQ(stats->config().max_idle_per_address(), 3u);
  EXPECT_EQ(stats->config().max_connections(), 78u) << "the flag wins";
  EXPECT_EQ(stats->config().max_idle_connections(), 256u) << "default";
}

TEST(ConfigStartupTest, CheckConfigPrintsTheEffectiveConfigAndBindsNothing) {
  HeldPort busy;  // egressd could not listen here: check_config must not try
  const std::string config = WriteConfig(absl::StrCat(R"(
listeners:
  listen: 127.0.0.1:)", busy.port(), R"(
  metrics_listen: 0.0.0.0:9902
pool:
  keep_alive: 10s
egress:
  report_only: true
)"));
  RunResult run = RunEgressd({absl::StrCat("--check_config=", config),
                        "--max_connections=5", "--noegress_report_only"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, AllOf(HasSubstr("keep_alive: 10s"),
                             HasSubstr("max_connections: 5"),
                             HasSubstr("report_only: false"),
                             HasSubstr(absl::StrCat("127.0.0.1:", busy.port()))));
  EXPECT_THAT(run.out, Not(HasSubstr("EGRESSD_READY")));
  EXPECT_THAT(run.err, HasSubstr("warning: listeners.metrics_listen"));
}

TEST(ConfigStartupTest, LoggingComesFromTheFileAndTheFlagsBeatIt) {
  const std::string config =
      WriteConfig("logging:\n  level: debug\n  access_log: false\n");
  RunResult run = RunEgressd({absl::StrCat("--check_config=", config)});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out,
              AllOf(HasSubstr("level: debug"), HasSubstr("access_log: false")));
  run = RunEgressd({absl::StrCat("--check_config=", config),
                    "--log_level=warning", "--access_log"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, AllOf(HasSubstr("level: warning"),
                             HasSubstr("access_log: true")));
}

TEST(ConfigStartupTest, ABadOrUnsupportedConfigurationStopsStartUpByName) {
  struct Case {
    std::string yaml;
    std::vector<std::string> flags;
    std::string expected;
  };
  const Case cases[] = {
      {"pool:\n  keep_alive: abc\n", {}, "pool.keep_alive"},
      {"pools: {}\n", {}, "pools"},
      {"tls:\n  default:\n    protocol: h3\n", {}, "tls.default.protocol"},
      {"proxy:\n  default_via: [nowhere]\n", {}, "proxy.default_via"},
      {"logging:\n  level: verbose\n", {}, "logging.level"},
      {"", {"--log_level=loud"}, "--log_level (logging.level)"},
      {"limits:\n  max_request_body_bytes: 0\n", {},
       "limits.max_request_body_bytes"},
      // A host allow-list is acted on; a malformed entry still stops start-up.
      {"egress:\n  allow_hosts: ['*.example.com']\n", {}, "egress.allow_hosts"},
      {"", {"--admin_listen=0.0.0.0:0"}, "listeners.admin_token"},
      // A listener's name must resolve, also for --check_config.
      {"", {"--metrics_listen=no-such-host.invalid:0"},
       "cannot resolve 'no-such-host.invalid'"},
      {"listeners:\n  admin_listen: no-such-host.invalid:0\n", {},
       "listeners.admin_listen"},
      {"", {"--keep_alive=0s"}, "--keep_alive (pool.keep_alive)"},
  };
  for (const Case& c : cases) {
    const std::string config = WriteConfig(c.yaml);
    for (const char* mode : {"--config=", "--check_config="}) {
      std::vector<std::string> args = {absl::StrCat(mode, config),
                                       "--listen=127.0.0.1:0"};
      args.insert(args.end(), c.flags.begin(), c.flags.end());
      RunResult run = RunEgressd(args);
      EXPECT_EQ(run.exit_code, 1) << mode << c.yaml;
      EXPECT_THAT(run.err, HasSubstr(c.expected)) << mode << c.yaml;
      EXPECT_THAT(run.out, Not(HasSubstr("EGRESSD_READY")));
    }
  }
  RunResult missing = RunEgressd({"--config=/nonexistent/egressd.yaml"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/egressd.yaml"));
}

grpc::Status GetPoolStats(EgressdProcess& egressd, const std::string& token) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", token);
  v1::PoolStats stats;
  return egressd.admin().GetPoolStats(&context, v1::GetPoolStatsRequest(),
                                      &stats);
}

TEST(ConfigStartupTest, AConfiguredAdminTokenGuardsPoolAdmin) {
  const std::string dir = MakeTempDir("secrets");
  // A mounted Secret's file usually ends with a newline; it is dropped.
  ASSERT_TRUE(WriteFile(dir + "/admin-token", absl::StrCat(kToken, "\n")).ok());
  const std::string config = WriteConfig(absl::StrCat(
      "listeners:\n  admin_token_file: ", dir, "/admin-token\n"));
  auto egressd = EgressdProcess::Start({absl::StrCat("--config=", config)});
  ASSERT_TRUE(egressd.ok()) << egressd.status();

  grpc::Status status = GetPoolStats(**egressd, "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("authorization: Bearer"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr(kToken)));
  EXPECT_EQ(GetPoolStats(**egressd, "Bearer wrong-token").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetPoolStats(**egressd, kToken).error_code(),
            grpc::StatusCode::UNAUTHENTICATED)
      << "the scheme is required";
  status = GetPoolStats(**egressd, absl::StrCat("Bearer ", kToken));
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Fetch is not behind the token.
  v1::FetchResponse response;
  status = (*egressd)->Fetch(
      Get(absl::StrCat("http://127.0.0.1:", PickFreePort(), "/")), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

}  // namespace
}  // namespace egress::testing
