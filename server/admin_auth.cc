#include "server/admin_auth.h"

#include "absl/strings/match.h"

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

bool BearerTokenMatches(absl::string_view metadata_value,
                        absl::string_view token) {
  constexpr absl::string_view kScheme = "Bearer ";
  if (token.empty() || metadata_value.size() != kScheme.size() + token.size() ||
      !absl::StartsWithIgnoreCase(metadata_value, kScheme)) {
    return false;
  }
  // Only the length leaks, which the token's owner chose anyway.
  const absl::string_view given = metadata_value.substr(kScheme.size());
  unsigned char difference = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ token[i]);
  }
  return difference == 0;
}

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
