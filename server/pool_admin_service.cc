#include "server/pool_admin_service.h"

#include "server/proto_mapping.h"

namespace egress {

grpc::ServerUnaryReactor* PoolAdminService::GetPoolStats(
    grpc::CallbackServerContext* context,
    const v1::GetPoolStatsRequest* /*request*/, v1::PoolStats* response) {
  ToPoolStats(client_->pool().Snapshot(), client_->pool().options(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace egress
