#include "client_core/policy/egress_policy.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "asio/ip/address.hpp"
#include "asio/ip/address_v4.hpp"
#include "asio/ip/address_v6.hpp"
#include "client_core/policy/address_class.h"
#include "client_core/policy/cidr.h"

namespace egress {
namespace {

// The longest DNS name; anything longer is not a host worth echoing whole.
constexpr size_t kMaxHostEcho = 253;

std::string Quote(absl::string_view text, size_t cap) {
  if (text.size() <= cap) return absl::StrCat("'", absl::CHexEscape(text), "'");
  return absl::StrCat("'", absl::CHexEscape(text.substr(0, cap)), "...'");
}

// Lower case, one trailing dot dropped: the form hosts and list entries are
// compared in.
std::string NormaliseHost(absl::string_view host) {
  if (absl::EndsWith(host, ".")) host.remove_suffix(1);
  return absl::AsciiStrToLower(host);
}

// Letters, digits, '-', '_', '.' (names) and ':' (IPv6 literals). Anything
// else in a configured entry is a mistake that would never match.
bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '_' || c == '.' || c == ':';
}

// Validates one exempt_hosts/deny_hosts entry (`suffix` false) or one domain
// suffix entry (`suffix` true) and returns its normalised form. `field` is
// e.g. "exempt_hosts[2]" for the message.
absl::StatusOr<std::string> CompileHostEntry(absl::string_view entry,
                                             bool suffix,
                                             const std::string& field) {
  const absl::string_view what = suffix ? "domain suffix" : "host";
  if (entry.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", what, " is empty"));
  }
  if (entry.find('*') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", what, " ", Quote(entry, kMaxHostEcho),
        " has a wildcard; wildcards are not supported, write a domain suffix "
        "such as '.example.com' (it matches every subdomain)"));
  }
  for (size_t i = 0; i < entry.size(); ++i) {
    if (!IsHostChar(entry[i])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %s %s has an invalid character at offset %d",
                          field, what, Quote(entry, kMaxHostEcho), i));
    }
  }
  if (suffix) {
    if (entry.front() != '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": domain suffix ", Quote(entry, kMaxHostEcho),
          " must start with '.' (\".example.com\" matches the subdomains of "
          "example.com; list example.com itself as a host)"));
    }
    const absl::string_view rest = entry.substr(1);
    if (rest.empty() || rest == "." || rest.front() == '.') {
      return absl::InvalidArgumentError(absl::StrCat(field, ": domain suffix ",
                                                     Quote(entry, kMaxHostEcho),
                                                     " names no domain"));
    }
  } else if (entry.front() == '.') {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": host ", Quote(entry, kMaxHostEcho),
        " starts with '.'; domain suffixes belong in the *_domain_suffixes "
        "lists"));
  }
  return NormaliseHost(entry);
}

// The form the host allow-list compares in: normalised, and an IP literal
// (IPv6 with or without brackets) in its canonical text, so "[::1]" and
// "0::1" are one entry. Sets `*is_ip` when `host` is an IP literal.
std::string AllowlistForm(absl::string_view host, bool* is_ip) {
  std::string normalised = NormaliseHost(host);
  absl::string_view bare = normalised;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  asio::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(std::string(bare), ec);
  *is_ip = !ec;
  if (ec) return normalised;
  return ip.to_string();
}

// Validates one host_allowlist entry (`suffix` false) or one
// domain_suffix_allowlist entry (`suffix` true, an optional leading dot
// dropped) and returns the form AllowlistForm() compares in.
absl::StatusOr<std::string> CompileAllowlistEntry(absl::string_view entry,
                                                  bool suffix,
                                                  const std::string& field) {
  bool is_ip = false;
  if (suffix) {
    absl::string_view rest = entry;
    absl::ConsumePrefix(&rest, ".");
    if (rest.empty() || rest == "." || rest.front() == '.') {
      return absl::InvalidArgumentError(absl::StrCat(field, ": domain suffix ",
                                                     Quote(entry, kMaxHostEcho),
                                                     " names no domain"));
    }
    // The host rules (characters, wildcards) hold for the rest.
    absl::StatusOr<std::string> host =
        CompileHostEntry(rest, /*suffix=*/false, field);
    if (!host.ok()) return host.status();
    std::string form = AllowlistForm(*host, &is_ip);
    if (is_ip) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": domain suffix ", Quote(entry, kMaxHostEcho),
          " is an IP address; list it in the host allow-list instead"));
    }
    return form;
  }
  absl::string_view bare = entry;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  absl::StatusOr<std::string> host =
      CompileHostEntry(bare, /*suffix=*/false, field);
  if (!host.ok()) return host.status();
  return AllowlistForm(*host, &is_ip);
}

// The address as 16 bytes, IPv4 as IPv4-mapped, scope id dropped.
std::string AddressKey(const asio::ip::address& ip) {
  asio::ip::address_v6::bytes_type bytes;
  if (ip.is_v4()) {
    bytes =
        asio::ip::make_address_v6(asio::ip::v4_mapped, ip.to_v4()).to_bytes();
  } else {
    bytes = ip.to_v6().to_bytes();
  }
  return std::string(bytes.begin(), bytes.end());
}

// The forms of `ip` an allow CIDR may match: the address itself and its
// IPv4/IPv4-mapped twin, which a dual-stack socket treats as one destination.
absl::InlinedVector<asio::ip::address, 2> AllowForms(
    const asio::ip::address& ip) {
  absl::InlinedVector<asio::ip::address, 2> out{ip};
  if (ip.is_v4()) {
    out.push_back(asio::ip::make_address_v6(asio::ip::v4_mapped, ip.to_v4()));
  } else if (ip.to_v6().is_v4_mapped()) {
    out.push_back(asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6()));
  }
  return out;
}

// The forms of `ip` a deny CIDR or a self address must catch: the address,
// its IPv4-mapped twin, and every IPv4 address it embeds. Denying is
// conservative: whichever way an address is written, a deny entry holds.
absl::InlinedVector<asio::ip::address, 5> DenyForms(
    const asio::ip::address& ip) {
  absl::InlinedVector<asio::ip::address, 5> out{ip};
  if (ip.is_v4()) {
    out.push_back(asio::ip::make_address_v6(asio::ip::v4_mapped, ip.to_v4()));
  } else {
    for (const EmbeddedIpv4& embedded : EmbeddedIpv4Addresses(ip.to_v6())) {
      out.push_back(embedded.address);
    }
  }
  return out;
}

// What a denial by `category` tells the caller, after "resolved address ".
absl::string_view CategoryPhrase(AddressCategory category) {
  switch (category) {
    case AddressCategory::kPublic:
      return "is public";
    case AddressCategory::kLoopback:
      return "is a loopback address";
    case AddressCategory::kUnspecified:
      return "is an unspecified address";
    case AddressCategory::kLinkLocal:
      return "is link-local";
    case AddressCategory::kCloudMetadata:
      return "is a cloud metadata endpoint";
    case AddressCategory::kPrivate:
      return "is in a private range";
    case AddressCategory::kCgnat:
      return "is in the carrier-grade NAT range";
    case AddressCategory::kMulticast:
      return "is a multicast address";
    case AddressCategory::kBroadcast:
      return "is the broadcast address";
    case AddressCategory::kDocumentation:
      return "is in a documentation range";
    case AddressCategory::kBenchmarking:
      return "is in the benchmarking range";
    case AddressCategory::kReserved:
      return "is in a reserved range";
  }
  return "is denied";
}

absl::string_view EmbeddingPhrase(Ipv4Embedding embedding) {
  switch (embedding) {
    case Ipv4Embedding::kNone:
      return "an";
    case Ipv4Embedding::kMapped:
      return "an IPv4-mapped";
    case Ipv4Embedding::kCompatible:
      return "an IPv4-compatible";
    case Ipv4Embedding::kNat64:
      return "a NAT64";
    case Ipv4Embedding::kNat64LocalUse:
      return "a local-use NAT64";
    case Ipv4Embedding::k6to4:
      return "a 6to4";
    case Ipv4Embedding::kTeredo:
      return "a Teredo";
  }
  return "an";
}

std::string CategoryReason(const AddressClass& address_class) {
  if (address_class.embedding == Ipv4Embedding::kNone) {
    return absl::StrCat("resolved address ",
                        CategoryPhrase(address_class.category));
  }
  return absl::StrCat("resolved address is ",
                      EmbeddingPhrase(address_class.embedding),
                      " IPv6 address whose embedded IPv4 address ",
                      CategoryPhrase(address_class.category));
}

// The matching entry of `suffixes` for `host` (normalised): the longest
// suffix that leaves at least one character before it, or nullptr.
const std::pair<const std::string, size_t>* FindSuffix(
    const absl::flat_hash_map<std::string, size_t>& suffixes,
    absl::string_view host) {
  if (suffixes.empty()) return nullptr;
  for (size_t dot = host.find('.', 1); dot != absl::string_view::npos;
       dot = host.find('.', dot + 1)) {
    auto it = suffixes.find(host.substr(dot));
    if (it != suffixes.end()) return &*it;
  }
  return nullptr;
}

// Decodes %XX escapes of `text` into `*out`; false when an escape is
// malformed or decodes to a byte no host name has (a control byte, a space,
// '%', '/'), which a proxy would not resolve as written either.
bool PercentDecode(absl::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size() ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(text[i + 1])) ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      return false;
    }
    const std::string byte =
        absl::HexStringToBytes(std::string(text.substr(i + 1, 2)));
    const unsigned char c = static_cast<unsigned char>(byte[0]);
    if (c <= 0x20 || c == 0x7f || c == '%' || c == '/') return false;
    out->push_back(static_cast<char>(c));
    i += 2;
  }
  return true;
}

}  // namespace

absl::string_view PolicyDecision::rule_name() const {
  absl::string_view name = rule;
  const size_t colon = name.find(':');
  if (colon != absl::string_view::npos) name.remove_prefix(colon + 1);
  return name.substr(0, name.find(' '));
}

absl::Status PolicyDecision::ToStatus(absl::string_view host) const {
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("egress to ", Quote(host, kMaxHostEcho), " denied by rule '",
                   rule_name(), "' (", reason, ")"));
}

absl::StatusOr<std::unique_ptr<EgressPolicy>> EgressPolicy::Create(
    EgressPolicyOptions options) {
  std::unique_ptr<EgressPolicy> policy(new EgressPolicy(std::move(options)));
  if (absl::Status status = policy->Compile(); !status.ok()) return status;
  return policy;
}

EgressPolicy::EgressPolicy(EgressPolicyOptions options)
    : options_(std::move(options)) {}

size_t EgressPolicy::CounterFor(const std::string& rule) {
  auto [it, inserted] = counter_index_.try_emplace(rule, counters_.size());
  if (inserted) {
    counters_.push_back(std::make_unique<Counter>());
    counters_.back()->rule = rule;
  }
  return it->second;
}

// Builds the lookup structures and every counter, in evaluation order so
// RuleCounters() lists rules as a reader of the header expects them.
absl::Status EgressPolicy::Compile() {
  for (uint16_t port : options_.allowed_ports) {
    if (port == 0) {
      return absl::InvalidArgumentError(
          "allowed_ports: 0 is not a valid port (1..65535)");
    }
  }
  // Step 0 first, so RuleCounters() lists rules in evaluation order.
  for (size_t i = 0; i < options_.host_allowlist.size(); ++i) {
    absl::StatusOr<std::string> entry =
        CompileAllowlistEntry(options_.host_allowlist[i], /*suffix=*/false,
                              absl::StrCat("host_allowlist[", i, "]"));
    if (!entry.ok()) return entry.status();
    allowlist_hosts_.insert(*std::move(entry));
  }
  for (size_t i = 0; i < options_.domain_suffix_allowlist.size(); ++i) {
    absl::StatusOr<std::string> entry = CompileAllowlistEntry(
        options_.domain_suffix_allowlist[i], /*suffix=*/true,
        absl::StrCat("domain_suffix_allowlist[", i, "]"));
    if (!entry.ok()) return entry.status();
    allowlist_suffixes_.insert(*std::move(entry));
  }
  if (!allowlist_hosts_.empty() || !allowlist_suffixes_.empty()) {
    host_not_allowed_counter_ = CounterFor("deny:host_not_allowed");
  }
  allowed_ports_ = options_.allowed_ports;
  std::sort(allowed_ports_.begin(), allowed_ports_.end());
  port_counter_ = CounterFor("deny:port");

  auto compile_hosts =
      [this](const std::vector<std::string>& entries, absl::string_view field,
             bool suffix, absl::string_view rule_prefix,
             absl::flat_hash_map<std::string, size_t>& out) -> absl::Status {
    for (size_t i = 0; i < entries.size(); ++i) {
      absl::StatusOr<std::string> entry = CompileHostEntry(
          entries[i], suffix, absl::StrCat(field, "[", i, "]"));
      if (!entry.ok()) return entry.status();
      const size_t counter = CounterFor(absl::StrCat(rule_prefix, *entry));
      out.try_emplace(*std::move(entry), counter);
    }
    return absl::OkStatus();
  };
  auto compile_cidrs = [this](const std::vector<std::string>& entries,
                              absl::string_view field,
                              absl::string_view rule_prefix,
                              std::vector<CidrRule>& out) -> absl::Status {
    for (size_t i = 0; i < entries.size(); ++i) {
      absl::StatusOr<IpRange> range = IpRange::Parse(entries[i]);
      if (!range.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, "[", i, "]: ", range.status().message()));
      }
      const size_t counter =
          CounterFor(absl::StrCat(rule_prefix, range->ToString()));
      out.push_back(CidrRule{*range, counter});
    }
    return absl::OkStatus();
  };

  if (absl::Status s =
          compile_hosts(options_.deny_hosts, "deny_hosts",
                        /*suffix=*/false, "deny:host_denylist ", deny_hosts_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = compile_hosts(
          options_.deny_domain_suffixes, "deny_domain_suffixes",
          /*suffix=*/true, "deny:domain_denylist ", deny_suffixes_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = compile_cidrs(options_.deny_cidrs, "deny_cidrs",
                                     "deny:cidr_denylist ", deny_cidrs_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = compile_cidrs(options_.allow_cidrs, "allow_cidrs",
                                     "allow:cidr ", allow_cidrs_);
      !s.ok()) {
    return s;
  }
  self_counter_ = CounterFor("deny:self_address");
  for (const asio::ip::address& self : options_.self_addresses) {
    self_addresses_.insert(AddressKey(self));
  }
  if (absl::Status s =
          compile_hosts(options_.exempt_hosts, "exempt_hosts",
                        /*suffix=*/false, "allow:exempt_host ", exempt_hosts_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = compile_hosts(
          options_.exempt_domain_suffixes, "exempt_domain_suffixes",
          /*suffix=*/true, "allow:exempt_domain_suffix ", exempt_suffixes_);
      !s.ok()) {
    return s;
  }
  category_counters_.assign(static_cast<size_t>(AddressCategory::kReserved) + 1,
                            0);
  for (AddressCategory category : kDeniedCategories) {
    category_counters_[static_cast<size_t>(category)] =
        CounterFor(absl::StrCat("deny:", AddressCategoryName(category)));
  }
  public_counter_ = CounterFor("allow:public");
  category_counters_[static_cast<size_t>(AddressCategory::kPublic)] =
      public_counter_;
  return absl::OkStatus();
}

PolicyDecision EgressPolicy::Decide(size_t counter, bool deny,
                                    std::string reason, Count count) const {
  Counter& c = *counters_[counter];
  const bool counted = deny || count == Count::kAlways;
  if (counted) c.decisions.fetch_add(1, std::memory_order_relaxed);
  PolicyDecision decision;
  decision.rule = c.rule;
  decision.reason = std::move(reason);
  if (!deny) {
    decision.allowed = true;
  } else if (options_.report_only) {
    c.report_only.fetch_add(1, std::memory_order_relaxed);
    decision.allowed = true;
    decision.report_only_would_deny = true;
  }
  return decision;
}

PolicyDecision EgressPolicy::CheckHost(absl::string_view host) const {
  PolicyDecision pass;
  pass.allowed = true;
  if (allowlist_hosts_.empty() && allowlist_suffixes_.empty()) return pass;
  bool is_ip = false;
  const std::string form = AllowlistForm(host, &is_ip);
  if (allowlist_hosts_.contains(form)) return pass;
  if (!is_ip && !allowlist_suffixes_.empty()) {
    // The host itself, then each parent domain: "b.a.example.com",
    // "a.example.com", "example.com", "com". A suffix matches whole labels
    // only, so "example.com" never covers "badexample.com".
    for (absl::string_view rest = form; !rest.empty();) {
      if (allowlist_suffixes_.contains(rest)) return pass;
      const size_t dot = rest.find('.');
      if (dot == absl::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
  }
  return Decide(host_not_allowed_counter_, /*deny=*/true,
                "host is not in egress.allow_hosts / "
                "egress.allow_domain_suffixes");
}

PolicyDecision EgressPolicy::Check(absl::string_view host,
                                   const asio::ip::address& resolved_ip,
                                   uint16_t port) const {
  return Judge(host, resolved_ip, port, Count::kAlways);
}

std::optional<PolicyDecision> EgressPolicy::JudgeName(
    absl::string_view normalised_host, uint16_t port, Count count) const {
  // 1. port
  if (!allowed_ports_.empty() &&
      !std::binary_search(allowed_ports_.begin(), allowed_ports_.end(), port)) {
    return Decide(port_counter_, /*deny=*/true,
                  absl::StrFormat("port %d is not an allowed port", port),
                  count);
  }
  // 2. host deny
  if (auto it = deny_hosts_.find(normalised_host); it != deny_hosts_.end()) {
    return Decide(it->second, /*deny=*/true, "host is on the deny list",
                  count);
  }
  if (const auto* entry = FindSuffix(deny_suffixes_, normalised_host)) {
    return Decide(entry->second, /*deny=*/true, "host is in a denied domain",
                  count);
  }
  return std::nullopt;
}

std::optional<std::string> EgressPolicy::OwnListenerAt(
    absl::Span<const asio::ip::address> forms, uint16_t port) const {
  std::shared_ptr<const std::vector<OwnListener>> listeners;
  {
    MutexLock lock(&own_listeners_mu_);
    listeners = own_listeners_;
  }
  if (listeners == nullptr) return std::nullopt;
  for (const OwnListener& listener : *listeners) {
    if (listener.port != port) continue;
    const bool wildcard = listener.address.is_unspecified();
    const std::string listener_key = AddressKey(listener.address);
    for (const asio::ip::address& form : forms) {
      if (wildcard ? (form.is_loopback() ||
                      self_addresses_.contains(AddressKey(form)))
                   : AddressKey(form) == listener_key) {
        return listener.name;
      }
    }
  }
  return std::nullopt;
}

void EgressPolicy::SetOwnListeners(std::vector<OwnListener> listeners) const {
  auto set = std::make_shared<const std::vector<OwnListener>>(
      std::move(listeners));
  MutexLock lock(&own_listeners_mu_);
  own_listeners_ = std::move(set);
}

PolicyDecision EgressPolicy::Judge(absl::string_view host,
                                   const asio::ip::address& resolved_ip,
                                   uint16_t port, Count count) const {
  // 1. port, 2. host deny
  const std::string normalised_host = NormaliseHost(host);
  if (std::optional<PolicyDecision> denied =
          JudgeName(normalised_host, port, count)) {
    return *std::move(denied);
  }

  const absl::InlinedVector<asio::ip::address, 5> deny_forms =
      DenyForms(resolved_ip);
  // 2b. own listener
  if (std::optional<std::string> own = OwnListenerAt(deny_forms, port)) {
    return Decide(self_counter_, /*deny=*/true,
                  absl::StrCat("resolved address and port are egressd's own ",
                               *own, " listener"),
                  count);
  }

  // 3. CIDR deny
  for (const CidrRule& rule : deny_cidrs_) {
    for (const asio::ip::address& form : deny_forms) {
      if (rule.range.Contains(form)) {
        return Decide(rule.counter, /*deny=*/true,
                      "resolved address is in a denied range", count);
      }
    }
  }

  // 4. CIDR allow
  const absl::InlinedVector<asio::ip::address, 2> allow_forms =
      AllowForms(resolved_ip);
  for (const CidrRule& rule : allow_cidrs_) {
    for (const asio::ip::address& form : allow_forms) {
      if (rule.range.Contains(form)) {
        return Decide(rule.counter, /*deny=*/false, "", count);
      }
    }
  }

  // 5. self: a public address of egressd's host. One in a denied category
  // is named by that category (step 7): "loopback" says more about
  // 127.0.0.1:8080 than "one of egressd's own addresses" would.
  const AddressClass address_class = ClassifyAddress(resolved_ip);
  if (!self_addresses_.empty() &&
      address_class.category == AddressCategory::kPublic) {
    for (const asio::ip::address& form : deny_forms) {
      if (self_addresses_.contains(AddressKey(form))) {
        return Decide(self_counter_, /*deny=*/true,
                      "resolved address is an address of egressd's own host",
                      count);
      }
    }
  }

  // 6. host exempt
  const bool exemption_may_open =
      address_class.category != AddressCategory::kCloudMetadata &&
      address_class.category != AddressCategory::kUnspecified;
  if (exemption_may_open) {
    if (auto it = exempt_hosts_.find(normalised_host);
        it != exempt_hosts_.end()) {
      return Decide(it->second, /*deny=*/false, "", count);
    }
    if (const auto* entry = FindSuffix(exempt_suffixes_, normalised_host)) {
      return Decide(entry->second, /*deny=*/false, "", count);
    }
  }

  // 7. category, 8. public
  if (address_class.category == AddressCategory::kPublic) {
    return Decide(public_counter_, /*deny=*/false, "", count);
  }
  return Decide(category_counters_[static_cast<size_t>(address_class.category)],
                /*deny=*/true, CategoryReason(address_class), count);
}

PolicyDecision EgressPolicy::CheckDestination(absl::string_view host,
                                              uint16_t port) const {
  PolicyDecision by_allowlist = CheckHost(host);
  if (!by_allowlist.allowed) return by_allowlist;
  // The form a proxy may resolve: percent-decoded (a URL's reg-name may
  // carry escapes, and some proxies decode them), without brackets.
  std::string name = NormaliseHost(absl::StripPrefix(
      absl::StripSuffix(host, "]"), "["));
  if (name.find('%') != std::string::npos) {
    std::string decoded;
    if (PercentDecode(name, &decoded)) name = NormaliseHost(decoded);
  }
  asio::error_code not_ip;
  const asio::ip::address literal = asio::ip::make_address(name, not_ip);
  if (!not_ip) return Judge(host, literal, port, Count::kDenials);
  if (name == "localhost" || absl::EndsWith(name, ".localhost")) {
    // RFC 6761 6.3: resolvers answer these with loopback addresses, egressd's
    // and a proxy's alike. Judged as egressd judges a name it resolves (one
    // allowed address admits it; only those are dialled), except that a
    // loop into egressd's own listener on either address denies the name:
    // a proxy may pick that address.
    std::optional<PolicyDecision> first_denial;
    bool any_allowed = false;
    for (const asio::ip::address& loopback :
         {asio::ip::address(asio::ip::address_v4::loopback()),
          asio::ip::address(asio::ip::address_v6::loopback())}) {
      PolicyDecision decision = Judge(host, loopback, port, Count::kDenials);
      const bool denies = !decision.allowed || decision.report_only_would_deny;
      if (denies && decision.rule == "deny:self_address") return decision;
      if (!denies) {
        any_allowed = true;
      } else if (!first_denial.has_value()) {
        first_denial = std::move(decision);
      }
    }
    if (!any_allowed) return *std::move(first_denial);
  }
  if (std::optional<PolicyDecision> denied =
          JudgeName(name, port, Count::kDenials)) {
    return *std::move(denied);
  }
  return by_allowlist;
}

absl::Status EgressPolicy::CheckStatus(absl::string_view host,
                                       const asio::ip::address& resolved_ip,
                                       uint16_t port) const {
  return Check(host, resolved_ip, port).ToStatus(host);
}

std::vector<RuleCount> EgressPolicy::RuleCounters() const {
  std::vector<RuleCount> out;
  out.reserve(counters_.size());
  for (const std::unique_ptr<Counter>& counter : counters_) {
    out.push_back(RuleCount{
        counter->rule, counter->decisions.load(std::memory_order_relaxed),
        counter->report_only.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace egress
