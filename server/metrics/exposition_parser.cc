#include "server/metrics/exposition_parser.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace egress::metrics {
namespace {

absl::Status Error(size_t line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", why));
}

bool ValidName(absl::string_view s, bool colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        c == '_' || (colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// Go's strconv.ParseFloat forms Prometheus accepts, without hex floats.
std::optional<double> ParseValueImpl(absl::string_view s) {
  if (s == "NaN") return std::nan("");
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp;
    if (exp == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  double v = 0;
  if (!absl::SimpleAtod(s, &v)) return std::nullopt;
  return v;
}

// Unescapes HELP text (\\ and \n) or a label value (also \"); any other
// backslash sequence is an error.
std::optional<std::string> Unescape(absl::string_view s, bool quotes) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return std::nullopt;
    if (s[i] == '\\') {
      out += '\\';
    } else if (s[i] == 'n') {
      out += '\n';
    } else if (s[i] == '"' && quotes) {
      out += '"';
    } else {
      return std::nullopt;
    }
  }
  return out;
}

// The family a sample name belongs to, given the family being read.
bool BelongsTo(const ParsedFamily& f, absl::string_view sample) {
  if (f.type != "histogram") return sample == f.name;
  return sample == absl::StrCat(f.name, "_bucket") ||
         sample == absl::StrCat(f.name, "_sum") ||
         sample == absl::StrCat(f.name, "_count");
}

std::string LabelKey(const std::vector<std::pair<std::string, std::string>>& l,
                     bool without_le) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : l) {
    if (without_le && k == "le") continue;
    parts.push_back(absl::StrCat(k, "=", v));
  }
  std::sort(parts.begin(), parts.end());
  return absl::StrJoin(parts, "\x01");
}

absl::Status CheckHistogram(const ParsedFamily& f) {
  struct Series {
    std::vector<std::pair<double, double>> buckets;  // le, cumulative
    std::optional<double> sum, count;
  };
  std::map<std::string, Series> series;
  for (const ParsedSample& s : f.samples) {
    Series& out = series[LabelKey(s.labels, /*without_le=*/true)];
    const bool has_le =
        std::any_of(s.labels.begin(), s.labels.end(),
                    [](const auto& l) { return l.first == "le"; });
    if (absl::EndsWith(s.name, "_bucket")) {
      if (!has_le) return absl::InvalidArgumentError(s.name + " without le");
      std::optional<double> le = ParseValueImpl(s.Label("le"));
      if (!le || std::isnan(*le)) {
        return absl::InvalidArgumentError(s.name + ": le is not a number");
      }
      if (!out.buckets.empty() && *le <= out.buckets.back().first) {
        return absl::InvalidArgumentError(f.name + ": le not ascending");
      }
      if (!out.buckets.empty() && s.value < out.buckets.back().second) {
        return absl::InvalidArgumentError(f.name + ": buckets not cumulative");
      }
      if (out.sum || out.count) {
        return absl::InvalidArgumentError(f.name +
                                          ": bucket after _sum/_count");
      }
      out.buckets.push_back({*le, s.value});
    } else if (has_le) {
      return absl::InvalidArgumentError(s.name + " has an le label");
    } else if (absl::EndsWith(s.name, "_sum")) {
      out.sum = s.value;
    } else {
      if (s.value < 0 || s.value != std::floor(s.value)) {
        return absl::InvalidArgumentError(s.name + " is not a count");
      }
      out.count = s.value;
    }
  }
  for (const auto& [key, s] : series) {
    if (s.buckets.empty() || !std::isinf(s.buckets.back().first)) {
      return absl::InvalidArgumentError(f.name + ": no le=\"+Inf\" bucket");
    }
    if (!s.sum) return absl::InvalidArgumentError(f.name + ": no _sum");
    if (!s.count) return absl::InvalidArgumentError(f.name + ": no _count");
    if (*s.count != s.buckets.back().second) {
      return absl::InvalidArgumentError(f.name + ": _count != +Inf bucket");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ParsedSample::Label(absl::string_view name) const {
  for (const auto& [k, v] : labels) {
    if (k == name) return v;
  }
  return "";
}

std::optional<double> ParseExpositionValue(absl::string_view text) {
  return ParseValueImpl(text);
}

absl::StatusOr<std::vector<ParsedFamily>> ParseExposition(
    absl::string_view text) {
  if (!text.empty() && text.back() != '\n') {
    return absl::InvalidArgumentError("text does not end in a newline");
  }
  std::vector<ParsedFamily> families;
  std::map<std::string, std::string> pending_help;  // HELP before TYPE
  std::set<std::string> typed, helped, sample_keys;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();  // after the final newline
  for (size_t n = 1; n <= lines.size(); ++n) {
    const absl::string_view line = lines[n - 1];
    if (line.empty()) continue;  // the format ignores empty lines
    if (absl::StrContains(line, '\r')) return Error(n, "carriage return");
    if (line[0] == '#') {
      std::vector<absl::string_view> p =
          absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (p.size() < 3 || p[0] != "#" || (p[1] != "HELP" && p[1] != "TYPE")) {
        continue;  // a plain comment
      }
      const std::string name(p[2]);
      if (!ValidName(name, true))
        return Error(n, "bad metric name in " + std::string(p[1]));
      if (p[1] == "HELP") {
        if (!helped.insert(name).second)
          return Error(n, "second HELP for " + name);
        std::optional<std::string> help =
            Unescape(p.size() > 3 ? p[3] : "", /*quotes=*/false);
        if (!help) return Error(n, "bad escape in HELP");
        if (!families.empty() && families.back().name == name &&
            families.back().samples.empty()) {
          families.back().help = *help;
        } else {
          pending_help[name] = *help;
        }
        continue;
      }
      if (p.size() != 4) return Error(n, "TYPE without a type");
      static const std::set<std::string> kTypes = {
          "counter", "gauge", "histogram", "summary", "untyped"};
      if (kTypes.count(std::string(p[3])) == 0) return Error(n, "unknown type");
      // A sample before its TYPE line was already refused as untyped.
      if (!typed.insert(name).second)
        return Error(n, "second TYPE for " + name);
      ParsedFamily family{name, std::string(p[3]), "", {}};
      if (auto it = pending_help.find(name); it != pending_help.end()) {
        family.help = it->second;
        pending_help.erase(it);
      }
      if (family.type == "counter" && !absl::EndsWith(name, "_total")) {
        return Error(n, "counter " + name + " does not end in _total");
      }
      families.push_back(std::move(family));
      continue;
    }

    // A sample: name [{labels}] value [timestamp].
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    ParsedSample sample;
    sample.name = std::string(line.substr(0, i));
    if (!ValidName(sample.name, true)) return Error(n, "bad metric name");
    std::set<std::string> label_names;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t start = i;
        while (i < line.size() && line[i] != '=') ++i;
        const std::string label(line.substr(start, i - start));
        if (!ValidName(label, false) || absl::StartsWith(label, "__")) {
          return Error(n, "bad label name '" + label + "'");
        }
        if (!label_names.insert(label).second) {
          return Error(n, "label " + label + " twice");
        }
        if (i + 1 >= line.size() || line[i + 1] != '"') {
          return Error(n, "label value not quoted");
        }
        i += 2;
        start = i;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') ++i;
          ++i;
        }
        if (i >= line.size()) return Error(n, "unterminated label value");
        std::optional<std::string> value =
            Unescape(line.substr(start, i - start), /*quotes=*/true);
        if (!value) return Error(n, "bad escape in label value");
        sample.labels.push_back({label, *value});
        ++i;  // the closing quote
        if (i < line.size() && line[i] == ',') {
          ++i;
        } else if (i >= line.size() || line[i] != '}') {
          return Error(n, "expected , or } after a label");
        }
      }
    }
    if (i >= line.size() || line[i] != ' ') return Error(n, "no value");
    std::vector<absl::string_view> rest =
        absl::StrSplit(line.substr(i + 1), ' ');
    if (rest.empty() || rest.size() > 2) return Error(n, "bad value part");
    std::optional<double> value = ParseValueImpl(rest[0]);
    if (!value) return Error(n, "bad value '" + std::string(rest[0]) + "'");
    int64_t timestamp = 0;
    if (rest.size() == 2 && !absl::SimpleAtoi(rest[1], &timestamp)) {
      return Error(n, "bad timestamp");
    }
    sample.value = *value;

    if (families.empty() || !BelongsTo(families.back(), sample.name)) {
      for (const ParsedFamily& f : families) {
        if (BelongsTo(f, sample.name)) {
          return Error(n, "sample of " + f.name + " after another family");
        }
      }
      return Error(n, "sample " + sample.name + " without TYPE before it");
    }
    ParsedFamily& family = families.back();
    if (family.help.empty() && helped.count(family.name) == 0) {
      return Error(n, "sample of " + family.name + " without HELP before it");
    }
    if (family.type == "counter" && !(sample.value >= 0)) {
      return Error(n, "negative counter");
    }
    if (!sample_keys
             .insert(absl::StrCat(sample.name, "\x02",
                                  LabelKey(sample.labels, false)))
             .second) {
      return Error(n, "duplicate sample " + sample.name);
    }
    family.samples.push_back(std::move(sample));
  }
  for (const ParsedFamily& f : families) {
    if (f.type == "histogram") {
      if (absl::Status s = CheckHistogram(f); !s.ok()) return s;
    }
  }
  return families;
}

const ParsedFamily* FindFamily(const std::vector<ParsedFamily>& families,
                               absl::string_view name) {
  for (const ParsedFamily& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace egress::metrics
