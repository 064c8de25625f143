// CachingResolver: a TTL cache in front of another Resolver.
//
// Vocabulary:
//   - An *answer* is a successful Resolution of one host; it is *fresh* until
//     its expiry: the upstream TTL clamped to [ttl_floor, ttl_ceiling], or
//     never for an infinite TTL (configured answers, IP literals).
//   - A *query* is one upstream lookup of one host. While a query for a host
//     is in flight, further calls for that host *join* it instead of starting
//     another, so a burst of new connections to one name costs one lookup.
//
// A query runs on the executor of the call that started it, detached from
// that call, bounded by ResolverOptions::lookup_timeout only: a caller with a
// short deadline gives up waiting (kDeadlineExceeded) without cutting the
// query short for the callers who joined it, and the answer is still cached.
// Failures are not cached: the next call asks again (in-flight sharing already
// bounds the load a failing name puts on DNS).
//
// Size: at most max_cache_entries hosts. Inserting into a full cache first
// drops expired answers, then the answer closest to expiry; that scan is
// O(entries) but happens only when the cache is full.
//
// Thread-safety: thread-safe. Lookups follow the Resolver contract (the
// caller's executor runs one handler at a time). The upstream resolver and
// the state shared with in-flight queries are kept alive by those queries, so
// the CachingResolver may be destroyed while queries run.
#ifndef EGRESS_CLIENT_CORE_ROUTE_CACHING_RESOLVER_H_
#define EGRESS_CLIENT_CORE_ROUTE_CACHING_RESOLVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/address.hpp"
#include "client_core/route/resolver.h"

namespace egress {

class CachingResolver : public Resolver {
 public:
  // The cache's notion of now (answer expiry only; waiting uses real time).
  // absl::Now when null. For tests.
  using Clock = std::function<absl::Time()>;

  // Reads ttl_floor, ttl_ceiling, max_cache_entries and lookup_timeout.
  // `upstream` must not be null.
  CachingResolver(std::shared_ptr<Resolver> upstream,
                  const ResolverOptions& options, Clock clock = nullptr);
  ~CachingResolver() override;

  CachingResolver(const CachingResolver&) = delete;
  CachingResolver& operator=(const CachingResolver&) = delete;

  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolve(
      const std::string& host, absl::Time deadline) override;
  // The TTL returned is the time the cached answer has left.
  asio::awaitable<absl::StatusOr<Resolution>> ResolveWithTtl(
      const std::string& host, absl::Time deadline) override;

  struct Stats {
    uint64_t hits = 0;      // answered from a fresh cached answer
    uint64_t queries = 0;   // upstream lookups started
    uint64_t joined = 0;    // calls that joined a query in flight
    uint64_t failures = 0;  // queries that failed
    size_t entries = 0;     // answers cached now (fresh or not)
  };
  Stats stats() const;

  // Forgets every cached answer (queries in flight still complete and cache
  // theirs).
  void Clear();

 private:
  struct State;
  // The upstream query for `key`, detached from the call that started it;
  // posts its result to every waiter's executor.
  static asio::awaitable<void> RunQuery(std::shared_ptr<State> state,
                                        std::string key, std::string host);

  const std::shared_ptr<State> state_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_CACHING_RESOLVER_H_
