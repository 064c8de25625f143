#include "tests/support/egressd_process.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::testing {

absl::StatusOr<std::unique_ptr<EgressdProcess>> EgressdProcess::Start(
    const std::vector<std::string>& flags) {
  // The tests' origins are on loopback, which the egress policy denies by
  // default.
  std::vector<std::string> argv = {RunfilePath("server/egressd"),
                                   "--listen=127.0.0.1:0",
                                   "--admin_listen=127.0.0.1:0"};
  const bool own_allow = std::any_of(
      flags.begin(), flags.end(),
      [](const std::string& f) { return absl::StartsWith(f, "--allow_cidr"); });
  if (!own_allow) argv.push_back("--allow_cidr=127.0.0.0/8");
  // Never the default 9902: tests run side by side.
  const bool own_metrics = std::any_of(
      flags.begin(), flags.end(), [](const std::string& f) {
        return absl::StartsWith(f, "--metrics_listen");
      });
  if (!own_metrics) argv.push_back("--metrics_listen=127.0.0.1:0");
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv);
  if (!process.ok()) return process.status();
  auto egressd = std::unique_ptr<EgressdProcess>(new EgressdProcess());
  egressd->process_ = std::make_unique<Subprocess>(*std::move(process));
  absl::StatusOr<std::string> ready =
      egressd->process_->ReadLineMatching("EGRESSD_READY", absl::Seconds(20));
  if (!ready.ok()) return ready.status();
  for (absl::string_view field : absl::StrSplit(*ready, ' ')) {
    if (absl::ConsumePrefix(&field, "listen=")) {
      egressd->listen_ = std::string(field);
    } else if (absl::ConsumePrefix(&field, "admin_listen=")) {
      egressd->admin_listen_ = std::string(field);
    } else if (absl::ConsumePrefix(&field, "metrics_listen=")) {
      egressd->metrics_listen_ = std::string(field);
    }
  }
  if (egressd->listen_.empty() || egressd->admin_listen_.empty()) {
    return absl::InternalError(absl::StrCat("unparsable ready line: ", *ready));
  }
  egressd->fetch_channel_ = grpc::CreateChannel(
      egressd->listen_, grpc::InsecureChannelCredentials());
  egressd->fetcher_ = v1::Fetcher::NewStub(egressd->fetch_channel_);
  egressd->admin_ = v1::PoolAdmin::NewStub(grpc::CreateChannel(
      egressd->admin_listen_, grpc::InsecureChannelCredentials()));
  return egressd;
}

int EgressdProcess::metrics_port() const {
  const size_t colon = metrics_listen_.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(metrics_listen_.substr(colon + 1), &port)) {
    return 0;
  }
  return port;
}

grpc::Status EgressdProcess::Fetch(const v1::FetchRequest& request,
                                   v1::FetchResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  return fetcher_->Fetch(&context, request, response);
}

absl::StatusOr<v1::PoolStats> EgressdProcess::PoolStats() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::PoolStats stats;
  grpc::Status status =
      admin_->GetPoolStats(&context, v1::GetPoolStatsRequest(), &stats);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return stats;
}

v1::FetchRequest Get(const std::string& url) {
  v1::FetchRequest request;
  request.set_method("GET");
  request.set_url(url);
  return request;
}

}  // namespace egress::testing
