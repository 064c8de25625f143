// libFuzzer target for the egress policy (client_core/policy/): CIDR parsing
// of operator configuration and the classification of arbitrary addresses.
//
// Input: the whole input is a CIDR text for IpRange::Parse and a host name;
// when it is at least 22 bytes long, bytes 0..1 are also a port, bytes 2..17
// an IPv6 address and bytes 18..21 an IPv4 address to check.
//
// Invariants:
//   - IpRange::Parse rejects with kInvalidArgument and a bounded message, or
//     gives a range whose ToString() re-parses to an equal range, that
//     contains its network address, and that FromPrefix rebuilds;
//   - with the default policy, an address is allowed exactly when
//     ClassifyAddress calls it public, and an IPv6 address is denied when
//     any IPv4 address it embeds is not public (the conservative reading);
//   - an IPv4-mapped address is classified as its IPv4 address;
//   - a deny CIDR catches every form of an address inside it;
//   - every decision names a rule the counters list, a denial has a reason,
//     and the caller's message never shows the resolved address.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "asio/ip/address.hpp"
#include "asio/ip/address_v4.hpp"
#include "asio/ip/address_v6.hpp"
#include "client_core/policy/address_class.h"
#include "client_core/policy/cidr.h"
#include "client_core/policy/egress_policy.h"
#include "tests/fuzz/fuzz_check.h"

namespace egress {
namespace {

constexpr size_t kMaxMessageBytes = 400;

std::unique_ptr<EgressPolicy> MakePolicy(EgressPolicyOptions options) {
  absl::StatusOr<std::unique_ptr<EgressPolicy>> policy =
      EgressPolicy::Create(std::move(options));
  FUZZ_CHECK(policy.ok(), "%s", policy.status().ToString().c_str());
  return *std::move(policy);
}

// Built once; policies are immutable and their counters only grow.
const EgressPolicy& DefaultPolicy() {
  static const EgressPolicy* const policy = MakePolicy({}).release();
  return *policy;
}

const EgressPolicy& ListPolicy() {
  static const EgressPolicy* const policy = [] {
    EgressPolicyOptions options;
    options.deny_cidrs = {"127.0.0.0/8", "10.0.0.0/8", "fe80::/10"};
    options.allow_cidrs = {"192.168.0.0/16", "::ffff:172.16.0.0/108"};
    options.exempt_hosts = {"allowed.example"};
    options.exempt_domain_suffixes = {".svc.cluster.local"};
    options.deny_hosts = {"denied.example"};
    options.deny_domain_suffixes = {".bad.example"};
    options.allowed_ports = {80, 443};
    options.self_addresses = {asio::ip::make_address("8.8.4.4")};
    return MakePolicy(std::move(options)).release();
  }();
  return *policy;
}

bool KnownRule(const EgressPolicy& policy, const std::string& rule) {
  for (const RuleCount& count : policy.RuleCounters()) {
    if (count.rule == rule) return true;
  }
  return false;
}

void CheckDecision(const EgressPolicy& policy, absl::string_view host,
                   const asio::ip::address& ip, uint16_t port) {
  const PolicyDecision d = policy.Check(host, ip, port);
  FUZZ_CHECK(KnownRule(policy, d.rule), "rule '%s' has no counter",
             d.rule.c_str());
  FUZZ_CHECK(d.allowed == absl::StartsWith(d.rule, "allow:"),
             "allowed=%d with rule %s", d.allowed, d.rule.c_str());
  FUZZ_CHECK(!d.report_only_would_deny, "report-only flag without the mode");
  const absl::Status status = d.ToStatus(host);
  if (d.allowed) {
    FUZZ_CHECK(status.ok(), "allowed but %s", status.ToString().c_str());
    return;
  }
  FUZZ_CHECK(!d.reason.empty(), "denial %s without a reason", d.rule.c_str());
  FUZZ_CHECK(status.code() == absl::StatusCode::kPermissionDenied, "%s",
             status.ToString().c_str());
  const std::string ip_text = ip.to_string();
  // The message quotes the host escaped (capped at 253 bytes): an escaped
  // host can spell the address without the raw host holding it.
  const std::string echoed_host = absl::CHexEscape(host.substr(0, 253));
  if (ip_text.size() > 6 && host.find(ip_text) == absl::string_view::npos &&
      echoed_host.find(ip_text) == std::string::npos) {
    FUZZ_CHECK(!absl::StrContains(status.message(), ip_text),
               "message shows the address: %s", status.ToString().c_str());
  }
}

void CheckAddress(const asio::ip::address& ip, uint16_t port) {
  const AddressClass address_class = ClassifyAddress(ip);
  const PolicyDecision d = DefaultPolicy().Check("fuzz.example", ip, port);
  FUZZ_CHECK(d.allowed == (address_class.category == AddressCategory::kPublic),
             "%s: category %s but rule %s", ip.to_string().c_str(),
             std::string(AddressCategoryName(address_class.category)).c_str(),
             d.rule.c_str());
  if (ip.is_v6()) {
    const asio::ip::address_v6 v6 = ip.to_v6();
    for (const EmbeddedIpv4& embedded : EmbeddedIpv4Addresses(v6)) {
      if (ClassifyIpv4(embedded.address) != AddressCategory::kPublic) {
        FUZZ_CHECK(!d.allowed, "%s embeds %s but is allowed",
                   ip.to_string().c_str(),
                   embedded.address.to_string().c_str());
      }
      // The list policy denies 127/8 and 10/8 in every form.
      const uint8_t first = embedded.address.to_bytes()[0];
      if (first == 127 || first == 10) {
        const PolicyDecision listed =
            ListPolicy().Check("fuzz.example", ip, 443);
        FUZZ_CHECK(!listed.allowed, "%s embeds %s but deny_cidrs allow it",
                   ip.to_string().c_str(),
                   embedded.address.to_string().c_str());
      }
    }
    if (v6.is_v4_mapped()) {
      const asio::ip::address_v4 v4 =
          asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
      FUZZ_CHECK(address_class.category == ClassifyIpv4(v4),
                 "%s classified unlike %s", ip.to_string().c_str(),
                 v4.to_string().c_str());
    }
  }
  CheckDecision(DefaultPolicy(), "fuzz.example", ip, port);
  CheckDecision(ListPolicy(), "fuzz.example", ip, port);
  CheckDecision(ListPolicy(), "x.svc.cluster.local", ip, port);
}

void CheckCidr(std::string_view text) {
  const absl::StatusOr<IpRange> range =
      IpRange::Parse(absl::string_view(text.data(), text.size()));
  if (!range.ok()) {
    FUZZ_CHECK(range.status().code() == absl::StatusCode::kInvalidArgument,
               "%s", range.status().ToString().c_str());
    FUZZ_CHECK(!range.status().message().empty(), "no message");
    FUZZ_CHECK(range.status().message().size() <= kMaxMessageBytes,
               "%zu-byte message", range.status().message().size());
    return;
  }
  const std::string canonical = range->ToString();
  const absl::StatusOr<IpRange> again = IpRange::Parse(canonical);
  FUZZ_CHECK(again.ok(), "ToString() %s does not parse: %s", canonical.c_str(),
             again.status().ToString().c_str());
  FUZZ_CHECK(*again == *range, "%s re-parses to %s", canonical.c_str(),
             again->ToString().c_str());
  FUZZ_CHECK(range->Contains(range->network()), "%s misses its network",
             canonical.c_str());
  FUZZ_CHECK(
      IpRange::FromPrefix(range->network(), range->prefix_length()) == *range,
      "FromPrefix does not rebuild %s", canonical.c_str());
  // A parsed range is a valid policy entry.
  EgressPolicyOptions options;
  options.allow_cidrs = {std::string(text)};
  options.deny_cidrs = {canonical};
  FUZZ_CHECK(EgressPolicy::Create(std::move(options)).ok(), "policy refuses %s",
             canonical.c_str());
  CheckAddress(range->network(), 443);
}

}  // namespace
}  // namespace egress

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  egress::CheckCidr(text);
  if (size >= 22) {
    const uint16_t port = static_cast<uint16_t>((data[0] << 8) | data[1]);
    asio::ip::address_v6::bytes_type v6;
    for (size_t i = 0; i < 16; ++i) v6[i] = data[2 + i];
    const asio::ip::address_v4::bytes_type v4{data[18], data[19], data[20],
                                              data[21]};
    egress::CheckAddress(asio::ip::address_v6(v6), port);
    egress::CheckAddress(asio::ip::address_v4(v4), port);
    // Host matching on arbitrary text: crash-freedom and the invariants.
    egress::CheckDecision(egress::ListPolicy(),
                          absl::string_view(text.data(), text.size()),
                          asio::ip::address_v6(v6), port);
  }
  return 0;
}
