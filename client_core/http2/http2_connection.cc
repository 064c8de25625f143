// TEMPORARY stub written by the lead so that :client links while the HTTP/2
// codec is being written. The HTTP/2 helper replaces this whole file.
#include "client_core/http2/http2_connection.h"

namespace egress {

class Http2Connection::Impl {};

Http2Connection::Http2Connection(uint64_t id, Address address,
                                 std::unique_ptr<Transport> transport,
                                 const Http2Options&)
    : Connection(id, std::move(address), std::move(transport),
                 Protocol::kHttp2) {}
Http2Connection::~Http2Connection() = default;
int Http2Connection::allocation_limit() const { return 1; }
void Http2Connection::Start() {}
asio::awaitable<ExchangeResult> Http2Connection::Exchange(
    const Request&, const Http1Limits&, uint64_t, absl::Time, ExchangeSink*,
    CallAbort*) {
  ExchangeResult r;
  r.response = absl::UnimplementedError("HTTP/2 stub");
  co_return r;
}
Connection::Health Http2Connection::ProbeHealth() const {
  return Health::kPeerClosed;
}
void Http2Connection::Close() { Connection::Close(); }
asio::awaitable<absl::Status> Http2Connection::Ping(absl::Duration) {
  co_return absl::UnimplementedError("HTTP/2 stub");
}
Http2Connection::StreamCounts Http2Connection::stream_counts() const {
  return {};
}

}  // namespace egress
