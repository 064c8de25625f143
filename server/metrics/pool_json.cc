#include "server/metrics/pool_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client_core/connection/close_reason.h"
#include "client_core/connection/connection.h"
#include "client_core/tls/tls_info.h"

namespace egress::metrics {
namespace {

// Appends comma-separated members / elements; tracks the first one.
class JsonOut {
 public:
  explicit JsonOut(std::string* out) : out_(out) {}

  void Open(char c) {
    Separator();
    *out_ += c;
    first_ = true;
  }
  void Close(char c) {
    *out_ += c;
    first_ = false;
  }
  // "name": (inside an object); the value follows.
  void Key(absl::string_view name) {
    Separator();
    absl::StrAppend(out_, JsonString(name), ":");
    first_ = true;  // the value needs no separator
  }
  void String(absl::string_view v) { Raw(JsonString(v)); }
  void Number(uint64_t v) { Raw(absl::StrCat(v)); }
  void Number(int64_t v) { Raw(absl::StrCat(v)); }
  void Double(double v) {
    if (!std::isfinite(v)) v = 0;
    Raw(FormatValue(v));
  }
  void Bool(bool v) { Raw(v ? "true" : "false"); }
  void Time(absl::Time t) {
    if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
      Raw("null");
    } else {
      Number(static_cast<int64_t>(absl::ToUnixMillis(t)));
    }
  }
  void Raw(absl::string_view text) {
    Separator();
    out_->append(text.data(), text.size());
  }

  // Key + value in one.
  void Field(absl::string_view k, uint64_t v) {
    Key(k);
    Number(v);
  }
  void Field(absl::string_view k, absl::string_view v) {
    Key(k);
    String(v);
  }
  void FieldMs(absl::string_view k, absl::Duration d) {
    Key(k);
    Double(absl::ToDoubleMilliseconds(d));
  }

 private:
  void Separator() {
    if (!first_) *out_ += ',';
    first_ = false;
  }
  std::string* out_;
  bool first_ = true;
};

absl::string_view View(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

absl::Duration Average(absl::Duration sum, uint64_t n) {
  return n == 0 ? absl::ZeroDuration() : sum / static_cast<int64_t>(n);
}

constexpr const char* kPhaseKeys[kPhaseCount] = {
    "total", "queue_wait", "dns", "connect", "tls", "first_byte"};

}  // namespace

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string RenderPoolJson(const PoolPageData& d) {
  const PoolSnapshot& pool = d.state.pool;
  const CallTotals& calls = d.state.calls;
  std::string text;
  JsonOut j(&text);
  j.Open('{');
  j.Key("now");
  j.Time(d.now);
  j.Key("started");
  j.Time(d.started);
  j.Key("per_address_metrics");
  j.Bool(d.per_address_metrics);

  j.Key("totals");
  j.Open('{');
  j.Field("connections", pool.connection_count);
  j.Field("idle", pool.idle_count);
  j.Field("in_use", pool.in_use_count);
  j.Field("connecting", pool.connecting_count);
  j.Field("pending", pool.pending_count);
  j.Field("requests_in_flight", pool.requests_in_flight);
  j.Field("connections_opened", pool.connections_opened);
  j.Field("connect_failures", pool.connect_failures);
  j.Field("cleanup_wakeups", pool.cleanup_wakeups);
  j.Field("leaks", d.state.leaks_total);
  j.Field("succeeded", calls.succeeded);
  j.Field("failed", calls.failed);
  j.Field("on_new_connection", calls.on_new_connection);
  j.Field("on_reused_connection", calls.on_reused_connection);
  j.Close('}');

  j.Key("timing_avg_ms");
  j.Open('{');
  j.FieldMs("queue_wait", Average(calls.queue_wait, calls.succeeded));
  j.FieldMs("dns", Average(calls.dns, calls.on_new_connection));
  j.FieldMs("connect", Average(calls.connect, calls.on_new_connection));
  j.FieldMs("tls", Average(calls.tls, calls.on_new_connection));
  j.FieldMs("first_byte", Average(calls.first_byte, calls.succeeded));
  j.FieldMs("total", Average(calls.total, calls.succeeded));
  j.Close('}');

  j.Key("histograms");
  j.Open('{');
  for (size_t p = 0; p < kPhaseCount; ++p) {
    const HistogramData& h = d.state.call_metrics.phases[p];
    j.Key(kPhaseKeys[p]);
    j.Open('{');
    j.Key("bounds");
    j.Open('[');
    for (double b : h.upper_bounds) j.Double(b);
    j.Close(']');
    j.Key("counts");
    j.Open('[');
    for (uint64_t c : h.counts) j.Number(c);
    j.Close(']');
    j.Close('}');
  }
  j.Close('}');

  j.Key("closed_by_reason");
  j.Open('[');
  for (CloseReason reason : kAllCloseReasons) {
    j.Open('{');
    j.Field("reason", View(CloseReasonName(reason)));
    j.Field("count", pool.closed_by_reason[static_cast<size_t>(reason)]);
    j.Close('}');
  }
  j.Close(']');

  j.Key("rejected_by_limit");
  j.Open('[');
  for (size_t i = 0; i < kPoolLimitCount; ++i) {
    j.Open('{');
    j.Field("limit", PoolLimitName(static_cast<PoolLimit>(i)));
    j.Field("count", pool.rejected_by_limit[i]);
    j.Close('}');
  }
  j.Close(']');

  const PoolOptions& o = d.state.options;
  j.Key("config");
  j.Open('{');
  j.Field("max_idle_connections", o.max_idle_connections);
  j.Field("max_idle_per_address", o.max_idle_per_address);
  j.Field("max_connections", o.max_connections);
  j.Field("max_connections_per_address", o.max_connections_per_address);
  j.Field("max_requests_in_flight", o.max_requests_in_flight);
  j.Field("max_requests_in_flight_per_address",
          o.max_requests_in_flight_per_address);
  j.Field("max_pending_per_address", o.max_pending_per_address);
  j.FieldMs("keep_alive_ms", o.keep_alive);
  j.FieldMs("pending_timeout_ms", o.pending_timeout);
  j.FieldMs("max_connection_lifetime_ms", o.max_connection_lifetime);
  j.Close('}');

  // The busiest addresses first when there are more than can be listed.
  std::vector<const PoolSnapshot::AddressCounts*> addresses;
  addresses.reserve(pool.addresses.size());
  for (const PoolSnapshot::AddressCounts& a : pool.addresses) {
    addresses.push_back(&a);
  }
  if (addresses.size() > kMaxAddressesListed) {
    auto busier = [](const PoolSnapshot::AddressCounts* a,
                     const PoolSnapshot::AddressCounts* b) {
      return uint64_t{a->connection_count} + a->requests_in_flight >
             uint64_t{b->connection_count} + b->requests_in_flight;
    };
    std::partial_sort(addresses.begin(),
                      addresses.begin() + kMaxAddressesListed, addresses.end(),
                      busier);
    addresses.resize(kMaxAddressesListed);
  }
  j.Key("addresses");
  j.Open('[');
  for (const PoolSnapshot::AddressCounts* a : addresses) {
    j.Open('{');
    j.Field("address", a->address.ToString());
    j.Field("connections", a->connection_count);
    j.Field("idle", a->idle_count);
    j.Field("in_use", a->in_use_count);
    j.Field("connecting", a->connecting_count);
    j.Field("pending", a->pending_count);
    j.Field("requests_in_flight", a->requests_in_flight);
    j.Field("requests_served", a->requests_served);
    j.Field("http2", a->http2_count);
    j.Field("exchanges", a->allocations);
    j.Close('}');
  }
  j.Close(']');
  j.Field("addresses_total", pool.addresses.size());

  j.Key("connections");
  j.Open('[');
  for (const ConnectionSnapshot& c : d.look.connections) {
    j.Open('{');
    j.Field("id", c.id);
    j.Field("address", c.address.ToString());
    j.Field("remote_address", c.remote_address);
    j.Field("local_port", c.local_port);
    j.Field("state", c.idle_since == absl::InfinitePast() ? "in_use" : "idle");
    j.Key("created");
    j.Time(c.created);
    j.Key("last_used");
    j.Time(c.last_used);
    j.Key("idle_since");
    j.Time(c.idle_since);
    j.Field("protocol", View(ProtocolName(c.protocol)));
    const TlsInfo* tls =
        c.connection != nullptr ? c.connection->tls_info() : nullptr;
    j.Field("tls", tls != nullptr ? absl::string_view(tls->version)
                                  : absl::string_view());
    j.Field("allocations", static_cast<uint64_t>(std::max(0, c.allocations)));
    j.Field("allocation_limit",
            static_cast<uint64_t>(std::max(0, c.allocation_limit)));
    j.Field("success_count", c.success_count);
    j.Field("no_new_exchanges_reason", c.no_new_exchanges_reason);
    j.Close('}');
  }
  j.Close(']');
  j.Field("connections_total", pool.connection_count);
  j.Key("connections_listed_all");
  j.Bool(d.look.complete);

  j.Key("leaks");
  j.Open('[');
  // Newest first, like the events.
  for (auto it = d.look.leaks.rbegin(); it != d.look.leaks.rend(); ++it) {
    j.Open('{');
    j.Field("call_id", it->call_id);
    j.Field("method", it->method);
    j.Field("url", it->url);
    j.FieldMs("age_ms", it->age);
    j.Field("bytes_moved", it->bytes_moved);
    j.Field("connection_id", it->connection_id);
    j.Field("caller", it->caller);
    j.Key("detected_at");
    j.Time(it->detected_at);
    j.Close('}');
  }
  j.Close(']');

  j.Key("events");
  j.Open('[');
  for (const PoolEvent& e : d.events) {
    j.Open('{');
    j.Key("time");
    j.Time(e.time);
    j.Field("kind", e.kind);
    j.Field("connection_id", e.connection_id);
    j.Field("address", e.address);
    j.Field("detail", e.detail);
    j.Close('}');
  }
  j.Close(']');
  j.Close('}');
  return text;
}

}  // namespace egress::metrics
