// ConnectionPool: the process-wide set of open connections, shared by every
// event loop, keyed by Address.
//
// Vocabulary:
//   - An *allocation* is a call's claim on a connection for one exchange. An
//     HTTP/1.1 connection carries at most one allocation at a time.
//   - A connection is *in use* while it has an allocation, and *idle*
//     otherwise. Only idle connections are handed out by AcquireIdle().
//   - A connection is *reused* when it serves an exchange after having
//     completed one before (success count > 0).
//   - *Eviction* closes a connection the pool no longer wants; every closed
//     connection is counted under exactly one CloseReason.
//
// Selection: among the idle connections of an address, the most recently
// used one wins (a per-address stack). OkHttp takes the oldest; taking the
// newest keeps the hot set small, lets the surplus age out under keep-alive,
// and favours the connection least likely to have been closed by the origin.
//
// Cost: AcquireIdle, AddAllocated and Release are O(1) expected time in the
// number of pooled connections and addresses (hash lookup, list splice).
//
// Eviction: a timer on one event loop, armed for the next expiry only (the
// least recently idle connection's idle_since + keep_alive); it is not armed
// while nothing is idle, so it never wakes for nothing.
//
// Thread-safety: every public method is thread-safe. The pool never calls
// Connection I/O under its lock; connections it closes are closed on their own
// event loop. The pool must outlive the event loops' last handler (the owner
// stops the loops, then destroys the pool).
#ifndef EGRESS_CLIENT_CORE_CONNECTION_POOL_H_
#define EGRESS_CLIENT_CORE_CONNECTION_POOL_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "asio/steady_timer.hpp"
#include "client_core/base/sync.h"
#include "client_core/connection/address.h"
#include "client_core/connection/close_reason.h"
#include "client_core/connection/connection.h"
#include "client_core/connection/pool_options.h"

namespace egress {

// Receives pool events. Called outside the pool's lock, on whatever thread
// caused the event; implementations must be thread-safe and quick.
class PoolListener {
 public:
  virtual ~PoolListener() = default;
  virtual void OnConnectionOpened(uint64_t /*id*/, const Address&) {}
  virtual void OnConnectionIdle(uint64_t /*id*/, const Address&) {}
  virtual void OnConnectionClosed(uint64_t /*id*/, const Address&,
                                  CloseReason) {}
};

// A consistent copy of the pool's state, for PoolStats.
struct PoolSnapshot {
  struct AddressCounts {
    Address address;
    uint32_t connection_count = 0;
    uint32_t idle_count = 0;
    uint32_t in_use_count = 0;
    uint64_t requests_served = 0;
  };
  uint32_t connection_count = 0;
  uint32_t idle_count = 0;
  uint32_t in_use_count = 0;
  // Sorted by Address::ToString().
  std::vector<AddressCounts> addresses;
  uint64_t connections_opened = 0;
  // Indexed by CloseReason.
  std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason{};
  uint64_t cleanup_wakeups = 0;
};

// A connection handed to a call, with what the call needs to report.
struct AcquiredConnection {
  std::shared_ptr<Connection> connection;  // null: none idle
  bool reused = false;
};

class ConnectionPool {
 public:
  // `cleanup_executor` runs the eviction timer. `listener` may be null and
  // must outlive the pool.
  ConnectionPool(const PoolOptions& options,
                 asio::any_io_executor cleanup_executor,
                 PoolListener* listener = nullptr);
  ~ConnectionPool();

  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  const PoolOptions& options() const { return options_; }

  // A fresh connection id, unique for the life of the process.
  uint64_t NextConnectionId();

  // Hands out the most recently used healthy idle connection of `address`,
  // allocated to the caller, or a null connection when there is none.
  // Connections found unhealthy on the way are closed (peer_closed or
  // unhealthy).
  AcquiredConnection AcquireIdle(const Address& address)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Adds a connection the caller just connected, allocated to the caller.
  // False when the pool is shut down: the caller closes the connection.
  bool AddAllocated(std::shared_ptr<Connection> connection)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the caller's allocation. `succeeded` says an exchange completed (it
  // counts towards reuse). With a `close_reason` the connection leaves the
  // pool and is closed; otherwise it goes idle, unless the idle limits or a
  // shutdown close it at once.
  void Release(const std::shared_ptr<Connection>& connection, bool succeeded,
               std::optional<CloseReason> close_reason)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Closes idle connections (all, or only `address`'s) with reason
  // evict_request; returns how many.
  size_t EvictIdle(const std::optional<Address>& address)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Closes every idle connection and, from now on, every connection as it is
  // released (reason shutdown). With `close_in_use`, in-use connections are
  // closed too, failing their exchanges. Idempotent.
  void Shutdown(bool close_in_use) ABSL_LOCKS_EXCLUDED(mu_);

  // Number of connections allocated to calls right now.
  size_t InUseCount() const ABSL_LOCKS_EXCLUDED(mu_);

  PoolSnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct AddressState;

  // The pool's record of one connection.
  struct Entry {
    std::shared_ptr<Connection> connection;
    AddressState* address_state = nullptr;
    int allocations = 0;
    uint64_t success_count = 0;
    SteadyTime idle_since;
    // Valid while idle: positions in idle_lru_ and address_state->idle.
    std::list<Entry*>::iterator lru_position;
    std::list<Entry*>::iterator address_position;
  };

  struct AddressState {
    Address address;
    // Idle entries, most recently used at the back.
    std::list<Entry*> idle;
    uint32_t connection_count = 0;
    uint64_t requests_served = 0;
  };

  // A connection leaving the pool, closed after the lock is dropped.
  struct Closing {
    std::shared_ptr<Connection> connection;
    CloseReason reason;
  };

  void MarkIdle(Entry* entry, SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnmarkIdle(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `entry` from the pool, counting `reason`; appends to `closing`.
  void Remove(Entry* entry, CloseReason reason, std::vector<Closing>* closing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnforceIdleLimits(AddressState* state, std::vector<Closing>* closing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Posts the cleanup pass when idle connections exist and none is pending.
  void ScheduleCleanup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs on the cleanup executor: evicts expired connections, re-arms.
  void RunCleanup() ABSL_LOCKS_EXCLUDED(mu_);
  // Closes each connection on its own event loop and tells the listener.
  void CloseAll(std::vector<Closing> closing) ABSL_LOCKS_EXCLUDED(mu_);

  const PoolOptions options_;
  asio::any_io_executor cleanup_executor_;
  PoolListener* const listener_;
  std::atomic<uint64_t> next_connection_id_{1};

  mutable Mutex mu_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  // Pointer-stable: entries point at their AddressState.
  absl::node_hash_map<Address, AddressState> addresses_ ABSL_GUARDED_BY(mu_);
  // All idle entries, least recently idle at the front.
  std::list<Entry*> idle_lru_ ABSL_GUARDED_BY(mu_);
  uint32_t in_use_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t connections_opened_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason_
      ABSL_GUARDED_BY(mu_){};
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // A cleanup pass is posted or its timer armed.
  bool cleanup_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t cleanup_wakeups_ ABSL_GUARDED_BY(mu_) = 0;

  // Touched only on cleanup_executor_.
  asio::steady_timer cleanup_timer_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_POOL_H_
