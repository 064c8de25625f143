#include "server/admin_auth.h"

namespace egress {
namespace {

const char kUnauthenticated[] =
    "PoolAdmin requires the metadata 'authorization: Bearer <token>' with "
    "egressd's admin token (listeners.admin_token)";

// A stream refused before it started: finished at once.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::PoolEvent> {
 public:
  explicit RefusedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

bool TokenCheckedPoolAdmin::Authorized(
    grpc::CallbackServerContext* context) const {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  return it != metadata.end() &&
         BearerTokenMatches(
             absl::string_view(it->second.data(), it->second.size()), token_);
}

grpc::ServerUnaryReactor* TokenCheckedPoolAdmin::Reject(
    grpc::CallbackServerContext* context) const {
  if (Authorized(context)) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(
      grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticated));
  return reactor;
}

grpc::ServerUnaryReactor* TokenCheckedPoolAdmin::GetPoolStats(
    grpc::CallbackServerContext* context,
    const v1::GetPoolStatsRequest* request, v1::PoolStats* response) {
  if (grpc::ServerUnaryReactor* rejected = Reject(context)) return rejected;
  return inner_->GetPoolStats(context, request, response);
}

grpc::ServerUnaryReactor* TokenCheckedPoolAdmin::ListConnections(
    grpc::CallbackServerContext* context,
    const v1::ListConnectionsRequest* request,
    v1::ListConnectionsResponse* response) {
  if (grpc::ServerUnaryReactor* rejected = Reject(context)) return rejected;
  return inner_->ListConnections(context, request, response);
}

grpc::ServerUnaryReactor* TokenCheckedPoolAdmin::EvictIdle(
    grpc::CallbackServerContext* context, const v1::EvictIdleRequest* request,
    v1::EvictIdleResponse* response) {
  if (grpc::ServerUnaryReactor* rejected = Reject(context)) return rejected;
  return inner_->EvictIdle(context, request, response);
}

grpc::ServerUnaryReactor* TokenCheckedPoolAdmin::ListLeaks(
    grpc::CallbackServerContext* context, const v1::ListLeaksRequest* request,
    v1::ListLeaksResponse* response) {
  if (grpc::ServerUnaryReactor* rejected = Reject(context)) return rejected;
  return inner_->ListLeaks(context, request, response);
}

grpc::ServerUnaryReactor* TokenCheckedPoolAdmin::Drain(
    grpc::CallbackServerContext* context, const v1::DrainRequest* request,
    v1::DrainResponse* response) {
  if (grpc::ServerUnaryReactor* rejected = Reject(context)) return rejected;
  return inner_->Drain(context, request, response);
}

grpc::ServerWriteReactor<v1::PoolEvent>* TokenCheckedPoolAdmin::WatchPoolEvents(
    grpc::CallbackServerContext* context,
    const v1::WatchPoolEventsRequest* request) {
  if (!Authorized(context)) {
    return new RefusedWatch(
        grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticated));
  }
  return inner_->WatchPoolEvents(context, request);
}

}  // namespace egress
