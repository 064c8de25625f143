// TokenCheckedPoolAdmin: PoolAdmin behind a bearer token
// (listeners.admin_token). A caller must send the gRPC metadata
//   authorization: Bearer <token>
// or gets UNAUTHENTICATED before the wrapped service sees the call.
//
// Why a wrapper rather than a grpc::AuthMetadataProcessor: gRPC 1.51 attaches
// processors only to secure server credentials, and PoolAdmin listens with
// insecure ones. Wrapping fails closed: an RPC added to PoolAdmin later and
// not forwarded here answers UNIMPLEMENTED, never unauthenticated data.
//
// Thread-safe. `inner` must outlive this object. Register this service with
// the admin server instead of `inner`, never both.
#ifndef EGRESS_SERVER_ADMIN_AUTH_H_
#define EGRESS_SERVER_ADMIN_AUTH_H_

#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "server/admin_token.h"  // BearerTokenMatches

namespace egress {

class TokenCheckedPoolAdmin final : public v1::PoolAdmin::CallbackService {
 public:
  TokenCheckedPoolAdmin(std::string token,
                        v1::PoolAdmin::CallbackService* inner)
      : token_(std::move(token)), inner_(inner) {}

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
  // Whether the call carries the token.
  bool Authorized(grpc::CallbackServerContext* context) const;
  // Null if the call carries the token; else a reactor already finished
  // with UNAUTHENTICATED.
  grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* context) const;

  const std::string token_;
  v1::PoolAdmin::CallbackService* const inner_;
};

}  // namespace egress

#endif  // EGRESS_SERVER_ADMIN_AUTH_H_
