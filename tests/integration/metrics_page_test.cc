// The pool's web page (GET / on --metrics_listen) in headless Chromium
// (Debian's `chromium` package): after a Fetch, the connection it used
// appears in the DOM that the page's script rendered from /api/pool, and a
// screenshot of the page is saved as a test artifact
// ($TEST_UNDECLARED_OUTPUTS_DIR/pool_page.png; Bazel zips it into
// bazel-testlogs/.../test.outputs/outputs.zip).
//
// Skipped, saying so, only when no chromium binary is installed (./dev and
// CI install it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/raw_http.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

std::string FindChromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::string OutputsDir() {
  for (const char* name : {"TEST_UNDECLARED_OUTPUTS_DIR", "TEST_TMPDIR"}) {
    if (const char* dir = std::getenv(name); dir != nullptr && *dir != '\0') {
      return dir;
    }
  }
  return MakeTempDir("outputs");
}

// GET `path` from 127.0.0.1:`port`; true on a 200.
bool Get200(int port, const std::string& path) {
  absl::StatusOr<RawHttpReply> reply = RawHttp(port, "GET", path);
  return reply.ok() && reply->status == 200;
}

struct ChromiumRun {
  int exit_code = -1;
  std::string out;  // stdout: the DOM with --dump-dom
  std::string err;
};

// Runs headless Chromium on `url` with `mode` flags (--dump-dom or
// --screenshot=...) and waits for it. Chromium gets a throwaway profile and
// HOME, and can reach nothing but 127.0.0.1: every other host fails to
// resolve, and other traffic goes to a proxy that refuses (loopback always
// bypasses proxies).
ChromiumRun RunChromium(const std::string& chromium, const std::string& url,
                        const std::vector<std::string>& mode) {
  const std::string dir = MakeTempDir("chromium");
  std::vector<std::string> argv = {
      "/usr/bin/env",
      absl::StrCat("HOME=", dir),
      absl::StrCat("XDG_CONFIG_HOME=", dir, "/config"),
      absl::StrCat("XDG_CACHE_HOME=", dir, "/cache"),
      chromium,
      "--headless",
      "--no-sandbox",  // tests may run as root, where the sandbox refuses
      "--disable-gpu",
      "--disable-dev-shm-usage",
      absl::StrCat("--user-data-dir=", dir, "/profile"),
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-default-apps",
      "--disable-domain-reliability",
      "--disable-client-side-phishing-detection",
      "--no-pings",
      "--dns-prefetch-disable",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
      "--proxy-server=http://127.0.0.1:9",
      // Time enough for several polls of /api/pool (every second); virtual
      // time stands still while a request is in flight.
      "--virtual-time-budget=5000",
  };
  argv.insert(argv.end(), mode.begin(), mode.end());
  argv.push_back(url);
  const std::string err_path = dir + "/stderr";
  ChromiumRun run;
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv, err_path);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return run;
  // Reads stdout to its end: no line holds this.
  process->ReadLineMatching("\x01never\x01", absl::Seconds(90)).IgnoreError();
  absl::StatusOr<int> status = process->Wait(absl::Seconds(30));
  EXPECT_TRUE(status.ok()) << status.status();
  if (status.ok() && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  run.out = process->output();
  run.err = ReadFile(err_path);
  return run;
}

TEST(MetricsPageTest, AConnectionOfAFetchAppearsInTheRenderedPage) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "no chromium binary (/usr/bin/chromium): install Debian's "
                    "`chromium` package (./dev deps does) to run the page test";
  }
  NginxOptions options;
  const int second_port = PickFreePort();
  options.server_directives =
      absl::StrCat("listen 127.0.0.1:", second_port, ";\n");
  auto nginx = NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto egressd = EgressdProcess::Start();
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  const int metrics_port = (*egressd)->metrics_port();
  ASSERT_GT(metrics_port, 0);
  // The page's events are what changed between two looks at the pool; this
  // first look lets the page show the Fetches below as events.
  ASSERT_TRUE(Get200(metrics_port, "/api/pool"));

  v1::FetchResponse response;
  ASSERT_TRUE(
      (*egressd)->Fetch(Get((*nginx)->Url("/hello.txt")), &response).ok());
  const std::string id = absl::StrCat(response.connection().id());
  const std::string remote = response.connection().remote_address();
  ASSERT_THAT(remote, HasSubstr("127.0.0.1:"));

  // Something for the screenshot to show: a second address, a few
  // concurrent calls (more connections), a failed connect.
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&egressd, second_port] {
      for (int j = 0; j < 3; ++j) {
        v1::FetchResponse r;
        (*egressd)
            ->Fetch(Get(absl::StrCat("http://127.0.0.1:", second_port,
                                     "/hello.txt")),
                    &r)
            .IgnoreError();
      }
    });
  }
  for (std::thread& t : callers) t.join();
  v1::FetchResponse failed;
  EXPECT_FALSE((*egressd)->Fetch(Get("http://127.0.0.1:1/"), &failed).ok());

  const std::string url = absl::StrCat("http://127.0.0.1:", metrics_port, "/");
  ChromiumRun dom = RunChromium(chromium, url, {"--dump-dom"});
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  ASSERT_THAT(dom.out, HasSubstr("<html")) << dom.err;
  // The static page has no rows; these were rendered by the script from
  // /api/pool.
  EXPECT_THAT(dom.out, HasSubstr(absl::StrCat("<tr id=\"conn-", id, "\">")));
  EXPECT_THAT(dom.out, HasSubstr(absl::StrCat("<td>", remote, "</td>")));
  EXPECT_THAT(dom.out, HasSubstr(absl::StrCat(
                           "<td>http://127.0.0.1:", (*nginx)->port(), "</td>")))
      << "the per-address summary";
  EXPECT_THAT(dom.out, HasSubstr("connect failed")) << "the events";
  EXPECT_THAT(dom.out, HasSubstr(absl::StrCat("to ", remote))) << "opened";
  EXPECT_THAT(dom.out, HasSubstr("<span class=\"dot live\"></span>live</span>"))
      << "the last poll succeeded";

  const std::string png = OutputsDir() + "/pool_page.png";
  ChromiumRun shot =
      RunChromium(chromium, url,
                  {absl::StrCat("--screenshot=", png), "--window-size=1280,900",
                   "--hide-scrollbars"});
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  const std::string image = ReadFile(png);
  ASSERT_GT(image.size(), 10000u) << png;
  EXPECT_EQ(image.substr(0, 8), "\x89PNG\r\n\x1a\n");
  std::fprintf(stderr, "screenshot: %s (%zu bytes)\n", png.c_str(),
               image.size());
}

}  // namespace
}  // namespace egress::testing
