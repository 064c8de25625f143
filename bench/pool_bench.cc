// pool_bench: the cost of one ConnectionPool acquire + release pair (issue 3,
// "Cost"): TryAcquireIdle(address) then Release(connection, true, nullopt),
// with 10, 1,000, 10,000 and 100,000 idle connections spread over
// min(idle, 10,000) addresses. The targets: 100,000 idle within 2x
// of 10 idle, and under 1 us per pair.
//
// What is measured, and what is kept out:
//   - The pool alone. Connections wrap unopened sockets, so no I/O happens;
//     the health probe is switched off (health_check_after_idle 24 h) except
//     in BM_AcquireReleaseProbe, which uses real loopback TCP connections and
//     probes every acquire (egressd's default, health_check_after_idle 0).
//   - The cleanup pass. Release() posts it to the cleanup executor (an
//     io_context run only by this program) once, when the first connection
//     goes idle; the pass arms a timer for keep_alive (24 h) and no further
//     pass is posted while it is armed. Setup runs that pass, so the measured
//     pairs post nothing; the counter `handlers_after` counts the handlers
//     found queued after the loop (0 expected) to prove it.
//   - The address of each iteration comes from a pre-drawn sequence (64 Ki
//     entries, read sequentially) either round-robin over the populated
//     addresses (each address touched once per cycle, in the order the pool
//     allocated its records, which the hardware prefetcher partly follows)
//     or uniformly at random (no pattern to follow: the figure to judge the
//     pool by). The caller's key itself is kept warm (see KeyAt), as a real
//     caller's freshly built Address is; BM_AcquireReleaseColdKeys shows the
//     difference.
//   - Host names come in two lengths: short ("o1234.test", within
//     std::string's 15-byte inline buffer, so copying an Address allocates
//     nothing) and long ("origin-01234.backend.example.test", 33 bytes, like
//     most real origin names, so every Address copy allocates).
//
// Setup (outside the timed loop; built once per configuration and kept while
// the same configuration's runs follow): each connection gets a connecting
// slot from the coroutine ConnectionPool::Acquire(address, ...,
// allow_idle=false) -- with no connection limit reached it completes without
// suspending, so one co_spawned coroutine fills the pool on an io_context
// polled here -- then AddConnected() and Release(connection, true, nullopt),
// exactly the path a call that connected takes.
//
// Run: bazel run -c opt //bench:pool_bench [-- --benchmark_filter=...]
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "benchmark/benchmark.h"
#include "client_core/connection/address.h"
#include "client_core/connection/http1_connection.h"
#include "client_core/connection/pool.h"
#include "client_core/connection/pool_options.h"

namespace egress {
namespace {

constexpr size_t kMaxAddresses = 10000;
// Length of the pre-drawn address sequence; a power of two.
constexpr size_t kOrderLength = size_t{1} << 16;

enum class Order { kRoundRobin, kRandom };
enum class Hosts { kShort, kLong };

struct Config {
  size_t idle = 0;
  Hosts hosts = Hosts::kShort;
  // Real connected loopback TCP sockets (for the health probe), else
  // unopened sockets.
  bool real_sockets = false;
  friend bool operator==(const Config& a, const Config& b) {
    return a.idle == b.idle && a.hosts == b.hosts &&
           a.real_sockets == b.real_sockets;
  }
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "pool_bench: %s\n", message.c_str());
  std::abort();
}

Address AddressNumber(size_t i, Hosts hosts) {
  // Reserved .test names: never resolved, never connected to.
  char host[64];
  if (hosts == Hosts::kShort) {
    std::snprintf(host, sizeof(host), "o%zu.test", i);
  } else {
    std::snprintf(host, sizeof(host), "origin-%05zu.backend.example.test", i);
  }
  return Address{"http", host, 80};
}

// A pool holding `config.idle` idle connections, spread evenly over
// min(idle, kMaxAddresses) addresses.
class IdlePool {
 public:
  explicit IdlePool(const Config& config) : config_(config) {
    const size_t address_count = std::min(config.idle, kMaxAddresses);
    addresses_.reserve(address_count);
    for (size_t i = 0; i < address_count; ++i) {
      addresses_.push_back(AddressNumber(i, config.hosts));
    }
    round_robin_.resize(kOrderLength);
    random_.resize(kOrderLength);
    std::mt19937 rng(42);
    std::uniform_int_distribution<uint32_t> pick(0, address_count - 1);
    for (size_t i = 0; i < kOrderLength; ++i) {
      round_robin_[i] = static_cast<uint32_t>(i % address_count);
      random_[i] = pick(rng);
    }

    PoolOptions options;
    options.max_idle_connections = config.idle;
    options.max_idle_per_address = config.idle;
    options.keep_alive = absl::Hours(24);
    options.health_check_after_idle =
        config.real_sockets ? absl::ZeroDuration() : absl::Hours(24);
    options.max_connections = 0;
    options.max_connections_per_address = 0;
    pool_ = std::make_unique<ConnectionPool>(options, io_.get_executor());

    std::vector<asio::ip::tcp::socket> sockets;
    sockets.reserve(config.idle);
    if (config.real_sockets) {
      RaiseFileLimit(2 * config.idle + 64);
      asio::ip::tcp::acceptor acceptor(
          io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
      for (size_t i = 0; i < config.idle; ++i) {
        asio::ip::tcp::socket client(io_);
        client.connect(acceptor.local_endpoint());
        peers_.push_back(acceptor.accept());
        sockets.push_back(std::move(client));
      }
    } else {
      for (size_t i = 0; i < config.idle; ++i) sockets.emplace_back(io_);
    }

    bool done = false;
    asio::co_spawn(io_, Fill(std::move(sockets), &done), asio::detached);
    // Runs the fill, then the cleanup pass it posted (which arms the 24 h
    // timer and returns).
    while (io_.poll() > 0) {
    }
    if (!done) Die("setup did not complete without waiting");
    const PoolSnapshot snapshot = pool_->Snapshot();
    if (snapshot.idle_count != config.idle ||
        snapshot.addresses.size() != address_count) {
      Die(absl::StrCat("setup left ", snapshot.idle_count, " idle over ",
                       snapshot.addresses.size(), " addresses, wanted ",
                       config.idle, " over ", address_count));
    }
  }

  ~IdlePool() {
    // Closes the idle connections (posted to their executor) and cancels
    // the cleanup timer; both run here, before the pool goes.
    pool_->Shutdown(/*close_in_use=*/false);
    while (io_.poll() > 0) {
    }
    pool_.reset();
  }

  const Config& config() const { return config_; }
  ConnectionPool& pool() { return *pool_; }
  asio::io_context& io() { return io_; }
  const std::vector<Address>& addresses() const { return addresses_; }
  const std::vector<uint32_t>& order(Order order) const {
    return order == Order::kRoundRobin ? round_robin_ : random_;
  }

 private:
  static void RaiseFileLimit(size_t wanted) {
    rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) Die("getrlimit failed");
    if (limit.rlim_cur >= wanted) return;
    if (limit.rlim_max < wanted) {
      Die(absl::StrCat("needs ", wanted, " file descriptors, hard limit is ",
                       limit.rlim_max));
    }
    limit.rlim_cur = wanted;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) Die("setrlimit failed");
  }

  // Adds one connection per socket, round-robin over the addresses, the way
  // a call that connected does, and releases it so it goes idle.
  asio::awaitable<void> Fill(std::vector<asio::ip::tcp::socket> sockets,
                             bool* done) {
    for (size_t i = 0; i < sockets.size(); ++i) {
      const Address& address = addresses_[i % addresses_.size()];
      absl::StatusOr<Lease> lease = co_await pool_->Acquire(
          address, absl::InfiniteFuture(), /*allow_idle=*/false);
      if (!lease.ok() || !lease->may_connect()) {
        Die("Acquire did not grant a connecting slot");
      }
      auto connection = std::make_shared<Http1Connection>(
          pool_->NextConnectionId(), address, std::move(sockets[i]));
      if (!pool_->AddConnected(connection)) Die("AddConnected refused");
      pool_->Release(connection, /*succeeded=*/true, std::nullopt);
    }
    *done = true;
  }

  const Config config_;
  // Declared first: destroyed after the pool and the sockets bound to it.
  asio::io_context io_;
  std::unique_ptr<ConnectionPool> pool_;
  std::vector<asio::ip::tcp::socket> peers_;  // accepted sides
  std::vector<Address> addresses_;
  std::vector<uint32_t> round_robin_;
  std::vector<uint32_t> random_;
};

// One configuration at a time: a benchmark's repeated runs (iteration count
// estimation, repetitions) reuse it; the next configuration replaces it.
IdlePool& PoolFor(const Config& config) {
  static std::unique_ptr<IdlePool> current;
  if (current == nullptr || !(current->config() == config)) {
    current.reset();
    current = std::make_unique<IdlePool>(config);
  }
  return *current;
}

// The caller's key for iteration `i`. A real caller builds its Address from
// the request's URL just before it acquires, so the key is hot in cache; here
// up to 10,000 keys are read in the benchmark's order, so unless `cold_keys`
// the keys of coming iterations are prefetched (every cache line of the
// Address object 4 iterations ahead, its host's heap bytes 2 ahead), keeping
// the caller's own cache misses out of the pool's figure. Only the
// benchmark's memory is prefetched. (Until issue 14 only the object's first
// line was: an Address then spanned two or three lines, its proxy and
// partition fields outside the prefetched one.)
inline const Address& KeyAt(const std::vector<Address>& addresses,
                            const uint32_t* sequence, size_t i,
                            bool cold_keys) {
  constexpr size_t kMask = kOrderLength - 1;
  if (!cold_keys) {
    const char* ahead =
        reinterpret_cast<const char*>(&addresses[sequence[(i + 4) & kMask]]);
    for (size_t offset = 0; offset < sizeof(Address); offset += 64) {
      __builtin_prefetch(ahead + offset);
    }
    __builtin_prefetch(ahead + sizeof(Address) - 1);  // the last line
    __builtin_prefetch(addresses[sequence[(i + 2) & kMask]].host.data());
  }
  return addresses[sequence[i & kMask]];
}

// Not inlined: profilers collect inside it (see FixedIterations).
[[gnu::noinline]] void RunPairs(benchmark::State& state, IdlePool& fixture,
                                Order order, bool cold_keys = false) {
  ConnectionPool& pool = fixture.pool();
  const std::vector<Address>& addresses = fixture.addresses();
  const uint32_t* sequence = fixture.order(order).data();
  size_t i = 0;
  for (auto _ : state) {
    const Address& address = KeyAt(addresses, sequence, i++, cold_keys);
    Lease lease = pool.TryAcquireIdle(address);
    if (lease.connection == nullptr) {
      state.SkipWithError("no idle connection for the address");
      break;
    }
    pool.Release(lease.connection, /*succeeded=*/true, std::nullopt);
  }
}

// After the timed loop (kept out of RunPairs so that a profiler collecting
// only inside it sees the pairs alone).
void CheckAfter(benchmark::State& state, IdlePool& fixture) {
  // Anything the pairs posted to the cleanup executor (none expected).
  state.counters["handlers_after"] =
      static_cast<double>(fixture.io().poll());
  state.counters["addresses"] =
      static_cast<double>(fixture.addresses().size());
  const PoolSnapshot snapshot = fixture.pool().Snapshot();
  if (snapshot.idle_count != fixture.config().idle) {
    state.SkipWithError("the pool lost idle connections during the run");
  }
}

// Args: idle connection count.
void BM_AcquireRelease(benchmark::State& state, Order order, Hosts hosts) {
  IdlePool& fixture =
      PoolFor({static_cast<size_t>(state.range(0)), hosts, false});
  RunPairs(state, fixture, order);
  CheckAfter(state, fixture);
}

// As BM_AcquireRelease, with the callers' keys not prefetched: shows what a
// caller whose key is cold in cache adds.
void BM_AcquireReleaseColdKeys(benchmark::State& state, Order order,
                               Hosts hosts) {
  IdlePool& fixture =
      PoolFor({static_cast<size_t>(state.range(0)), hosts, false});
  RunPairs(state, fixture, order, /*cold_keys=*/true);
  CheckAfter(state, fixture);
}

// The pair with the health probe on (a recv(MSG_PEEK | MSG_DONTWAIT) per
// acquire, outside the pool's lock), on real loopback TCP connections.
void BM_AcquireReleaseProbe(benchmark::State& state, Order order) {
  IdlePool& fixture =
      PoolFor({static_cast<size_t>(state.range(0)), Hosts::kShort, true});
  RunPairs(state, fixture, order);
  CheckAfter(state, fixture);
}

// What a call on a reused connection costs the pool in all:
// BeginRequest + TryAcquireIdle + Release + EndRequest (four lock
// acquisitions, three address lookups).
void BM_CallBookkeeping(benchmark::State& state, Hosts hosts) {
  IdlePool& fixture =
      PoolFor({static_cast<size_t>(state.range(0)), hosts, false});
  ConnectionPool& pool = fixture.pool();
  const std::vector<Address>& addresses = fixture.addresses();
  const uint32_t* sequence = fixture.order(Order::kRoundRobin).data();
  size_t i = 0;
  for (auto _ : state) {
    const Address& address = KeyAt(addresses, sequence, i++, false);
    if (!pool.BeginRequest(address).ok()) {
      state.SkipWithError("BeginRequest refused");
      break;
    }
    Lease lease = pool.TryAcquireIdle(address);
    if (lease.connection == nullptr) {
      state.SkipWithError("no idle connection for the address");
      break;
    }
    pool.Release(lease.connection, /*succeeded=*/true, std::nullopt);
    pool.EndRequest(address);
  }
  state.counters["handlers_after"] =
      static_cast<double>(fixture.io().poll());
}

// POOL_BENCH_ITERATIONS=n fixes every benchmark's iteration count (one run,
// no estimation), for profilers that count per iteration:
//   POOL_BENCH_ITERATIONS=1000000 valgrind --tool=callgrind
//       --toggle-collect='egress::(anonymous namespace)::RunPairs*' ...
void FixedIterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("POOL_BENCH_ITERATIONS")) {
    b->Iterations(std::strtoll(n, nullptr, 10));
  }
}

void IdleCounts(benchmark::internal::Benchmark* b) {
  b->ArgName("idle");
  for (int64_t idle : {10, 1000, 10000, 100000}) b->Arg(idle);
  FixedIterations(b);
}

BENCHMARK_CAPTURE(BM_AcquireRelease, round_robin_short_hosts,
                  Order::kRoundRobin, Hosts::kShort)
    ->Apply(IdleCounts);
BENCHMARK_CAPTURE(BM_AcquireRelease, random_short_hosts, Order::kRandom,
                  Hosts::kShort)
    ->Apply(IdleCounts);
BENCHMARK_CAPTURE(BM_AcquireRelease, round_robin_long_hosts,
                  Order::kRoundRobin, Hosts::kLong)
    ->Apply(IdleCounts);
BENCHMARK_CAPTURE(BM_AcquireRelease, random_long_hosts, Order::kRandom,
                  Hosts::kLong)
    ->Apply(IdleCounts);
BENCHMARK_CAPTURE(BM_AcquireReleaseColdKeys, random_long_hosts,
                  Order::kRandom, Hosts::kLong)
    ->ArgName("idle")
    ->Arg(10)
    ->Arg(100000)
    ->Apply(FixedIterations);
BENCHMARK_CAPTURE(BM_CallBookkeeping, round_robin_short_hosts, Hosts::kShort)
    ->ArgName("idle")
    ->Arg(10)
    ->Arg(100000)
    ->Apply(FixedIterations);
// Real sockets need two descriptors each (both ends live here).
BENCHMARK_CAPTURE(BM_AcquireReleaseProbe, round_robin, Order::kRoundRobin)
    ->ArgName("idle")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(8000)
    ->Apply(FixedIterations);
BENCHMARK_CAPTURE(BM_AcquireReleaseProbe, random, Order::kRandom)
    ->ArgName("idle")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(8000)
    ->Apply(FixedIterations);

}  // namespace
}  // namespace egress

BENCHMARK_MAIN();
