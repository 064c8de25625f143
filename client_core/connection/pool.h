// ConnectionPool: the process-wide set of open connections, shared by every
// event loop, keyed by Address.
//
// Vocabulary:
//   - An *allocation* is a call's claim on a connection for one exchange. An
//     HTTP/1.1 connection carries at most one allocation at a time; an
//     HTTP/2 (multiplexed) one up to its allocation_limit() (the peer's
//     SETTINGS_MAX_CONCURRENT_STREAMS, capped by the client), updated live.
//   - A connection is *in use* while it has an allocation, and *idle*
//     otherwise. A *connecting* slot is a connection being opened by a call;
//     it counts against the connection limits like an open one.
//   - A connection is *reused* when it serves an exchange after having
//     completed one before (success count > 0).
//   - A connection with *no new exchanges* finishes its current exchange and
//     is then closed; the flag is one-way and carries its reason (drain,
//     max_lifetime, leaked, ...).
//   - A call is *pending* while it waits in its address's queue because the
//     connection limits are reached; it is granted either a connection that
//     another call released (handed over without going idle) or permission
//     to connect when a slot frees.
//   - *Eviction* closes a connection the pool no longer wants; every closed
//     connection is counted under exactly one CloseReason.
//
// Selection: among the idle connections of an address, the most recently
// used one wins (a per-address stack). OkHttp takes the oldest; taking the
// newest keeps the hot set small, lets the surplus age out under keep-alive
// (so the pool shrinks after a burst), and favours the connection least
// likely to have been closed by the origin in the meantime.
//
// Multiplexing: a call takes a stream on an in-use HTTP/2 connection of its
// address that has room before it takes an idle connection, so streams
// gather on few connections and the rest age out. When every HTTP/2
// connection of an address is full, the call opens another (within the
// connection limits) rather than queue without end. While a connection to an
// address known to speak HTTP/2 is being opened, further calls wait for it
// instead of each opening their own; and when two calls did open one each,
// AddConnected keeps the first and closes the other (reason duplicate).
//
// Limits (OkHttp's Dispatcher, Envoy's circuit breakers): calls in flight
// (total and per address) overflow at once; connections (total and per
// address) make calls wait in a bounded per-address queue with a timeout.
// Every rejection is RESOURCE_EXHAUSTED naming the limit, and is counted.
//
// Cost: acquire and release are O(1) expected time in the number of pooled
// connections and addresses: one hash lookup each (acquire by Address,
// release in the small table of in-use connections) and intrusive list links
// stored in the connection's record, no allocation. With many addresses the
// cost is cache misses, not instructions, so the records are laid out for
// them: an address's key bytes and hot counters share its record's first
// lines. Granting a waiter after a global slot frees looks only at addresses
// that have waiters.
//
// Eviction: a timer on one event loop, armed for the next expiry only (the
// least recently idle connection's idle_since + keep_alive); it is not armed
// while nothing is idle, so it never wakes for nothing.
//
// Thread-safety: every public method is thread-safe. The pool never does
// connection I/O under its lock (the health probe runs outside it);
// connections it closes are closed on their own event loop. The pool must
// outlive the event loops' last handler (the owner stops the loops, then
// destroys the pool).
#ifndef EGRESS_CLIENT_CORE_CONNECTION_POOL_H_
#define EGRESS_CLIENT_CORE_CONNECTION_POOL_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/steady_timer.hpp"
#include "client_core/base/sync.h"
#include "client_core/connection/address.h"
#include "client_core/connection/close_reason.h"
#include "client_core/connection/connection.h"
#include "client_core/connection/pool_options.h"

namespace egress {

struct LeakReport;  // client_core/call/leak_registry.h

// Receives pool events. Called outside the pool's lock, on whatever thread
// caused the event; implementations must be thread-safe and quick (they run
// on the event loops). `Address` is the connection's (for a coalesced
// stream, the connection's own address, not the call's).
//
// Order: a connection is opened, then acquired and released in pairs (on an
// HTTP/2 connection several pairs overlap), idle when its last allocation was
// released and it stays pooled, and closed once. Events of one connection
// caused on two threads at the same moment (one call releasing it while
// another takes it) may be reported in either order.
class PoolListener {
 public:
  virtual ~PoolListener() = default;
  virtual void OnConnectionOpened(uint64_t /*id*/, const Address&) {}
  // A call took an allocation on the connection: an idle one, a stream on
  // a busy HTTP/2 one, a hand-over from a releasing call, or the connection
  // it just opened. `reused`: as Lease::reused.
  virtual void OnConnectionAcquired(uint64_t /*id*/, const Address&,
                                    bool /*reused*/) {}
  // A call ended its allocation; `succeeded`: its exchange completed.
  virtual void OnConnectionReleased(uint64_t /*id*/, const Address&,
                                    bool /*succeeded*/) {}
  virtual void OnConnectionIdle(uint64_t /*id*/, const Address&) {}
  virtual void OnConnectionClosed(uint64_t /*id*/, const Address&,
                                  CloseReason) {}
  // A call held its allocation on the connection past the leak threshold
  // (leak_registry.h); `report` has no query string or header value.
  virtual void OnLeakDetected(uint64_t /*id*/, const Address&,
                              const LeakReport& /*report*/) {}
};

// The limits a call can be rejected by; names as in PoolOptions.
enum class PoolLimit {
  kMaxRequestsInFlight,
  kMaxRequestsInFlightPerAddress,
  kMaxPendingPerAddress,
  kPendingTimeout,
};
inline constexpr size_t kPoolLimitCount = 4;
// "max_requests_in_flight", ..., "pending_timeout".
absl::string_view PoolLimitName(PoolLimit limit);

// One connection as the pool sees it, for ListConnections.
struct ConnectionSnapshot {
  uint64_t id = 0;
  Address address;
  std::string remote_address;
  uint16_t local_port = 0;
  absl::Time created;
  absl::Time last_used;  // last allocation released (created if never)
  absl::Time idle_since;  // InfinitePast while in use
  int allocations = 0;
  int allocation_limit = 1;
  uint64_t success_count = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // Empty unless the connection takes no new exchanges.
  std::string no_new_exchanges_reason;
  Protocol protocol = Protocol::kHttp11;
  // For details only the connection knows (tls_info(), HTTP/2 stream
  // counts); read-only and thread-safe accessors only.
  std::shared_ptr<const Connection> connection;
};

// A consistent copy of the pool's counters, for PoolStats.
struct PoolSnapshot {
  struct AddressCounts {
    Address address;
    uint32_t connection_count = 0;
    uint32_t idle_count = 0;
    uint32_t in_use_count = 0;
    uint32_t connecting_count = 0;
    uint32_t pending_count = 0;
    uint32_t requests_in_flight = 0;
    uint64_t requests_served = 0;
    uint32_t http2_count = 0;
    // Exchanges running on the address's connections (streams, for HTTP/2).
    uint32_t allocations = 0;
    // Bytes received / sent over the address's connections: the open ones,
    // and those closed since the address was last forgotten (an address is
    // forgotten when nothing is open, connecting or in flight for it).
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
    // Since the address was last forgotten, as bytes_in: its connections
    // closed by reason (indexed by CloseReason), failed connects, leaks.
    std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason{};
    uint64_t connect_failures = 0;
    uint64_t leaks = 0;
  };
  uint32_t connection_count = 0;
  uint32_t idle_count = 0;
  uint32_t in_use_count = 0;
  uint32_t connecting_count = 0;
  uint32_t pending_count = 0;
  uint32_t requests_in_flight = 0;
  // Sorted by Address::ToString().
  std::vector<AddressCounts> addresses;
  uint64_t connections_opened = 0;
  uint64_t connect_failures = 0;
  // Bytes received / sent over every connection since start.
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // Indexed by CloseReason.
  std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason{};
  // Indexed by PoolLimit.
  std::array<uint64_t, kPoolLimitCount> rejected_by_limit{};
  uint64_t cleanup_wakeups = 0;
};

// What Acquire gives a call: a connection, or permission to open one.
struct Lease {
  // Set: use this connection (allocated to the caller).
  std::shared_ptr<Connection> connection;
  bool reused = false;
  // Unset connection: the caller holds a connecting slot and must end it
  // with AddConnected() or ConnectFailed().
  bool may_connect() const { return connection == nullptr; }
  // Time spent in the pending queue.
  absl::Duration queue_wait;
  // How long the connection was idle before this lease (zero when it was
  // in use: a stream on a busy HTTP/2 connection, or a hand-over).
  absl::Duration idle_for;
};

class ConnectionPool : public ConnectionObserver {
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

  // Counts a call in flight to `address` until EndRequest. Fails with
  // RESOURCE_EXHAUSTED when an in-flight limit is reached (the call must
  // then not call EndRequest), or CANCELLED after Shutdown.
  absl::Status BeginRequest(const Address& address) ABSL_LOCKS_EXCLUDED(mu_);
  void EndRequest(const Address& address) ABSL_LOCKS_EXCLUDED(mu_);

  // Fast path, no waiting: the most recently used healthy idle connection of
  // `address`, allocated to the caller, or a null connection. Connections
  // found unhealthy or past their lifetime on the way are closed.
  Lease TryAcquireIdle(const Address& address) ABSL_LOCKS_EXCLUDED(mu_);

  // An idle connection, or a connecting slot, or a place in the pending
  // queue until one of them is granted. Fails with RESOURCE_EXHAUSTED (queue
  // full, pending_timeout), DEADLINE_EXCEEDED (`deadline` passed while
  // pending) or CANCELLED (shutdown). With `allow_idle` false, idle
  // connections are skipped (a retry wants a fresh connection).
  // `may_multiplex` says the address may speak HTTP/2 (https with ALPN h2
  // offered, or h2c): until a connection shows it speaks HTTP/1.1, calls
  // then wait for a connection being opened instead of opening their own.
  // Runs on the calling coroutine's executor.
  asio::awaitable<absl::StatusOr<Lease>> Acquire(const Address& address,
                                                 absl::Time deadline,
                                                 bool allow_idle = true,
                                                 bool may_multiplex = false)
      ABSL_LOCKS_EXCLUDED(mu_);

  // HTTP/2 connection coalescing: an open multiplexed TLS connection of
  // another address with the same scheme and port whose remote IP is one of
  // `ips` (the call's host's resolved addresses), that still allows
  // coalescing and has room, and that `eligible` accepts (the caller checks
  // the certificate covers its host and that both hosts get the same TLS
  // options). Allocated to the caller; a null connection if none.
  // `eligible` runs under the pool's lock: it must be quick and must not
  // call the pool.
  Lease TryAcquireCoalesced(
      const Address& address, const std::vector<std::string>& ips,
      absl::FunctionRef<bool(const Connection&)> eligible)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether any connection could be coalesced onto (so a caller can skip
  // resolving for TryAcquireCoalesced).
  bool MayCoalesce() const ABSL_LOCKS_EXCLUDED(mu_);

  // The connection serves only its own address from now on (a 421
  // Misdirected Request answered a coalesced call).
  void DisableCoalescing(uint64_t connection_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends a connecting slot with the connection that was opened and returns
  // the connection the caller must use, allocated to it: normally
  // `connection`; for a multiplexed one, an existing multiplexed connection
  // of the same address with room, if another call opened one meanwhile
  // (`connection` is then closed, reason duplicate). Pending calls of the
  // address get streams on a new multiplexed connection at once. Null when
  // the pool is shut down: the caller closes `connection`. Runs on the
  // connection's executor (the pool sets itself as its observer).
  std::shared_ptr<Connection> AddConnected(
      std::shared_ptr<Connection> connection) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends a connecting slot whose connect failed. (Why it failed is the
  // Connector's to report: ConnectListener, connector.h.)
  void ConnectFailed(const Address& address) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the caller's allocation. `succeeded` says an exchange completed (it
  // counts towards reuse). With a `close_reason` the connection leaves the
  // pool and is closed; otherwise it is handed to a pending call or goes
  // idle, unless its no-new-exchanges flag, its lifetime or the idle limits
  // close it at once.
  void Release(const std::shared_ptr<Connection>& connection, bool succeeded,
               std::optional<CloseReason> close_reason)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Closes idle connections (all, or only `address`'s) with reason
  // evict_request; returns how many.
  size_t EvictIdle(const std::optional<Address>& address)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every connection open now takes no new exchanges: idle ones close at
  // once, in-use ones when released (reason drain). Connections opened later
  // are not affected. Returns how many connections were marked.
  size_t Drain() ABSL_LOCKS_EXCLUDED(mu_);

  // Closes every idle connection and, from now on, every connection as it is
  // released (reason shutdown); pending calls fail with CANCELLED. With
  // `close_in_use`, in-use connections are closed too, failing their
  // exchanges. Idempotent.
  void Shutdown(bool close_in_use) ABSL_LOCKS_EXCLUDED(mu_);

  // The connection takes no new exchanges from now on, for `reason`: closed
  // at once if idle, else with that reason when its last allocation is
  // released. No-op for an unknown id or a connection already marked.
  void MarkNoNewExchanges(uint64_t connection_id, CloseReason reason)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Tells the listener that a call leaked its allocation on
  // report.connection_id (the caller has recorded the report in its
  // LeakRegistry). No-op without a listener.
  void ReportLeak(const LeakReport& report) ABSL_LOCKS_EXCLUDED(mu_);

  // ConnectionObserver: HTTP/2 connections report SETTINGS and GOAWAY.
  void OnAllocationLimitChanged(uint64_t connection_id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnNoNewExchanges(uint64_t connection_id, CloseReason reason) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    MarkNoNewExchanges(connection_id, reason);
  }

  // Number of connections allocated to calls right now.
  size_t InUseCount() const ABSL_LOCKS_EXCLUDED(mu_);

  PoolSnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

  // Open connections with id >= `start_id` (ascending ids), at most
  // `max_results` (0: all), optionally of one address. `end` is set when no
  // connection follows the last one returned.
  std::vector<ConnectionSnapshot> ListConnections(
      uint64_t start_id, size_t max_results,
      const std::optional<Address>& address, bool* end) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct AddressState;
  struct Waiter;

  // The pool's record of one connection. Fields an acquire + release pair
  // touches come first.
  struct Entry {
    std::shared_ptr<Connection> connection;
    AddressState* address_state = nullptr;
    int allocations = 0;
    // 1 for HTTP/1.1; the connection's allocation_limit() for HTTP/2, as
    // last reported.
    int allocation_limit = 1;
    bool multiplexed = false;
    // Multiplexed: the peer's SETTINGS have set allocation_limit.
    bool limit_known = true;
    // A multiplexed TLS connection may serve other hosts (coalescing) until
    // a 421 says otherwise.
    bool coalescing = false;
    bool idle = false;
    // Set once; the connection finishes what it carries and closes.
    std::optional<CloseReason> no_new_exchanges;
    uint64_t success_count = 0;
    SteadyTime idle_since;
    // Valid while idle. The address's idle stack: `down` is the next less
    // recently used; `up` the next more recently used, valid unless this is
    // the stack's top (popping the top does not write to the entry below).
    Entry* down = nullptr;
    Entry* up = nullptr;
    // Valid while idle: the pool-wide idle list, least recently idle first.
    Entry* lru_prev = nullptr;
    Entry* lru_next = nullptr;
    SteadyTime created;
    absl::Time created_wall;
    // Last allocation released; the epoch while never released.
    SteadyTime last_used;
  };

  // Bytes of scheme + host kept in the AddressState itself, so that the
  // lookup compares the key without touching another heap block: "https"
  // and a host name of up to 51 bytes. Sized so that the counters and the
  // key fill the record's first two cache lines exactly (checked in
  // pool.cc).
  static constexpr size_t kInlineKeySize = 56;

  // One address's record. The first two cache lines hold what an acquire +
  // release pair touches: the idle stack, the counters and the key. (When
  // fields were added in front of the key, the pool benchmark's random
  // order at 100,000 addresses went from 1.6x to 1.9-3.2x its cost at 10.)
  struct alignas(64) AddressState {
    // Idle entries as a stack: the most recently used on top.
    Entry* idle_top = nullptr;
    Entry* idle_bottom = nullptr;
    uint32_t idle_count = 0;
    uint32_t connection_count = 0;
    uint32_t connecting_count = 0;
    uint32_t requests_in_flight = 0;
    // Live pending calls in `waiters`.
    uint32_t pending_count = 0;
    // waiters.size(), live or not.
    uint32_t queued_count = 0;
    uint64_t requests_served = 0;
    // A connection of this address spoke HTTP/2: while one is connecting,
    // further calls wait for it rather than open their own.
    bool multiplexed_hint = false;
    // A connection of this address spoke HTTP/1.1 (the last one opened):
    // calls no longer wait on a hope of multiplexing.
    bool known_http1 = false;
    // The allocation limit of its last multiplexed connection: how many
    // pending calls one more connection can be expected to take.
    int last_allocation_limit = 1;
    // Its multiplexed connections whose peer has not sent SETTINGS yet:
    // each will take about last_allocation_limit calls once it has.
    uint32_t awaiting_settings = 0;
    // Second cache line: the key, which every lookup compares. Port, then
    // scheme and host bytes back to back (when they fit in `key`;
    // otherwise `address` is compared).
    uint16_t port = 0;
    bool key_inline = false;
    uint8_t scheme_size = 0;
    uint32_t key_size = 0;
    char key[kInlineKeySize];
    // Cold from here: statistics, read by PoolStats and /metrics.
    //
    // Bytes of its connections closed so far (see AddressCounts).
    uint64_t closed_bytes_in = 0;
    uint64_t closed_bytes_out = 0;
    std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason{};
    uint64_t connect_failures = 0;
    uint64_t leaks = 0;
    // Cold.
    size_t hash = 0;
    Address address;
    // Pending calls in arrival order; entries no longer pending (timed out)
    // are skipped when popped. `pending_count` counts the live ones.
    // (A list: a deque would allocate its first block for every address.)
    std::list<std::shared_ptr<Waiter>> waiters;
    // The address's open multiplexed connections (few: usually one).
    std::vector<Entry*> multiplexed;

    bool Matches(const Address& a) const;
  };

  // addresses_ is a set of AddressState records looked up by Address.
  struct StateHash {
    using is_transparent = void;
    size_t operator()(const Address& a) const;
    size_t operator()(const std::unique_ptr<AddressState>& s) const {
      return s->hash;
    }
    size_t operator()(const AddressState* s) const { return s->hash; }
  };
  struct StateEq {
    using is_transparent = void;
    bool operator()(const std::unique_ptr<AddressState>& a,
                    const std::unique_ptr<AddressState>& b) const {
      return a == b;
    }
    bool operator()(const std::unique_ptr<AddressState>& s,
                    const Address& a) const {
      return s->Matches(a);
    }
    bool operator()(const Address& a,
                    const std::unique_ptr<AddressState>& s) const {
      return s->Matches(a);
    }
    bool operator()(const std::unique_ptr<AddressState>& s,
                    const AddressState* p) const {
      return s.get() == p;
    }
    bool operator()(const AddressState* p,
                    const std::unique_ptr<AddressState>& s) const {
      return s.get() == p;
    }
  };

  // A connection leaving the pool, closed after the lock is dropped.
  struct Closing {
    std::shared_ptr<Connection> connection;
    CloseReason reason;
  };

  // A grant to a pending call, delivered after the lock is dropped.
  struct Grant {
    std::shared_ptr<Waiter> waiter;
    absl::StatusOr<Lease> result;
  };

  // Work collected under the lock and done after it is dropped.
  struct Effects {
    std::vector<Closing> closing;
    std::vector<Grant> grants;
    std::optional<std::pair<uint64_t, Address>> went_idle;
    bool empty() const {
      return closing.empty() && grants.empty() && !went_idle.has_value();
    }
  };

  // TryAcquireIdle and TryAcquireCoalesced without the listener's acquired
  // event, which their public forms report once the lock is dropped.
  Lease TakeIdle(const Address& address) ABSL_LOCKS_EXCLUDED(mu_);
  Lease TakeCoalesced(const Address& address,
                      const std::vector<std::string>& ips,
                      absl::FunctionRef<bool(const Connection&)> eligible)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Tells the listener (if any) that `lease`'s connection was acquired.
  void NotifyAcquired(const Lease& lease) const;

  AddressState& StateFor(const Address& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Erases `state` when nothing refers to it any more.
  void MaybeForget(AddressState* state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasConnectionRoom(const AddressState& state) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops `state`'s first live waiter, or null.
  std::shared_ptr<Waiter> PopWaiter(AddressState* state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a connecting slot or connection went away: grants connecting
  // slots to waiters that now fit, this address's first.
  void GrantFreedSlots(AddressState* state, Effects* effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PastLifetime(const Entry& entry, SteadyTime now) const;
  // Release of a connection's last allocation (all of HTTP/1.1's): close,
  // hand over to a pending call, or idle. `in_use` is the entry's in_use_
  // slot, or end().
  void ReleaseLast(
      Entry* entry,
      absl::flat_hash_map<const Connection*, Entry*>::iterator in_use,
      std::optional<CloseReason> close_reason, SteadyTime now,
      Effects* effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An in-use multiplexed connection of `state` with room for one more
  // stream, or null.
  Entry* MultiplexedWithRoom(AddressState* state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives pending calls of its address streams on `entry` while it has
  // room.
  void GrantStreams(Entry* entry, SteadyTime now, Effects* effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void MarkIdle(Entry* entry, SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnmarkIdle(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `entry` from the pool, counting `reason`. Does not grant freed
  // slots (callers do, once, when done) and does not forget the address.
  void Remove(Entry* entry, CloseReason reason, Effects* effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnforceIdleLimits(AddressState* state, Effects* effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Posts the cleanup pass when idle connections exist and none is pending.
  void ScheduleCleanup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs on the cleanup executor: evicts expired connections, re-arms.
  void RunCleanup() ABSL_LOCKS_EXCLUDED(mu_);
  // Closes connections on their own loops, delivers grants, tells the
  // listener.
  void Apply(Effects effects) ABSL_LOCKS_EXCLUDED(mu_);

  const PoolOptions options_;
  asio::any_io_executor cleanup_executor_;
  PoolListener* const listener_;
  std::atomic<uint64_t> next_connection_id_{1};
  // Steady-clock forms of options_' durations, converted once.
  const std::chrono::steady_clock::duration health_check_after_;
  const std::chrono::steady_clock::duration max_lifetime_;  // 0: none

  mutable Mutex mu_;
  // Every open connection, by id.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  // The entries allocated to calls, by connection: Release's lookup, in a
  // table as small as the number of calls in progress (so it stays cached).
  absl::flat_hash_map<const Connection*, Entry*> in_use_ ABSL_GUARDED_BY(mu_);
  // Owns the AddressStates; pointer-stable: entries and waiters point at
  // their AddressState.
  absl::flat_hash_set<std::unique_ptr<AddressState>, StateHash, StateEq>
      addresses_ ABSL_GUARDED_BY(mu_);
  // Multiplexed TLS connections by remote IP, for coalescing.
  absl::flat_hash_map<std::string, std::vector<Entry*>> coalescable_
      ABSL_GUARDED_BY(mu_);
  // Addresses with pending calls, for granting a freed global slot.
  absl::flat_hash_set<AddressState*> addresses_with_waiters_
      ABSL_GUARDED_BY(mu_);
  // All idle entries (linked through Entry::lru_prev/lru_next), least
  // recently idle first.
  Entry* lru_oldest_ ABSL_GUARDED_BY(mu_) = nullptr;
  Entry* lru_newest_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint32_t idle_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t in_use_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t connecting_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t pending_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t requests_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t connections_opened_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t connect_failures_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes of connections closed since start.
  uint64_t closed_bytes_in_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t closed_bytes_out_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason_
      ABSL_GUARDED_BY(mu_){};
  std::array<uint64_t, kPoolLimitCount> rejected_by_limit_
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
