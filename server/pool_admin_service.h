// PoolAdminService: the PoolAdmin gRPC service (callback API; it is not on
// the hot path). Reads the HttpClient's pool, and evicts or drains it on
// request.
//
// Thread-safe. The HttpClient must outlive the service.
#ifndef EGRESS_SERVER_POOL_ADMIN_SERVICE_H_
#define EGRESS_SERVER_POOL_ADMIN_SERVICE_H_

#include "client_core/call/http_client.h"
#include "proto/egress/v1/admin.grpc.pb.h"

namespace egress {

class PoolAdminService final : public v1::PoolAdmin::CallbackService {
 public:
  explicit PoolAdminService(HttpClient* client) : client_(client) {}

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

 private:
  HttpClient* const client_;
};

}  // namespace egress

#endif  // EGRESS_SERVER_POOL_ADMIN_SERVICE_H_
