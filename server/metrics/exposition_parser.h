// A strict reader of the Prometheus text exposition format (0.0.4), for
// tests: they check that what ExpositionWriter writes and what egressd
// serves on /metrics is text Prometheus accepts.
//
// Stricter than Prometheus' own parser where egressd promises more:
//   - every family has a HELP and a TYPE line before its first sample;
//   - one TYPE and at most one HELP per name; a family's samples are
//     contiguous; no sample (name + label set) appears twice;
//   - metric and label names match [a-zA-Z_:][a-zA-Z0-9_:]* and
//     [a-zA-Z_][a-zA-Z0-9_]* and no label name starts with "__";
//   - label values and HELP use only the format's escapes (\\ \" \n);
//   - counters end in _total and are >= 0;
//   - histograms: per label set, _bucket lines with an le label in strictly
//     ascending order ending at +Inf, cumulative (non-decreasing) counts,
//     then _sum and _count, with _count equal to the +Inf bucket.
// Empty lines and plain comments are allowed, as in the format.
//
// Thread-compatible; pure functions.
#ifndef EGRESS_SERVER_METRICS_EXPOSITION_PARSER_H_
#define EGRESS_SERVER_METRICS_EXPOSITION_PARSER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::metrics {

struct ParsedSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped
  double value = 0;

  // The value of label `name`, "" if the sample has none.
  std::string Label(absl::string_view name) const;
};

struct ParsedFamily {
  std::string name;
  std::string type;
  std::string help;  // unescaped
  std::vector<ParsedSample> samples;
};

// The families of `text` in order, or kInvalidArgument naming the line and
// the rule it breaks.
absl::StatusOr<std::vector<ParsedFamily>> ParseExposition(
    absl::string_view text);

// A sample value as the format spells it (Go float syntax, NaN, +Inf,
// -Inf); nullopt if it is not one.
std::optional<double> ParseExpositionValue(absl::string_view text);

// The family named `name`, or null.
const ParsedFamily* FindFamily(const std::vector<ParsedFamily>& families,
                               absl::string_view name);

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_EXPOSITION_PARSER_H_
