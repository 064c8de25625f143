#include "tests/support/nginx.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace egress::testing {

absl::StatusOr<std::unique_ptr<NginxServer>> NginxServer::Start(
    const NginxOptions& options) {
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
  absl::Status last = absl::UnknownError("not started");
  // A picked port can be taken by someone else before nginx binds it.
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = PickFreePort();
    const std::string config = absl::StrReplaceAll(
        R"(daemon off;
master_process off;
USER
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 1024; }
http {
  access_log DIR/access.log;
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
    root DIR/www;
    EXTRA
  }
}
)",
        {{"DIR", dir},
         // As root (also inside Bazel's sandbox, where only root is mapped)
         // nginx would chown its temp folders to "nobody"; keep them ours.
         {"USER", geteuid() == 0 ? "user root root;" : ""},
         {"PORT", absl::StrCat(server->port_)},
         {"KEEPALIVE", options.keepalive_timeout},
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
    last = WaitForPort(server->port_, absl::Seconds(10));
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

std::string NginxServer::AccessLog() const {
  std::ifstream in(dir_ + "/access.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace egress::testing
