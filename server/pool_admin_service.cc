#include "server/pool_admin_service.h"

#include <optional>

#include "server/proto_mapping.h"

namespace egress {

grpc::ServerUnaryReactor* PoolAdminService::GetPoolStats(
    grpc::CallbackServerContext* context,
    const v1::GetPoolStatsRequest* /*request*/, v1::PoolStats* response) {
  ToPoolStats(client_->pool().Snapshot(), client_->pool().options(), response);
  response->set_leaks_detected(client_->leaks().total());
  ToCallTotals(client_->totals(), response->mutable_call_totals());
  ToTlsTotals(client_->connector().tls().stats(), response->mutable_tls());
  ToConnectFailures(client_->connector().failures(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Page size when the caller asks for 0, and the largest page served.
constexpr uint32_t kDefaultPage = 100;
constexpr uint32_t kMaxPage = 1000;

}  // namespace

grpc::ServerUnaryReactor* PoolAdminService::ListConnections(
    grpc::CallbackServerContext* context,
    const v1::ListConnectionsRequest* request,
    v1::ListConnectionsResponse* response) {
  std::optional<Address> address;
  if (!request->address().empty()) {
    absl::StatusOr<Address> parsed = ParseAddress(request->address());
    if (!parsed.ok()) return Finish(context, ToGrpcStatus(parsed.status()));
    address = *parsed;
  }
  uint32_t page = request->max_results();
  if (page == 0) page = kDefaultPage;
  if (page > kMaxPage) page = kMaxPage;
  bool end = false;
  for (const ConnectionSnapshot& c : client_->pool().ListConnections(
           request->start_id(), page, address, &end)) {
    ToConnectionStats(c, response->add_connections());
  }
  response->set_end(end);
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PoolAdminService::EvictIdle(
    grpc::CallbackServerContext* context, const v1::EvictIdleRequest* request,
    v1::EvictIdleResponse* response) {
  std::optional<Address> address;
  if (!request->address().empty()) {
    absl::StatusOr<Address> parsed = ParseAddress(request->address());
    if (!parsed.ok()) return Finish(context, ToGrpcStatus(parsed.status()));
    address = *parsed;
  }
  response->set_evicted(
      static_cast<uint32_t>(client_->pool().EvictIdle(address)));
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PoolAdminService::ListLeaks(
    grpc::CallbackServerContext* context, const v1::ListLeaksRequest* /*request*/,
    v1::ListLeaksResponse* response) {
  for (const LeakReport& leak : client_->leaks().List()) {
    ToLeakReport(leak, response->add_leaks());
  }
  response->set_total(client_->leaks().total());
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PoolAdminService::Drain(
    grpc::CallbackServerContext* context, const v1::DrainRequest* /*request*/,
    v1::DrainResponse* response) {
  response->set_marked(static_cast<uint32_t>(client_->pool().Drain()));
  return Finish(context, grpc::Status::OK);
}

}  // namespace egress
