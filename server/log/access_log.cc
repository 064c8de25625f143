#include "server/log/access_log.h"

#include <atomic>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "client_core/url/url.h"
#include "server/log/log.h"

namespace egress::log {
namespace {

std::atomic<bool> access_log_enabled{true};

}  // namespace

std::string FormatAccessLine(absl::Time ts, const AccessRecord& record,
                             const absl::StatusOr<Response>& result) {
  LineBuilder line(ts, Level::kInfo, "access");
  line.Add("rpc", record.rpc)
      .Add("call_id", record.call_id)
      .Add("caller", record.caller)
      .Add("method", record.method);
  // Parsed again rather than cut by hand: the parser is what knows where a
  // query or userinfo starts, and a URL it rejects is not logged at all.
  absl::StatusOr<Url> url =
      ParseUrl(std::string_view(record.url.data(), record.url.size()));
  if (url.ok()) {
    const std::string_view target = url->path_and_query;
    const std::string_view path = target.substr(0, target.find('?'));
    line.Add("scheme", url->scheme)
        .Add("host", url->host)
        .Add("port", url->port)
        .Add("path", absl::string_view(path.data(), path.size()));
  } else {
    line.Add("url_invalid", true);
  }
  line.Add("grpc_code", absl::StatusCodeToString(result.status().code()));
  if (result.ok()) {
    const Response& r = *result;
    const CallTiming& t = r.timing;
    line.Add("status", r.status_code)
        .Add("protocol", r.protocol)
        .Add("connection_id", r.connection.connection_id)
        .Add("reused", r.connection.reused)
        .Add("total_ms", t.total)
        .Add("queue_ms", t.queue_wait)
        .Add("dns_ms", t.dns)
        .Add("connect_ms", t.connect)
        .Add("tls_ms", t.tls)
        .Add("first_byte_ms", t.first_byte);
  } else {
    line.Add("error", result.status().message());
  }
  line.Add("bytes_in", record.bytes_in).Add("bytes_out", record.bytes_out);
  return std::move(line).Finish();
}

void SetAccessLogEnabled(bool enabled) {
  access_log_enabled.store(enabled, std::memory_order_relaxed);
}

bool AccessLogEnabled() {
  return access_log_enabled.load(std::memory_order_relaxed);
}

void LogAccess(const AccessRecord& record,
               const absl::StatusOr<Response>& result) {
  if (!AccessLogEnabled()) return;
  Default().WriteLine(FormatAccessLine(absl::Now(), record, result));
}

}  // namespace egress::log
