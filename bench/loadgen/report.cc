#include "bench/loadgen/report.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace egress::bench {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

double Micros(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string LatencyJson(const LatencyHistogram& h) {
  return absl::StrFormat(
      "{\"count\": %d, \"min\": %.1f, \"mean\": %.1f, \"p50\": %.1f, "
      "\"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f}",
      h.count(), Micros(h.min()), h.Mean() / 1000.0,
      Micros(h.ValueAtPercentile(50)), Micros(h.ValueAtPercentile(90)),
      Micros(h.ValueAtPercentile(99)), Micros(h.ValueAtPercentile(99.9)),
      Micros(h.max()));
}

}  // namespace

int64_t RunReport::Errors() const {
  int64_t errors = 0;
  for (const auto& [name, n] : status) {
    if (name != "OK") errors += n;
  }
  return errors;
}

void RunReport::Merge(const RunReport& other) {
  measured_calls += other.measured_calls;
  completed_in_window += other.completed_in_window;
  all_calls += other.all_calls;
  for (const auto& [name, n] : other.status) status[name] += n;
  for (const auto& [code, n] : other.http_status) http_status[code] += n;
  response_body_bytes += other.response_body_bytes;
  latency_ns.Add(other.latency_ns);
  send_lag_ns.Add(other.send_lag_ns);
}

std::string FormatText(const RunReport& r) {
  std::string load =
      r.mode == "open" ? absl::StrFormat("rate=%.0f/s", r.offered_rate)
                       : absl::StrFormat("concurrency=%d", r.concurrency);
  std::string out = absl::StrFormat(
      "%s%s %s %s target=%s connections=%d window=%.1fs request=%s\n",
      r.label.empty() ? "" : "[" + r.label + "] ", r.protocol, r.mode, load,
      r.target, r.connections, r.window_seconds, r.request);
  out += absl::StrFormat(
      "  calls %d  errors %d  throughput %.0f/s  body bytes/call %.0f\n",
      r.measured_calls, r.Errors(), r.Throughput(),
      r.measured_calls > 0
          ? static_cast<double>(r.response_body_bytes) / r.measured_calls
          : 0.0);
  const LatencyHistogram& h = r.latency_ns;
  out += absl::StrFormat(
      "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
      "mean %.1f\n",
      Micros(h.ValueAtPercentile(50)), Micros(h.ValueAtPercentile(90)),
      Micros(h.ValueAtPercentile(99)), Micros(h.ValueAtPercentile(99.9)),
      Micros(h.max()), h.Mean() / 1000.0);
  if (r.mode == "open") {
    out += absl::StrFormat(
        "  send lag us: p99 %.1f  max %.1f\n",
        Micros(r.send_lag_ns.ValueAtPercentile(99)),
        Micros(r.send_lag_ns.max()));
  }
  std::vector<std::string> parts;
  for (const auto& [name, n] : r.status) parts.push_back(absl::StrCat(name, "=", n));
  out += "  status: " + absl::StrJoin(parts, " ") + "\n";
  parts.clear();
  for (const auto& [code, n] : r.http_status) {
    parts.push_back(absl::StrCat(code, "=", n));
  }
  out += "  http: " + absl::StrJoin(parts, " ") + "\n";
  return out;
}

std::string FormatJson(const RunReport& r) {
  std::vector<std::string> status, http;
  for (const auto& [name, n] : r.status) {
    status.push_back(absl::StrCat(JsonString(name), ": ", n));
  }
  for (const auto& [code, n] : r.http_status) {
    http.push_back(absl::StrCat("\"", code, "\": ", n));
  }
  return absl::StrCat(
      "{\"label\": ", JsonString(r.label),
      ", \"protocol\": ", JsonString(r.protocol),
      ", \"mode\": ", JsonString(r.mode),
      ", \"target\": ", JsonString(r.target),
      ", \"request\": ", JsonString(r.request),
      absl::StrFormat(", \"offered_rate\": %.1f", r.offered_rate),
      ", \"concurrency\": ", r.concurrency,
      ", \"connections\": ", r.connections,
      absl::StrFormat(", \"window_seconds\": %.3f", r.window_seconds),
      ", \"measured_calls\": ", r.measured_calls,
      ", \"completed_in_window\": ", r.completed_in_window,
      ", \"all_calls\": ", r.all_calls,
      absl::StrFormat(", \"throughput_rps\": %.1f", r.Throughput()),
      ", \"errors\": ", r.Errors(),
      ", \"status\": {", absl::StrJoin(status, ", "), "}",
      ", \"http_status\": {", absl::StrJoin(http, ", "), "}",
      ", \"response_body_bytes\": ", r.response_body_bytes,
      ", \"latency_us\": ", LatencyJson(r.latency_ns),
      ", \"send_lag_us\": ", LatencyJson(r.send_lag_ns), "}\n");
}

}  // namespace egress::bench
