// egressctl as a process against a live egressd with a real nginx behind it:
// conns (table and --json), evict, drain, leaks, pool and watch with exit
// codes and output, the admin token, and the hint when nothing listens.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kToken[] = "ctl-admin-token-93ab";

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// Runs egressctl with `args` to its end.
RunResult RunEgressctl(const std::vector<std::string>& args) {
  const std::string err_path = MakeTempDir("egressctl-err") + "/stderr";
  std::vector<std::string> argv = {RunfilePath("server/egressctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv, err_path);
  EXPECT_TRUE(process.ok()) << process.status();
  RunResult run;
  if (!process.ok()) return run;
  // No line matches: this reads stdout until egressctl closes it.
  (void)process->ReadLineMatching("\x01never\x01", absl::Seconds(30));
  run.out = process->output();
  absl::StatusOr<int> status = process->Wait(absl::Seconds(10));
  EXPECT_TRUE(status.ok()) << status.status();
  if (status.ok() && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  run.err = ReadFileOrEmpty(err_path);
  return run;
}

class EgressctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One nginx on two ports: two pool addresses.
    second_port_ = PickFreePort();
    NginxOptions options;
    options.server_directives =
        absl::StrCat("listen 127.0.0.1:", second_port_, ";\n");
    auto nginx = NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
  }

  void StartEgressd(const std::vector<std::string>& flags = {}) {
    auto egressd = EgressdProcess::Start(flags);
    ASSERT_TRUE(egressd.ok()) << egressd.status();
    egressd_ = *std::move(egressd);
  }

  std::string SecondUrl() const {
    return absl::StrCat("http://127.0.0.1:", second_port_, "/hello.txt");
  }
  std::string FirstAddress() const {
    return absl::StrCat("http://127.0.0.1:", nginx_->port());
  }

  // Fetches `url` and returns the id of the connection it used.
  uint64_t FetchConnectionId(const std::string& url) {
    v1::FetchResponse response;
    const grpc::Status status = egressd_->Fetch(Get(url), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status_code(), 200);
    return response.connection().id();
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(),
                absl::StrCat("--admin=", egressd_->admin_listen()));
    return RunEgressctl(args);
  }

  int second_port_ = 0;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<EgressdProcess> egressd_;
};

TEST_F(EgressctlTest, ConnsEvictDrainLeaks) {
  StartEgressd();
  const uint64_t first = FetchConnectionId(nginx_->Url("/hello.txt"));
  const uint64_t second = FetchConnectionId(SecondUrl());
  ASSERT_NE(first, second);

  RunResult conns = Ctl({"conns"});
  EXPECT_EQ(conns.exit_code, 0) << conns.err;
  EXPECT_THAT(conns.err, IsEmpty());
  EXPECT_THAT(conns.out,
              AllOf(HasSubstr("ID  ADDRESS"), HasSubstr("NO NEW EXCHANGES"),
                    HasSubstr(absl::StrCat(first, "  ", FirstAddress()))));
  EXPECT_THAT(conns.out,
              HasSubstr(absl::StrCat(second, "  http://127.0.0.1:",
                                     second_port_)));
  EXPECT_THAT(conns.out, HasSubstr(" idle "));

  RunResult filtered =
      Ctl({"conns", absl::StrCat("--address=", FirstAddress())});
  EXPECT_EQ(filtered.exit_code, 0) << filtered.err;
  EXPECT_THAT(filtered.out, HasSubstr(FirstAddress()));
  EXPECT_THAT(filtered.out,
              Not(HasSubstr(absl::StrCat(":", second_port_, " "))));

  RunResult json = Ctl({"--json", "conns"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out,
              AllOf(HasSubstr(absl::StrCat("\"id\": \"", first, "\"")),
                    HasSubstr(absl::StrCat("\"id\": \"", second, "\"")),
                    HasSubstr("\"end\": true")));

  RunResult bad_address = Ctl({"conns", "--address=not an address"});
  EXPECT_EQ(bad_address.exit_code, 1);
  EXPECT_THAT(bad_address.err,
              HasSubstr("conns failed: INVALID_ARGUMENT"));

  RunResult evict_one = Ctl({"evict", FirstAddress()});
  EXPECT_EQ(evict_one.exit_code, 0) << evict_one.err;
  EXPECT_EQ(evict_one.out, "evicted 1 idle connection(s)\n");
  RunResult evict_all = Ctl({"--json", "evict"});
  EXPECT_EQ(evict_all.exit_code, 0) << evict_all.err;
  EXPECT_THAT(evict_all.out, HasSubstr("\"evicted\": 1"));
  RunResult empty = Ctl({"conns"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "no open connections\n");

  FetchConnectionId(SecondUrl());
  RunResult drain = Ctl({"drain"});
  EXPECT_EQ(drain.exit_code, 0) << drain.err;
  EXPECT_EQ(drain.out, "marked 1 connection(s) to close when idle\n");
  RunResult drain_json = Ctl({"drain", "--json"});
  EXPECT_EQ(drain_json.exit_code, 0) << drain_json.err;
  EXPECT_THAT(drain_json.out, HasSubstr("\"marked\": 0"));

  RunResult leaks = Ctl({"leaks"});
  EXPECT_EQ(leaks.exit_code, 0) << leaks.err;
  EXPECT_EQ(leaks.out, "no leaks detected since start\n");
  RunResult leaks_json = Ctl({"--json", "leaks"});
  EXPECT_EQ(leaks_json.exit_code, 0) << leaks_json.err;
  EXPECT_THAT(leaks_json.out, HasSubstr("\"total\": \"0\""));

  RunResult pool = Ctl({"pool"});
  EXPECT_EQ(pool.exit_code, 0) << pool.err;
  EXPECT_THAT(pool.out,
              AllOf(HasSubstr("0 connecting, 3 opened since start"),
                    HasSubstr("requests: 0 in flight (0 pending)"),
                    HasSubstr("evict_request"), HasSubstr("drain")));
}

// Starts `egressctl ARGS...` and leaves it running (stdout read line by
// line; stderr into `*err_path`).
std::unique_ptr<Subprocess> StartEgressctl(const std::vector<std::string>& args,
                                           std::string* err_path) {
  *err_path = MakeTempDir("egressctl-watch") + "/stderr";
  std::vector<std::string> argv = {RunfilePath("server/egressctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv, *err_path);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return nullptr;
  return std::make_unique<Subprocess>(*std::move(process));
}

TEST_F(EgressctlTest, WatchPrintsOneAlignedLinePerEventUntilCtrlC) {
  StartEgressd();
  std::string err_path;
  std::unique_ptr<Subprocess> watch = StartEgressctl(
      {absl::StrCat("--admin=", egressd_->admin_listen()), "watch"},
      &err_path);
  ASSERT_NE(watch, nullptr);
  // The header comes once the watch is in place.
  absl::StatusOr<std::string> header =
      watch->ReadLineMatching("TIME", absl::Seconds(20));
  ASSERT_TRUE(header.ok()) << header.status() << ReadFileOrEmpty(err_path);
  EXPECT_THAT(*header, AllOf(HasSubstr("EVENT"), HasSubstr("CONN"),
                             HasSubstr("ADDRESS"), HasSubstr("DETAIL")));

  const uint64_t id = FetchConnectionId(nginx_->Url("/hello.txt"));
  const std::string conn = absl::StrCat(" ", id, "  ", FirstAddress());
  const auto expect_line = [&](const std::string& event,
                               const std::string& detail) {
    absl::StatusOr<std::string> line =
        watch->ReadLineMatching(absl::StrCat("  ", event, " "),
                                absl::Seconds(10));
    ASSERT_TRUE(line.ok()) << event << ": " << line.status();
    EXPECT_THAT(*line, HasSubstr(conn)) << *line;
    EXPECT_TRUE(absl::EndsWith(*line, detail)) << *line;
    // Columns line up under the header.
    EXPECT_EQ(line->find(FirstAddress()), header->find("ADDRESS")) << *line;
  };
  expect_line("opened", "-");
  expect_line("acquired", "new");
  expect_line("released", "completed");
  expect_line("idle", "-");
  RunResult evict = Ctl({"evict"});
  ASSERT_EQ(evict.exit_code, 0) << evict.err;
  expect_line("closed", "evict_request");

  absl::StatusOr<int> exit = watch->Stop(SIGINT, absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0)
      << "Ctrl-C ends a watch cleanly: " << *exit;
  EXPECT_EQ(ReadFileOrEmpty(err_path), "");
}

TEST_F(EgressctlTest, WatchJsonIsOneObjectPerLineForOneAddress) {
  StartEgressd();
  std::string err_path;
  std::unique_ptr<Subprocess> watch = StartEgressctl(
      {absl::StrCat("--admin=", egressd_->admin_listen()), "--json", "watch",
       absl::StrCat("--address=", FirstAddress())},
      &err_path);
  ASSERT_NE(watch, nullptr);
  // No header in JSON: Fetch until the watch reports (each Fetch makes
  // events, and those before the watch was in place are simply not seen).
  absl::StatusOr<std::string> first;
  for (int i = 0; i < 50; ++i) {
    FetchConnectionId(nginx_->Url("/hello.txt"));
    first = watch->ReadLineMatching("\"kind\"", absl::Milliseconds(200));
    if (first.ok()) break;
  }
  ASSERT_TRUE(first.ok()) << first.status() << ReadFileOrEmpty(err_path);
  EXPECT_TRUE(absl::StartsWith(*first, "{") && absl::EndsWith(*first, "}"))
      << *first;
  EXPECT_THAT(*first,
              HasSubstr(absl::StrCat("\"address\":\"", FirstAddress(), "\"")));

  FetchConnectionId(SecondUrl());  // another address: filtered out
  RunResult evict = Ctl({"evict"});
  ASSERT_EQ(evict.exit_code, 0) << evict.err;
  absl::StatusOr<std::string> closed =
      watch->ReadLineMatching("evict_request", absl::Seconds(10));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_THAT(*closed, AllOf(HasSubstr("\"kind\":\"CLOSED\""),
                             HasSubstr("\"lost\":\"0\"")));
  EXPECT_THAT(watch->output(),
              Not(HasSubstr(absl::StrCat(":", second_port_, "\""))));

  absl::StatusOr<int> exit = watch->Stop(SIGTERM, absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
}

TEST_F(EgressctlTest, WatchEndsWhenEgressdStops) {
  StartEgressd();
  std::string err_path;
  std::unique_ptr<Subprocess> watch = StartEgressctl(
      {absl::StrCat("--admin=", egressd_->admin_listen()), "watch"},
      &err_path);
  ASSERT_NE(watch, nullptr);
  ASSERT_TRUE(watch->ReadLineMatching("TIME", absl::Seconds(20)).ok());
  ASSERT_TRUE(egressd_->process().Stop(SIGTERM, absl::Seconds(30)).ok());
  absl::StatusOr<int> exit = watch->Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
  EXPECT_THAT(ReadFileOrEmpty(err_path), HasSubstr("shutting down"));
}

TEST_F(EgressctlTest, AdminToken) {
  const std::string dir = MakeTempDir("secrets");
  const std::string token_path = dir + "/admin-token";
  ASSERT_TRUE(WriteFile(token_path, absl::StrCat(kToken, "\n")).ok());
  const std::string config = dir + "/egressd.yaml";
  ASSERT_TRUE(WriteFile(config, absl::StrCat("listeners:\n  admin_token_file: ",
                                             token_path, "\n"))
                  .ok());
  StartEgressd({absl::StrCat("--config=", config)});

  RunResult without = Ctl({"conns"});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.err, AllOf(HasSubstr("conns failed: UNAUTHENTICATED"),
                                 HasSubstr("--admin_token_file")));

  RunResult watch_without = Ctl({"watch"});
  EXPECT_EQ(watch_without.exit_code, 1);
  EXPECT_THAT(watch_without.err, HasSubstr("watch failed: UNAUTHENTICATED"));
  EXPECT_THAT(watch_without.out, IsEmpty());

  const std::string flag = absl::StrCat("--admin_token_file=", token_path);
  for (const char* command : {"pool", "conns", "leaks", "evict", "drain"}) {
    RunResult with = Ctl({flag, command});
    EXPECT_EQ(with.exit_code, 0) << command << ": " << with.err;
    EXPECT_THAT(with.out + with.err, Not(HasSubstr(kToken))) << command;
  }

  const std::string wrong_path = dir + "/wrong-token";
  ASSERT_TRUE(WriteFile(wrong_path, "not-the-token\n").ok());
  RunResult wrong = Ctl({absl::StrCat("--admin_token_file=", wrong_path),
                         "pool"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(wrong.err, Not(HasSubstr("not-the-token")));

  RunResult missing =
      Ctl({"--admin_token_file=/nonexistent/egressctl/token", "pool"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/egressctl/token"));
  EXPECT_THAT(missing.out, IsEmpty());
}

TEST(EgressctlNoServerTest, NothingListening) {
  const std::string admin = absl::StrCat("127.0.0.1:", PickFreePort());
  for (const char* command :
       {"pool", "conns", "leaks", "evict", "drain", "watch"}) {
    RunResult run = RunEgressctl(
        {absl::StrCat("--admin=", admin), "--timeout=10", command});
    EXPECT_EQ(run.exit_code, 1) << command;
    EXPECT_THAT(run.err,
                AllOf(HasSubstr(absl::StrCat(command, " failed: UNAVAILABLE")),
                      HasSubstr(absl::StrCat("is egressd running and "
                                             "listening on ",
                                             admin, "?"))))
        << command;
    EXPECT_THAT(run.out, IsEmpty()) << command;
  }
}

}  // namespace
}  // namespace egress::testing
