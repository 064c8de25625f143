// idle_memory: egressd's own memory per idle pooled plaintext HTTP/1.1
// connection (issue 3, "Cost": target <= 4 KiB, kernel socket buffers aside).
//
// Method. N real loopback TCP connections are opened with plain syscalls
// (socket/connect on one side, accept4 on a listener in this process) before
// the measurement starts, so the descriptors, the listener and its accepted
// sockets are outside the window: they are kernel objects, and the only
// user-space trace, their ints, sits in vectors reserved beforehand. Inside
// the window every step is egressd's own, in the order a call takes it:
//   1. connection objects: the descriptor wrapped in an asio socket (which
//      registers it with the event loop's epoll reactor, as a connect does)
//      and a Connection made with std::make_shared, as the Connector does;
//   2. pool add: a connecting slot from ConnectionPool::Acquire, then
//      AddConnected (the connection is in use);
//   3. exchange (scenarios with one): Connection::Exchange of a GET whose
//      typical nginx-style response was written by the listener side before
//      the window; what stays allocated after the result is dropped;
//   4. release: ConnectionPool::Release(connection, true, nullopt), the
//      connection goes idle; the program then drops its own references, so
//      the pool is the only owner, as for any idle connection.
// Heap is glibc's mallinfo2(): uordblks (bytes in allocated chunks, malloc's
// per-chunk header included) + hblkhd (mmapped chunks, e.g. a large hash
// table). RSS is /proc/self/statm's resident pages, a second opinion that
// also counts allocator slack and touched pages. Both differences are divided
// by N. Kernel memory (socket buffers, struct sock, file objects) appears in
// neither.
//
// Each scenario runs in its own forked process so that one's freed memory
// does not serve the next (which would hide its RSS growth).
//
// Run: bazel run -c opt //bench:idle_memory [-- CONNECTIONS]
// CONNECTIONS defaults to 10,000, capped so that both ends fit under the
// hard RLIMIT_NOFILE (the soft limit is raised to it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/detail/epoll_reactor.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "client_core/connection/address.h"
#include "client_core/connection/http1_connection.h"
#include "client_core/connection/pool.h"
#include "client_core/connection/pool_options.h"
#include "client_core/http/request.h"
#include "client_core/http1/limits.h"
#include "client_core/http1/response_parser.h"
#include "client_core/url/url.h"

namespace egress {
namespace {

constexpr size_t kDefaultConnections = 10000;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "idle_memory: %s (errno %d: %s)\n", message.c_str(),
               errno, std::strerror(errno));
  std::exit(1);
}

struct Scenario {
  const char* name;
  const char* description;
  bool exchange;
  // One address per connection, else all connections share one.
  bool address_per_connection;
};

constexpr Scenario kScenarios[] = {
    {"fresh", "added and released without an exchange, one address", false,
     false},
    {"after_exchange",
     "one GET exchange each, then idle, one address (the headline figure)",
     true, false},
    {"after_exchange_per_address",
     "one GET exchange each, then idle, one address per connection", true,
     true},
};

// A typical small API response as nginx sends it.
std::string CannedResponse() {
  const std::string body = "{\"status\":\"ok\"}";
  return absl::StrCat(
      "HTTP/1.1 200 OK\r\n"
      "Server: nginx/1.22.1\r\n"
      "Date: Wed, 25 Nov 2026 20:00:00 GMT\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: ",
      body.size(),
      "\r\n"
      "Connection: keep-alive\r\n"
      "ETag: \"6564a1b2-f\"\r\n"
      "Cache-Control: no-cache\r\n"
      "\r\n",
      body);
}

struct Memory {
  int64_t heap = 0;  // uordblks + hblkhd
  int64_t rss = 0;
};

Memory Measure() {
  const struct mallinfo2 info = mallinfo2();
  Memory m;
  m.heap = static_cast<int64_t>(info.uordblks + info.hblkhd);
  // Plain syscalls: stdio would allocate a buffer inside the window.
  char text[256];
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("cannot open /proc/self/statm");
  const ssize_t got = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (got <= 0) Die("cannot read /proc/self/statm");
  text[got] = '\0';
  long size = 0, resident = 0;
  if (std::sscanf(text, "%ld %ld", &size, &resident) != 2) {
    Die("cannot parse /proc/self/statm");
  }
  m.rss = static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
  return m;
}

// Raises the soft descriptor limit to the hard one; returns it.
size_t RaiseFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) Die("getrlimit");
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) Die("setrlimit");
  return limit.rlim_cur;
}

struct Phase {
  const char* name;
  Memory before;
  Memory after;
};

class ScenarioRun {
 public:
  ScenarioRun(const Scenario& scenario, size_t n) : scenario_(scenario), n_(n) {}

  int Run() {
    OpenConnections();
    PoolOptions options;
    options.max_idle_connections = n_;
    options.max_idle_per_address = n_;
    options.max_connections = 0;
    options.max_connections_per_address = 0;
    options.keep_alive = absl::Hours(24);
    pool_ = std::make_unique<ConnectionPool>(options, io_.get_executor());

    // The callers' side of the data, made before the window.
    addresses_.reserve(scenario_.address_per_connection ? n_ : 1);
    for (size_t i = 0; i < (scenario_.address_per_connection ? n_ : 1); ++i) {
      // One real listener serves every address: the Address is only the
      // pool's key (reserved .test names; nothing is resolved).
      addresses_.push_back(Address{
          "http",
          scenario_.address_per_connection ? absl::StrCat("o", i, ".test")
                                           : std::string("127.0.0.1"),
          port_});
    }
    absl::StatusOr<Url> url =
        ParseUrl(absl::StrCat("http://127.0.0.1:", port_, "/v1/status"));
    if (!url.ok()) Die(std::string(url.status().message()));
    request_.method = "GET";
    request_.url = *url;
    connections_.reserve(n_);
    phases_.reserve(5);

    bool done = false;
    asio::co_spawn(io_, Drive(&done), asio::detached);
    // Not run(): the cleanup pass arms a 24 h keep-alive timer.
    while (!done) io_.run_one();
    if (!done) Die("the scenario did not complete");
    Report();

    // Teardown: the pool closes its idle connections on their loop.
    pool_->Shutdown(/*close_in_use=*/false);
    io_.run();
    pool_.reset();
    for (int fd : server_fds_) ::close(fd);
    ::close(listener_);
    return 0;
  }

 private:
  void OpenConnections() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) Die("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
            0 ||
        ::listen(listener_, SOMAXCONN) != 0) {
      Die("bind/listen on 127.0.0.1");
    }
    socklen_t len = sizeof(addr);
    if (::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) !=
        0) {
      Die("getsockname");
    }
    port_ = ntohs(addr.sin_port);
    const std::string response = CannedResponse();
    client_fds_.reserve(n_);
    server_fds_.reserve(n_);
    for (size_t i = 0; i < n_; ++i) {
      const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (client < 0) Die(absl::StrCat("socket #", i));
      if (::connect(client, reinterpret_cast<sockaddr*>(&addr),
                    sizeof(addr)) != 0) {
        Die(absl::StrCat("connect #", i));
      }
      const int server = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (server < 0) Die(absl::StrCat("accept #", i));
      if (scenario_.exchange &&
          ::send(server, response.data(), response.size(), MSG_NOSIGNAL) !=
              static_cast<ssize_t>(response.size())) {
        Die("send");
      }
      client_fds_.push_back(client);
      server_fds_.push_back(server);
    }
  }

  void Begin(const char* name) {
    phases_.push_back(Phase{name, Measure(), {}});
  }
  void End() { phases_.back().after = Measure(); }

  asio::awaitable<void> Drive(bool* done) {
    const Memory start = Measure();

    Begin("connection objects (asio socket + Connection)");
    for (size_t i = 0; i < n_; ++i) {
      asio::ip::tcp::socket socket(io_);
      socket.assign(asio::ip::tcp::v4(), client_fds_[i]);
      connections_.push_back(std::make_shared<Http1Connection>(
          pool_->NextConnectionId(), AddressOf(i), std::move(socket)));
    }
    End();

    Begin("pool add (Acquire slot + AddConnected)");
    for (size_t i = 0; i < n_; ++i) {
      const Address& address = AddressOf(i);
      absl::StatusOr<Lease> lease = co_await pool_->Acquire(
          address, absl::InfiniteFuture(), /*allow_idle=*/false);
      if (!lease.ok() || !lease->may_connect()) {
        Die("Acquire did not grant a connecting slot");
      }
      if (!pool_->AddConnected(connections_[i])) Die("AddConnected refused");
    }
    End();

    if (scenario_.exchange) {
      Begin("exchange (what stays after it)");
      const Http1Limits limits;
      for (size_t i = 0; i < n_; ++i) {
        ExchangeResult result = co_await connections_[i]->Exchange(
            request_, limits, /*max_body_bytes=*/1 << 20,
            absl::InfiniteFuture());
        if (!result.response.ok() || result.close_reason.has_value()) {
          Die(absl::StrCat("exchange #", i, " failed: ",
                           result.response.status().ToString()));
        }
      }
      End();
    }

    Begin("release (idle) + the program's references dropped");
    for (size_t i = 0; i < n_; ++i) {
      pool_->Release(connections_[i], /*succeeded=*/true, std::nullopt);
    }
    connections_.clear();  // keeps its capacity: nothing freed here but refs
    End();

    total_ = Phase{"total", start, Measure()};
    const PoolSnapshot snapshot = pool_->Snapshot();
    if (snapshot.idle_count != n_) {
      Die(absl::StrCat("the pool holds ", snapshot.idle_count,
                       " idle connections, wanted ", n_));
    }
    *done = true;
  }

  const Address& AddressOf(size_t i) const {
    return addresses_[scenario_.address_per_connection ? i : 0];
  }

  void Report() const {
    std::printf("\nscenario %s: %s\n", scenario_.name, scenario_.description);
    std::printf("  %zu idle connections over %zu address(es)\n", n_,
                addresses_.size());
    std::printf("  %-52s %12s %12s\n", "phase", "heap B/conn", "RSS B/conn");
    auto line = [&](const Phase& p) {
      std::printf("  %-52s %12.1f %12.1f\n", p.name,
                  static_cast<double>(p.after.heap - p.before.heap) / n_,
                  static_cast<double>(p.after.rss - p.before.rss) / n_);
    };
    for (const Phase& p : phases_) line(p);
    line(total_);
    const double per_connection =
        static_cast<double>(total_.after.heap - total_.before.heap) / n_;
    if (per_connection <= 0) {
      // A sanitizer's allocator replaces glibc's, and mallinfo2 sees none of
      // it.
      std::printf("  RESULT %s: not measurable (mallinfo2 saw no growth: is "
                  "glibc malloc replaced, e.g. by a sanitizer?)\n",
                  scenario_.name);
      return;
    }
    std::printf("  RESULT %s: %.0f bytes of heap per idle connection (%s "
                "the 4096-byte target)\n",
                scenario_.name, per_connection,
                per_connection <= 4096 ? "meets" : "MISSES");
  }

  const Scenario& scenario_;
  const size_t n_;
  // Declared first: destroyed after the pool and the sockets bound to it.
  asio::io_context io_;
  std::unique_ptr<ConnectionPool> pool_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<int> client_fds_;
  std::vector<int> server_fds_;
  std::vector<Address> addresses_;
  Request request_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::vector<Phase> phases_;
  Phase total_{"total", {}, {}};
};

void PrintSizes() {
  std::printf("sizes (bytes; a malloc chunk adds 8 and rounds up to 16):\n");
  std::printf("  sizeof(Connection)                          %zu\n",
              sizeof(Connection));
  std::printf("    of which sizeof(ResponseParser)           %zu\n",
              sizeof(ResponseParser));
  std::printf("    of which sizeof(asio::ip::tcp::socket)    %zu\n",
              sizeof(asio::ip::tcp::socket));
  std::printf("    of which sizeof(Address)                  %zu\n",
              sizeof(Address));
  std::printf("  make_shared<Connection> block (+ control)   %zu\n",
              sizeof(Connection) + 16);
  std::printf("  asio epoll_reactor::descriptor_state        %zu\n",
              sizeof(asio::detail::epoll_reactor::descriptor_state));
  std::printf("  HeaderField (name + value strings)          %zu\n",
              sizeof(HeaderField));
  std::printf("  std::list<void*> node                       %zu\n",
              3 * sizeof(void*));
}

}  // namespace
}  // namespace egress

int main(int argc, char** argv) {
  size_t requested = egress::kDefaultConnections;
  if (argc > 1) requested = std::strtoull(argv[1], nullptr, 10);
  const size_t fd_limit = egress::RaiseFileLimit();
  // Both ends live in this process; leave room for the rest.
  const size_t budget = fd_limit > 64 ? (fd_limit - 64) / 2 : 0;
  const size_t n = std::min(requested, budget);
  if (n == 0) egress::Die("no file descriptors to spare");
  std::printf("idle_memory: %zu connections (requested %zu; RLIMIT_NOFILE %zu "
              "allows %zu with both ends in this process)\n",
              n, requested, fd_limit, budget);
  egress::PrintSizes();
  std::fflush(stdout);

  int failures = 0;
  for (const egress::Scenario& scenario : egress::kScenarios) {
    const pid_t child = fork();
    if (child < 0) egress::Die("fork");
    if (child == 0) {
      const int rc = egress::ScenarioRun(scenario, n).Run();
      std::fflush(stdout);
      std::exit(rc);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "idle_memory: scenario %s failed\n", scenario.name);
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
