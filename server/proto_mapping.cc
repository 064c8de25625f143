#include "server/proto_mapping.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/http2/http2_connection.h"
#include "client_core/url/url.h"

namespace egress {
namespace {

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  out->set_seconds(absl::ToInt64Seconds(d));
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(d - absl::Seconds(absl::ToInt64Seconds(d)))));
}

// Sets `out` only for a phase that happened.
void SetPhase(absl::Duration d, v1::Timing* timing,
              google::protobuf::Duration* (v1::Timing::*field)()) {
  if (d > absl::ZeroDuration()) SetDuration(d, (timing->*field)());
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(t);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

// Each byte as the code point of the same number, in UTF-8.
std::string Latin1ToUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;           // continuation bytes
    uint32_t min;    // smallest code point of this length (no overlongs)
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, min = 0x10000, cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

void SetOriginText(std::string raw, std::string* text, std::string* exact) {
  if (IsValidUtf8(raw)) {
    *text = std::move(raw);
    exact->clear();
    return;
  }
  *text = Latin1ToUtf8(raw);
  *exact = std::move(raw);
}

void AddHeader(HeaderField&& field,
               google::protobuf::RepeatedPtrField<v1::Header>* out) {
  v1::Header* header = out->Add();
  header->set_name(std::move(field.name));
  SetOriginText(std::move(field.value), header->mutable_value(),
                header->mutable_value_bytes());
}

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
    // value_bytes carries what a `string` cannot (common.proto).
    request.headers.push_back(
        {h.name(), h.value_bytes().empty() ? h.value() : h.value_bytes()});
  }
  request.body = proto.body();

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

  // Ranges are HttpClient's to check (ValidateCallOptions), like headers.
  const auto to_int = [](uint32_t v) {
    return static_cast<int>(std::min<uint32_t>(v, INT32_MAX));
  };
  request.follow_redirects = proto.follow_redirects();
  if (proto.max_redirects() > 0) {
    request.max_redirects = to_int(proto.max_redirects());
  }
  request.allow_insecure_redirects = proto.allow_insecure_redirects();
  request.decompress = proto.decompress();
  request.connect_retries = to_int(proto.connect_retries());
  const auto read_timeout = [](const char* field,
                               const google::protobuf::Duration& d,
                               absl::Duration* out) -> absl::Status {
    *out = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    if (*out <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must be positive"));
    }
    return absl::OkStatus();
  };
  if (proto.has_first_byte_timeout()) {
    if (absl::Status s = read_timeout("first_byte_timeout",
                                      proto.first_byte_timeout(),
                                      &request.first_byte_timeout);
        !s.ok()) {
      return s;
    }
  }
  if (proto.has_idle_read_timeout()) {
    if (absl::Status s = read_timeout("idle_read_timeout",
                                      proto.idle_read_timeout(),
                                      &request.idle_read_timeout);
        !s.ok()) {
      return s;
    }
  }
  return request;
}

void ToTiming(const CallTiming& t, v1::Timing* timing) {
  SetPhase(t.queue_wait, timing, &v1::Timing::mutable_queue_wait);
  SetPhase(t.dns, timing, &v1::Timing::mutable_dns);
  SetPhase(t.connect, timing, &v1::Timing::mutable_connect);
  SetPhase(t.tls, timing, &v1::Timing::mutable_tls);
  SetPhase(t.connection_acquired, timing,
           &v1::Timing::mutable_connection_acquired);
  SetPhase(t.request_written, timing, &v1::Timing::mutable_request_written);
  SetPhase(t.first_byte, timing, &v1::Timing::mutable_first_byte);
  SetPhase(t.total, timing, &v1::Timing::mutable_total);
}

void ToResponseHead(const Response& response, uint64_t call_id,
                    v1::ResponseHead* proto) {
  proto->set_status_code(response.status_code);
  SetOriginText(response.reason, proto->mutable_reason(),
                proto->mutable_reason_bytes());
  for (const HeaderField& h : response.headers) {
    AddHeader(HeaderField(h), proto->mutable_headers());
  }
  proto->set_protocol(response.protocol);
  v1::ConnectionInfo* connection = proto->mutable_connection();
  connection->set_id(response.connection.connection_id);
  connection->set_reused(response.connection.reused);
  connection->set_remote_address(response.connection.remote_address);
  proto->set_call_id(call_id);
  for (const RedirectHop& hop : response.redirects) {
    v1::Redirect* out = proto->add_redirects();
    out->set_url(hop.url);
    out->set_status_code(hop.status_code);
  }
  proto->set_final_url(response.final_url);
  proto->set_decoded_content_encoding(response.decoded_content_encoding);
  proto->set_connect_retries(static_cast<uint32_t>(response.connect_retries));
}

void ToLeakReport(const LeakReport& leak, v1::LeakReport* proto) {
  proto->set_call_id(leak.call_id);
  proto->set_method(leak.method);
  proto->set_url(leak.url);
  SetDuration(leak.age, proto->mutable_age());
  proto->set_bytes_moved(leak.bytes_moved);
  proto->set_connection_id(leak.connection_id);
  proto->set_caller(leak.caller);
  SetTimestamp(leak.detected_at, proto->mutable_detected_at());
}

void ToFetchResponse(Response&& response, v1::FetchResponse* proto) {
  proto->set_status_code(response.status_code);
  SetOriginText(std::move(response.reason), proto->mutable_reason(),
                proto->mutable_reason_bytes());
  for (HeaderField& h : response.headers) {
    AddHeader(std::move(h), proto->mutable_headers());
  }
  proto->set_body(std::move(response.body));
  proto->set_protocol(std::move(response.protocol));
  v1::ConnectionInfo* connection = proto->mutable_connection();
  connection->set_id(response.connection.connection_id);
  connection->set_reused(response.connection.reused);
  connection->set_remote_address(std::move(response.connection.remote_address));
  for (HeaderField& h : response.trailers) {
    AddHeader(std::move(h), proto->mutable_trailers());
  }
  ToTiming(response.timing, proto->mutable_timing());
  for (RedirectHop& hop : response.redirects) {
    v1::Redirect* out = proto->add_redirects();
    out->set_url(std::move(hop.url));
    out->set_status_code(hop.status_code);
  }
  proto->set_final_url(std::move(response.final_url));
  proto->set_decoded_content_encoding(
      std::move(response.decoded_content_encoding));
  proto->set_connect_retries(static_cast<uint32_t>(response.connect_retries));
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
    out->set_connecting_count(a.connecting_count);
    out->set_pending_count(a.pending_count);
    out->set_requests_in_flight(a.requests_in_flight);
    out->set_http2_count(a.http2_count);
    out->set_streams_in_flight(a.allocations);
    out->set_bytes_in(a.bytes_in);
    out->set_bytes_out(a.bytes_out);
    for (CloseReason reason : kAllCloseReasons) {
      const uint64_t n = a.closed_by_reason[static_cast<size_t>(reason)];
      if (n != 0) {
        (*out->mutable_closed_by_reason())[std::string(
            CloseReasonName(reason))] = n;
      }
    }
    out->set_connect_failures(a.connect_failures);
    out->set_leaks(a.leaks);
  }
  for (CloseReason reason : kAllCloseReasons) {
    (*proto->mutable_closed_by_reason())[std::string(CloseReasonName(reason))] =
        snapshot.closed_by_reason[static_cast<size_t>(reason)];
  }
  for (size_t i = 0; i < kPoolLimitCount; ++i) {
    (*proto->mutable_rejected_by_limit())[std::string(
        PoolLimitName(static_cast<PoolLimit>(i)))] =
        snapshot.rejected_by_limit[i];
  }
  proto->set_connecting_count(snapshot.connecting_count);
  proto->set_pending_count(snapshot.pending_count);
  proto->set_requests_in_flight(snapshot.requests_in_flight);
  proto->set_connect_failures(snapshot.connect_failures);
  proto->set_cleanup_wakeups(snapshot.cleanup_wakeups);
  proto->set_bytes_in(snapshot.bytes_in);
  proto->set_bytes_out(snapshot.bytes_out);

  v1::PoolConfig* config = proto->mutable_config();
  const auto u32 = [](size_t v) { return static_cast<uint32_t>(v); };
  config->set_max_idle_connections(u32(options.max_idle_connections));
  SetDuration(options.keep_alive, config->mutable_keep_alive());
  config->set_max_idle_per_address(u32(options.max_idle_per_address));
  SetDuration(options.max_connection_lifetime,
              config->mutable_max_connection_lifetime());
  config->set_max_connections(u32(options.max_connections));
  config->set_max_connections_per_address(
      u32(options.max_connections_per_address));
  config->set_max_requests_in_flight(u32(options.max_requests_in_flight));
  config->set_max_requests_in_flight_per_address(
      u32(options.max_requests_in_flight_per_address));
  config->set_max_pending_per_address(u32(options.max_pending_per_address));
  SetDuration(options.pending_timeout, config->mutable_pending_timeout());
  SetDuration(options.health_check_after_idle,
              config->mutable_health_check_after_idle());
}

void ToConnectFailures(
    const std::array<uint64_t, kConnectFailureCount>& failures,
    v1::PoolStats* out) {
  for (size_t i = 0; i < kConnectFailureCount; ++i) {
    (*out->mutable_connect_failures_by_reason())[std::string(
        ConnectFailureName(static_cast<ConnectFailure>(i)))] = failures[i];
  }
}

void ToTlsTotals(const TlsStats& s, v1::TlsTotals* out) {
  out->set_handshakes(s.handshakes);
  out->set_resumed(s.resumed);
  for (size_t i = 0; i < kTlsFailureCount; ++i) {
    (*out->mutable_failures())[std::string(
        TlsFailureName(static_cast<TlsFailure>(i)))] = s.failures[i];
  }
}

void ToCallTotals(const CallTotals& t, v1::CallTotals* out) {
  out->set_succeeded(t.succeeded);
  out->set_failed(t.failed);
  out->set_on_new_connection(t.on_new_connection);
  out->set_on_reused_connection(t.on_reused_connection);
  SetDuration(t.queue_wait, out->mutable_queue_wait());
  SetDuration(t.dns, out->mutable_dns());
  SetDuration(t.connect, out->mutable_connect());
  SetDuration(t.tls, out->mutable_tls());
  SetDuration(t.first_byte, out->mutable_first_byte());
  SetDuration(t.total, out->mutable_total());
}

void ToConnectionStats(const ConnectionSnapshot& c, v1::ConnectionStats* out) {
  out->set_id(c.id);
  out->set_address(c.address.ToString());
  out->set_remote_address(c.remote_address);
  out->set_local_port(c.local_port);
  out->set_protocol(std::string(ProtocolName(c.protocol)));
  out->set_allocation_limit(static_cast<uint32_t>(c.allocation_limit));
  out->set_bytes_in(c.bytes_in);
  out->set_bytes_out(c.bytes_out);
  if (c.connection != nullptr) {
    if (const TlsInfo* tls = c.connection->tls_info()) {
      v1::TlsSession* t = out->mutable_tls();
      t->set_version(tls->version);
      t->set_cipher(tls->cipher);
      t->set_alpn(tls->alpn);
      t->set_resumed(tls->session_resumed);
      t->set_verified(tls->verified);
      t->set_peer_subject(tls->peer_subject);
      if (tls->peer_not_after != absl::InfinitePast()) {
        SetTimestamp(tls->peer_not_after, t->mutable_peer_not_after());
      }
    }
    if (c.protocol == Protocol::kHttp2) {
      const auto* h2 = static_cast<const Http2Connection*>(c.connection.get());
      const Http2Connection::StreamCounts counts = h2->stream_counts();
      v1::Http2Streams* streams = out->mutable_http2();
      streams->set_peer_max_concurrent_streams(
          counts.peer_max_concurrent_streams);
      streams->set_started(counts.started);
      streams->set_succeeded(counts.succeeded);
      streams->set_failed(counts.failed);
    }
  }
  SetTimestamp(c.created, out->mutable_created());
  SetTimestamp(c.last_used, out->mutable_last_used());
  if (c.idle_since != absl::InfinitePast()) {
    SetTimestamp(c.idle_since, out->mutable_idle_since());
  }
  out->set_allocations(static_cast<uint32_t>(c.allocations));
  out->set_success_count(c.success_count);
  out->set_no_new_exchanges_reason(c.no_new_exchanges_reason);
}

absl::StatusOr<Address> ParseAddress(absl::string_view text) {
  // "scheme://host:port", optionally " via PROXY"; "http://* via PROXY" for a
  // proxy's http:// connections (Address::ToString).
  absl::string_view base = text;
  std::string proxy;
  if (const size_t via = text.find(" via "); via != absl::string_view::npos) {
    base = text.substr(0, via);
    proxy = std::string(text.substr(via + 5));
  }
  const auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "address '", text, "' is not scheme://host:port [via PROXY] (e.g. ",
        "http://example.com:80, https://example.com:443 via corp)"));
  };
  if (!proxy.empty() && base == "http://*") {
    Address address;
    address.scheme = "http";
    address.proxy = proxy;
    return address;
  }
  absl::StatusOr<Url> url = ParseUrl(std::string_view(base.data(), base.size()));
  if (!url.ok() || url->path_and_query != "/") return invalid();
  Address address = Address::FromUrl(*url);
  address.proxy = proxy;
  return address;
}

}  // namespace egress
