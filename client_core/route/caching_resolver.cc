#include "client_core/route/caching_resolver.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/base/sync.h"
#include "client_core/route/timer_deadline.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Where one waiting call learns its query's result. Used only on the
// waiter's executor: the query posts the result there.
struct WaitSlot {
  explicit WaitSlot(const asio::any_io_executor& executor) : wake(executor) {}
  asio::steady_timer wake;  // cancelled when `result` is set
  std::optional<absl::StatusOr<Resolution>> result;
};

}  // namespace

struct CachingResolver::State {
  State(std::shared_ptr<Resolver> upstream, const ResolverOptions& options,
        Clock clock)
      : upstream(std::move(upstream)),
        ttl_floor(options.ttl_floor),
        ttl_ceiling(std::max(options.ttl_floor, options.ttl_ceiling)),
        max_entries(std::max<size_t>(1, options.max_cache_entries)),
        lookup_timeout(options.lookup_timeout),
        clock(clock ? std::move(clock) : Clock([] { return absl::Now(); })) {}

  struct Entry {
    std::vector<asio::ip::address> addresses;
    absl::Time expires;
  };

  absl::Time ExpiryFor(absl::Duration ttl, absl::Time now) const {
    if (ttl == absl::InfiniteDuration()) return absl::InfiniteFuture();
    return now + std::clamp(ttl, ttl_floor, ttl_ceiling);
  }

  // Makes room for one more answer.
  void EvictForInsert(const std::string& key, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (cache.size() < max_entries || cache.contains(key)) return;
    absl::erase_if(cache,
                   [now](const auto& kv) { return kv.second.expires <= now; });
    if (cache.size() < max_entries) return;
    auto soonest = std::min_element(
        cache.begin(), cache.end(), [](const auto& a, const auto& b) {
          return a.second.expires < b.second.expires;
        });
    cache.erase(soonest);
  }

  const std::shared_ptr<Resolver> upstream;
  const absl::Duration ttl_floor;
  const absl::Duration ttl_ceiling;
  const size_t max_entries;
  const absl::Duration lookup_timeout;
  const Clock clock;

  mutable Mutex mu;
  absl::flat_hash_map<std::string, Entry> cache ABSL_GUARDED_BY(mu);
  // Host -> the calls waiting for its query. Present exactly while a query
  // for the host runs; RunQuery removes it.
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<WaitSlot>>>
      in_flight ABSL_GUARDED_BY(mu);
  Stats stats ABSL_GUARDED_BY(mu);
};

CachingResolver::CachingResolver(std::shared_ptr<Resolver> upstream,
                                 const ResolverOptions& options, Clock clock)
    : state_(std::make_shared<State>(std::move(upstream), options,
                                     std::move(clock))) {}

CachingResolver::~CachingResolver() = default;

asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>>
CachingResolver::Resolve(const std::string& host, absl::Time deadline) {
  absl::StatusOr<Resolution> resolved = co_await ResolveWithTtl(host, deadline);
  if (!resolved.ok()) co_return resolved.status();
  co_return std::move(resolved->addresses);
}

asio::awaitable<absl::StatusOr<Resolution>> CachingResolver::ResolveWithTtl(
    const std::string& host, absl::Time deadline) {
  if (std::optional<asio::ip::address> ip = IpLiteral(host)) {
    co_return Resolution{{*ip}, absl::InfiniteDuration()};
  }
  const std::shared_ptr<State> state = state_;
  const std::string key = absl::AsciiStrToLower(host);
  const absl::Time started = absl::Now();
  asio::any_io_executor executor = co_await asio::this_coro::executor;

  auto slot = std::make_shared<WaitSlot>(executor);
  bool start_query = false;
  {
    MutexLock lock(&state->mu);
    const absl::Time now = state->clock();
    auto it = state->cache.find(key);
    if (it != state->cache.end() && now < it->second.expires) {
      ++state->stats.hits;
      co_return Resolution{it->second.addresses,
                           it->second.expires == absl::InfiniteFuture()
                               ? absl::InfiniteDuration()
                               : it->second.expires - now};
    }
    // The entry exists exactly while a query runs (its waiters may all have
    // given up).
    auto [query, inserted] = state->in_flight.try_emplace(key);
    start_query = inserted;
    query->second.push_back(slot);
    ++(start_query ? state->stats.queries : state->stats.joined);
  }
  if (start_query) {
    asio::co_spawn(executor, RunQuery(state, key, host), asio::detached);
  }

  // Leaves the query's waiter list however this call ends (answer, deadline,
  // or its event loop destroyed), so the query never posts to a call, or an
  // executor, that is gone.
  struct Unwait {
    ~Unwait() {
      MutexLock lock(&state->mu);
      auto it = state->in_flight.find(key);
      if (it == state->in_flight.end()) return;
      auto& waiters = it->second;
      waiters.erase(std::remove(waiters.begin(), waiters.end(), slot),
                    waiters.end());
    }
    const std::shared_ptr<State>& state;
    const std::string& key;
    const std::shared_ptr<WaitSlot>& slot;
  } unwait{state, key, slot};

  ExpireAt(slot->wake, deadline);
  co_await slot->wake.async_wait(kNoThrow);
  if (slot->result.has_value()) co_return *std::move(slot->result);
  co_return absl::DeadlineExceededError(
      absl::StrCat("DNS lookup of '", host, "' timed out after ",
                   absl::FormatDuration(absl::Trunc(absl::Now() - started,
                                                    absl::Milliseconds(1)))));
}

asio::awaitable<void> CachingResolver::RunQuery(std::shared_ptr<State> state,
                                                std::string key,
                                                std::string host) {
  // If this coroutine is destroyed unfinished (its event loop went away),
  // the next call for the host must start a new query rather than join a
  // dead one. Its waiters then wait until their own deadlines.
  struct Abandon {
    ~Abandon() {
      if (done) return;
      MutexLock lock(&state->mu);
      state->in_flight.erase(key);
    }
    State* state;
    const std::string& key;
    bool done = false;
  } abandon{state.get(), key};

  absl::StatusOr<Resolution> result = co_await state->upstream->ResolveWithTtl(
      host, absl::Now() + state->lookup_timeout);
  if (!result.ok() && absl::IsDeadlineExceeded(result.status())) {
    // The deadline was our lookup timeout, not any caller's: for the callers
    // this is a DNS failure.
    result = absl::UnavailableError(result.status().message());
  } else if (result.ok() && result->addresses.empty()) {
    result = absl::UnavailableError(
        absl::StrCat("DNS lookup of '", host, "' found no address"));
  }

  std::vector<std::shared_ptr<WaitSlot>> waiters;
  {
    MutexLock lock(&state->mu);
    if (result.ok()) {
      const absl::Time now = state->clock();
      state->EvictForInsert(key, now);
      const absl::Time expires = state->ExpiryFor(result->ttl, now);
      state->cache[key] = State::Entry{result->addresses, expires};
      result->ttl = expires == absl::InfiniteFuture() ? absl::InfiniteDuration()
                                                      : expires - now;
    } else {
      ++state->stats.failures;
    }
    auto it = state->in_flight.find(key);
    if (it != state->in_flight.end()) {
      waiters = std::move(it->second);
      state->in_flight.erase(it);
    }
    abandon.done = true;
  }
  for (std::shared_ptr<WaitSlot>& slot : waiters) {
    asio::post(slot->wake.get_executor(), [slot, result]() {
      slot->result = result;
      slot->wake.cancel();
    });
  }
}

CachingResolver::Stats CachingResolver::stats() const {
  MutexLock lock(&state_->mu);
  Stats stats = state_->stats;
  stats.entries = state_->cache.size();
  return stats;
}

void CachingResolver::Clear() {
  MutexLock lock(&state_->mu);
  state_->cache.clear();
}

}  // namespace egress
