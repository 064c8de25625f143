// EgressPolicy: decides whether egressd may open a connection to a resolved
// address, the SSRF guard in front of every dial.
//
// The policy is checked in two places:
//   - CheckHost(host), once per connection *before* DNS: the host allow-list
//     (host_allowlist / domain_suffix_allowlist). A host it does not admit
//     is denied without a lookup, so a denied name never reaches a resolver.
//   - Check(host, ip, port) on every *resolved* IP; the caller must then
//     dial exactly that IP (never resolve again), so DNS rebinding cannot
//     slip a different address past it.
// The caller runs both on every redirect hop and for every proxy target it
// resolves. The policy itself does no I/O: no DNS, no logging. Callers log a
// decision with report_only_would_deny set.
//
// Before a route is chosen, every request's destination is judged the same
// way whatever route will carry it (direct, an HTTP proxy, a CONNECT tunnel,
// SOCKS5): CheckDestination(host, port). An IP-literal destination is judged
// by the address rules, always. A name is judged by the *name rules* (the
// allow-list, the port, the host deny lists, and names that always resolve
// to loopback, RFC 6761: "localhost" and "*.localhost", judged as 127.0.0.1
// and ::1). A name that egressd resolves itself is then judged again on
// every resolved address (Check); a name that only a proxy resolves cannot
// be: the name rules are all egressd can apply to it (docs/configuration.md,
// "What each route kind guarantees").
//
// Vocabulary:
//   - A *rule* is one reason to allow or deny, named "<verdict>:<name>" with
//     an optional " <entry>" naming the configured entry that matched:
//     "deny:private", "deny:port", "deny:cidr_denylist 10.1.0.0/16",
//     "deny:host_not_allowed", "allow:cidr 127.0.0.0/8",
//     "allow:exempt_domain_suffix .example.com", "allow:public". Rule strings
//     are stable (metrics and alerts key on them) and bounded by the
//     configuration, so they make good counter labels.
//   - A rule's *name* is the part between ':' and the first space ("private",
//     "cidr_denylist"). Only the name reaches the caller of Fetch; the entry
//     and the resolved address stay in egressd's own logs and metrics, since
//     they describe the operator's network.
//   - The default-denied *categories* are those of address_class.h
//     (loopback, link_local, cloud_metadata, unspecified, multicast, private,
//     cgnat, broadcast, documentation, benchmarking, reserved); IPv6 addresses
//     that embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo)
//     are judged by the IPv4 address.
//
// Two kinds of host list, not to be confused:
//   - The host *allow-list* (host_allowlist, domain_suffix_allowlist; the
//     configuration's egress.allow_hosts / egress.allow_domain_suffixes)
//     NARROWS egress: when either is non-empty, a host matching neither is
//     denied by CheckHost ("deny:host_not_allowed"). A host it admits is
//     still judged on its resolved addresses by Check, like any other.
//   - The host *exemptions* (exempt_hosts, exempt_domain_suffixes, step 6
//     below) WIDEN egress: a listed host is exempt from the address-category
//     denials. They restrict nothing.
//
// CheckHost, before DNS:
//   0. allow-list    host_allowlist or domain_suffix_allowlist is non-empty
//                    and the host matches neither: "deny:host_not_allowed".
//                    A host it admits is not counted here: the address
//                    check that follows decides, and is counted.
// Check, per resolved address; the first step that decides wins:
//   1. port          allowed_ports is non-empty and lacks the port:
//                    "deny:port". Destinations and ports are separate axes:
//                    no allow list opens a port the port list closes.
//   2. host deny     the host is in deny_hosts ("deny:host_denylist <host>")
//                    or under a deny_domain_suffixes entry
//                    ("deny:domain_denylist <suffix>").
//   3. CIDR deny     the address, or any IPv4 address it embeds, is in a
//                    deny_cidrs entry ("deny:cidr_denylist <cidr>").
//                    Deny lists beat allow lists so an operator can carve an
//                    exception out of an allowed block or domain
//                    (allow 10.0.0.0/8 but deny 10.0.0.0/24).
//   2b. own listener the address (in any of its forms) and port are one of
//                    egressd's own listeners (own_listeners; a wildcard
//                    listener covers loopback and self_addresses on its
//                    port): "deny:self_address", naming the listener. Before
//                    the allow lists: no rule opens a loop back into egressd.
//   4. CIDR allow    the address (or its IPv4-mapped twin: 10.0.0.1 and
//                    ::ffff:10.0.0.1 are the same destination) is in an
//                    allow_cidrs entry ("allow:cidr <cidr>", first in
//                    configuration order). Other embedded forms are not
//                    covered by an IPv4 allow entry: they go through a NAT64
//                    gateway or tunnel relay, which is another destination.
//   5. self          the address, or any IPv4 address it embeds, is one of
//                    self_addresses and is not in a default-denied category
//                    (a public address of egressd's own host, on a port that
//                    is not a listener): "deny:self_address". Only an allow
//                    CIDR (step 4) opens it. A self address in a denied
//                    category (127.0.0.1:8080, a pod IP) is denied by that
//                    category at step 7, which names it more precisely.
//   6. host exempt   the host is in exempt_hosts ("allow:exempt_host <host>")
//                    or under an exempt_domain_suffixes entry
//                    ("allow:exempt_domain_suffix <suffix>") — unless the
//                    address is cloud_metadata or unspecified. An exemption
//                    trusts DNS, which an attacker may control (a rebinding
//                    record, a compromised zone); the metadata endpoint hands
//                    out credentials and 0.0.0.0 reaches the local host, so
//                    only an allow CIDR opens those.
//   7. category      the address is in a default-denied category:
//                    "deny:<category>", e.g. "deny:link_local".
//   8. otherwise     "allow:public".
// With report_only, a decision of steps 0..7 that denies is returned as
// allowed with report_only_would_deny set (and counted as such).
//
// Host matching: case-insensitive, ignoring one trailing dot
// ("Example.COM." is "example.com"). exempt_hosts/deny_hosts/host_allowlist
// match the host exactly. A deny or exempt domain suffix is written with a
// leading dot and matches proper subdomains only: ".example.com" matches
// "a.example.com" and "b.a.example.com" but NOT "example.com" itself (list
// the apex in exempt_hosts), so an entry never means more than it reads. A
// domain_suffix_allowlist entry follows the configuration's meaning instead:
// "example.com" (a leading dot is optional and ignored) admits example.com
// and every subdomain, but not "badexample.com". The host is the name the
// caller asked for (the URL's host, or an IP literal as written); an exempt
// host for an IP literal is a textual match, while host_allowlist compares IP
// literals in canonical form ("[::1]", "0:0::1" and "::1" are one entry) and
// no domain suffix ever covers an IP literal.
//
// Thread-safety: immutable after Create() but for SetOwnListeners(), which
// is thread-safe; Check() and RuleCounters() may be called from any thread
// concurrently. Counters are relaxed atomics: a
// snapshot is not a consistent cut across rules, but every count is exact.
#ifndef EGRESS_CLIENT_CORE_POLICY_EGRESS_POLICY_H_
#define EGRESS_CLIENT_CORE_POLICY_EGRESS_POLICY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "asio/ip/address.hpp"
#include "client_core/base/sync.h"
#include "client_core/policy/address_class.h"
#include "client_core/policy/cidr.h"

namespace egress {

// Every field is empty / false by default: deny the default categories and
// egressd's own addresses, allow everything else on any port.
struct EgressPolicyOptions {
  // CIDRs ("10.0.0.0/8", "fd00::/8", or a bare address) reachable whatever
  // their category; e.g. "127.0.0.0/8" for local development
  // (--allow_cidr). Parsed strictly, see cidr.h.
  std::vector<std::string> allow_cidrs;
  // CIDRs never reachable, whatever the allow lists say.
  std::vector<std::string> deny_cidrs;

  // The host allow-list (narrows egress; egress.allow_hosts and
  // egress.allow_domain_suffixes in egressd's configuration). When either
  // list is non-empty, CheckHost denies every host that is not in
  // host_allowlist (exact names or IP literals) and not covered by
  // domain_suffix_allowlist ("example.com" covers example.com and its
  // subdomains). Admitted hosts are still judged on their addresses.
  std::vector<std::string> host_allowlist;
  std::vector<std::string> domain_suffix_allowlist;

  // Host exemptions (widen egress; NOT an allow-list): host names reachable
  // whatever their addresses' category (except cloud_metadata and
  // unspecified, see step 6), compared exactly. No wildcards: use
  // exempt_domain_suffixes. They restrict nothing: other hosts stay
  // reachable.
  std::vector<std::string> exempt_hosts;
  // Domain suffixes, each with a leading dot (".svc.cluster.local"), whose
  // proper subdomains are exempt like exempt_hosts.
  std::vector<std::string> exempt_domain_suffixes;
  // Host names and domain suffixes never reachable (same syntax).
  std::vector<std::string> deny_hosts;
  std::vector<std::string> deny_domain_suffixes;

  // Destination ports allowed; empty allows every port. 0 is not a port.
  std::vector<uint16_t> allowed_ports;

  // Never deny: return every would-be denial as allowed, with
  // report_only_would_deny set, so a new policy can be tried on live traffic
  // before it is enforced.
  bool report_only = false;

  // egressd's own addresses (its listening addresses; for a wildcard listener
  // the host's interface addresses). Denied, on every port, unless an allow
  // CIDR covers them: a caller must not reach egressd's admin endpoints or
  // loop a Fetch back into egressd.
  std::vector<asio::ip::address> self_addresses;
};

// One of egressd's own listening sockets, as bound.
struct OwnListener {
  // The bound address and port. An unspecified address (0.0.0.0, ::) is a
  // wildcard listener: it covers its port on every loopback address and on
  // every one of self_addresses.
  asio::ip::address address;
  uint16_t port = 0;
  // What it serves, for the denial's reason: "Fetch", "admin", "metrics".
  std::string name;
};

struct PolicyDecision {
  // Whether egressd may connect. True for a report-only would-be denial.
  bool allowed = false;
  // The rule that decided, e.g. "deny:private", "allow:cidr 127.0.0.0/8"
  // (see the file comment). For logs and metrics.
  std::string rule;
  // report_only turned a denial into `allowed`: the caller should log it.
  bool report_only_would_deny = false;
  // Why it denies (or would, with report_only), safe to show the caller of
  // Fetch: names no address and no configured entry, e.g. "resolved address
  // is in a private range". Empty when an allow rule decided.
  std::string reason;

  // The rule's name: "private" for "deny:private", "cidr_denylist" for
  // "deny:cidr_denylist 10.1.0.0/16".
  absl::string_view rule_name() const;

  // OK when allowed; otherwise kPermissionDenied, e.g.
  //   egress to 'metadata.internal' denied by rule 'cloud_metadata'
  //   (resolved address is a cloud metadata endpoint)
  // `host` is quoted escaped and capped at 253 bytes (the longest DNS name).
  absl::Status ToStatus(absl::string_view host) const;
};

// One rule's counters. A rule appears in a snapshot, with zeros, from
// construction on, so dashboards see every rule the configuration can
// produce.
struct RuleCount {
  std::string rule;
  // Checks this rule decided.
  uint64_t decisions = 0;
  // Of those, denials that report_only let through.
  uint64_t report_only = 0;
};

class EgressPolicy {
 public:
  // Validates and compiles `options`. kInvalidArgument names the field, the
  // entry's index and what is wrong, e.g.
  //   allow_cidrs[1]: CIDR '10.0.0.0/33': prefix length 33 is out of range
  //   0..32 for IPv4
  static absl::StatusOr<std::unique_ptr<EgressPolicy>> Create(
      EgressPolicyOptions options);

  EgressPolicy(const EgressPolicy&) = delete;
  EgressPolicy& operator=(const EgressPolicy&) = delete;

  // Decides, before any DNS lookup, whether `host` passes the host
  // allow-list (step 0). Allowed, with an empty rule and uncounted, when no
  // allow-list is configured or the host is on it; otherwise
  // "deny:host_not_allowed", counted (with report_only: allowed and marked
  // report_only_would_deny). A host it allows must still pass Check() for
  // each resolved address. Never fails.
  PolicyDecision CheckHost(absl::string_view host) const;

  // Decides whether egressd may connect to `resolved_ip`:`port`, resolved
  // from `host`, and counts the decision under its rule. Never fails. Does
  // not apply the host allow-list: call CheckHost(host) first.
  PolicyDecision Check(absl::string_view host,
                       const asio::ip::address& resolved_ip,
                       uint16_t port) const;

  // Check(...).ToStatus(host).
  absl::Status CheckStatus(absl::string_view host,
                           const asio::ip::address& resolved_ip,
                           uint16_t port) const;

  // Judges a request's destination before a route is chosen (see the file
  // comment): the host allow-list; an IP literal (with or without brackets)
  // by every address rule of Check(); a name by the name rules (port, host
  // deny lists; "localhost" and "*.localhost" as 127.0.0.1 and ::1). A name
  // is judged percent-decoded, the form a proxy may resolve. Denials are
  // counted; an allowed destination is not (the connection's own checks
  // count what they admit), so no request is counted twice. Never fails.
  PolicyDecision CheckDestination(absl::string_view host, uint16_t port) const;

  // egressd's own listeners, as bound (step 2b). Replaces any earlier set.
  // Thread-safe: may be called while other threads run Check(). Const
  // because the policy is shared as const once built, and the listeners are
  // known only after it is (egressd binds its ports after building the
  // client); they are the one part of a policy that changes.
  void SetOwnListeners(std::vector<OwnListener> listeners) const;

  // A snapshot of every rule's counters, in evaluation order.
  std::vector<RuleCount> RuleCounters() const;

  const EgressPolicyOptions& options() const { return options_; }

 private:
  struct Counter {
    std::string rule;
    std::atomic<uint64_t> decisions{0};
    std::atomic<uint64_t> report_only{0};
  };
  // A configured CIDR with the index of its counter.
  struct CidrRule {
    IpRange range;
    size_t counter;
  };

  explicit EgressPolicy(EgressPolicyOptions options);
  absl::Status Compile();

  // The counter for `rule`, created on first use (Compile only).
  size_t CounterFor(const std::string& rule);
  // Whether a decision is counted: always (connect-time checks), or only
  // when it denies (CheckDestination, whose admissions are counted later).
  enum class Count { kAlways, kDenials };

  // Counts (per `count`) and returns a decision of `rule`; `deny` says what
  // it decides.
  PolicyDecision Decide(size_t counter, bool deny, std::string reason,
                        Count count = Count::kAlways) const;
  // Check(), counting per `count`.
  PolicyDecision Judge(absl::string_view host,
                       const asio::ip::address& resolved_ip, uint16_t port,
                       Count count) const;
  // Steps 1 and 2, the rules a name can be judged by without its addresses:
  // a denial, or nullopt when neither decides. `normalised_host` is
  // NormaliseHost's form.
  std::optional<PolicyDecision> JudgeName(absl::string_view normalised_host,
                                          uint16_t port, Count count) const;
  // The name of the own listener (step 2b) that `forms` and `port` reach,
  // or nullopt.
  std::optional<std::string> OwnListenerAt(
      absl::Span<const asio::ip::address> forms, uint16_t port) const;

  const EgressPolicyOptions options_;

  std::vector<uint16_t> allowed_ports_;  // sorted
  // Normalised host or suffix -> counter index.
  absl::flat_hash_map<std::string, size_t> deny_hosts_;
  absl::flat_hash_map<std::string, size_t> deny_suffixes_;
  absl::flat_hash_map<std::string, size_t> exempt_hosts_;
  absl::flat_hash_map<std::string, size_t> exempt_suffixes_;
  // The host allow-list, normalised (IP literals canonical; suffixes without
  // a leading dot). Either non-empty enables step 0.
  absl::flat_hash_set<std::string> allowlist_hosts_;
  absl::flat_hash_set<std::string> allowlist_suffixes_;
  std::vector<CidrRule> deny_cidrs_;
  std::vector<CidrRule> allow_cidrs_;
  // Addresses as 16 bytes (IPv4 as IPv4-mapped), so forms compare equal.
  absl::flat_hash_set<std::string> self_addresses_;
  // SetOwnListeners' set: replaced whole; a reader copies the pointer
  // under the lock and reads the set without it.
  mutable Mutex own_listeners_mu_;
  mutable std::shared_ptr<const std::vector<OwnListener>> own_listeners_
      ABSL_GUARDED_BY(own_listeners_mu_);

  size_t host_not_allowed_counter_ = 0;  // valid when an allow-list is set
  size_t port_counter_ = 0;
  size_t self_counter_ = 0;
  size_t public_counter_ = 0;
  // Indexed by AddressCategory.
  std::vector<size_t> category_counters_;

  // Stable addresses (the Counter holds atomics), indexed by counter index.
  std::vector<std::unique_ptr<Counter>> counters_;
  absl::flat_hash_map<std::string, size_t> counter_index_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_POLICY_EGRESS_POLICY_H_
