// EgressdProcess: the real egressd binary started by a test on free ports,
// with gRPC stubs for its services.
#ifndef EGRESS_TESTS_SUPPORT_EGRESSD_PROCESS_H_
#define EGRESS_TESTS_SUPPORT_EGRESSD_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

class EgressdProcess {
 public:
  // Starts egressd with --listen, --admin_listen and --metrics_listen on
  // port 0 (--metrics_listen left out when `flags` has its own),
  // --allow_cidr=127.0.0.0/8 (the test origins' loopback; left out when
  // `flags` has its own --allow_cidr) plus `flags`, and waits for its
  // EGRESSD_READY line.
  static absl::StatusOr<std::unique_ptr<EgressdProcess>> Start(
      const std::vector<std::string>& flags = {});

  const std::string& listen() const { return listen_; }
  const std::string& admin_listen() const { return admin_listen_; }
  // "127.0.0.1:PORT" of /metrics and the pool page, or "off".
  const std::string& metrics_listen() const { return metrics_listen_; }
  // The metrics port; 0 when off.
  int metrics_port() const;
  Subprocess& process() { return *process_; }

  v1::Fetcher::Stub& fetcher() { return *fetcher_; }
  v1::PoolAdmin::Stub& admin() { return *admin_; }
  std::shared_ptr<grpc::Channel> fetch_channel() { return fetch_channel_; }

  // Fetch with a 10 s deadline.
  grpc::Status Fetch(const v1::FetchRequest& request,
                     v1::FetchResponse* response);
  absl::StatusOr<v1::PoolStats> PoolStats();

 private:
  EgressdProcess() = default;
  std::unique_ptr<Subprocess> process_;
  std::string listen_;
  std::string admin_listen_;
  std::string metrics_listen_;
  std::shared_ptr<grpc::Channel> fetch_channel_;
  std::unique_ptr<v1::Fetcher::Stub> fetcher_;
  std::unique_ptr<v1::PoolAdmin::Stub> admin_;
};

// "GET url" as a FetchRequest.
v1::FetchRequest Get(const std::string& url);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_EGRESSD_PROCESS_H_
