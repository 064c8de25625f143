#include "server/metrics/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress::metrics {
namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  if (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_') {
    return true;
  }
  if (allow_colon && c == ':') return true;
  return !first && absl::ascii_isdigit(static_cast<unsigned char>(c));
}

bool IsValidName(absl::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

absl::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

bool IsValidMetricName(absl::string_view name) {
  return IsValidName(name, /*allow_colon=*/true);
}

bool IsValidLabelName(absl::string_view name) {
  return IsValidName(name, /*allow_colon=*/false) &&
         !absl::StartsWith(name, "__");
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // The shortest text that reads back as `value`, in plain decimals where
  // Go's strconv.FormatFloat(v, 'g', -1, 64) (Prometheus' own client) uses
  // them: 0.0005 rather than 5e-04.
  const double magnitude = std::fabs(value);
  const bool plain = magnitude == 0 || (magnitude >= 1e-4 && magnitude < 1e21);
  char buffer[400];
  std::to_chars_result r =
      plain ? std::to_chars(buffer, buffer + sizeof buffer, value,
                            std::chars_format::fixed)
            : std::to_chars(buffer, buffer + sizeof buffer, value);
  if (r.ec != std::errc()) return absl::StrCat(value);
  return std::string(buffer, r.ptr);
}

void ExpositionWriter::Fail(std::string message) {
  if (status_.ok()) status_ = absl::InternalError(std::move(message));
}

void ExpositionWriter::Family(absl::string_view name, MetricType type,
                              absl::string_view help) {
  family_.clear();
  if (!IsValidMetricName(name)) {
    Fail(absl::StrCat("metric name '", name, "' is not valid"));
    return;
  }
  if (type == MetricType::kCounter && !absl::EndsWith(name, "_total")) {
    Fail(absl::StrCat("counter '", name, "' must end in _total"));
    return;
  }
  if (type == MetricType::kHistogram) {
    for (absl::string_view suffix : {"_bucket", "_sum", "_count", "_total"}) {
      if (absl::EndsWith(name, suffix)) {
        Fail(absl::StrCat("histogram '", name, "' must not end in ", suffix));
        return;
      }
    }
  }
  if (!families_.insert(std::string(name)).second) {
    Fail(absl::StrCat("metric family '", name, "' written twice"));
    return;
  }
  absl::StrAppend(&text_, "# HELP ", name, " ", EscapeHelp(help), "\n",
                  "# TYPE ", name, " ", TypeName(type), "\n");
  family_ = std::string(name);
  type_ = type;
}

bool ExpositionWriter::CheckSample(MetricType expected,
                                   absl::Span<const Label> labels) {
  if (family_.empty()) {
    Fail("sample without a (valid) family before it");
    return false;
  }
  if ((expected == MetricType::kHistogram) !=
      (type_ == MetricType::kHistogram)) {
    Fail(absl::StrCat("wrong sample kind for family '", family_, "'"));
    return false;
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!IsValidLabelName(labels[i].name)) {
      Fail(absl::StrCat("label name '", labels[i].name, "' of '", family_,
                        "' is not valid"));
      return false;
    }
    if (type_ == MetricType::kHistogram && labels[i].name == "le") {
      Fail(absl::StrCat("histogram '", family_, "' has a label named le"));
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].name == labels[i].name) {
        Fail(absl::StrCat("label '", labels[i].name, "' of '", family_,
                          "' given twice"));
        return false;
      }
    }
  }
  return true;
}

void ExpositionWriter::AppendSample(absl::string_view name,
                                    absl::Span<const Label> labels,
                                    const Label* extra,
                                    absl::string_view value) {
  text_.append(name.data(), name.size());
  if (!labels.empty() || extra != nullptr) {
    text_ += '{';
    bool first = true;
    auto append = [&](const Label& l) {
      if (!first) text_ += ',';
      first = false;
      absl::StrAppend(&text_, l.name, "=\"", EscapeLabelValue(l.value), "\"");
    };
    for (const Label& l : labels) append(l);
    if (extra != nullptr) append(*extra);
    text_ += '}';
  }
  absl::StrAppend(&text_, " ", value, "\n");
}

void ExpositionWriter::Sample(absl::Span<const Label> labels, double value) {
  if (!CheckSample(MetricType::kGauge, labels)) return;
  AppendSample(family_, labels, nullptr, FormatValue(value));
}

void ExpositionWriter::Sample(absl::Span<const Label> labels, uint64_t value) {
  if (!CheckSample(MetricType::kGauge, labels)) return;
  AppendSample(family_, labels, nullptr, absl::StrCat(value));
}

void ExpositionWriter::Histogram(absl::Span<const Label> labels,
                                 const HistogramData& data) {
  if (!CheckSample(MetricType::kHistogram, labels)) return;
  if (data.counts.size() != data.upper_bounds.size() + 1) {
    Fail(absl::StrCat("histogram '", family_, "' has ", data.counts.size(),
                      " counts for ", data.upper_bounds.size(), " bounds"));
    return;
  }
  for (size_t i = 0; i < data.upper_bounds.size(); ++i) {
    if (!std::isfinite(data.upper_bounds[i]) ||
        (i > 0 && data.upper_bounds[i] <= data.upper_bounds[i - 1])) {
      Fail(absl::StrCat("histogram '", family_,
                        "' bounds are not finite and ascending"));
      return;
    }
  }
  const std::string bucket = absl::StrCat(family_, "_bucket");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= data.upper_bounds.size(); ++i) {
    cumulative += data.counts[i];
    const std::string le = i < data.upper_bounds.size()
                               ? FormatValue(data.upper_bounds[i])
                               : std::string("+Inf");
    const Label le_label{"le", le};
    AppendSample(bucket, labels, &le_label, absl::StrCat(cumulative));
  }
  AppendSample(absl::StrCat(family_, "_sum"), labels, nullptr,
               FormatValue(data.sum));
  AppendSample(absl::StrCat(family_, "_count"), labels, nullptr,
               absl::StrCat(cumulative));
}

}  // namespace egress::metrics
