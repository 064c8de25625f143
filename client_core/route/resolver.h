// Resolver: turns a host name into IP addresses, asynchronously.
//
// Implementations:
//   - StaticResolver (this file): a fixed host -> IPs map from configuration,
//     like curl's --resolve. For tests and for pinning hosts; optionally
//     falls back to another resolver for hosts it does not list.
//   - SystemResolver (system_resolver.h): real DNS through c-ares, driven by
//     the caller's event loop.
//   - CachingResolver (caching_resolver.h): wraps any resolver with a TTL
//     cache and shares concurrent lookups of one host.
//
// Contract common to all resolvers:
//   - Resolve() runs on the calling coroutine's executor and never blocks it
//     on the network. That executor must not run two handlers at once (an
//     EventLoops loop, a strand, or an io_context run by one thread).
//   - An IP literal ("1.2.3.4", "::1") resolves to itself, without a lookup.
//   - Host names compare case-insensitively.
//   - Errors: kUnavailable for a lookup that failed or found nothing (the
//     message starts "DNS lookup of 'host' ..." or, for StaticResolver, "no
//     static address for host 'host'"); kDeadlineExceeded when `deadline`
//     passed first ("DNS lookup of 'host' timed out after ...").
//   - A successful answer is never empty.
//   - `host` is a reference parameter of a coroutine: it must stay valid
//     until the returned awaitable completes (true when it is co_awaited at
//     once; keep the string alive when co_spawning).
//   - Implementations are thread-safe: one resolver serves every event loop.
#ifndef EGRESS_CLIENT_CORE_ROUTE_RESOLVER_H_
#define EGRESS_CLIENT_CORE_ROUTE_RESOLVER_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/address.hpp"

namespace egress {

// Options of the resolvers egressd builds by default
// (CachingResolver(SystemResolver)). Each field names the resolver that reads
// it.
struct ResolverOptions {
  // SystemResolver and CachingResolver: the longest one lookup may take,
  // however many DNS servers and retries it involves. A lookup past it fails
  // with kUnavailable "DNS lookup of 'h' timed out after 5s". The call's own
  // deadline can cut a lookup shorter (kDeadlineExceeded). Default 5 s:
  // glibc's default per-attempt timeout, and far beyond a healthy resolver's
  // answer time.
  absl::Duration lookup_timeout = absl::Seconds(5);

  // SystemResolver: how long c-ares waits for one DNS server's answer before
  // retrying (it doubles on each round over the servers). Default 1 s, so a
  // single lost UDP packet costs one second, not glibc's five.
  absl::Duration attempt_timeout = absl::Seconds(1);
  // SystemResolver: query rounds over the servers before giving up.
  int attempts = 3;
  // SystemResolver: DNS servers as "ip", "ip:port" or "[ipv6]:port",
  // replacing /etc/resolv.conf's. Empty (the default): use
  // /etc/resolv.conf. /etc/hosts is read first either way.
  std::vector<std::string> nameservers;

  // CachingResolver: answers are cached for their DNS TTL clamped to
  // [ttl_floor, ttl_ceiling]. The floor (default 1 s) keeps TTL-0 records and
  // /etc/hosts answers (which carry no TTL) from sending every new connection
  // to DNS; the ceiling (default 5 min) bounds how long a moved service keeps
  // receiving new connections at its old address when a record's TTL is
  // long. Answers of a StaticResolver never expire.
  absl::Duration ttl_floor = absl::Seconds(1);
  absl::Duration ttl_ceiling = absl::Minutes(5);
  // CachingResolver: most host names cached at once. Default 10,000: about
  // 1-2 MB, more hosts than a sidecar's service talks to.
  size_t max_cache_entries = 10000;
};

// An answer with how long it may be cached.
struct Resolution {
  // Never empty on success; in the order the resolver returned them.
  std::vector<asio::ip::address> addresses;
  // How long the answer may be reused: the smallest DNS TTL among the
  // records, absl::ZeroDuration() when unknown (the cache then keeps it for
  // its floor), absl::InfiniteDuration() for configured answers that never
  // change (StaticResolver).
  absl::Duration ttl = absl::ZeroDuration();
};

class Resolver {
 public:
  virtual ~Resolver() = default;

  // Resolves `host` (a name or an IP literal, IPv6 without brackets) to its
  // addresses. See the contract at the top of this file.
  virtual asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>>
  Resolve(const std::string& host, absl::Time deadline) = 0;

  // As Resolve(), with the answer's TTL, which CachingResolver uses. The
  // default returns Resolve()'s answer with an unknown TTL.
  virtual asio::awaitable<absl::StatusOr<Resolution>> ResolveWithTtl(
      const std::string& host, absl::Time deadline);

  // The address `host` spells, if it is an IP literal (IPv6 without
  // brackets, optionally with a "%scope"); nullopt for a host name.
  static std::optional<asio::ip::address> IpLiteral(absl::string_view host);
};

// Host (lower case) -> its addresses, in order.
using StaticHostMap =
    absl::flat_hash_map<std::string, std::vector<asio::ip::address>>;

// One curl-style static host entry, "host:IP[,IP...]", IPv6 addresses in
// brackets: "api.example.com:10.0.0.1,[fd00::1]". Unlike curl's --resolve
// there is no port: an entry applies to every port of the host. The host is
// lowercased; repeated IPs are kept once.
struct StaticHostEntry {
  std::string host;
  std::vector<asio::ip::address> addresses;
};
// kInvalidArgument naming the entry and what is wrong with it.
absl::StatusOr<StaticHostEntry> ParseStaticHostEntry(absl::string_view entry);
// Parses each entry; kInvalidArgument on the first bad one or when a host is
// listed twice.
absl::StatusOr<StaticHostMap> ParseStaticHosts(
    const std::vector<std::string>& entries);

class StaticResolver : public Resolver {
 public:
  // `hosts` keys are host names, matched case-insensitively. A host that is
  // not listed goes to `fallback` when there is one, else fails with
  // kUnavailable "no static address for host 'x'". An empty address list in
  // `hosts` counts as not listed.
  explicit StaticResolver(StaticHostMap hosts,
                          std::shared_ptr<Resolver> fallback = nullptr);

  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolve(
      const std::string& host, absl::Time deadline) override;
  // Listed hosts' answers have an infinite TTL; the fallback's keep theirs.
  asio::awaitable<absl::StatusOr<Resolution>> ResolveWithTtl(
      const std::string& host, absl::Time deadline) override;

 private:
  // Immutable after construction: read from any thread without a lock.
  const StaticHostMap hosts_;
  const std::shared_ptr<Resolver> fallback_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_RESOLVER_H_
