#include "tests/support/squid.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace egress::testing {
namespace {

constexpr char kSquid[] = "/usr/sbin/squid";
constexpr char kNcsaAuth[] = "/usr/lib/squid/basic_ncsa_auth";
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

// Waits until 127.0.0.1:`port` accepts, `process` exits, or `timeout`.
absl::Status AwaitListening(Subprocess& process, int port,
                            absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (!Accepts(port)) {
    if (absl::StatusOr<int> exit = process.Wait(absl::ZeroDuration());
        exit.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "squid exited (wait status ", *exit, ") before port ", port,
          " accepted"));
    }
    if (absl::Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat(
          "squid did not accept on port ", port, " within ",
          absl::FormatDuration(timeout)));
    }
    // A daemon coming up announces nothing we can wait on; poll its port.
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

// SHA-256 crypt(3), which basic_ncsa_auth checks through crypt(3).
absl::StatusOr<std::string> HashPassword(const std::string& password) {
  auto data = std::make_unique<crypt_data>();
  const char* hash =
      crypt_r(password.c_str(), "$5$egresstestsalt$", data.get());
  if (hash == nullptr || hash[0] == '*') {
    return absl::InternalError("crypt_r failed to hash a test password");
  }
  return std::string(hash);
}

std::optional<SquidAccessLogEntry> ParseLine(const std::string& line) {
  // logformat egress: %ts.%03tu %Ss %>Hs %rm %ru %un %>p
  std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (f.size() < 7) return std::nullopt;
  // A connection that closed before sending a request: Start()'s readiness
  // probes (squid may log them late).
  if (f[4] == "error:transaction-end-before-headers") return std::nullopt;
  SquidAccessLogEntry e;
  e.line = line;
  e.result = f[1];
  absl::SimpleAtoi(f[2], &e.status);
  e.method = f[3];
  e.url = f[4];
  e.user = f[5] == "-" ? "" : f[5];
  absl::SimpleAtoi(f[6], &e.client_port);
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SquidServer>> SquidServer::Start(
    const SquidOptions& options) {
  auto server = std::unique_ptr<SquidServer>(new SquidServer());
  server->dir_ = MakeTempDir("squid.");
  if (server->dir_.empty()) {
    return absl::InternalError("cannot make a temporary directory for squid");
  }
  const std::string& dir = server->dir_;
  server->port_ = PickFreePort();

  std::string auth;
  if (!options.users.empty()) {
    std::string passwd;
    for (const auto& [user, password] : options.users) {
      absl::StatusOr<std::string> hash = HashPassword(password);
      if (!hash.ok()) return hash.status();
      absl::StrAppend(&passwd, user, ":", *hash, "\n");
    }
    if (absl::Status s = WriteFile(dir + "/passwd", passwd); !s.ok()) return s;
    auth = absl::StrCat("auth_param basic program ", kNcsaAuth, " ", dir,
                        "/passwd\n"
                        "auth_param basic children 2 startup=1 idle=1\n"
                        "auth_param basic realm ",
                        options.realm,
                        "\n"
                        "auth_param basic casesensitive on\n"
                        "acl authenticated proxy_auth REQUIRED\n"
                        "http_access deny !authenticated\n");
  }
  std::string hosts = "127.0.0.1 localhost\n::1 localhost\n";
  for (const auto& [name, ip] : options.hosts) {
    absl::StrAppend(&hosts, ip, " ", name, "\n");
  }
  if (absl::Status s = WriteFile(dir + "/hosts", hosts); !s.ok()) return s;

  const std::string config = absl::StrCat(
      "http_port 127.0.0.1:", server->port_, "\n",
      "visible_hostname egress-test\n"
      "pid_filename ", dir, "/squid.pid\n",
      "cache_log ", dir, "/cache.log\n",
      "logformat egress %ts.%03tu %Ss %>Hs %rm %ru %un %>p\n"
      "access_log stdio:", dir, "/access.log egress\n",
      "buffered_logs off\n"
      "coredump_dir ", dir, "\n",
      "netdb_filename none\n"
      "cache deny all\n"
      "cache_mem 8 MB\n"
      "memory_pools off\n"
      "pinger_enable off\n"
      "icp_port 0\n"
      "htcp_port 0\n"
      "shutdown_lifetime 0 seconds\n"
      "hosts_file ", dir, "/hosts\n",
      // Any name not in hosts_file is asked of nobody.
      "dns_nameservers 127.0.0.1\n"
      "acl to_loopback dst 127.0.0.0/8 ::1\n"
      "http_access deny !to_loopback\n",
      auth,
      "http_access allow all\n",
      options.extra_config, "\n");
  const std::string config_path = dir + "/squid.conf";
  if (absl::Status s = WriteFile(config_path, config); !s.ok()) return s;

  std::vector<std::string> argv;
  if (geteuid() == 0) {
    // See the header: squid will not run as root, and no other user exists
    // inside Bazel's sandbox.
    argv = {kUnshare, "--user", "--map-user=1000", "--map-group=1000"};
  }
  for (const char* arg : {kSquid, "-N", "-d", "1", "-f"}) argv.push_back(arg);
  argv.push_back(config_path);
  absl::StatusOr<Subprocess> process =
      Subprocess::Start(argv, dir + "/squid.stderr");
  if (!process.ok()) return process.status();
  server->process_ = std::make_unique<Subprocess>(*std::move(process));
  if (absl::Status s =
          AwaitListening(*server->process_, server->port_, absl::Seconds(20));
      !s.ok()) {
    return absl::UnavailableError(absl::StrCat(
        s.message(), "\n--- squid stderr:\n",
        ReadFileOrEmpty(dir + "/squid.stderr"), "\n--- cache.log:\n",
        server->CacheLog()));
  }
  return server;
}

SquidServer::~SquidServer() {
  if (process_ != nullptr) process_->Stop(SIGTERM, absl::Seconds(5)).IgnoreError();
}

std::string SquidServer::Url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::string SquidServer::AccessLog() const {
  return ReadFileOrEmpty(dir_ + "/access.log");
}

std::string SquidServer::CacheLog() const {
  return ReadFileOrEmpty(dir_ + "/cache.log");
}

std::vector<SquidAccessLogEntry> SquidServer::AccessLogEntries() const {
  std::vector<SquidAccessLogEntry> entries;
  for (absl::string_view line :
       absl::StrSplit(AccessLog(), '\n', absl::SkipEmpty())) {
    if (auto e = ParseLine(std::string(line)); e.has_value()) {
      entries.push_back(*std::move(e));
    }
  }
  return entries;
}

absl::StatusOr<std::vector<SquidAccessLogEntry>>
SquidServer::AwaitAccessLogEntries(
    size_t count, std::function<bool(const SquidAccessLogEntry&)> filter,
    absl::Duration timeout) const {
  const absl::Time give_up = absl::Now() + timeout;
  while (true) {
    std::vector<SquidAccessLogEntry> entries;
    for (SquidAccessLogEntry& e : AccessLogEntries()) {
      if (filter == nullptr || filter(e)) entries.push_back(std::move(e));
    }
    if (entries.size() >= count) return entries;
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "squid's access log has ", entries.size(), " matching lines, not ",
          count, ", after ", absl::FormatDuration(timeout), ":\n",
          AccessLog()));
    }
    // squid writes the line when the transaction ends; nothing to wait on.
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace egress::testing
