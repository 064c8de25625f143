// SystemResolver (c-ares on the event loop) against /etc/hosts and against a
// scripted DNS server on 127.0.0.1: TTLs, NXDOMAIN, a server that never
// answers (our lookup timeout, the caller's deadline, c-ares's own retries)
// and lookups from several event loops at once. Every lookup is pointed at
// a loopback DNS server, so no query can leave the machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"
#include "client_core/base/sync.h"
#include "client_core/net/event_loops.h"
#include "client_core/route/system_resolver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_task.h"

namespace egress {
namespace {

using ::testing::AnyOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

asio::ip::address Ip(const char* text) { return asio::ip::make_address(text); }

using ::egress::testing::RunTask;

// A UDP DNS server on 127.0.0.1 answering A and AAAA questions from a fixed
// table (NXDOMAIN for other names), or never answering at all.
class FakeDnsServer {
 public:
  struct Record {
    std::vector<std::string> ipv4;
    std::vector<std::string> ipv6;
    uint32_t ttl = 60;
  };

  explicit FakeDnsServer(std::map<std::string, Record> records,
                         bool silent = false)
      : records_(std::move(records)), silent_(silent) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeDnsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int queries() const { return queries_.load(); }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;
      unsigned char buf[1500];
      sockaddr_in from{};
      socklen_t from_len = sizeof(from);
      const ssize_t n =
          ::recvfrom(fd_, buf, sizeof(buf), 0,
                     reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 12) continue;
      ++queries_;
      if (silent_) continue;
      const std::string reply = Answer(buf, static_cast<size_t>(n));
      if (reply.empty()) continue;
      ::sendto(fd_, reply.data(), reply.size(), 0,
               reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }

  std::string Answer(const unsigned char* q, size_t n) const {
    // Question: labels from offset 12, then QTYPE and QCLASS.
    size_t pos = 12;
    std::string name;
    while (pos < n && q[pos] != 0) {
      const size_t len = q[pos];
      if (pos + 1 + len > n) return "";
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + pos + 1), len);
      pos += 1 + len;
    }
    if (pos + 5 > n) return "";
    const int qtype = (q[pos + 1] << 8) | q[pos + 2];
    const size_t question_end = pos + 5;
    auto it = records_.find(absl::AsciiStrToLower(name));

    std::vector<std::string> rdatas;
    if (it != records_.end()) {
      if (qtype == 1) {
        for (const std::string& ip : it->second.ipv4) {
          const auto bytes = asio::ip::make_address_v4(ip).to_bytes();
          rdatas.emplace_back(bytes.begin(), bytes.end());
        }
      } else if (qtype == 28) {
        for (const std::string& ip : it->second.ipv6) {
          const auto bytes = asio::ip::make_address_v6(ip).to_bytes();
          rdatas.emplace_back(bytes.begin(), bytes.end());
        }
      }
    }
    std::string r;
    r.append(reinterpret_cast<const char*>(q), 2);  // id
    r += '\x81';                                    // QR, RD
    r += it == records_.end() ? '\x83' : '\x80';    // RA; NXDOMAIN or not
    r += std::string("\x00\x01", 2);                // QDCOUNT
    r += static_cast<char>(rdatas.size() >> 8);
    r += static_cast<char>(rdatas.size() & 0xff);  // ANCOUNT
    r += std::string(4, '\0');                     // NSCOUNT, ARCOUNT
    r.append(reinterpret_cast<const char*>(q + 12), question_end - 12);
    for (const std::string& rdata : rdatas) {
      r += std::string("\xc0\x0c", 2);  // the question's name
      r += static_cast<char>(qtype >> 8);
      r += static_cast<char>(qtype & 0xff);
      r += std::string("\x00\x01", 2);  // IN
      const uint32_t ttl = it->second.ttl;
      for (int shift = 24; shift >= 0; shift -= 8) {
        r += static_cast<char>((ttl >> shift) & 0xff);
      }
      r += static_cast<char>(rdata.size() >> 8);
      r += static_cast<char>(rdata.size() & 0xff);
      r += rdata;
    }
    return r;
  }

  const std::map<std::string, Record> records_;
  const bool silent_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

ResolverOptions Using(const FakeDnsServer& server) {
  ResolverOptions options;
  options.nameservers = {server.address()};
  return options;
}

absl::Time Later() { return absl::Now() + absl::Seconds(10); }

TEST(SystemResolverTest, ResolvesLocalhostFromEtcHosts) {
  FakeDnsServer silent({}, /*silent=*/true);  // in case /etc/hosts lacks it
  asio::io_context io;
  SystemResolver resolver(Using(silent));
  absl::StatusOr<Resolution> r =
      RunTask(io, resolver.ResolveWithTtl("localhost", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->addresses.empty());
  for (const asio::ip::address& ip : r->addresses) {
    EXPECT_THAT(ip, AnyOf(Ip("127.0.0.1"), Ip("::1")));
  }
  EXPECT_NE(r->ttl, absl::InfiniteDuration());
  EXPECT_EQ(silent.queries(), 0);
}

TEST(SystemResolverTest, IpLiteralNeedsNoLookup) {
  asio::io_context io;
  SystemResolver resolver;
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("127.0.0.3", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, UnorderedElementsAre(Ip("127.0.0.3")));
}

TEST(SystemResolverTest, AnswersFromDnsWithTheirTtl) {
  FakeDnsServer dns({{"svc.egress.test", {{"127.0.0.7", "127.0.0.8"}, {}, 42}},
                     {"dual.egress.test", {{"127.0.0.9"}, {"::1"}, 300}}});
  asio::io_context io;
  SystemResolver resolver(Using(dns));

  absl::StatusOr<Resolution> r =
      RunTask(io, resolver.ResolveWithTtl("Svc.Egress.Test", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->addresses,
              UnorderedElementsAre(Ip("127.0.0.7"), Ip("127.0.0.8")));
  EXPECT_EQ(r->ttl, absl::Seconds(42));

  r = RunTask(io, resolver.ResolveWithTtl("dual.egress.test", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->addresses, UnorderedElementsAre(Ip("127.0.0.9"), Ip("::1")));
  EXPECT_EQ(r->ttl, absl::Seconds(300));
}

TEST(SystemResolverTest, UnknownNameIsUnavailable) {
  FakeDnsServer dns({});
  asio::io_context io;
  SystemResolver resolver(Using(dns));
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("missing.egress.test", Later()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "DNS lookup of 'missing.egress.test' failed: Domain name not "
            "found");
}

TEST(SystemResolverTest, SilentServerHitsTheLookupTimeout) {
  FakeDnsServer dns({}, /*silent=*/true);
  ResolverOptions options = Using(dns);
  options.lookup_timeout = absl::Milliseconds(300);
  asio::io_context io;
  SystemResolver resolver(options);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("svc.egress.test", Later()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("DNS lookup of 'svc.egress.test' timed out after "));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_GE(dns.queries(), 1);
}

TEST(SystemResolverTest, CallerDeadlineIsDeadlineExceeded) {
  FakeDnsServer dns({}, /*silent=*/true);
  asio::io_context io;
  SystemResolver resolver(Using(dns));
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("svc.egress.test",
                                   absl::Now() + absl::Milliseconds(200)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(),
              HasSubstr("DNS lookup of 'svc.egress.test' timed out after "));
}

TEST(SystemResolverTest, RetriesAreDrivenByTheEventLoop) {
  FakeDnsServer dns({}, /*silent=*/true);
  ResolverOptions options = Using(dns);
  options.attempt_timeout = absl::Milliseconds(50);
  options.attempts = 2;
  asio::io_context io;
  SystemResolver resolver(options);
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("svc.egress.test", Later()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "DNS lookup of 'svc.egress.test' failed: Timeout while "
            "contacting DNS servers");
  // Each of the two questions (A, AAAA) was sent, then sent again.
  EXPECT_GE(dns.queries(), 4);
}

TEST(SystemResolverTest, BadNameserversAreReported) {
  ResolverOptions options;
  options.nameservers = {"127.0.0.1:53", "not-an-ip"};
  absl::Status valid = ValidateResolverOptions(options);
  EXPECT_EQ(valid.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(valid.message(),
            "nameserver 'not-an-ip': 'not-an-ip' is not an IP address");

  options.nameservers = {"127.0.0.1:99999"};
  EXPECT_THAT(ValidateResolverOptions(options).message(),
              HasSubstr("'99999' is not a port"));
  options.nameservers = {"[::1]:5353", "::1", "127.0.0.1"};
  EXPECT_TRUE(ValidateResolverOptions(options).ok());
  options.ttl_floor = absl::Minutes(10);
  EXPECT_THAT(ValidateResolverOptions(options).message(),
              HasSubstr("ttl_floor"));

  options = ResolverOptions();
  options.nameservers = {"not-an-ip"};
  asio::io_context io;
  SystemResolver resolver(options);
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("svc.egress.test", Later()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("DNS lookup of 'svc.egress.test' failed: nameserver "
                        "'not-an-ip'"));
}

TEST(SystemResolverTest, ConcurrentLookupsOnSeveralEventLoops) {
  FakeDnsServer dns({{"a.egress.test", {{"127.0.0.11"}, {}, 5}},
                     {"b.egress.test", {{"127.0.0.12"}, {}, 5}}});
  SystemResolver resolver(Using(dns));
  EventLoops loops(2);
  constexpr int kLookups = 40;
  Mutex mu;
  int done = 0;
  std::vector<std::string> failures;
  // Outlive the calls: Resolve's host is a reference.
  const std::vector<std::string> hosts = {"a.egress.test", "b.egress.test"};
  for (int i = 0; i < kLookups; ++i) {
    const std::string& host = hosts[i % 2];
    asio::co_spawn(
        loops.Next(), resolver.Resolve(host, Later()),
        [&, host](std::exception_ptr e,
                  absl::StatusOr<std::vector<asio::ip::address>> r) {
          MutexLock lock(&mu);
          ++done;
          if (e) {
            failures.push_back("exception");
          } else if (!r.ok()) {
            failures.push_back(std::string(r.status().message()));
          } else if (r->size() != 1) {
            failures.push_back(absl::StrCat(host, ": ", r->size(), " ips"));
          }
        });
  }
  MutexLock lock(&mu);
  mu.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done == kLookups; });
  EXPECT_THAT(failures, ::testing::IsEmpty());
}

}  // namespace
}  // namespace egress
