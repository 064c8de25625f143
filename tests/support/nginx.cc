#include "tests/support/nginx.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace egress::testing {
namespace {

// nginx's "combined" format plus the connection facts TLS and HTTP/2 tests
// check. Keep in sync with ParseAccessLogLine and the header comment.
constexpr char kLogFormat[] =
    R"('$remote_addr - $remote_user [$time_local] "$request" $status )"
    R"($body_bytes_sent "$http_referer" "$http_user_agent" )"
    R"(port=$server_port proto=$server_protocol tls=$ssl_protocol )"
    R"(alpn=$ssl_alpn_protocol sni=$ssl_server_name )"
    R"(reused=$ssl_session_reused conn=$connection )"
    R"(reqs=$connection_requests client_verify="$ssl_client_verify"')";

// True when something accepts a TCP connection on `ip`:`port` (loopback
// literals only: "127.0.0.1" or "::1").
bool Accepts(const std::string& ip, int port) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (ip.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr);
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a4->sin_addr);
    len = sizeof *a4;
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  close(fd);
  return ok;
}

// Waits until every endpoint accepts connections, or `process` exits (a
// port taken by someone else, a bad config), or `timeout` passes.
absl::Status WaitForListeners(
    Subprocess& process,
    const std::vector<std::pair<std::string, int>>& endpoints,
    absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  size_t ready = 0;
  while (true) {
    while (ready < endpoints.size() &&
           Accepts(endpoints[ready].first, endpoints[ready].second)) {
      ++ready;
    }
    if (ready == endpoints.size()) return absl::OkStatus();
    if (absl::StatusOr<int> exit = process.Wait(absl::ZeroDuration());
        exit.ok()) {
      return absl::UnavailableError(
          absl::StrCat("nginx exited (wait status ", *exit, ") before ",
                       endpoints[ready].first, " port ",
                       endpoints[ready].second, " accepted"));
    }
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "nothing accepted on ", endpoints[ready].first, " port ",
          endpoints[ready].second, " within ", absl::FormatDuration(timeout)));
    }
    // A server coming up announces nothing we can wait on; poll its ports.
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// A free port not in `taken` (PickFreePort may hand out one twice).
int PickFreePortExcept(const std::vector<int>& taken) {
  while (true) {
    const int port = PickFreePort();
    bool clash = false;
    for (int t : taken) clash = clash || t == port;
    if (!clash) return port;
  }
}

std::string Dash(absl::string_view value) {
  return value == "-" ? std::string() : std::string(value);
}

std::optional<NginxAccessLogEntry> ParseAccessLogLine(const std::string& line) {
  NginxAccessLogEntry entry;
  entry.line = line;
  // nginx escapes '"' inside variables as \x22, so quotes delimit fields.
  const size_t request_start = line.find('"');
  if (request_start == std::string::npos) return std::nullopt;
  const size_t request_end = line.find('"', request_start + 1);
  if (request_end == std::string::npos) return std::nullopt;
  entry.request = line.substr(request_start + 1, request_end - request_start - 1);
  std::vector<absl::string_view> after = absl::StrSplit(
      absl::string_view(line).substr(request_end + 1), ' ', absl::SkipEmpty());
  if (after.empty() || !absl::SimpleAtoi(after[0], &entry.status)) {
    return std::nullopt;
  }
  const size_t facts = line.rfind("\" port=");
  if (facts == std::string::npos) return std::nullopt;
  const size_t verify = line.find(" client_verify=\"", facts);
  if (verify == std::string::npos) return std::nullopt;
  const size_t verify_value = verify + sizeof(" client_verify=\"") - 1;
  entry.client_verify = Dash(absl::string_view(line).substr(
      verify_value, line.size() - verify_value - 1));  // drop the last '"'
  for (absl::string_view field : absl::StrSplit(
           absl::string_view(line).substr(facts + 2, verify - facts - 2), ' ')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(field, absl::MaxSplits('=', 1));
    if (kv.first == "port") {
      absl::SimpleAtoi(kv.second, &entry.port);
    } else if (kv.first == "proto") {
      entry.protocol = Dash(kv.second);
    } else if (kv.first == "tls") {
      entry.tls_protocol = Dash(kv.second);
    } else if (kv.first == "alpn") {
      entry.alpn = Dash(kv.second);
    } else if (kv.first == "sni") {
      entry.sni = Dash(kv.second);
    } else if (kv.first == "reused") {
      entry.session_reused = kv.second == "r";
    } else if (kv.first == "conn") {
      absl::SimpleAtoi(kv.second, &entry.connection);
    } else if (kv.first == "reqs") {
      absl::SimpleAtoi(kv.second, &entry.connection_requests);
    }
  }
  return entry;
}

std::string HostPort(const std::string& host, int port) {
  return host.find(':') != std::string::npos
             ? absl::StrCat("[", host, "]:", port)
             : absl::StrCat(host, ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NginxServer>> NginxServer::Start(
    const NginxOptions& options) {
  if (options.tls.has_value() &&
      (options.tls->cert_file.empty() || options.tls->key_file.empty())) {
    return absl::InvalidArgumentError(
        "NginxOptions.tls needs cert_file and key_file");
  }
  auto server = std::unique_ptr<NginxServer>(new NginxServer());
  server->dir_ = MakeTempDir("nginx");
  const std::string& dir = server->dir_;
  mkdir((dir + "/www").c_str(), 0755);
  mkdir((dir + "/tmp").c_str(), 0755);
  for (const auto& [path, contents] : options.files) {
    if (absl::Status s = WriteFile(dir + "/www/" + path, contents); !s.ok()) {
      return s;
    }
  }
  std::string tls_directives;
  if (options.tls.has_value()) {
    const NginxTlsOptions& tls = *options.tls;
    tls_directives = absl::StrCat(
        "ssl_certificate ", tls.cert_file, ";\n",                //
        "    ssl_certificate_key ", tls.key_file, ";\n",          //
        "    ssl_protocols ", tls.protocols, ";\n",               //
        "    ssl_session_tickets ", tls.session_tickets ? "on" : "off", ";\n",
        "    ssl_session_cache ",
        tls.session_cache ? "shared:egress_tls:1m" : "off", ";\n",
        "    ssl_session_timeout 10m;\n");
    if (!tls.client_ca_file.empty()) {
      absl::StrAppend(&tls_directives, "    ssl_client_certificate ",
                      tls.client_ca_file, ";\n",
                      "    ssl_verify_client on;\n    ssl_verify_depth 3;\n");
    }
  }
  absl::Status last = absl::UnknownError("not started");
  // A picked port can be taken by someone else before nginx binds it.
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = PickFreePort();
    server->tls_port_ =
        options.tls.has_value() ? PickFreePortExcept({server->port_}) : 0;
    server->h2c_port_ =
        options.h2c ? PickFreePortExcept({server->port_, server->tls_port_}) : 0;
    std::vector<std::string> hosts = {"127.0.0.1"};
    if (options.ipv6_loopback) hosts.push_back("::1");
    hosts.insert(hosts.end(), options.extra_loopback_hosts.begin(),
                 options.extra_loopback_hosts.end());
    std::string listens;
    std::vector<std::pair<std::string, int>> endpoints;
    for (const std::string& host : hosts) {
      auto listen = [&](int port, absl::string_view params) {
        absl::StrAppend(&listens, "    listen ", HostPort(host, port), params,
                        ";\n");
        endpoints.push_back({host, port});
      };
      if (host == "127.0.0.1") {
        endpoints.push_back({host, server->port_});  // in the template
      } else {
        listen(server->port_, "");
      }
      if (options.tls.has_value()) {
        listen(server->tls_port_, options.tls->http2 ? " ssl http2" : " ssl");
      }
      if (options.h2c) listen(server->h2c_port_, " http2");
    }
    const std::string config = absl::StrReplaceAll(
        R"(daemon off;
master_process off;
USER
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 1024; }
http {
  log_format egress LOGFORMAT;
  access_log DIR/access.log egress;
  client_body_temp_path DIR/tmp/body;
  proxy_temp_path DIR/tmp/proxy;
  fastcgi_temp_path DIR/tmp/fastcgi;
  uwsgi_temp_path DIR/tmp/uwsgi;
  scgi_temp_path DIR/tmp/scgi;
  keepalive_timeout KEEPALIVE;
  keepalive_requests 100000;
  default_type text/plain;
  server {
    listen 127.0.0.1:PORT;
LISTENS
    root DIR/www;
    TLSCONF
    EXTRA
  }
}
)",
        {{"DIR", dir},
         // As root (also inside Bazel's sandbox, where only root is mapped)
         // nginx would chown its temp folders to "nobody"; keep them ours.
         {"USER", geteuid() == 0 ? "user root root;" : ""},
         {"PORT", absl::StrCat(server->port_)},
         {"LISTENS", listens},
         {"LOGFORMAT", kLogFormat},
         {"KEEPALIVE", options.keepalive_timeout},
         {"TLSCONF", tls_directives},
         {"EXTRA", options.server_directives}});
    if (absl::Status s = WriteFile(dir + "/nginx.conf", config); !s.ok()) {
      return s;
    }
    absl::StatusOr<Subprocess> process = Subprocess::Start(
        {"/usr/sbin/nginx", "-p", dir, "-c", dir + "/nginx.conf", "-e",
         dir + "/error.log"},
        dir + "/stderr.log");
    if (!process.ok()) return process.status();
    server->process_ = std::make_unique<Subprocess>(*std::move(process));
    last = WaitForListeners(*server->process_, endpoints, absl::Seconds(10));
    if (last.ok()) return server;
    server->process_->Stop(SIGKILL, absl::Seconds(5)).IgnoreError();
  }
  std::ifstream err(dir + "/error.log"), out(dir + "/stderr.log");
  std::stringstream logs;
  logs << err.rdbuf() << out.rdbuf();
  return absl::UnavailableError(absl::StrCat(
      "nginx did not start: ", last.message(), "; its logs:\n", logs.str()));
}

NginxServer::~NginxServer() {
  if (process_ != nullptr) {
    process_->Stop(SIGQUIT, absl::Seconds(5)).IgnoreError();
  }
}

std::string NginxServer::Url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

std::string NginxServer::TlsUrl(const std::string& path) const {
  return absl::StrCat("https://127.0.0.1:", tls_port_, path);
}

std::string NginxServer::H2cUrl(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", h2c_port_, path);
}

std::string NginxServer::UrlFor(const std::string& scheme,
                                const std::string& host,
                                const std::string& path) const {
  if (scheme == "https") {
    return absl::StrCat("https://", HostPort(host, tls_port_), path);
  }
  if (scheme == "h2c") {
    return absl::StrCat("http://", HostPort(host, h2c_port_), path);
  }
  return absl::StrCat(scheme, "://", HostPort(host, port_), path);
}

std::string NginxServer::AccessLog() const {
  std::ifstream in(dir_ + "/access.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<NginxAccessLogEntry> NginxServer::AccessLogEntries() const {
  std::vector<NginxAccessLogEntry> entries;
  for (absl::string_view line :
       absl::StrSplit(AccessLog(), '\n', absl::SkipEmpty())) {
    if (std::optional<NginxAccessLogEntry> entry =
            ParseAccessLogLine(std::string(line));
        entry.has_value()) {
      entries.push_back(*std::move(entry));
    }
  }
  return entries;
}

absl::StatusOr<std::vector<NginxAccessLogEntry>>
NginxServer::AwaitAccessLogEntries(size_t count, absl::Duration timeout) const {
  const absl::Time give_up = absl::Now() + timeout;
  while (true) {
    std::vector<NginxAccessLogEntry> entries = AccessLogEntries();
    if (entries.size() >= count) return entries;
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "nginx logged ", entries.size(), " of ", count, " requests within ",
          absl::FormatDuration(timeout), "; the log:\n", AccessLog()));
    }
    // nginx announces nothing when it writes a line; poll the file.
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace egress::testing
