#include "client_core/connection/pool.h"

#include <algorithm>
#include <utility>

#include "asio/post.hpp"

namespace egress {
namespace {

size_t ReasonIndex(CloseReason reason) { return static_cast<size_t>(reason); }

std::chrono::steady_clock::duration ToSteady(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

}  // namespace

ConnectionPool::ConnectionPool(const PoolOptions& options,
                               asio::any_io_executor cleanup_executor,
                               PoolListener* listener)
    : options_(options),
      cleanup_executor_(cleanup_executor),
      listener_(listener),
      cleanup_timer_(cleanup_executor) {}

ConnectionPool::~ConnectionPool() = default;

uint64_t ConnectionPool::NextConnectionId() {
  return next_connection_id_.fetch_add(1, std::memory_order_relaxed);
}

AcquiredConnection ConnectionPool::AcquireIdle(const Address& address) {
  const auto now = std::chrono::steady_clock::now();
  const auto check_after = ToSteady(options_.health_check_after_idle);
  // Candidates are taken under the lock and probed outside it: the probe is
  // a syscall, and the lock is shared by every event loop.
  while (true) {
    Entry* entry = nullptr;
    bool check = false;
    {
      MutexLock lock(&mu_);
      if (shutdown_) return {};
      auto it = addresses_.find(address);
      if (it == addresses_.end() || it->second.idle.empty()) return {};
      entry = it->second.idle.back();
      check = now - entry->idle_since >= check_after;
      UnmarkIdle(entry);
      entry->allocations = 1;
      ++in_use_count_;
    }
    if (!check) return {entry->connection, entry->success_count > 0};
    const Connection::Health health = entry->connection->ProbeHealth();
    if (health == Connection::Health::kHealthy) {
      MutexLock lock(&mu_);
      return {entry->connection, entry->success_count > 0};
    }
    std::vector<Closing> closing;
    {
      MutexLock lock(&mu_);
      entry->allocations = 0;
      --in_use_count_;
      Remove(entry,
             health == Connection::Health::kPeerClosed ? CloseReason::kPeerClosed
                                                       : CloseReason::kUnhealthy,
             &closing);
    }
    CloseAll(std::move(closing));
  }
}

bool ConnectionPool::AddAllocated(std::shared_ptr<Connection> connection) {
  const uint64_t id = connection->id();
  const Address address = connection->address();
  {
    MutexLock lock(&mu_);
    if (shutdown_) return false;
    auto entry = std::make_unique<Entry>();
    AddressState& state = addresses_[address];
    if (state.connection_count == 0) state.address = address;
    ++state.connection_count;
    entry->address_state = &state;
    entry->connection = std::move(connection);
    entry->allocations = 1;
    ++in_use_count_;
    ++connections_opened_;
    entries_.emplace(id, std::move(entry));
  }
  if (listener_ != nullptr) listener_->OnConnectionOpened(id, address);
  return true;
}

void ConnectionPool::Release(const std::shared_ptr<Connection>& connection,
                             bool succeeded,
                             std::optional<CloseReason> close_reason) {
  std::vector<Closing> closing;
  bool went_idle = false;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(connection->id());
    if (it == entries_.end()) return;  // closed meanwhile (shutdown)
    Entry* entry = it->second.get();
    entry->allocations = 0;
    --in_use_count_;
    if (succeeded) {
      ++entry->success_count;
      ++entry->address_state->requests_served;
    }
    if (shutdown_) {
      Remove(entry, CloseReason::kShutdown, &closing);
    } else if (close_reason.has_value()) {
      Remove(entry, *close_reason, &closing);
    } else {
      AddressState* state = entry->address_state;
      MarkIdle(entry, std::chrono::steady_clock::now());
      went_idle = true;
      EnforceIdleLimits(state, &closing);
      ScheduleCleanup();
    }
  }
  // A connection closed at once for max_idle is reported closed, not idle.
  const bool closed_now =
      std::any_of(closing.begin(), closing.end(), [&](const Closing& c) {
        return c.connection == connection;
      });
  if (went_idle && !closed_now && listener_ != nullptr) {
    listener_->OnConnectionIdle(connection->id(), connection->address());
  }
  CloseAll(std::move(closing));
}

size_t ConnectionPool::EvictIdle(const std::optional<Address>& address) {
  std::vector<Closing> closing;
  {
    MutexLock lock(&mu_);
    if (address.has_value()) {
      auto it = addresses_.find(*address);
      if (it != addresses_.end()) {
        while (!it->second.idle.empty()) {
          Entry* entry = it->second.idle.front();
          UnmarkIdle(entry);
          // Remove may erase the AddressState; stop before touching it again.
          const bool last = it->second.connection_count == 1;
          Remove(entry, CloseReason::kEvictRequest, &closing);
          if (last) break;
        }
      }
    } else {
      while (!idle_lru_.empty()) {
        Entry* entry = idle_lru_.front();
        UnmarkIdle(entry);
        Remove(entry, CloseReason::kEvictRequest, &closing);
      }
    }
  }
  const size_t n = closing.size();
  CloseAll(std::move(closing));
  return n;
}

void ConnectionPool::Shutdown(bool close_in_use) {
  std::vector<Closing> closing;
  std::vector<std::shared_ptr<Connection>> in_use;
  {
    MutexLock lock(&mu_);
    shutdown_ = true;
    while (!idle_lru_.empty()) {
      Entry* entry = idle_lru_.front();
      UnmarkIdle(entry);
      Remove(entry, CloseReason::kShutdown, &closing);
    }
    if (close_in_use) {
      for (auto& [id, entry] : entries_) in_use.push_back(entry->connection);
    }
  }
  CloseAll(std::move(closing));
  // In-use connections are closed but stay in the pool until their call
  // releases them (counted then, as shutdown): their exchanges fail at once.
  for (auto& connection : in_use) {
    asio::post(connection->executor(), [connection] { connection->Close(); });
  }
  asio::post(cleanup_executor_, [this] { cleanup_timer_.cancel(); });
}

size_t ConnectionPool::InUseCount() const {
  MutexLock lock(&mu_);
  return in_use_count_;
}

PoolSnapshot ConnectionPool::Snapshot() const {
  PoolSnapshot snapshot;
  MutexLock lock(&mu_);
  snapshot.connection_count = static_cast<uint32_t>(entries_.size());
  snapshot.idle_count = static_cast<uint32_t>(idle_lru_.size());
  snapshot.in_use_count = in_use_count_;
  snapshot.connections_opened = connections_opened_;
  snapshot.closed_by_reason = closed_by_reason_;
  snapshot.cleanup_wakeups = cleanup_wakeups_;
  snapshot.addresses.reserve(addresses_.size());
  for (const auto& [address, state] : addresses_) {
    PoolSnapshot::AddressCounts counts;
    counts.address = address;
    counts.connection_count = state.connection_count;
    counts.idle_count = static_cast<uint32_t>(state.idle.size());
    counts.in_use_count = state.connection_count - counts.idle_count;
    counts.requests_served = state.requests_served;
    snapshot.addresses.push_back(std::move(counts));
  }
  std::sort(snapshot.addresses.begin(), snapshot.addresses.end(),
            [](const auto& a, const auto& b) {
              return a.address.ToString() < b.address.ToString();
            });
  return snapshot;
}

void ConnectionPool::MarkIdle(Entry* entry, SteadyTime now) {
  entry->idle_since = now;
  entry->lru_position = idle_lru_.insert(idle_lru_.end(), entry);
  AddressState* state = entry->address_state;
  entry->address_position = state->idle.insert(state->idle.end(), entry);
}

void ConnectionPool::UnmarkIdle(Entry* entry) {
  idle_lru_.erase(entry->lru_position);
  entry->address_state->idle.erase(entry->address_position);
}

void ConnectionPool::Remove(Entry* entry, CloseReason reason,
                            std::vector<Closing>* closing) {
  ++closed_by_reason_[ReasonIndex(reason)];
  closing->push_back({entry->connection, reason});
  AddressState* state = entry->address_state;
  const uint64_t id = entry->connection->id();
  // An address with no connections is forgotten, so the map stays as large
  // as the set of live addresses.
  if (--state->connection_count == 0) addresses_.erase(state->address);
  entries_.erase(id);
}

void ConnectionPool::EnforceIdleLimits(AddressState* state,
                                       std::vector<Closing>* closing) {
  // Per address first: the surplus is that address's least recently used.
  while (state->idle.size() > options_.max_idle_per_address) {
    Entry* victim = state->idle.front();
    UnmarkIdle(victim);
    const bool last = state->connection_count == 1;
    Remove(victim, CloseReason::kMaxIdle, closing);
    if (last) return;
  }
  while (idle_lru_.size() > options_.max_idle_connections) {
    Entry* victim = idle_lru_.front();
    UnmarkIdle(victim);
    Remove(victim, CloseReason::kMaxIdle, closing);
  }
}

void ConnectionPool::ScheduleCleanup() {
  if (cleanup_scheduled_ || idle_lru_.empty() || shutdown_) return;
  cleanup_scheduled_ = true;
  asio::post(cleanup_executor_, [this] { RunCleanup(); });
}

void ConnectionPool::RunCleanup() {
  std::vector<Closing> closing;
  {
    MutexLock lock(&mu_);
    const auto now = std::chrono::steady_clock::now();
    const auto keep_alive = ToSteady(options_.keep_alive);
    while (!idle_lru_.empty() &&
           now - idle_lru_.front()->idle_since >= keep_alive) {
      Entry* entry = idle_lru_.front();
      UnmarkIdle(entry);
      Remove(entry, CloseReason::kIdleTimeout, &closing);
    }
    if (idle_lru_.empty() || shutdown_) {
      // Nothing can expire: the timer stays unarmed until something idles.
      cleanup_scheduled_ = false;
    } else {
      cleanup_timer_.expires_at(idle_lru_.front()->idle_since + keep_alive);
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
  CloseAll(std::move(closing));
}

void ConnectionPool::CloseAll(std::vector<Closing> closing) {
  for (Closing& c : closing) {
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
}

}  // namespace egress
