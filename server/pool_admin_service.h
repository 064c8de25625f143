// PoolAdminService: the PoolAdmin gRPC service (callback API; it is not on
// the hot path). Reads the HttpClient's pool, evicts or drains it on
// request, and streams its events (WatchPoolEvents) from a PoolEventsHub.
//
// Thread-safe. The HttpClient and the hub must outlive the service, and the
// service the gRPC server it is registered with.
#ifndef EGRESS_SERVER_POOL_ADMIN_SERVICE_H_
#define EGRESS_SERVER_POOL_ADMIN_SERVICE_H_

#include <atomic>

#include "absl/strings/string_view.h"
#include "client_core/call/http_client.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "server/pool_events_hub.h"

namespace egress {

class PoolAdminService final : public v1::PoolAdmin::CallbackService {
 public:
  // `events` is the hub the HttpClient reports to (its PoolListener and
  // its Connector's ConnectListener); null: WatchPoolEvents answers
  // UNAVAILABLE.
  explicit PoolAdminService(HttpClient* client,
                            PoolEventsHub* events = nullptr)
      : client_(client), events_(events) {}

  // Initial metadata key (value "1") a WatchPoolEvents stream sends once the
  // watch is in place; a refused watch ends without it.
  static constexpr absl::string_view kWatchStartedKey = "egress-watch-started";

  // Watches open at once at most; one more is RESOURCE_EXHAUSTED. Each holds
  // a queue of up to PoolEventsHub::kDefaultQueueCapacity events.
  static constexpr int kMaxWatches = 64;

  grpc::ServerUnaryReactor* GetPoolStats(
      grpc::CallbackServerContext* context,
      const v1::GetPoolStatsRequest* request, v1::PoolStats* response) override;
  grpc::ServerUnaryReactor* ListConnections(
      grpc::CallbackServerContext* context,
      const v1::ListConnectionsRequest* request,
      v1::ListConnectionsResponse* response) override;
  grpc::ServerUnaryReactor* EvictIdle(grpc::CallbackServerContext* context,
                                      const v1::EvictIdleRequest* request,
                                      v1::EvictIdleResponse* response) override;
  grpc::ServerUnaryReactor* ListLeaks(grpc::CallbackServerContext* context,
                                      const v1::ListLeaksRequest* request,
                                      v1::ListLeaksResponse* response) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;
  grpc::ServerWriteReactor<v1::PoolEvent>* WatchPoolEvents(
      grpc::CallbackServerContext* context,
      const v1::WatchPoolEventsRequest* request) override;

 private:
  class Watch;

  HttpClient* const client_;
  PoolEventsHub* const events_;
  std::atomic<int> watches_{0};
};

// The PoolEvent message for a hub event and what the watcher lost before
// it.
void ToPoolEvent(const PoolEventRecord& event, uint64_t lost,
                 v1::PoolEvent* proto);

}  // namespace egress

#endif  // EGRESS_SERVER_POOL_ADMIN_SERVICE_H_
