#include "server/pool_table.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/egress/v1/admin.pb.h"

namespace egress {
namespace {

using Row = std::vector<std::string>;

enum class Align { kLeft, kRight };

// Appends rows as aligned columns two spaces apart, each line prefixed by
// indent; align[c] says how column c is aligned (missing entries: right).
// Padding that would end a line is left out, so lines carry no trailing
// spaces.
void AppendColumns(const std::vector<Row>& rows,
                   const std::vector<Align>& align, absl::string_view indent,
                   std::string* out) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  for (const Row& row : rows) {
    std::string line(indent);
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string padding(widths[c] - row[c].size(), ' ');
      if (c > 0) absl::StrAppend(&line, "  ");
      if (c < align.size() && align[c] == Align::kLeft) {
        absl::StrAppend(&line, row[c], padding);
      } else {
        absl::StrAppend(&line, padding, row[c]);
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(out, line, "\n");
  }
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// Appends "<title>:" and one indented, aligned line per non-zero count,
// sorted by name (a proto map has no order; sorting keeps output stable).
// Returns false, appending nothing, when every count is zero.
bool AppendCounts(absl::string_view title,
                  const google::protobuf::Map<std::string, uint64_t>& counts,
                  std::string* out) {
  std::vector<std::pair<std::string, uint64_t>> nonzero;
  for (const auto& [name, count] : counts) {
    if (count != 0) nonzero.emplace_back(name, count);
  }
  if (nonzero.empty()) return false;
  std::sort(nonzero.begin(), nonzero.end());
  absl::StrAppend(out, title, ":\n");
  std::vector<Row> rows;
  for (const auto& [name, count] : nonzero) {
    rows.push_back({name, absl::StrCat(count)});
  }
  AppendColumns(rows, {Align::kLeft}, "  ", out);
  return true;
}

}  // namespace

std::string FormatAge(absl::Duration d) {
  if (d < absl::ZeroDuration()) return "0s";
  if (d < absl::Seconds(10)) {
    // Tenths, truncated: "9.99s" must not become "10.0s".
    const int64_t tenths = absl::ToInt64Milliseconds(d) / 100;
    return absl::StrFormat("%d.%ds", tenths / 10, tenths % 10);
  }
  const int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::string FormatPoolStats(const egress::v1::PoolStats& stats) {
  std::string out = absl::StrCat(
      "connections: ", stats.connection_count(), " open (",
      stats.idle_count(), " idle, ", stats.in_use_count(), " in use), ",
      stats.connecting_count(), " connecting, ", stats.connections_opened(),
      " opened since start\n", "requests: ", stats.requests_in_flight(),
      " in flight (", stats.pending_count(), " pending)\n");
  if (stats.connect_failures() != 0) {
    absl::StrAppend(&out, "connect failures: ", stats.connect_failures(),
                    "\n");
  }
  if (stats.leaks_detected() != 0) {
    absl::StrAppend(&out, "leaks detected: ", stats.leaks_detected(),
                    " (egressctl leaks)\n");
  }
  if (stats.tls().handshakes() != 0) {
    absl::StrAppend(&out, "tls handshakes: ", stats.tls().handshakes(), " (",
                    stats.tls().resumed(), " resumed)\n");
  }
  absl::StrAppend(&out, "\n");

  if (stats.addresses().empty()) {
    absl::StrAppend(&out, "no open connections\n");
  } else {
    std::vector<Row> rows = {{"ADDRESS", "CONNS", "H2", "IDLE", "IN USE",
                              "STREAMS", "CONNECTING", "PENDING", "IN FLIGHT",
                              "SERVED"}};
    for (const egress::v1::AddressStats& a : stats.addresses()) {
      rows.push_back({a.address(), absl::StrCat(a.connection_count()),
                      absl::StrCat(a.http2_count()),
                      absl::StrCat(a.idle_count()),
                      absl::StrCat(a.in_use_count()),
                      absl::StrCat(a.streams_in_flight()),
                      absl::StrCat(a.connecting_count()),
                      absl::StrCat(a.pending_count()),
                      absl::StrCat(a.requests_in_flight()),
                      absl::StrCat(a.requests_served())});
    }
    AppendColumns(rows, {Align::kLeft}, "", &out);
  }
  absl::StrAppend(&out, "\n");

  if (!AppendCounts("closed by reason", stats.closed_by_reason(), &out)) {
    absl::StrAppend(&out, "closed by reason: none\n");
  }
  absl::StrAppend(&out, "\n");
  // Rejections are the exception; a block of zeros would only be noise.
  if (AppendCounts("rejected by limit", stats.rejected_by_limit(), &out)) {
    absl::StrAppend(&out, "\n");
  }
  if (AppendCounts("tls failures", stats.tls().failures(), &out)) {
    absl::StrAppend(&out, "\n");
  }

  if (stats.has_config()) {
    absl::StrAppend(&out, "config: max idle connections ",
                    stats.config().max_idle_connections(), ", keep-alive ",
                    absl::FormatDuration(ToDuration(stats.config().keep_alive())),
                    "\n");
  } else {
    absl::StrAppend(&out, "config: not reported\n");
  }
  return out;
}

std::string FormatConnections(
    const egress::v1::ListConnectionsResponse& connections, absl::Time now) {
  if (connections.connections().empty()) return "no open connections\n";
  std::vector<Row> rows = {{"ID", "ADDRESS", "REMOTE", "LOCAL PORT", "PROTO",
                            "TLS", "STATE", "STREAMS", "AGE", "IDLE FOR",
                            "SERVED", "NO NEW EXCHANGES"}};
  for (const egress::v1::ConnectionStats& c : connections.connections()) {
    const bool idle = c.has_idle_since();
    // "TLSv1.3" plus "resumed" / "UNVERIFIED" when they apply.
    std::string tls = "-";
    if (c.has_tls()) {
      tls = c.tls().version();
      if (c.tls().resumed()) absl::StrAppend(&tls, " resumed");
      if (!c.tls().verified()) absl::StrAppend(&tls, " UNVERIFIED");
    }
    // In flight / allowed at once (1/1 for a busy HTTP/1.1 connection).
    const std::string streams =
        c.allocation_limit() == 0
            ? absl::StrCat(c.allocations())
            : absl::StrCat(c.allocations(), "/", c.allocation_limit());
    rows.push_back(
        {absl::StrCat(c.id()), c.address(),
         c.remote_address().empty() ? "-" : c.remote_address(),
         absl::StrCat(c.local_port()),
         c.protocol().empty() ? "-" : c.protocol(), tls,
         idle ? "idle" : "in use", streams,
         FormatAge(now - ToTime(c.created())),
         idle ? FormatAge(now - ToTime(c.idle_since())) : "-",
         absl::StrCat(c.success_count()),
         c.no_new_exchanges_reason().empty() ? "-"
                                             : c.no_new_exchanges_reason()});
  }
  std::string out;
  AppendColumns(rows,
                {Align::kRight, Align::kLeft, Align::kLeft, Align::kRight,
                 Align::kLeft, Align::kLeft, Align::kLeft, Align::kRight,
                 Align::kRight, Align::kRight, Align::kRight, Align::kLeft},
                "", &out);
  return out;
}

std::string FormatLeaks(const egress::v1::ListLeaksResponse& leaks) {
  if (leaks.leaks().empty() && leaks.total() == 0) {
    return "no leaks detected since start\n";
  }
  std::string out;
  if (!leaks.leaks().empty()) {
    std::vector<Row> rows = {
        {"CALL", "METHOD", "URL", "AGE", "BYTES", "CONN", "CALLER"}};
    for (const egress::v1::LeakReport& leak : leaks.leaks()) {
      rows.push_back({absl::StrCat(leak.call_id()), leak.method(), leak.url(),
                      FormatAge(ToDuration(leak.age())),
                      absl::StrCat(leak.bytes_moved()),
                      absl::StrCat(leak.connection_id()),
                      leak.caller().empty() ? "-" : leak.caller()});
    }
    AppendColumns(rows,
                  {Align::kRight, Align::kLeft, Align::kLeft, Align::kRight,
                   Align::kRight, Align::kRight, Align::kLeft},
                  "", &out);
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, leaks.total(), " leak(s) detected since start");
  // The ring keeps only the newest reports.
  if (static_cast<uint64_t>(leaks.leaks_size()) < leaks.total()) {
    absl::StrAppend(&out, ", the newest ", leaks.leaks_size(), " listed");
  }
  absl::StrAppend(&out, "\n");
  return out;
}

std::string EventKindName(egress::v1::PoolEvent::Kind kind) {
  switch (kind) {
    case egress::v1::PoolEvent::OPENED: return "opened";
    case egress::v1::PoolEvent::ACQUIRED: return "acquired";
    case egress::v1::PoolEvent::RELEASED: return "released";
    case egress::v1::PoolEvent::IDLE: return "idle";
    case egress::v1::PoolEvent::CLOSED: return "closed";
    case egress::v1::PoolEvent::CONNECT_FAILED: return "connect_failed";
    case egress::v1::PoolEvent::LEAK_DETECTED: return "leak_detected";
    default: return "unknown";
  }
}

namespace {

// The event line's columns, so that the header and the lines agree.
std::string EventLine(absl::string_view time, absl::string_view event,
                      absl::string_view conn, absl::string_view address,
                      absl::string_view detail) {
  std::string line = absl::StrFormat("%-24s  %-14s  %6s  %-28s  %s", time,
                                     event, conn, address, detail);
  line.erase(line.find_last_not_of(' ') + 1);
  line.push_back('\n');
  return line;
}

std::string EventDetail(const egress::v1::PoolEvent& event) {
  switch (event.kind()) {
    case egress::v1::PoolEvent::ACQUIRED:
      return event.reused() ? "reused" : "new";
    case egress::v1::PoolEvent::RELEASED:
      return event.succeeded() ? "completed" : "failed";
    case egress::v1::PoolEvent::CLOSED:
    case egress::v1::PoolEvent::CONNECT_FAILED:
      return event.reason().empty() ? "-" : event.reason();
    case egress::v1::PoolEvent::LEAK_DETECTED: {
      const egress::v1::LeakReport& leak = event.leak();
      return absl::StrCat("call ", leak.call_id(), " ", leak.method(), " ",
                          leak.url(), " after ",
                          FormatAge(ToDuration(leak.age())), ", ",
                          leak.bytes_moved(), " bytes, caller ",
                          leak.caller().empty() ? "-" : leak.caller());
    }
    default:
      return "-";
  }
}

}  // namespace

std::string FormatPoolEventHeader() {
  return EventLine("TIME", "EVENT", "CONN", "ADDRESS", "DETAIL");
}

std::string FormatPoolEvent(const egress::v1::PoolEvent& event) {
  std::string out;
  if (event.lost() > 0) {
    absl::StrAppend(&out, "... ", event.lost(),
                    " event(s) lost: egressctl read too slowly\n");
  }
  const std::string time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", ToTime(event.time()),
                       absl::UTCTimeZone());
  absl::StrAppend(
      &out, EventLine(time, EventKindName(event.kind()),
                      absl::StrCat(event.connection_id()),
                      event.address().empty() ? "-" : event.address(),
                      EventDetail(event)));
  return out;
}

}  // namespace egress
