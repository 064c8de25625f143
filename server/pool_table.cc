#include "server/pool_table.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "proto/egress/v1/admin.pb.h"

namespace egress {
namespace {

using Row = std::vector<std::string>;

// Appends rows as aligned columns two spaces apart, each line prefixed by
// indent. Column 0 is left-aligned (text), the others right-aligned
// (numbers). The last cell of a line is never padded on its right, so lines
// carry no trailing spaces.
void AppendColumns(const std::vector<Row>& rows, absl::string_view indent,
                   std::string* out) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  for (const Row& row : rows) {
    absl::StrAppend(out, indent);
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string padding(widths[c] - row[c].size(), ' ');
      if (c > 0) absl::StrAppend(out, "  ");
      if (c == 0) {
        absl::StrAppend(out, row[c]);
        if (row.size() > 1) absl::StrAppend(out, padding);
      } else {
        absl::StrAppend(out, padding, row[c]);
      }
    }
    absl::StrAppend(out, "\n");
  }
}

std::string FormatKeepAlive(const google::protobuf::Duration& d) {
  return absl::FormatDuration(absl::Seconds(d.seconds()) +
                              absl::Nanoseconds(d.nanos()));
}

}  // namespace

std::string FormatPoolStats(const egress::v1::PoolStats& stats) {
  std::string out = absl::StrCat(
      "connections: ", stats.connection_count(), " open (",
      stats.idle_count(), " idle, ", stats.in_use_count(), " in use), ",
      stats.connections_opened(), " opened since start\n\n");

  if (stats.addresses().empty()) {
    absl::StrAppend(&out, "no open connections\n");
  } else {
    std::vector<Row> rows = {{"ADDRESS", "CONNS", "IDLE", "IN USE", "SERVED"}};
    for (const egress::v1::AddressStats& a : stats.addresses()) {
      rows.push_back({a.address(), absl::StrCat(a.connection_count()),
                      absl::StrCat(a.idle_count()),
                      absl::StrCat(a.in_use_count()),
                      absl::StrCat(a.requests_served())});
    }
    AppendColumns(rows, "", &out);
  }
  absl::StrAppend(&out, "\n");

  // A proto map has no order; sort so the output is stable.
  std::vector<std::pair<std::string, uint64_t>> closed;
  for (const auto& [reason, count] : stats.closed_by_reason()) {
    if (count != 0) closed.emplace_back(reason, count);
  }
  std::sort(closed.begin(), closed.end());
  if (closed.empty()) {
    absl::StrAppend(&out, "closed by reason: none\n");
  } else {
    absl::StrAppend(&out, "closed by reason:\n");
    std::vector<Row> rows;
    for (const auto& [reason, count] : closed) {
      rows.push_back({reason, absl::StrCat(count)});
    }
    AppendColumns(rows, "  ", &out);
  }
  absl::StrAppend(&out, "\n");

  if (stats.has_config()) {
    absl::StrAppend(&out, "config: max idle connections ",
                    stats.config().max_idle_connections(), ", keep-alive ",
                    FormatKeepAlive(stats.config().keep_alive()), "\n");
  } else {
    absl::StrAppend(&out, "config: not reported\n");
  }
  return out;
}

}  // namespace egress
