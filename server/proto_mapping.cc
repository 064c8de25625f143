#include "server/proto_mapping.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/http1/request_writer.h"
#include "client_core/url/url.h"

namespace egress {

absl::StatusOr<Request> ToRequest(const v1::FetchRequest& proto,
                                  absl::Time now, absl::Time rpc_deadline,
                                  absl::Duration default_timeout) {
  Request request;
  if (proto.method().empty()) {
    return absl::InvalidArgumentError("method is empty (e.g. \"GET\")");
  }
  request.method = proto.method();
  if (proto.url().empty()) {
    return absl::InvalidArgumentError("url is empty");
  }
  absl::StatusOr<Url> url = ParseUrl(proto.url());
  if (!url.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("url: ", url.status().message()));
  }
  request.url = *std::move(url);
  request.headers.reserve(proto.headers_size());
  for (const v1::Header& h : proto.headers()) {
    request.headers.push_back({h.name(), h.value()});
  }
  request.body = proto.body();
  if (absl::Status valid = ValidateRequest(request); !valid.ok()) {
    return valid;
  }

  absl::Time deadline = rpc_deadline;
  if (proto.has_timeout()) {
    const absl::Duration timeout = absl::Seconds(proto.timeout().seconds()) +
                                   absl::Nanoseconds(proto.timeout().nanos());
    if (timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("timeout must be positive");
    }
    deadline = std::min(deadline, now + timeout);
  } else if (deadline == absl::InfiniteFuture()) {
    deadline = now + default_timeout;
  }
  request.deadline = deadline;
  return request;
}

void ToFetchResponse(Response&& response, v1::FetchResponse* proto) {
  proto->set_status_code(response.status_code);
  proto->set_reason(std::move(response.reason));
  for (HeaderField& h : response.headers) {
    v1::Header* out = proto->add_headers();
    out->set_name(std::move(h.name));
    out->set_value(std::move(h.value));
  }
  proto->set_body(std::move(response.body));
  proto->set_protocol(std::move(response.protocol));
  v1::ConnectionInfo* connection = proto->mutable_connection();
  connection->set_id(response.connection.connection_id);
  connection->set_reused(response.connection.reused);
  connection->set_remote_address(std::move(response.connection.remote_address));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void ToPoolStats(const PoolSnapshot& snapshot, const PoolOptions& options,
                 v1::PoolStats* proto) {
  proto->set_connection_count(snapshot.connection_count);
  proto->set_idle_count(snapshot.idle_count);
  proto->set_in_use_count(snapshot.in_use_count);
  proto->set_connections_opened(snapshot.connections_opened);
  for (const PoolSnapshot::AddressCounts& a : snapshot.addresses) {
    v1::AddressStats* out = proto->add_addresses();
    out->set_address(a.address.ToString());
    out->set_scheme(a.address.scheme);
    out->set_host(a.address.host);
    out->set_port(a.address.port);
    out->set_connection_count(a.connection_count);
    out->set_idle_count(a.idle_count);
    out->set_in_use_count(a.in_use_count);
    out->set_requests_served(a.requests_served);
  }
  for (CloseReason reason : kAllCloseReasons) {
    (*proto->mutable_closed_by_reason())[std::string(CloseReasonName(reason))] =
        snapshot.closed_by_reason[static_cast<size_t>(reason)];
  }
  v1::PoolConfig* config = proto->mutable_config();
  config->set_max_idle_connections(
      static_cast<uint32_t>(options.max_idle_connections));
  const absl::Duration keep_alive = options.keep_alive;
  config->mutable_keep_alive()->set_seconds(
      absl::ToInt64Seconds(keep_alive));
  config->mutable_keep_alive()->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(keep_alive % absl::Seconds(1))));
}

}  // namespace egress
