#include "client_core/tls/destination.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress {

std::string_view TlsSpecName(TlsSpec spec) {
  switch (spec) {
    case TlsSpec::kModern: return "modern";
    case TlsSpec::kCompatible: return "compatible";
  }
  return "unknown";
}

std::string_view HttpProtocolsName(HttpProtocols p) {
  switch (p) {
    case HttpProtocols::kAuto: return "auto";
    case HttpProtocols::kHttp11: return "http1";
    case HttpProtocols::kHttp2: return "h2";
  }
  return "unknown";
}

absl::StatusOr<TlsSpec> ParseTlsSpec(absl::string_view name) {
  if (name == "modern") return TlsSpec::kModern;
  if (name == "compatible") return TlsSpec::kCompatible;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown TLS spec '", name, "' (expected modern or compatible)"));
}

absl::StatusOr<HttpProtocols> ParseHttpProtocols(absl::string_view name) {
  if (name == "auto") return HttpProtocols::kAuto;
  if (name == "http1" || name == "http/1.1") return HttpProtocols::kHttp11;
  if (name == "h2" || name == "http2") return HttpProtocols::kHttp2;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown protocols '", name, "' (expected auto, http1 or h2)"));
}

std::string DestinationRule::Describe() const {
  if (!host.empty()) return absl::StrCat("host ", host);
  if (cidr.has_value()) return absl::StrCat("cidr ", cidr->ToString());
  return absl::StrCat("suffix ", domain_suffix);
}

absl::StatusOr<DestinationRules> DestinationRules::Create(
    DestinationOptions defaults, std::vector<DestinationRule> rules) {
  absl::flat_hash_set<std::string> seen;
  for (DestinationRule& rule : rules) {
    const int kinds = !rule.host.empty() + !rule.domain_suffix.empty() +
                      rule.cidr.has_value();
    if (kinds != 1) {
      return absl::InvalidArgumentError(
          "a destination rule names exactly one of host, domain_suffix and "
          "cidr");
    }
    absl::AsciiStrToLower(&rule.host);
    absl::AsciiStrToLower(&rule.domain_suffix);
    if (absl::StartsWith(rule.domain_suffix, ".")) {
      rule.domain_suffix.erase(0, 1);
    }
    if (!seen.insert(rule.Describe()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("destination rule for ", rule.Describe(),
                       " is given twice"));
    }
  }
  DestinationRules result;
  result.defaults_ = std::move(defaults);
  result.rules_ = std::move(rules);
  return result;
}

size_t DestinationRules::IndexFor(absl::string_view host) const {
  if (rules_.empty()) return 0;
  const std::string name = absl::AsciiStrToLower(host);
  asio::error_code not_ip;
  const asio::ip::address ip = asio::ip::make_address(name, not_ip);
  size_t best = 0;
  size_t best_length = 0;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const DestinationRule& rule = rules_[i];
    if (!rule.host.empty()) {
      if (rule.host == name) return i + 1;
      continue;
    }
    if (rule.cidr.has_value()) {
      if (!not_ip && rule.cidr->Contains(ip) &&
          static_cast<size_t>(rule.cidr->prefix_length()) + 1 > best_length) {
        best = i + 1;
        best_length = static_cast<size_t>(rule.cidr->prefix_length()) + 1;
      }
      continue;
    }
    const std::string& suffix = rule.domain_suffix;
    const bool match =
        name == suffix ||
        (name.size() > suffix.size() && absl::EndsWith(name, suffix) &&
         name[name.size() - suffix.size() - 1] == '.');
    if (match && suffix.size() >= best_length) {
      best = i + 1;
      best_length = suffix.size();
    }
  }
  return best;
}

}  // namespace egress
