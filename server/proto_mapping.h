// Mapping between the egress.v1 proto contract and client_core's types.
// The only place that knows both; client_core never sees a proto.
#ifndef EGRESS_SERVER_PROTO_MAPPING_H_
#define EGRESS_SERVER_PROTO_MAPPING_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client_core/call/http_client.h"
#include "client_core/call/leak_registry.h"
#include "client_core/connection/pool.h"
#include "client_core/http/request.h"
#include "client_core/tls/tls_client.h"
#include "grpcpp/support/status.h"
#include "proto/egress/v1/admin.pb.h"
#include "proto/egress/v1/fetch.pb.h"

namespace egress {

// Builds a client_core Request. `now` and `rpc_deadline` (InfiniteFuture when
// the caller set none) give the call's deadline: the earlier of the RPC
// deadline and now + FetchRequest.timeout, or now + `default_timeout` when
// neither is set. Errors are kInvalidArgument naming the field, e.g.
// "url: URL has unsupported scheme 'ftp' (only http and https)",
// "method is empty". Method tokens and header fields are not checked here:
// HttpClient checks every request it is given (ValidateRequest) and fails
// the call with kInvalidArgument, so the check runs once per call.
absl::StatusOr<Request> ToRequest(const v1::FetchRequest& proto,
                                  absl::Time now, absl::Time rpc_deadline,
                                  absl::Duration default_timeout);

void ToTiming(const CallTiming& timing, v1::Timing* proto);

// The head of a streamed response (status, headers, connection).
void ToResponseHead(const Response& response, uint64_t call_id,
                    v1::ResponseHead* proto);

void ToLeakReport(const LeakReport& leak, v1::LeakReport* proto);

// Fills `proto` from `response` (moves the body).
void ToFetchResponse(Response&& response, v1::FetchResponse* proto);

// Sets a proto3 `string` field and its `bytes` companion from bytes an
// origin sent (a header value, a reason phrase): valid UTF-8 goes to `text`
// alone (`exact` cleared); anything else to `exact` as it is and to `text`
// read as ISO-8859-1 (common.proto's Header says why).
void SetOriginText(std::string raw, std::string* text, std::string* exact);

// Appends `field` to `out` (moved), its value set by SetOriginText.
void AddHeader(HeaderField&& field,
               google::protobuf::RepeatedPtrField<v1::Header>* out);

// Whether `bytes` is UTF-8 as protobuf's `string` fields require (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// The same code and message as a grpc::Status (absl and gRPC share codes).
grpc::Status ToGrpcStatus(const absl::Status& status);

// PoolStats from a pool snapshot and the pool's options.
void ToPoolStats(const PoolSnapshot& snapshot, const PoolOptions& options,
                 v1::PoolStats* proto);
// Connect failures by reason (Connector::failures()), for PoolStats.
void ToConnectFailures(
    const std::array<uint64_t, kConnectFailureCount>& failures,
    v1::PoolStats* out);
// Handshake counts and failures by cause, for PoolStats.tls.
void ToTlsTotals(const TlsStats& stats, v1::TlsTotals* out);

void ToCallTotals(const CallTotals& totals, v1::CallTotals* proto);

// One ListConnections entry.
void ToConnectionStats(const ConnectionSnapshot& connection,
                       v1::ConnectionStats* proto);

// Parses an address as PoolStats prints it, "scheme://host:port"
// (kInvalidArgument otherwise).
absl::StatusOr<Address> ParseAddress(absl::string_view text);

}  // namespace egress

#endif  // EGRESS_SERVER_PROTO_MAPPING_H_
