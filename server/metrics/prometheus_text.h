// ExpositionWriter: writes metrics in the Prometheus text exposition format,
// version 0.0.4 (what Prometheus scrapes from /metrics).
//
// Vocabulary (as Prometheus uses it):
//   family  one metric name with its HELP and TYPE lines, followed by its
//           samples. A family is written once; its samples follow it
//           directly, never interleaved with another family's.
//   sample  one line: name, optional {label="value",...}, value.
//   counter a family whose name ends in `_total`; values only grow.
//   gauge   a value that goes up and down.
//   histogram  cumulative `<name>_bucket{le="..."}` lines with ascending
//           upper bounds ending at le="+Inf", then `<name>_sum` and
//           `<name>_count` (equal to the +Inf bucket).
//
// Names and label names are fixed by the program, so a bad one is a bug:
// the writer records the first such error in status() (the metrics server
// answers 500 with it rather than serve a text Prometheus would reject) and
// skips the offending family or sample. Label values and HELP text are
// escaped, so any bytes are safe there.
//
// Thread-compatible: one writer per rendering.
#ifndef EGRESS_SERVER_METRICS_PROMETHEUS_TEXT_H_
#define EGRESS_SERVER_METRICS_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace egress::metrics {

// The Content-Type of the format this writer produces.
inline constexpr absl::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

struct Label {
  absl::string_view name;
  absl::string_view value;
};

// A histogram's state to expose. `counts` are per bucket, not cumulative:
// counts[i] observations fell in (upper_bounds[i-1], upper_bounds[i]], and
// counts.back() (one more than upper_bounds) those above the last bound.
struct HistogramData {
  // Finite, strictly ascending.
  std::vector<double> upper_bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
};

enum class MetricType { kCounter, kGauge, kHistogram };

class ExpositionWriter {
 public:
  ExpositionWriter() = default;
  ExpositionWriter(const ExpositionWriter&) = delete;
  ExpositionWriter& operator=(const ExpositionWriter&) = delete;

  // Starts a family: writes its HELP and TYPE lines. A counter's name must
  // end in `_total`; a histogram's must not end in `_bucket`, `_sum`,
  // `_count` or `_total`. A name already written is an error.
  void Family(absl::string_view name, MetricType type, absl::string_view help);

  // One sample of the current counter or gauge family. Label names must be
  // valid and distinct, and not start with "__".
  void Sample(absl::Span<const Label> labels, double value);
  // Integers are written exactly (a double would round above 2^53).
  void Sample(absl::Span<const Label> labels, uint64_t value);
  // One labelled series of the current histogram family; `labels` must not
  // contain "le".
  void Histogram(absl::Span<const Label> labels, const HistogramData& data);

  // OK, or the first misuse (kInternal naming the family and the problem).
  const absl::Status& status() const { return status_; }
  // The text so far; every line ends in '\n'.
  const std::string& text() const { return text_; }

 private:
  // Checks a sample for the current family; false (and status set) if bad.
  bool CheckSample(MetricType expected, absl::Span<const Label> labels);
  void Fail(std::string message);
  void AppendSample(absl::string_view name, absl::Span<const Label> labels,
                    const Label* extra, absl::string_view value);

  std::string text_;
  absl::Status status_;
  absl::flat_hash_set<std::string> families_;
  std::string family_;  // empty: none started, or the last one was refused
  MetricType type_ = MetricType::kGauge;
};

// Valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(absl::string_view name);
// Valid label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"
// (reserved for Prometheus itself).
bool IsValidLabelName(absl::string_view name);
// A label value escaped for the text format: \ " and newline as \\ \" \n.
std::string EscapeLabelValue(absl::string_view value);
// HELP text escaped: \ and newline as \\ and \n.
std::string EscapeHelp(absl::string_view help);
// A sample value: shortest text that reads back as the same double; NaN,
// +Inf, -Inf spelled so.
std::string FormatValue(double value);

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_PROMETHEUS_TEXT_H_
