#include "tests/support/tinyproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace egress::testing {
namespace {

constexpr char kTinyproxy[] = "/usr/bin/tinyproxy";

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Accepts(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TinyproxyServer>> TinyproxyServer::Start(
    const TinyproxyOptions& options) {
  auto server = std::unique_ptr<TinyproxyServer>(new TinyproxyServer());
  server->dir_ = MakeTempDir("tinyproxy.");
  if (server->dir_.empty()) {
    return absl::InternalError(
        "cannot make a temporary directory for tinyproxy");
  }
  const std::string& dir = server->dir_;
  server->port_ = PickFreePort();
  // No ConnectPort line: CONNECT to every port is allowed.
  std::string config = absl::StrCat(
      "Port ", server->port_, "\n",
      "Listen 127.0.0.1\n"
      "Timeout 60\n"
      "LogFile \"", dir, "/tinyproxy.log\"\n",
      "LogLevel Connect\n"
      "PidFile \"", dir, "/tinyproxy.pid\"\n",
      "MaxClients 64\n"
      "Allow 127.0.0.1\n");
  if (!options.username.empty()) {
    absl::StrAppend(&config, "BasicAuth ", options.username, " ",
                    options.password, "\n");
  }
  const std::string config_path = dir + "/tinyproxy.conf";
  if (absl::Status s = WriteFile(config_path, config); !s.ok()) return s;
  absl::StatusOr<Subprocess> process = Subprocess::Start(
      {kTinyproxy, "-d", "-c", config_path}, dir + "/tinyproxy.stderr");
  if (!process.ok()) return process.status();
  server->process_ = std::make_unique<Subprocess>(*std::move(process));

  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!Accepts(server->port_)) {
    const bool exited =
        server->process_->Wait(absl::ZeroDuration()).ok();
    if (exited || absl::Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat(
          "tinyproxy ", exited ? "exited" : "did not accept", " on port ",
          server->port_, "\n--- stderr:\n",
          ReadFileOrEmpty(dir + "/tinyproxy.stderr"), "\n--- log:\n",
          server->Log()));
    }
    // A daemon coming up announces nothing we can wait on; poll its port.
    absl::SleepFor(absl::Milliseconds(10));
  }
  return server;
}

TinyproxyServer::~TinyproxyServer() {
  if (process_ != nullptr) {
    process_->Stop(SIGTERM, absl::Seconds(5)).IgnoreError();
  }
}

std::string TinyproxyServer::Url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::string TinyproxyServer::Log() const {
  return ReadFileOrEmpty(dir_ + "/tinyproxy.log");
}

}  // namespace egress::testing
