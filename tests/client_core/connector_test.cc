// Connector against real sockets on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all
// loopback on Linux), one port shared by the three:
//   - a *refusing* IP has a socket bound to the port but not listening, so a
//     SYN gets a RST at once;
//   - a *serving* IP listens (the kernel completes handshakes without
//     accept());
//   - a *blackholed* IP listens with backlog 0 and an accept queue filled by
//     a connection nobody accepts, so the kernel drops further SYNs and a
//     connect hangs (checked before use).
// Covers the pool issue's test 9 (failed route tried last, then in order
// again after expiry) and test 10 (fast fallback from a blackholed IP).
#include "client_core/connection/connector.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"
#include "client_core/route/resolver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_task.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

using ::egress::testing::RunTask;

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

sockaddr_in SockAddr(const std::string& ip, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  return addr;
}

// A TCP socket bound to ip:port (port 0: any), not listening; -1 on failure.
Fd BindTcp(const std::string& ip, uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr = SockAddr(ip, port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Fd();
  }
  return fd;
}

uint16_t LocalPort(const Fd& fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// Starts a non-blocking connect; the socket.
Fd StartConnect(const std::string& ip, uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  sockaddr_in addr = SockAddr(ip, port);
  ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  return fd;
}

// Whether a connect started with StartConnect completes within `wait`.
bool ConnectsWithin(const Fd& fd, absl::Duration wait) {
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) != 1) {
    return false;
  }
  int error = 0;
  socklen_t len = sizeof(error);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len);
  return error == 0;
}

// Sockets in SYN_SENT towards ip:port, from /proc/net/tcp: a connect attempt
// still pending.
int SynSentTo(const std::string& ip, uint16_t port) {
  in_addr a{};
  ::inet_pton(AF_INET, ip.c_str(), &a);
  // /proc/net/tcp prints the address as the raw 32-bit value in host order.
  const std::string remote =
      absl::StrFormat("%08X:%04X", static_cast<uint32_t>(a.s_addr), port);
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  int count = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, rem, state;
    fields >> slot >> local >> rem >> state;
    if (rem == remote && state == "02") ++count;
  }
  return count;
}

// Three loopback IPs sharing one port, each refusing, serving or
// blackholed on demand.
class ThreeIps {
 public:
  static constexpr const char* kIps[3] = {"127.0.0.1", "127.0.0.2",
                                          "127.0.0.3"};

  // Binds the three IPs to one free port (not yet listening: all refuse).
  bool Bind() {
    for (int tries = 0; tries < 50; ++tries) {
      Fd first = BindTcp(kIps[0], 0);
      if (first.get() < 0) continue;
      port_ = LocalPort(first);
      Fd second = BindTcp(kIps[1], port_);
      Fd third = BindTcp(kIps[2], port_);
      if (second.get() < 0 || third.get() < 0) continue;
      sockets_[0] = std::move(first);
      sockets_[1] = std::move(second);
      sockets_[2] = std::move(third);
      return true;
    }
    return false;
  }

  uint16_t port() const { return port_; }

  void Serve(int i) { ASSERT_EQ(::listen(sockets_[i].get(), 64), 0); }

  // Listens with backlog 0 and fills the accept queue with a connection that
  // is never accepted; then checks that a further connect hangs.
  void Blackhole(int i) {
    ASSERT_EQ(::listen(sockets_[i].get(), 0), 0);
    Fd filler = StartConnect(kIps[i], port_);
    ASSERT_TRUE(ConnectsWithin(filler, absl::Seconds(5)));
    fillers_.push_back(std::move(filler));
    Fd probe = StartConnect(kIps[i], port_);
    ASSERT_FALSE(ConnectsWithin(probe, absl::Milliseconds(300)))
        << "the kernel accepted a connection beyond the full accept queue: "
           "cannot blackhole "
        << kIps[i];
    probe.Reset();
    ASSERT_EQ(SynSentTo(kIps[i], port_), 0);
  }

  Address address() const { return Address{"http", "multi.test", port_}; }

  Route RouteTo(int i) const {
    return Route{address(), asio::ip::tcp::endpoint(
                                asio::ip::make_address(kIps[i]), port_)};
  }

 private:
  Fd sockets_[3];
  std::vector<Fd> fillers_;
  uint16_t port_ = 0;
};

std::shared_ptr<Resolver> MultiTest(int ips = 3) {
  std::vector<asio::ip::address> addresses;
  for (int i = 0; i < ips; ++i) {
    addresses.push_back(asio::ip::make_address(ThreeIps::kIps[i]));
  }
  return std::make_shared<StaticResolver>(
      StaticHostMap{{"multi.test", addresses}});
}

class ConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ips_.Bind()); }

  absl::StatusOr<ConnectResult> Connect(
      Connector& connector, absl::Duration timeout = absl::Seconds(10)) {
    return RunTask(io_, connector.Connect(ips_.address(), ++next_id_,
                                          absl::Now() + timeout));
  }

  asio::io_context io_;
  ThreeIps ips_;
  uint64_t next_id_ = 0;
};

// Issue test 9.
TEST_F(ConnectorTest, RefusedRouteIsTriedLastUntilItsFailureExpires) {
  ips_.Serve(1);
  ips_.Serve(2);
  ConnectorOptions options;
  options.failed_route_expiry = absl::Milliseconds(500);
  Connector connector(options, MultiTest());

  // 127.0.0.1 refuses: 127.0.0.2 serves, at once (a failure starts the next
  // attempt without waiting for the fallback delay).
  absl::StatusOr<ConnectResult> first = Connect(connector);
  const absl::Time failed_at = absl::Now();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->route, ips_.RouteTo(1));
  EXPECT_EQ(first->attempts, 2);
  EXPECT_LT(first->connect_time, options.fallback_delay);
  EXPECT_EQ(first->connection->remote_address(),
            absl::StrCat("127.0.0.2:", ips_.port()));
  EXPECT_EQ(first->connection->id(), 1u);
  EXPECT_EQ(first->connection->address(), ips_.address());

  // 127.0.0.1 recovers, but is still postponed: the next connection goes to
  // 127.0.0.2 first, and it serves.
  ips_.Serve(0);
  ASSERT_TRUE(connector.route_database().ShouldPostpone(ips_.RouteTo(0)));
  absl::StatusOr<ConnectResult> second = Connect(connector);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->route, ips_.RouteTo(1));
  EXPECT_EQ(second->attempts, 1);
  ASSERT_LT(absl::Now() - failed_at, options.failed_route_expiry)
      << "too slow to observe the postponed route";

  // After the expiry, 127.0.0.1 is first again.
  absl::SleepFor(options.failed_route_expiry - (absl::Now() - failed_at) +
                 absl::Milliseconds(20));
  absl::StatusOr<ConnectResult> third = Connect(connector);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->route, ips_.RouteTo(0));
  EXPECT_EQ(third->attempts, 1);
  EXPECT_FALSE(connector.route_database().ShouldPostpone(ips_.RouteTo(0)));
}

// Issue test 10.
TEST_F(ConnectorTest, FastFallbackPastABlackholedIp) {
  ips_.Blackhole(0);
  ips_.Serve(1);
  ConnectorOptions options;  // fallback_delay 250 ms
  Connector connector(options, MultiTest(2));

  const absl::Time start = absl::Now();
  absl::StatusOr<ConnectResult> r = Connect(connector);
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->route, ips_.RouteTo(1));
  EXPECT_EQ(r->attempts, 2);
  EXPECT_GE(took, options.fallback_delay);
  // About 250 ms plus a loopback connect; far below the 1 s a retransmitted
  // SYN would take. (Generous for sanitizer builds.)
  EXPECT_LT(took, options.fallback_delay + absl::Milliseconds(500));
  EXPECT_GE(r->connect_time, options.fallback_delay);

  // The hanging attempt was cancelled: no connect to 127.0.0.1 is pending.
  EXPECT_EQ(SynSentTo("127.0.0.1", ips_.port()), 0);
  // It lost with a head start, so it is tried last next time.
  EXPECT_TRUE(connector.route_database().ShouldPostpone(ips_.RouteTo(0)));
  absl::StatusOr<ConnectResult> again = Connect(connector);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->route, ips_.RouteTo(1));
  EXPECT_EQ(again->attempts, 1);
}

TEST_F(ConnectorTest, NoDelayWhileTheFirstRouteConnects) {
  ips_.Serve(0);
  ips_.Serve(1);
  ConnectorOptions options;
  options.fallback_delay = absl::Seconds(5);
  Connector connector(options, MultiTest());
  absl::StatusOr<ConnectResult> r = Connect(connector);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->route, ips_.RouteTo(0));
  EXPECT_EQ(r->attempts, 1);
  EXPECT_LT(r->connect_time, absl::Seconds(1));
  EXPECT_EQ(connector.route_database().size(), 0u);
}

TEST_F(ConnectorTest, FailuresStartTheNextAttemptAtOnce) {
  ips_.Serve(2);
  ConnectorOptions options;
  options.fallback_delay = absl::Seconds(5);
  Connector connector(options, MultiTest());
  absl::StatusOr<ConnectResult> r = Connect(connector);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->route, ips_.RouteTo(2));
  EXPECT_EQ(r->attempts, 3);
  EXPECT_LT(r->connect_time, absl::Seconds(1));
  EXPECT_TRUE(connector.route_database().ShouldPostpone(ips_.RouteTo(0)));
  EXPECT_TRUE(connector.route_database().ShouldPostpone(ips_.RouteTo(1)));
  EXPECT_FALSE(connector.route_database().ShouldPostpone(ips_.RouteTo(2)));
}

TEST_F(ConnectorTest, AllRoutesRefusedIsUnavailableNamingEach) {
  Connector connector(ConnectorOptions(), MultiTest());
  absl::StatusOr<ConnectResult> r = Connect(connector);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  const std::string port = absl::StrCat(ips_.port());
  EXPECT_EQ(r.status().message(),
            absl::StrCat("connect to http://multi.test:", port,
                         " failed: 127.0.0.1:", port,
                         ": Connection refused; 127.0.0.2:", port,
                         ": Connection refused; 127.0.0.3:", port,
                         ": Connection refused"));
  EXPECT_EQ(connector.route_database().size(), 3u);
}

TEST_F(ConnectorTest, ConnectTimeoutFailsTheRoute) {
  ips_.Blackhole(0);
  ConnectorOptions options;
  options.connect_timeout = absl::Milliseconds(200);
  Connector connector(options, MultiTest(1));
  absl::StatusOr<ConnectResult> r = Connect(connector);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            absl::StrCat("connect to http://multi.test:", ips_.port(),
                         " failed: 127.0.0.1:", ips_.port(), ": timed out"));
  EXPECT_EQ(SynSentTo("127.0.0.1", ips_.port()), 0);
  EXPECT_TRUE(connector.route_database().ShouldPostpone(ips_.RouteTo(0)));
}

TEST_F(ConnectorTest, DeadlineWhileConnectingIsDeadlineExceeded) {
  ips_.Blackhole(0);
  Connector connector(ConnectorOptions(), MultiTest(1));
  absl::StatusOr<ConnectResult> r = Connect(connector, absl::Milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(),
            absl::StrCat("deadline exceeded while connecting to "
                         "http://multi.test:",
                         ips_.port()));
  EXPECT_EQ(SynSentTo("127.0.0.1", ips_.port()), 0);
  // The caller's deadline says nothing about the route.
  EXPECT_FALSE(connector.route_database().ShouldPostpone(ips_.RouteTo(0)));
}

TEST_F(ConnectorTest, ResolverErrorsPassThrough) {
  Connector connector(ConnectorOptions(), MultiTest());
  absl::StatusOr<ConnectResult> r =
      RunTask(io_, connector.Connect(Address{"http", "other.test", 80}, 1,
                                     absl::Now() + absl::Seconds(5)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "no static address for host 'other.test'");
}

TEST_F(ConnectorTest, IpLiteralSkipsTheResolver) {
  ips_.Serve(2);
  Connector connector(ConnectorOptions(), MultiTest(0));
  absl::StatusOr<ConnectResult> r =
      RunTask(io_, connector.Connect(Address{"http", "127.0.0.3", ips_.port()},
                                     7, absl::Now() + absl::Seconds(5)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->connection->id(), 7u);
  EXPECT_EQ(r->dns_time, absl::ZeroDuration());
}

TEST_F(ConnectorTest, DefaultResolverFindsLocalhost) {
  ips_.Serve(0);
  ConnectorOptions options;
  // /etc/hosts answers; should it not, the query goes to a closed loopback
  // port and fails, never off the machine.
  options.resolver.nameservers = {"127.0.0.1:1"};
  Connector connector(options);
  absl::StatusOr<ConnectResult> r =
      RunTask(io_, connector.Connect(Address{"http", "localhost", ips_.port()},
                                     1, absl::Now() + absl::Seconds(5)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->route.endpoint.address(), asio::ip::make_address("127.0.0.1"));
}

}  // namespace
}  // namespace egress
