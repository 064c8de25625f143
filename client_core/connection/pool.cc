#include "client_core/connection/pool.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "asio/async_result.hpp"
#include "asio/post.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/call/leak_registry.h"

namespace egress {
namespace {

size_t ReasonIndex(CloseReason reason) { return static_cast<size_t>(reason); }
size_t LimitIndex(PoolLimit limit) { return static_cast<size_t>(limit); }

std::chrono::steady_clock::duration ToSteady(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

absl::Duration FromSteady(std::chrono::steady_clock::duration d) {
  return absl::FromChrono(d);
}

}  // namespace

absl::string_view PoolLimitName(PoolLimit limit) {
  switch (limit) {
    case PoolLimit::kMaxRequestsInFlight: return "max_requests_in_flight";
    case PoolLimit::kMaxRequestsInFlightPerAddress:
      return "max_requests_in_flight_per_address";
    case PoolLimit::kMaxPendingPerAddress: return "max_pending_per_address";
    case PoolLimit::kPendingTimeout: return "pending_timeout";
  }
  return "unknown";
}

// A call waiting in an address's queue. Its fields other than `handler` and
// `timer` are guarded by the pool's mutex; `handler` and `timer` are touched
// only on `executor` (the waiting coroutine's).
struct ConnectionPool::Waiter {
  AddressState* state = nullptr;
  bool pending = true;
  SteadyTime enqueued;
  asio::any_io_executor executor;
  absl::AnyInvocable<void(absl::StatusOr<Lease>)> handler;
  std::unique_ptr<asio::steady_timer> timer;
};

ConnectionPool::ConnectionPool(const PoolOptions& options,
                               asio::any_io_executor cleanup_executor,
                               PoolListener* listener)
    : options_(options),
      cleanup_executor_(cleanup_executor),
      listener_(listener),
      health_check_after_(ToSteady(options.health_check_after_idle)),
      max_lifetime_(options.max_connection_lifetime > absl::ZeroDuration()
                        ? ToSteady(options.max_connection_lifetime)
                        : std::chrono::steady_clock::duration::zero()),
      cleanup_timer_(cleanup_executor) {}

ConnectionPool::~ConnectionPool() = default;

uint64_t ConnectionPool::NextConnectionId() {
  return next_connection_id_.fetch_add(1, std::memory_order_relaxed);
}

absl::Status ConnectionPool::BeginRequest(const Address& address) {
  MutexLock lock(&mu_);
  if (shutdown_) return absl::CancelledError("egressd is shutting down");
  if (options_.max_requests_in_flight > 0 &&
      requests_in_flight_ >= options_.max_requests_in_flight) {
    ++rejected_by_limit_[LimitIndex(PoolLimit::kMaxRequestsInFlight)];
    return absl::ResourceExhaustedError(absl::StrCat(
        "max_requests_in_flight=", options_.max_requests_in_flight,
        " reached; egressd is overloaded"));
  }
  AddressState& state = StateFor(address);
  if (options_.max_requests_in_flight_per_address > 0 &&
      state.requests_in_flight >= options_.max_requests_in_flight_per_address) {
    ++rejected_by_limit_[LimitIndex(
        PoolLimit::kMaxRequestsInFlightPerAddress)];
    MaybeForget(&state);
    return absl::ResourceExhaustedError(absl::StrCat(
        "max_requests_in_flight_per_address=",
        options_.max_requests_in_flight_per_address, " reached for ",
        address.ToString()));
  }
  ++state.requests_in_flight;
  ++requests_in_flight_;
  return absl::OkStatus();
}

void ConnectionPool::EndRequest(const Address& address) {
  MutexLock lock(&mu_);
  auto it = addresses_.find(address);
  if (it == addresses_.end()) return;
  AddressState* state = it->get();
  --state->requests_in_flight;
  --requests_in_flight_;
  MaybeForget(state);
}

Lease ConnectionPool::TryAcquireIdle(const Address& address) {
  Lease lease = TakeIdle(address);
  NotifyAcquired(lease);
  return lease;
}

void ConnectionPool::NotifyAcquired(const Lease& lease) const {
  if (listener_ == nullptr || lease.connection == nullptr) return;
  listener_->OnConnectionAcquired(lease.connection->id(),
                                  lease.connection->address(), lease.reused);
}

Lease ConnectionPool::TakeIdle(const Address& address) {
  const auto now = std::chrono::steady_clock::now();
  // Candidates are taken under the lock and probed outside it: the probe is
  // a syscall, and the lock is shared by every event loop.
  while (true) {
    Entry* entry = nullptr;
    bool check = false;
    absl::Duration idle_for;
    Effects effects;
    {
      MutexLock lock(&mu_);
      if (shutdown_) return {};
      auto it = addresses_.find(address);
      if (it == addresses_.end()) return {};
      AddressState* state = it->get();
      if (Entry* busy = MultiplexedWithRoom(state)) {
        // A stream on a connection in use: it is alive (its reader would
        // have reported otherwise), so no probe.
        ++busy->allocations;
        return {busy->connection, true, {}, {}};
      }
      entry = state->idle_top;
      if (entry == nullptr) return {};
      UnmarkIdle(entry);
      if (PastLifetime(*entry, now)) {
        Remove(entry, CloseReason::kMaxLifetime, &effects);
        GrantFreedSlots(state, &effects);
        MaybeForget(state);
      } else {
        check = now - entry->idle_since >= health_check_after_;
        entry->allocations = 1;
        in_use_.emplace(entry->connection.get(), entry);
        ++in_use_count_;
        idle_for = FromSteady(now - entry->idle_since);
        if (!check) {
          return {entry->connection, entry->success_count > 0, {}, idle_for};
        }
      }
    }
    if (!effects.closing.empty()) {
      Apply(std::move(effects));
      continue;
    }
    const Connection::Health health = entry->connection->ProbeHealth();
    if (health == Connection::Health::kHealthy) {
      MutexLock lock(&mu_);
      return {entry->connection, entry->success_count > 0, {}, idle_for};
    }
    {
      MutexLock lock(&mu_);
      entry->allocations = 0;
      in_use_.erase(entry->connection.get());
      --in_use_count_;
      AddressState* state = entry->address_state;
      Remove(entry,
             health == Connection::Health::kPeerClosed ? CloseReason::kPeerClosed
                                                       : CloseReason::kUnhealthy,
             &effects);
      GrantFreedSlots(state, &effects);
      MaybeForget(state);
    }
    Apply(std::move(effects));
  }
}

asio::awaitable<absl::StatusOr<Lease>> ConnectionPool::Acquire(
    const Address& address, absl::Time deadline, bool allow_idle,
    bool may_multiplex) {
  if (allow_idle) {
    Lease idle = TryAcquireIdle(address);
    if (idle.connection) co_return idle;
  }
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  auto waiter = std::make_shared<Waiter>();
  {
    MutexLock lock(&mu_);
    if (shutdown_) co_return absl::CancelledError("egressd is shutting down");
    AddressState& state = StateFor(address);
    // An HTTP/2 origin with a connection on the way: wait for its streams
    // rather than open a connection per call.
    const bool await_multiplexed =
        (state.multiplexed_hint || (may_multiplex && !state.known_http1)) &&
        (state.connecting_count > 0 || state.awaiting_settings > 0);
    if (!await_multiplexed && HasConnectionRoom(state)) {
      ++state.connecting_count;
      ++connecting_count_;
      co_return Lease{};
    }
    if (state.pending_count >= options_.max_pending_per_address) {
      ++rejected_by_limit_[LimitIndex(PoolLimit::kMaxPendingPerAddress)];
      MaybeForget(&state);
      co_return absl::ResourceExhaustedError(absl::StrCat(
          "max_pending_per_address=", options_.max_pending_per_address,
          " reached for ", address.ToString(), " (all ",
          state.connection_count + state.connecting_count,
          " connections busy)"));
    }
    waiter->state = &state;
    waiter->enqueued = std::chrono::steady_clock::now();
    waiter->executor = executor;
    state.waiters.push_back(waiter);
    ++state.queued_count;
    ++state.pending_count;
    ++pending_count_;
    addresses_with_waiters_.insert(&state);
  }

  const absl::Time pending_limit = absl::Now() + options_.pending_timeout;
  const bool deadline_first = deadline < pending_limit;
  const absl::Time give_up = deadline_first ? deadline : pending_limit;
  const std::string address_name = address.ToString();
  // Grants are decided under the lock and delivered by a post to this
  // executor; the timer runs here too. Whichever takes the waiter out of the
  // queue (grant or timer, under the lock) completes the wait, exactly once.
  // The initiation runs before this coroutine yields to the loop, so the
  // handler is stored before any posted grant can run.
  // (Named, not a temporary in the co_await expression: g++ 12 destroys
  // such temporaries' captures twice.)
  auto initiation = [this, waiter, give_up, deadline_first,
                     address_name](auto handler) {
        waiter->handler = std::move(handler);
        waiter->timer = std::make_unique<asio::steady_timer>(waiter->executor);
        absl::Duration left = give_up - absl::Now();
        if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
        waiter->timer->expires_after(absl::ToChronoNanoseconds(left));
        waiter->timer->async_wait([this, waiter, deadline_first, address_name](
                                      const asio::error_code& ec) {
          if (ec) return;  // a grant cancelled it
          {
            MutexLock lock(&mu_);
            if (!waiter->pending) return;  // granted; its delivery is queued
            waiter->pending = false;
            --waiter->state->pending_count;
            --pending_count_;
            if (!deadline_first) {
              ++rejected_by_limit_[LimitIndex(PoolLimit::kPendingTimeout)];
            }
          }
          absl::Status status =
              deadline_first
                  ? absl::DeadlineExceededError(absl::StrCat(
                        "deadline exceeded while waiting for a connection to ",
                        address_name, " (connection limit reached)"))
                  : absl::ResourceExhaustedError(absl::StrCat(
                        "no connection to ", address_name,
                        " within pending_timeout ",
                        absl::FormatDuration(options_.pending_timeout),
                        " (connection limit reached)"));
          std::move(waiter->handler)(std::move(status));
        });
  };
  absl::StatusOr<Lease> granted =
      co_await asio::async_initiate<const asio::use_awaitable_t<>,
                                    void(absl::StatusOr<Lease>)>(
          initiation, asio::use_awaitable);
  co_return granted;
}

Lease ConnectionPool::TryAcquireCoalesced(
    const Address& address, const std::vector<std::string>& ips,
    absl::FunctionRef<bool(const Connection&)> eligible) {
  Lease lease = TakeCoalesced(address, ips, eligible);
  NotifyAcquired(lease);
  return lease;
}

Lease ConnectionPool::TakeCoalesced(
    const Address& address, const std::vector<std::string>& ips,
    absl::FunctionRef<bool(const Connection&)> eligible) {
  MutexLock lock(&mu_);
  if (shutdown_ || coalescable_.empty()) return {};
  const auto now = std::chrono::steady_clock::now();
  for (const std::string& ip : ips) {
    auto it = coalescable_.find(ip);
    if (it == coalescable_.end()) continue;
    for (Entry* entry : it->second) {
      const Address& theirs = entry->connection->address();
      if (!entry->coalescing || entry->no_new_exchanges ||
          entry->allocations >= entry->allocation_limit ||
          theirs.scheme != address.scheme || theirs.port != address.port ||
          theirs.partition != address.partition || theirs == address ||
          PastLifetime(*entry, now) ||
          !eligible(*entry->connection)) {
        continue;
      }
      absl::Duration idle_for;
      if (entry->idle) {
        // An idle connection's health is its reader's: ProbeHealth reads
        // atomics only, so it is fine under the lock.
        if (entry->connection->ProbeHealth() != Connection::Health::kHealthy) {
          continue;  // its own address's next acquire closes it
        }
        idle_for = FromSteady(now - entry->idle_since);
        UnmarkIdle(entry);
        in_use_.emplace(entry->connection.get(), entry);
        ++in_use_count_;
      }
      ++entry->allocations;
      return {entry->connection, true, {}, idle_for};
    }
  }
  return {};
}

bool ConnectionPool::MayCoalesce() const {
  MutexLock lock(&mu_);
  return !coalescable_.empty();
}

void ConnectionPool::DisableCoalescing(uint64_t connection_id) {
  MutexLock lock(&mu_);
  auto it = entries_.find(connection_id);
  if (it == entries_.end() || !it->second->coalescing) return;
  Entry* entry = it->second.get();
  entry->coalescing = false;
  auto by_ip = coalescable_.find(entry->connection->remote_ip());
  if (by_ip == coalescable_.end()) return;
  auto& list = by_ip->second;
  list.erase(std::remove(list.begin(), list.end(), entry), list.end());
  if (list.empty()) coalescable_.erase(by_ip);
}

std::shared_ptr<Connection> ConnectionPool::AddConnected(
    std::shared_ptr<Connection> connection) {
  const uint64_t id = connection->id();
  const Address address = connection->address();
  std::shared_ptr<Connection> use;
  Effects effects;
  bool opened = false;
  {
    MutexLock lock(&mu_);
    AddressState& state = StateFor(address);
    --state.connecting_count;
    --connecting_count_;
    if (shutdown_) {
      MaybeForget(&state);
      return nullptr;
    }
    const auto now = std::chrono::steady_clock::now();
    state.multiplexed_hint = connection->multiplexed();
    state.known_http1 = !connection->multiplexed();
    if (connection->multiplexed()) {
      if (Entry* existing = MultiplexedWithRoom(&state)) {
        // Another call's connection got here first: one multiplexed
        // connection serves them all.
        ++existing->allocations;
        ++closed_by_reason_[ReasonIndex(CloseReason::kDuplicate)];
        ++state.closed_by_reason[ReasonIndex(CloseReason::kDuplicate)];
        effects.closing.push_back({connection, CloseReason::kDuplicate});
        ++connections_opened_;
        use = existing->connection;
        opened = true;
        // The existing connection's room goes to pending calls first.
        GrantStreams(existing, now, &effects);
        GrantFreedSlots(&state, &effects);
      }
    }
    if (use == nullptr) {
      auto entry = std::make_unique<Entry>();
      ++state.connection_count;
      entry->address_state = &state;
      entry->connection = connection;
      entry->allocations = 1;
      entry->multiplexed = connection->multiplexed();
      entry->allocation_limit =
          entry->multiplexed ? std::max(1, connection->allocation_limit()) : 1;
      const bool limit_known = connection->allocation_limit_known();
      if (entry->multiplexed && limit_known) {
        state.last_allocation_limit = entry->allocation_limit;
      }
      if (entry->multiplexed && !limit_known) {
        entry->limit_known = false;
        ++state.awaiting_settings;
      }
      entry->created = now;
      entry->created_wall = absl::Now();
      in_use_.emplace(entry->connection.get(), entry.get());
      ++in_use_count_;
      ++connections_opened_;
      Entry* added = entry.get();
      entries_.emplace(id, std::move(entry));
      if (added->multiplexed) {
        state.multiplexed.push_back(added);
        // Never through a proxy: the remote IP is the proxy's, and the
        // tunnel leads to one origin only.
        if (added->connection->tls_info() != nullptr &&
            added->connection->address().proxy.empty() &&
            !added->connection->remote_ip().empty()) {
          added->coalescing = true;
          coalescable_[added->connection->remote_ip()].push_back(added);
        }
        GrantStreams(added, now, &effects);
      }
      // HTTP/2 reports SETTINGS and GOAWAY; HTTP/1.1 what arrives while
      // idle (its idle watch).
      connection->set_observer(this);
      // Calls that waited for this connection and did not fit on it may
      // now connect (the hint no longer holds them back). For HTTP/2, once
      // the peer's SETTINGS say how many fit (OnAllocationLimitChanged).
      if (!added->multiplexed || limit_known) {
        GrantFreedSlots(&state, &effects);
      }
      use = std::move(connection);
      opened = true;
    }
  }
  if (opened && listener_ != nullptr) listener_->OnConnectionOpened(id, address);
  if (use != nullptr && listener_ != nullptr) {
    // The opener's allocation: on its own connection, or on the one kept.
    listener_->OnConnectionAcquired(use->id(), use->address(), use->id() != id);
  }
  if (!effects.empty()) Apply(std::move(effects));
  return use;
}

void ConnectionPool::ConnectFailed(const Address& address) {
  Effects effects;
  {
    MutexLock lock(&mu_);
    AddressState& state = StateFor(address);
    --state.connecting_count;
    --connecting_count_;
    ++connect_failures_;
    ++state.connect_failures;
    GrantFreedSlots(&state, &effects);
    MaybeForget(&state);
  }
  Apply(std::move(effects));
}

void ConnectionPool::Release(const std::shared_ptr<Connection>& connection,
                             bool succeeded,
                             std::optional<CloseReason> close_reason) {
  Effects effects;
  {
    MutexLock lock(&mu_);
    // The in-use table answers for every allocated connection; the lookup
    // by id keeps the old answer for anything else.
    Entry* entry;
    auto in_use = in_use_.find(connection.get());
    if (in_use != in_use_.end()) {
      entry = in_use->second;
    } else {
      auto it = entries_.find(connection->id());
      if (it == entries_.end()) return;
      entry = it->second.get();
    }
    AddressState* state = entry->address_state;
    const auto now = std::chrono::steady_clock::now();
    entry->allocations = std::max(0, entry->allocations - 1);
    entry->last_used = now;
    if (succeeded) {
      ++entry->success_count;
      ++state->requests_served;
    }
    if (entry->allocations > 0 && !close_reason) {
      // A multiplexed connection still carrying other streams: the freed
      // stream goes to a pending call, if any.
      GrantStreams(entry, now, &effects);
    } else {
      ReleaseLast(entry, in_use, close_reason, now, &effects);
    }
  }
  // Before Apply: released comes before idle, closed or a hand-over.
  if (listener_ != nullptr) {
    listener_->OnConnectionReleased(connection->id(), connection->address(),
                                    succeeded);
  }
  if (!effects.empty()) Apply(std::move(effects));
}

void ConnectionPool::ReportLeak(const LeakReport& report) {
  Address address;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(report.connection_id);
    if (it != entries_.end()) {
      address = it->second->connection->address();
      ++it->second->address_state->leaks;
    }
  }
  if (listener_ != nullptr) {
    listener_->OnLeakDetected(report.connection_id, address, report);
  }
}

void ConnectionPool::ReleaseLast(
    Entry* entry,
    absl::flat_hash_map<const Connection*, Entry*>::iterator in_use,
    std::optional<CloseReason> close_reason, SteadyTime now,
    Effects* effects_out) {
  Effects& effects = *effects_out;
  AddressState* state = entry->address_state;
  if (shutdown_) close_reason = CloseReason::kShutdown;
  // A leaked allocation's connection is counted as leaked however its
  // exchange ended: that is what the operator needs to see.
  if (entry->no_new_exchanges == CloseReason::kLeaked && !shutdown_) {
    close_reason = CloseReason::kLeaked;
  }
  if (!close_reason && entry->no_new_exchanges) {
    close_reason = entry->no_new_exchanges;
  }
  if (!close_reason && PastLifetime(*entry, now)) {
    close_reason = CloseReason::kMaxLifetime;
  }
  if (close_reason) {
    --in_use_count_;
    Remove(entry, *close_reason, &effects);
    GrantFreedSlots(state, &effects);
    MaybeForget(state);
  } else if (std::shared_ptr<Waiter> waiter =
                 state->queued_count > 0 ? PopWaiter(state) : nullptr) {
    // Handed straight to a pending call: it stays in use.
    entry->allocations = 1;
    if (in_use == in_use_.end()) {
      in_use_.emplace(entry->connection.get(), entry);
    }
    Lease lease{entry->connection, true, FromSteady(now - waiter->enqueued),
                {}};
    effects.grants.push_back({std::move(waiter), std::move(lease)});
    if (entry->multiplexed) GrantStreams(entry, now, &effects);
  } else {
    if (in_use != in_use_.end()) in_use_.erase(in_use);
    --in_use_count_;
    MarkIdle(entry, now);
    if (listener_ != nullptr) {
      effects.went_idle.emplace(entry->connection->id(), state->address);
    }
    EnforceIdleLimits(state, &effects);
    MaybeForget(state);
    ScheduleCleanup();
  }
}

size_t ConnectionPool::EvictIdle(const std::optional<Address>& address) {
  Effects effects;
  {
    MutexLock lock(&mu_);
    if (address.has_value()) {
      auto it = addresses_.find(*address);
      if (it != addresses_.end()) {
        AddressState* state = it->get();
        while (state->idle_bottom != nullptr) {
          Entry* entry = state->idle_bottom;
          UnmarkIdle(entry);
          Remove(entry, CloseReason::kEvictRequest, &effects);
        }
        GrantFreedSlots(state, &effects);
        MaybeForget(state);
      }
    } else {
      std::vector<AddressState*> touched;
      while (lru_oldest_ != nullptr) {
        Entry* entry = lru_oldest_;
        touched.push_back(entry->address_state);
        UnmarkIdle(entry);
        Remove(entry, CloseReason::kEvictRequest, &effects);
      }
      std::sort(touched.begin(), touched.end());
      touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
      for (AddressState* state : touched) {
        GrantFreedSlots(state, &effects);
        MaybeForget(state);
      }
    }
  }
  const size_t n = effects.closing.size();
  Apply(std::move(effects));
  return n;
}

size_t ConnectionPool::Drain() {
  Effects effects;
  size_t marked = 0;
  {
    MutexLock lock(&mu_);
    std::vector<AddressState*> touched;
    for (auto& [id, entry] : entries_) {
      if (!entry->no_new_exchanges) {
        entry->no_new_exchanges = CloseReason::kDrain;
        ++marked;
      }
    }
    while (lru_oldest_ != nullptr) {
      Entry* entry = lru_oldest_;
      touched.push_back(entry->address_state);
      UnmarkIdle(entry);
      Remove(entry, CloseReason::kDrain, &effects);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (AddressState* state : touched) {
      GrantFreedSlots(state, &effects);
      MaybeForget(state);
    }
  }
  Apply(std::move(effects));
  return marked;
}

void ConnectionPool::Shutdown(bool close_in_use) {
  Effects effects;
  std::vector<std::shared_ptr<Connection>> in_use;
  {
    MutexLock lock(&mu_);
    shutdown_ = true;
    while (lru_oldest_ != nullptr) {
      Entry* entry = lru_oldest_;
      UnmarkIdle(entry);
      Remove(entry, CloseReason::kShutdown, &effects);
    }
    for (AddressState* state : addresses_with_waiters_) {
      for (auto& waiter : state->waiters) {
        if (!waiter->pending) continue;
        waiter->pending = false;
        --state->pending_count;
        --pending_count_;
        effects.grants.push_back(
            {waiter, absl::CancelledError("egressd is shutting down")});
      }
      state->waiters.clear();
      state->queued_count = 0;
    }
    addresses_with_waiters_.clear();
    if (close_in_use) {
      for (auto& [id, entry] : entries_) in_use.push_back(entry->connection);
    }
  }
  Apply(std::move(effects));
  // In-use connections are closed but stay in the pool until their call
  // releases them (counted then, as shutdown): their exchanges fail at once.
  for (auto& connection : in_use) {
    asio::post(connection->executor(), [connection] { connection->Close(); });
  }
  asio::post(cleanup_executor_, [this] { cleanup_timer_.cancel(); });
}

void ConnectionPool::MarkNoNewExchanges(uint64_t connection_id,
                                        CloseReason reason) {
  Effects effects;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(connection_id);
    if (it == entries_.end() || it->second->no_new_exchanges) return;
    Entry* entry = it->second.get();
    entry->no_new_exchanges = reason;
    if (!entry->idle) return;
    AddressState* state = entry->address_state;
    UnmarkIdle(entry);
    Remove(entry, reason, &effects);
    GrantFreedSlots(state, &effects);
    MaybeForget(state);
  }
  Apply(std::move(effects));
}

void ConnectionPool::OnAllocationLimitChanged(uint64_t connection_id) {
  Effects effects;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(connection_id);
    if (it == entries_.end()) return;
    Entry* entry = it->second.get();
    entry->allocation_limit = std::max(1, entry->connection->allocation_limit());
    entry->address_state->last_allocation_limit = entry->allocation_limit;
    if (!entry->limit_known) {
      entry->limit_known = true;
      --entry->address_state->awaiting_settings;
    }
    // Pending calls get streams here first, then connections of their own
    // for what does not fit.
    GrantStreams(entry, std::chrono::steady_clock::now(), &effects);
    GrantFreedSlots(entry->address_state, &effects);
  }
  Apply(std::move(effects));
}

size_t ConnectionPool::InUseCount() const {
  MutexLock lock(&mu_);
  return in_use_count_;
}

PoolSnapshot ConnectionPool::Snapshot() const {
  PoolSnapshot snapshot;
  MutexLock lock(&mu_);
  snapshot.connection_count = static_cast<uint32_t>(entries_.size());
  snapshot.idle_count = idle_count_;
  snapshot.in_use_count = in_use_count_;
  snapshot.connecting_count = connecting_count_;
  snapshot.pending_count = pending_count_;
  snapshot.requests_in_flight = requests_in_flight_;
  snapshot.connections_opened = connections_opened_;
  snapshot.connect_failures = connect_failures_;
  snapshot.closed_by_reason = closed_by_reason_;
  snapshot.rejected_by_limit = rejected_by_limit_;
  snapshot.cleanup_wakeups = cleanup_wakeups_;
  snapshot.addresses.reserve(addresses_.size());
  for (const auto& state_ptr : addresses_) {
    const AddressState& state = *state_ptr;
    if (state.connection_count == 0 && state.connecting_count == 0 &&
        state.pending_count == 0) {
      continue;  // only calls in flight before connecting: nothing to show
    }
    PoolSnapshot::AddressCounts counts;
    counts.address = state.address;
    counts.connection_count = state.connection_count;
    counts.idle_count = state.idle_count;
    counts.in_use_count = state.connection_count - counts.idle_count;
    counts.connecting_count = state.connecting_count;
    counts.pending_count = state.pending_count;
    counts.requests_in_flight = state.requests_in_flight;
    counts.requests_served = state.requests_served;
    counts.http2_count = static_cast<uint32_t>(state.multiplexed.size());
    snapshot.addresses.push_back(std::move(counts));
  }
  // Allocations and bytes per address: a pass over the connections (a
  // snapshot is rare; the hot paths keep no per-address sum).
  struct Sums {
    uint32_t allocations = 0;
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
  };
  absl::flat_hash_map<const AddressState*, Sums> sums;
  snapshot.bytes_in = closed_bytes_in_;
  snapshot.bytes_out = closed_bytes_out_;
  for (const auto& [id, entry] : entries_) {
    Sums& sum = sums[entry->address_state];
    sum.allocations += static_cast<uint32_t>(entry->allocations);
    const uint64_t in = entry->connection->bytes_received();
    const uint64_t out = entry->connection->bytes_sent();
    sum.bytes_in += in;
    sum.bytes_out += out;
    snapshot.bytes_in += in;
    snapshot.bytes_out += out;
  }
  for (PoolSnapshot::AddressCounts& counts : snapshot.addresses) {
    auto it = addresses_.find(counts.address);
    if (it == addresses_.end()) continue;
    counts.bytes_in = it->get()->closed_bytes_in;
    counts.bytes_out = it->get()->closed_bytes_out;
    counts.closed_by_reason = it->get()->closed_by_reason;
    counts.connect_failures = it->get()->connect_failures;
    counts.leaks = it->get()->leaks;
    auto a = sums.find(it->get());
    if (a == sums.end()) continue;
    counts.allocations = a->second.allocations;
    counts.bytes_in += a->second.bytes_in;
    counts.bytes_out += a->second.bytes_out;
  }
  std::sort(snapshot.addresses.begin(), snapshot.addresses.end(),
            [](const auto& a, const auto& b) {
              return a.address.ToString() < b.address.ToString();
            });
  return snapshot;
}

std::vector<ConnectionSnapshot> ConnectionPool::ListConnections(
    uint64_t start_id, size_t max_results,
    const std::optional<Address>& address, bool* end) const {
  std::vector<ConnectionSnapshot> out;
  MutexLock lock(&mu_);
  // Sorted ids: a listing is rare and paged, the map is not ordered.
  std::vector<const Entry*> selected;
  for (const auto& [id, entry] : entries_) {
    if (id < start_id) continue;
    if (address && entry->connection->address() != *address) continue;
    selected.push_back(entry.get());
  }
  std::sort(selected.begin(), selected.end(), [](const Entry* a, const Entry* b) {
    return a->connection->id() < b->connection->id();
  });
  const auto steady_now = std::chrono::steady_clock::now();
  const absl::Time wall_now = absl::Now();
  size_t n = selected.size();
  if (max_results > 0 && n > max_results) n = max_results;
  *end = n == selected.size();
  for (size_t i = 0; i < n; ++i) {
    const Entry& e = *selected[i];
    ConnectionSnapshot s;
    s.id = e.connection->id();
    s.address = e.connection->address();
    s.remote_address = e.connection->remote_address();
    s.local_port = e.connection->local_port();
    s.created = e.created_wall;
    s.last_used = e.last_used == SteadyTime()
                      ? e.created_wall
                      : wall_now - FromSteady(steady_now - e.last_used);
    s.idle_since = e.idle ? wall_now - FromSteady(steady_now - e.idle_since)
                          : absl::InfinitePast();
    s.allocations = e.allocations;
    s.allocation_limit = e.allocation_limit;
    s.bytes_in = e.connection->bytes_received();
    s.bytes_out = e.connection->bytes_sent();
    s.protocol = e.connection->protocol();
    s.connection = e.connection;
    s.success_count = e.success_count;
    if (e.no_new_exchanges) {
      s.no_new_exchanges_reason = std::string(CloseReasonName(*e.no_new_exchanges));
    }
    out.push_back(std::move(s));
  }
  return out;
}

size_t ConnectionPool::StateHash::operator()(const Address& a) const {
  return absl::Hash<Address>{}(a);
}

bool ConnectionPool::AddressState::Matches(const Address& a) const {
  // offsetof on a type with non-trivial members is "conditionally
  // supported"; g++ and clang compute it as for any class without virtual
  // bases.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
  static_assert(offsetof(AddressState, key) + kInlineKeySize <= 128,
                "an AddressState's counters and key must fit its first two "
                "cache lines");
#pragma GCC diagnostic pop
  if (a.port != port) return false;
  // Only a direct, unpartitioned address's key is inline, so an inline key
  // decides without touching the cold `address`.
  if (!key_inline) return a == address;
  if (!a.proxy.empty() || !a.partition.empty()) return false;
  return a.scheme.size() == scheme_size &&
         a.scheme.size() + a.host.size() == key_size &&
         std::memcmp(key, a.scheme.data(), scheme_size) == 0 &&
         std::memcmp(key + scheme_size, a.host.data(), a.host.size()) == 0;
}

ConnectionPool::AddressState& ConnectionPool::StateFor(const Address& address) {
  const size_t hash = StateHash()(address);
  auto it = addresses_.find(address, hash);
  if (it != addresses_.end()) return **it;
  auto state = std::make_unique<AddressState>();
  state->hash = hash;
  state->address = address;
  state->port = address.port;
  const size_t key_size = address.scheme.size() + address.host.size();
  if (address.proxy.empty() && address.partition.empty() &&
      address.scheme.size() <= UINT8_MAX &&
      key_size <= kInlineKeySize) {
    state->key_inline = true;
    state->scheme_size = static_cast<uint8_t>(address.scheme.size());
    state->key_size = static_cast<uint32_t>(key_size);
    std::memcpy(state->key, address.scheme.data(), address.scheme.size());
    std::memcpy(state->key + address.scheme.size(), address.host.data(),
                address.host.size());
  }
  AddressState& ref = *state;
  addresses_.insert(std::move(state));
  return ref;
}

void ConnectionPool::MaybeForget(AddressState* state) {
  // An address with nothing open, connecting, waiting or in flight is
  // forgotten, so the map stays as large as the set of live addresses.
  if (state->connection_count == 0 && state->connecting_count == 0 &&
      state->requests_in_flight == 0 && state->pending_count == 0) {
    addresses_with_waiters_.erase(state);
    addresses_.erase(state);  // destroys *state
  }
}

bool ConnectionPool::HasConnectionRoom(const AddressState& state) const {
  const size_t total = entries_.size() + connecting_count_;
  const size_t mine = state.connection_count + state.connecting_count;
  return (options_.max_connections == 0 || total < options_.max_connections) &&
         (options_.max_connections_per_address == 0 ||
          mine < options_.max_connections_per_address);
}

std::shared_ptr<ConnectionPool::Waiter> ConnectionPool::PopWaiter(
    AddressState* state) {
  while (!state->waiters.empty()) {
    std::shared_ptr<Waiter> waiter = std::move(state->waiters.front());
    state->waiters.pop_front();
    --state->queued_count;
    if (!waiter->pending) continue;  // timed out earlier
    waiter->pending = false;
    --state->pending_count;
    --pending_count_;
    if (state->waiters.empty()) addresses_with_waiters_.erase(state);
    return waiter;
  }
  addresses_with_waiters_.erase(state);
  return nullptr;
}

void ConnectionPool::GrantFreedSlots(AddressState* state, Effects* effects) {
  const auto now = std::chrono::steady_clock::now();
  auto grant_while_room = [&](AddressState* s) {
    // For an HTTP/2 origin each connection being opened takes about
    // last_allocation_limit pending calls (its opener and the rest as
    // streams once it is up): open only as many as the queue needs.
    const uint32_t per =
        s->multiplexed_hint
            ? static_cast<uint32_t>(std::max(1, s->last_allocation_limit))
            : 1;
    while (s->pending_count > 0 && HasConnectionRoom(*s) &&
           (per == 1 || (s->connecting_count + s->awaiting_settings) *
                                (per - 1) <
                            s->pending_count)) {
      std::shared_ptr<Waiter> waiter = PopWaiter(s);
      if (waiter == nullptr) break;
      ++s->connecting_count;
      ++connecting_count_;
      Lease lease;
      lease.queue_wait = FromSteady(now - waiter->enqueued);
      effects->grants.push_back({std::move(waiter), std::move(lease)});
    }
  };
  grant_while_room(state);
  if (addresses_with_waiters_.empty()) return;
  // A global slot may have freed for calls waiting on other addresses.
  std::vector<AddressState*> others(addresses_with_waiters_.begin(),
                                    addresses_with_waiters_.end());
  for (AddressState* other : others) {
    if (options_.max_connections > 0 &&
        entries_.size() + connecting_count_ >= options_.max_connections) {
      break;
    }
    grant_while_room(other);
  }
}

ConnectionPool::Entry* ConnectionPool::MultiplexedWithRoom(
    AddressState* state) {
  SteadyTime now;
  for (Entry* entry : state->multiplexed) {
    if (entry->allocations > 0 && !entry->no_new_exchanges &&
        entry->allocations < entry->allocation_limit) {
      // A busy HTTP/2 connection may never go idle, so its lifetime is
      // checked here too: past it, it finishes its streams and closes.
      if (max_lifetime_ != std::chrono::steady_clock::duration::zero()) {
        if (now == SteadyTime()) now = std::chrono::steady_clock::now();
        if (PastLifetime(*entry, now)) {
          entry->no_new_exchanges = CloseReason::kMaxLifetime;
          continue;
        }
      }
      return entry;
    }
  }
  return nullptr;
}

void ConnectionPool::GrantStreams(Entry* entry, SteadyTime now,
                                  Effects* effects) {
  // An idle entry is taken through its address's idle stack, never here.
  if (!entry->multiplexed || entry->idle || entry->no_new_exchanges ||
      shutdown_) {
    return;
  }
  AddressState* state = entry->address_state;
  while (entry->allocations < entry->allocation_limit &&
         state->queued_count > 0) {
    std::shared_ptr<Waiter> waiter = PopWaiter(state);
    if (waiter == nullptr) break;
    ++entry->allocations;
    Lease lease{entry->connection, true, FromSteady(now - waiter->enqueued),
                {}};
    effects->grants.push_back({std::move(waiter), std::move(lease)});
  }
}

bool ConnectionPool::PastLifetime(const Entry& entry, SteadyTime now) const {
  return max_lifetime_ != std::chrono::steady_clock::duration::zero() &&
         now - entry.created >= max_lifetime_;
}

void ConnectionPool::MarkIdle(Entry* entry, SteadyTime now) {
  entry->idle = true;
  entry->idle_since = now;
  // Newest in the pool-wide list.
  entry->lru_prev = lru_newest_;
  entry->lru_next = nullptr;
  if (lru_newest_ != nullptr) {
    lru_newest_->lru_next = entry;
  } else {
    lru_oldest_ = entry;
  }
  lru_newest_ = entry;
  ++idle_count_;
  // Top of the address's stack.
  AddressState* state = entry->address_state;
  Entry* below = state->idle_top;
  entry->down = below;
  if (below != nullptr) {
    // Often already so (the same connection popped and pushed back): a read
    // then keeps the line clean.
    if (below->up != entry) below->up = entry;
  } else {
    state->idle_bottom = entry;
  }
  state->idle_top = entry;
  ++state->idle_count;
}

void ConnectionPool::UnmarkIdle(Entry* entry) {
  entry->idle = false;
  (entry->lru_prev != nullptr ? entry->lru_prev->lru_next : lru_oldest_) =
      entry->lru_next;
  (entry->lru_next != nullptr ? entry->lru_next->lru_prev : lru_newest_) =
      entry->lru_prev;
  --idle_count_;
  AddressState* state = entry->address_state;
  Entry* below = entry->down;
  const bool top = state->idle_top == entry;
  if (top) {
    // `below`'s up link goes stale: the top's is never read.
    state->idle_top = below;
  } else {
    entry->up->down = below;
  }
  if (below == nullptr) {
    state->idle_bottom = top ? nullptr : entry->up;
  } else if (!top) {
    below->up = entry->up;
  }
  --state->idle_count;
}

void ConnectionPool::Remove(Entry* entry, CloseReason reason,
                            Effects* effects) {
  ++closed_by_reason_[ReasonIndex(reason)];
  effects->closing.push_back({entry->connection, reason});
  AddressState* state = entry->address_state;
  --state->connection_count;
  ++state->closed_by_reason[ReasonIndex(reason)];
  const uint64_t in = entry->connection->bytes_received();
  const uint64_t out = entry->connection->bytes_sent();
  state->closed_bytes_in += in;
  state->closed_bytes_out += out;
  closed_bytes_in_ += in;
  closed_bytes_out_ += out;
  if (!entry->limit_known) {
    entry->limit_known = true;
    --state->awaiting_settings;
  }
  if (entry->multiplexed) {
    auto& list = state->multiplexed;
    list.erase(std::remove(list.begin(), list.end(), entry), list.end());
  }
  if (entry->coalescing) {
    entry->coalescing = false;
    auto it = coalescable_.find(entry->connection->remote_ip());
    if (it != coalescable_.end()) {
      auto& list = it->second;
      list.erase(std::remove(list.begin(), list.end(), entry), list.end());
      if (list.empty()) coalescable_.erase(it);
    }
  }
  in_use_.erase(entry->connection.get());
  entries_.erase(entry->connection->id());
}

void ConnectionPool::EnforceIdleLimits(AddressState* state, Effects* effects) {
  if (state->idle_count <= options_.max_idle_per_address &&
      idle_count_ <= options_.max_idle_connections) {
    return;  // nothing to close, so no slot to grant
  }
  // Per address first: the surplus is that address's least recently used.
  std::vector<AddressState*> touched;
  while (state->idle_count > options_.max_idle_per_address) {
    Entry* victim = state->idle_bottom;
    UnmarkIdle(victim);
    Remove(victim, CloseReason::kMaxIdle, effects);
  }
  touched.push_back(state);
  while (idle_count_ > options_.max_idle_connections) {
    Entry* victim = lru_oldest_;
    touched.push_back(victim->address_state);
    UnmarkIdle(victim);
    Remove(victim, CloseReason::kMaxIdle, effects);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (AddressState* s : touched) GrantFreedSlots(s, effects);
  // `state` is the caller's: it forgets it if it wants to.
  for (AddressState* s : touched) {
    if (s != state) MaybeForget(s);
  }
}

void ConnectionPool::ScheduleCleanup() {
  if (cleanup_scheduled_ || idle_count_ == 0 || shutdown_) return;
  cleanup_scheduled_ = true;
  asio::post(cleanup_executor_, [this] { RunCleanup(); });
}

void ConnectionPool::RunCleanup() {
  Effects effects;
  {
    MutexLock lock(&mu_);
    const auto now = std::chrono::steady_clock::now();
    const auto keep_alive = ToSteady(options_.keep_alive);
    while (lru_oldest_ != nullptr &&
           now - lru_oldest_->idle_since >= keep_alive) {
      Entry* entry = lru_oldest_;
      AddressState* state = entry->address_state;
      UnmarkIdle(entry);
      Remove(entry, CloseReason::kIdleTimeout, &effects);
      GrantFreedSlots(state, &effects);
      MaybeForget(state);
    }
    if (lru_oldest_ == nullptr || shutdown_) {
      // Nothing can expire: the timer stays unarmed until something idles.
      cleanup_scheduled_ = false;
    } else {
      cleanup_timer_.expires_at(lru_oldest_->idle_since + keep_alive);
      cleanup_timer_.async_wait([this](const asio::error_code& ec) {
        if (ec) {
          MutexLock lock(&mu_);
          cleanup_scheduled_ = false;
          return;
        }
        {
          MutexLock lock(&mu_);
          ++cleanup_wakeups_;
        }
        RunCleanup();
      });
    }
  }
  Apply(std::move(effects));
}

void ConnectionPool::Apply(Effects effects) {
  // A connection closed at once (max_idle) is reported closed, not idle.
  if (effects.went_idle && listener_ != nullptr) {
    const uint64_t id = effects.went_idle->first;
    const bool closed_now = std::any_of(
        effects.closing.begin(), effects.closing.end(),
        [id](const Closing& c) { return c.connection->id() == id; });
    if (!closed_now) {
      listener_->OnConnectionIdle(id, effects.went_idle->second);
    }
  }
  for (Closing& c : effects.closing) {
    if (listener_ != nullptr) {
      listener_->OnConnectionClosed(c.connection->id(), c.connection->address(),
                                    c.reason);
    }
    std::shared_ptr<Connection> connection = std::move(c.connection);
    asio::any_io_executor executor = connection->executor();
    asio::post(executor, [connection = std::move(connection)] {
      connection->Close();
    });
  }
  for (Grant& g : effects.grants) {
    if (listener_ != nullptr && g.result.ok()) NotifyAcquired(*g.result);
    std::shared_ptr<Waiter> waiter = std::move(g.waiter);
    asio::post(waiter->executor, [waiter, result = std::move(g.result)]() mutable {
      if (waiter->timer) waiter->timer->cancel();
      std::move(waiter->handler)(std::move(result));
    });
  }
}

}  // namespace egress
