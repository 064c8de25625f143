// SystemResolver: real DNS (and /etc/hosts) through c-ares, driven by the
// calling coroutine's event loop.
//
// Why c-ares and not getaddrinfo: getaddrinfo blocks, so it would need a
// thread per concurrent lookup (Asio's resolver runs it on one private thread,
// where one slow name delays every other), and it hides the records' TTLs,
// which CachingResolver needs. c-ares is non-blocking: each lookup gets its own
// channel whose sockets are watched by the caller's event loop
// (asio::posix::stream_descriptor waits and a timer for c-ares's retries), so
// a lookup costs no thread and reports per-record TTLs.
//
// What a lookup does: /etc/hosts first, then the DNS servers of
// /etc/resolv.conf (or ResolverOptions::nameservers), asking for A and AAAA
// records; answers come back in RFC 6724 order (c-ares sorts them), with the
// smallest TTL among the address and CNAME records.
//
// Small blocking file reads remain: c-ares reads /etc/resolv.conf when a
// channel is created and /etc/hosts on each lookup, on the event loop. They
// are local files; put a CachingResolver in front so they happen at most once
// per host per TTL.
//
// Thread-safety: thread-safe; each lookup is confined to its own channel and
// to a strand on the caller's executor (c-ares 1.18 channels are not
// thread-safe).
#ifndef EGRESS_CLIENT_CORE_ROUTE_SYSTEM_RESOLVER_H_
#define EGRESS_CLIENT_CORE_ROUTE_SYSTEM_RESOLVER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/address.hpp"
#include "client_core/route/resolver.h"

namespace egress {

// kInvalidArgument naming the first bad field of `options` (timeouts and
// attempts not positive, ttl_floor above ttl_ceiling, a nameserver that is
// not "ip", "ip:port" or "[ipv6]:port"). For configuration loading; the
// resolvers themselves do not fail on bad options (a bad nameserver list makes
// every lookup fail with kUnavailable saying why).
absl::Status ValidateResolverOptions(const ResolverOptions& options);

class SystemResolver : public Resolver {
 public:
  // Reads lookup_timeout, attempt_timeout, attempts and nameservers.
  explicit SystemResolver(const ResolverOptions& options = {});

  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolve(
      const std::string& host, absl::Time deadline) override;
  // The TTL is the smallest of the answer's records; zero for /etc/hosts
  // answers; infinite for an IP literal.
  asio::awaitable<absl::StatusOr<Resolution>> ResolveWithTtl(
      const std::string& host, absl::Time deadline) override;

 private:
  const ResolverOptions options_;
  // options_.nameservers in c-ares's "ip:port,[ipv6]:port" form; empty for
  // /etc/resolv.conf's. servers_error_ is set when they do not parse.
  std::string servers_csv_;
  absl::Status servers_error_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_SYSTEM_RESOLVER_H_
