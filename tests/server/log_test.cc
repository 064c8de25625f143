// The JSON log lines (server/log/log.h) and the access log line
// (server/log/access_log.h): shape, escaping, levels, the writer thread, and
// that no query string, userinfo or header value gets into a line. No gRPC:
// runs under TSan.
#include "server/log/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/log/access_log.h"

namespace egress::log {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kTs = absl::FromUnixMicros(1714564800123456);  // 2024-05-01

std::string Line(Level level, absl::string_view msg,
                 std::initializer_list<Field> fields = {}) {
  return FormatLine(kTs, level, msg,
                    absl::Span<const Field>(fields.begin(), fields.size()));
}

TEST(LogLineTest, ShapeAndFieldTypes) {
  EXPECT_EQ(Line(Level::kInfo, "egressd started",
                 {{"listen", "127.0.0.1:7070"},
                  {"port", 7070},
                  {"big", uint64_t{18446744073709551615u}},
                  {"negative", -3},
                  {"on", true},
                  {"ratio", 0.5},
                  {"took", absl::Microseconds(1234567)}}),
            "{\"ts\":\"2024-05-01T12:00:00.123456Z\",\"level\":\"info\","
            "\"msg\":\"egressd started\",\"listen\":\"127.0.0.1:7070\","
            "\"port\":7070,\"big\":18446744073709551615,\"negative\":-3,"
            "\"on\":true,\"ratio\":0.5,\"took\":1234.567}\n");
}

TEST(LogLineTest, LevelsByName) {
  EXPECT_THAT(Line(Level::kDebug, "m"), HasSubstr("\"level\":\"debug\""));
  EXPECT_THAT(Line(Level::kWarning, "m"), HasSubstr("\"level\":\"warning\""));
  EXPECT_THAT(Line(Level::kError, "m"), HasSubstr("\"level\":\"error\""));
  EXPECT_EQ(ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(ParseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(ParseLevel("warn"), Level::kWarning);
  EXPECT_EQ(ParseLevel("warning"), Level::kWarning);
  EXPECT_EQ(ParseLevel("error"), Level::kError);
  EXPECT_EQ(ParseLevel("verbose"), std::nullopt);
  EXPECT_EQ(ParseLevel(""), std::nullopt);
}

TEST(LogLineTest, DurationsAsMilliseconds) {
  EXPECT_EQ(Field("d", absl::ZeroDuration()).json(), "0.000");
  EXPECT_EQ(Field("d", absl::Microseconds(5)).json(), "0.005");
  EXPECT_EQ(Field("d", absl::Seconds(2)).json(), "2000.000");
  EXPECT_EQ(Field("d", absl::Microseconds(-500)).json(), "-0.500");
  EXPECT_EQ(Field("d", absl::Microseconds(-1500)).json(), "-1.500");
}

TEST(LogLineTest, StringsAreEscapedIntoValidJson) {
  std::string out;
  AppendJsonEscaped("a\"b\\c\nd\re\tf\x01g\x7f", &out);
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007f");
  out.clear();
  // Valid UTF-8 is kept; stray bytes become \u00XX.
  AppendJsonEscaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", &out);
  EXPECT_EQ(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  out.clear();
  AppendJsonEscaped("\xff\xc3(\xe2\x82 \xed\xa0\x80", &out);
  EXPECT_EQ(out, "\\u00ff\\u00c3(\\u00e2\\u0082 \\u00ed\\u00a0\\u0080");
  EXPECT_EQ(Field("nan", std::nan("")).json(), "null");
  EXPECT_THAT(Line(Level::kInfo, "say \"hi\""),
              HasSubstr("\"msg\":\"say \\\"hi\\\"\""));
}

// A Logger writing into a temporary file.
class LoggerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = absl::StrCat(dir != nullptr ? dir : "/tmp", "/log_test_",
                         ::testing::UnitTest::GetInstance()
                             ->current_test_info()
                             ->name(),
                         ".log");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { ::close(fd_); }

  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    const std::string text((std::istreambuf_iterator<char>(in)),
                           std::istreambuf_iterator<char>());
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
  }

  std::string path_;
  int fd_ = -1;
};

TEST_F(LoggerFileTest, WritesEnabledLevelsAndFlushes) {
  Logger logger(fd_);
  EXPECT_EQ(logger.level(), Level::kInfo);
  logger.Log(Level::kDebug, "not written");
  logger.Log(Level::kInfo, "written", {{"n", 1}});
  logger.set_level(Level::kError);
  EXPECT_FALSE(logger.Enabled(Level::kWarning));
  logger.Log(Level::kWarning, "not written either");
  logger.Log(Level::kError, "an error");
  logger.set_level(Level::kDebug);
  logger.Log(Level::kDebug, "now written");
  logger.WriteLine("{\"raw\":true}\n");
  logger.Flush();
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[0], AllOf(StartsWith("{\"ts\":\""),
                              HasSubstr("\"msg\":\"written\",\"n\":1}")));
  EXPECT_THAT(lines[1], HasSubstr("\"level\":\"error\""));
  EXPECT_THAT(lines[2], HasSubstr("\"msg\":\"now written\""));
  EXPECT_EQ(lines[3], "{\"raw\":true}");
  EXPECT_EQ(logger.dropped(), 0u);
}

TEST_F(LoggerFileTest, LinesFromManyThreadsStayWhole) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  {
    Logger logger(fd_);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&logger, t] {
        for (int i = 0; i < kPerThread; ++i) {
          logger.Log(Level::kInfo, "line",
                     {{"thread", t}, {"i", i}, {"pad", std::string(100, 'x')}});
        }
      });
    }
    for (auto& t : threads) t.join();
  }  // the destructor flushes
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const std::string& line : lines) {
    ASSERT_THAT(line, StartsWith("{\"ts\":\""));
    ASSERT_TRUE(absl::EndsWith(line, "\"}")) << line;
  }
}

TEST_F(LoggerFileTest, FlushesRacingWritesAllReturn) {
  Logger logger(fd_);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) logger.Log(Level::kInfo, "x", {{"i", i}});
    writing.store(false);
  });
  int flushes = 0;
  while (writing.load()) {
    logger.Flush();
    ++flushes;
  }
  writer.join();
  logger.Flush();
  EXPECT_EQ(Lines().size() + logger.dropped(), 20000u);
  EXPECT_GT(flushes, 0);
}

// --- the access log ---------------------------------------------------------

Response OkResponse() {
  Response r;
  r.status_code = 200;
  r.protocol = "h2";
  r.connection.connection_id = 12;
  r.connection.reused = true;
  r.timing.total = absl::Microseconds(12345);
  r.timing.queue_wait = absl::Microseconds(10);
  r.timing.dns = absl::Microseconds(1000);
  r.timing.connect = absl::Microseconds(2000);
  r.timing.tls = absl::Microseconds(3000);
  r.timing.first_byte = absl::Microseconds(11000);
  return r;
}

TEST(AccessLogTest, ASucceededCall) {
  AccessRecord record;
  record.rpc = "Fetch";
  record.call_id = 7;
  record.caller = "ipv4:127.0.0.1:5555";
  record.method = "GET";
  record.url = "https://api.example.com/v1/items?token=s3cr3t#frag";
  record.bytes_out = 3;
  record.bytes_in = 5120;
  EXPECT_EQ(
      FormatAccessLine(kTs, record, OkResponse()),
      "{\"ts\":\"2024-05-01T12:00:00.123456Z\",\"level\":\"info\","
      "\"msg\":\"access\",\"rpc\":\"Fetch\",\"call_id\":7,"
      "\"caller\":\"ipv4:127.0.0.1:5555\",\"method\":\"GET\","
      "\"scheme\":\"https\",\"host\":\"api.example.com\",\"port\":443,"
      "\"path\":\"/v1/items\",\"grpc_code\":\"OK\",\"status\":200,"
      "\"protocol\":\"h2\",\"connection_id\":12,\"reused\":true,"
      "\"total_ms\":12.345,\"queue_ms\":0.010,\"dns_ms\":1.000,"
      "\"connect_ms\":2.000,\"tls_ms\":3.000,\"first_byte_ms\":11.000,"
      "\"bytes_in\":5120,\"bytes_out\":3}\n");
}

TEST(AccessLogTest, AFailedCallHasItsCodeAndMessage) {
  AccessRecord record;
  record.rpc = "FetchStream";
  record.method = "POST";
  record.url = "http://127.0.0.1:1/x?a=b";
  const std::string line = FormatAccessLine(
      kTs, record,
      absl::UnavailableError("connect to http://127.0.0.1:1 failed"));
  EXPECT_THAT(line, HasSubstr("\"grpc_code\":\"UNAVAILABLE\","
                              "\"error\":\"connect to http://127.0.0.1:1 "
                              "failed\""));
  EXPECT_THAT(line, HasSubstr("\"path\":\"/x\""));
  EXPECT_THAT(line, Not(HasSubstr("status")));
  EXPECT_THAT(line, Not(HasSubstr("a=b")));
}

TEST(AccessLogTest, NoQueryUserinfoOrUnparsableUrlIsLogged) {
  AccessRecord record;
  record.rpc = "Fetch";
  record.method = "GET";
  for (const char* url :
       {"http://alice:pa55word@example.com/x", "not a url pa55word",
        "ftp://example.com/pa55word"}) {
    record.url = url;
    const std::string line =
        FormatAccessLine(kTs, record, absl::InvalidArgumentError("bad url"));
    EXPECT_THAT(line, Not(HasSubstr("pa55word"))) << url;
    EXPECT_THAT(line, HasSubstr("\"url_invalid\":true")) << url;
  }
}

TEST(AccessLogTest, CanBeTurnedOff) {
  EXPECT_TRUE(AccessLogEnabled());
  SetAccessLogEnabled(false);
  EXPECT_FALSE(AccessLogEnabled());
  SetAccessLogEnabled(true);
}

}  // namespace
}  // namespace egress::log
