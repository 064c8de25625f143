#include "tests/support/dante.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace egress::testing {
namespace {

constexpr char kDanted[] = "/usr/sbin/danted";
constexpr char kUnshare[] = "/usr/bin/unshare";

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

absl::StatusOr<std::unique_ptr<DanteServer>> DanteServer::Start() {
  auto server = std::unique_ptr<DanteServer>(new DanteServer());
  server->dir_ = MakeTempDir("dante.");
  if (server->dir_.empty()) {
    return absl::InternalError("cannot make a temporary directory for danted");
  }
  const std::string& dir = server->dir_;
  server->port_ = PickFreePort();
  const std::string config = absl::StrCat(
      "logoutput: ", dir, "/danted.log\n",
      "internal: 127.0.0.1 port = ", server->port_, "\n",
      "external: 127.0.0.1\n"
      "clientmethod: none\n"
      "socksmethod: none\n"
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
      "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }\n"
      "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n");
  const std::string config_path = dir + "/danted.conf";
  if (absl::Status s = WriteFile(config_path, config); !s.ok()) return s;
  std::vector<std::string> argv;
  if (geteuid() == 0) {
    argv = {kUnshare, "--user", "--map-user=1000", "--map-group=1000"};
  }
  for (const std::string& arg :
       {std::string(kDanted), std::string("-f"), config_path,
        std::string("-p"), dir + "/danted.pid"}) {
    argv.push_back(arg);
  }
  absl::StatusOr<Subprocess> process =
      Subprocess::Start(argv, dir + "/danted.stderr");
  if (!process.ok()) return process.status();
  server->process_ = std::make_unique<Subprocess>(*std::move(process));

  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!Accepts(server->port_)) {
    const bool exited = server->process_->Wait(absl::ZeroDuration()).ok();
    if (exited || absl::Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat(
          "danted ", exited ? "exited" : "did not accept", " on port ",
          server->port_, "\n--- stderr:\n",
          ReadFileOrEmpty(dir + "/danted.stderr"), "\n--- log:\n",
          server->Log()));
    }
    // A daemon coming up announces nothing we can wait on; poll its port.
    absl::SleepFor(absl::Milliseconds(10));
  }
  return server;
}

DanteServer::~DanteServer() {
  if (process_ != nullptr) {
    process_->Stop(SIGTERM, absl::Seconds(5)).IgnoreError();
  }
}

std::string DanteServer::Log() const {
  return ReadFileOrEmpty(dir_ + "/danted.log");
}

}  // namespace egress::testing
