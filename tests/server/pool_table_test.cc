#include "server/pool_table.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/admin.pb.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::PoolStats TwoAddressStats() {
  v1::PoolStats stats;
  stats.set_connection_count(3);
  stats.set_idle_count(1);
  stats.set_in_use_count(2);
  stats.set_connections_opened(12);
  stats.set_connecting_count(1);
  stats.set_pending_count(2);
  stats.set_requests_in_flight(4);
  v1::AddressStats* a = stats.add_addresses();
  a->set_address("http://example.com:80");
  a->set_connection_count(2);
  a->set_idle_count(1);
  a->set_in_use_count(1);
  a->set_requests_served(17);
  a->set_connecting_count(1);
  a->set_pending_count(2);
  a->set_requests_in_flight(3);
  v1::AddressStats* b = stats.add_addresses();
  b->set_address("https://api.example.org:443");
  b->set_connection_count(1);
  b->set_idle_count(0);
  b->set_in_use_count(1);
  b->set_requests_served(1234567);
  b->set_requests_in_flight(1);
  b->set_http2_count(1);
  b->set_streams_in_flight(1);
  stats.mutable_tls()->set_handshakes(3);
  stats.mutable_tls()->set_resumed(2);
  (*stats.mutable_tls()->mutable_failures())["expired"] = 1;
  (*stats.mutable_tls()->mutable_failures())["alpn"] = 0;
  (*stats.mutable_closed_by_reason())["peer_closed"] = 2;
  (*stats.mutable_closed_by_reason())["idle_timeout"] = 7;
  (*stats.mutable_closed_by_reason())["shutdown"] = 0;
  stats.mutable_config()->set_max_idle_connections(100);
  stats.mutable_config()->mutable_keep_alive()->set_seconds(90);
  return stats;
}

TEST(PoolTableTest, TwoAddresses) {
  EXPECT_EQ(FormatPoolStats(TwoAddressStats()),
            "connections: 3 open (1 idle, 2 in use), 1 connecting, 12 opened "
            "since start\n"
            "requests: 4 in flight (2 pending)\n"
            "tls handshakes: 3 (2 resumed)\n"
            "\n"
            "ADDRESS                      CONNS  H2  IDLE  IN USE  STREAMS  "
            "CONNECTING  PENDING  IN FLIGHT   SERVED\n"
            "http://example.com:80            2   0     1       1        0  "
            "         1        2          3       17\n"
            "https://api.example.org:443      1   1     0       1        1  "
            "         0        0          1  1234567\n"
            "\n"
            "closed by reason:\n"
            "  idle_timeout  7\n"
            "  peer_closed   2\n"
            "\n"
            "tls failures:\n"
            "  expired  1\n"
            "\n"
            "config: max idle connections 100, keep-alive 1m30s\n");
}

TEST(PoolTableTest, TableColumnsAlign) {
  const std::string text = FormatPoolStats(TwoAddressStats());
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  ASSERT_GE(lines.size(), 7u);
  const std::string& header = lines[4];
  ASSERT_EQ(header.rfind("ADDRESS", 0), 0u) << header;
  // Right-aligned numeric columns: every row ends where the header ends, and
  // each header label's right edge is a cell's right edge in every row.
  for (int row = 5; row <= 6; ++row) {
    EXPECT_EQ(lines[row].size(), header.size()) << lines[row];
    for (const char* label :
         {"CONNS", "IDLE", "IN USE", "CONNECTING", "PENDING", "IN FLIGHT"}) {
      const size_t end = header.find(label) + std::string(label).size();
      ASSERT_LT(end, lines[row].size());
      EXPECT_NE(lines[row][end - 1], ' ') << label << " in: " << lines[row];
      EXPECT_EQ(lines[row][end], ' ') << label << " in: " << lines[row];
    }
  }
  for (const std::string& line : lines) {
    if (!line.empty()) {
      EXPECT_NE(line.back(), ' ') << "'" << line << "'";
    }
  }
}

TEST(PoolTableTest, ZeroReasonsAreLeftOut) {
  v1::PoolStats stats = TwoAddressStats();
  (*stats.mutable_rejected_by_limit())["pending_timeout"] = 0;
  const std::string text = FormatPoolStats(stats);
  EXPECT_THAT(text, Not(HasSubstr("shutdown")));
  EXPECT_THAT(text, Not(HasSubstr("rejected")));
  EXPECT_THAT(text, Not(HasSubstr("connect failures")));
  EXPECT_THAT(text, Not(HasSubstr("leaks")));
}

TEST(PoolTableTest, RejectionsFailuresAndLeaksWhenNonZero) {
  v1::PoolStats stats = TwoAddressStats();
  stats.set_connect_failures(3);
  stats.set_leaks_detected(2);
  (*stats.mutable_rejected_by_limit())["max_pending_per_address"] = 5;
  (*stats.mutable_rejected_by_limit())["pending_timeout"] = 11;
  (*stats.mutable_rejected_by_limit())["max_requests_in_flight"] = 0;
  const std::string text = FormatPoolStats(stats);
  EXPECT_THAT(text, HasSubstr("requests: 4 in flight (2 pending)\n"
                              "connect failures: 3\n"
                              "leaks detected: 2 (egressctl leaks)\n"
                              "tls handshakes: 3 (2 resumed)\n"
                              "\n"
                              "ADDRESS"));
  EXPECT_THAT(text, HasSubstr("  peer_closed   2\n"
                              "\n"
                              "rejected by limit:\n"
                              "  max_pending_per_address   5\n"
                              "  pending_timeout          11\n"
                              "\n"
                              "tls failures:\n"
                              "  expired  1\n"
                              "\n"
                              "config:"));
  EXPECT_THAT(text, Not(HasSubstr("max_requests_in_flight ")));
}

google::protobuf::Timestamp At(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

TEST(PoolTableTest, Connections) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  v1::ListConnectionsResponse response;
  v1::ConnectionStats* idle = response.add_connections();
  idle->set_id(7);
  idle->set_address("http://127.0.0.1:8080");
  idle->set_remote_address("127.0.0.1:8080");
  idle->set_local_port(41234);
  *idle->mutable_created() = At(now - absl::Seconds(184));
  *idle->mutable_idle_since() = At(now - absl::Seconds(12));
  idle->set_success_count(3);
  idle->set_protocol("http/1.1");
  idle->set_allocation_limit(1);
  v1::ConnectionStats* busy = response.add_connections();
  busy->set_id(12345);
  busy->set_address("https://api.example.org:443");
  busy->set_remote_address("[::1]:443");
  busy->set_local_port(5);
  *busy->mutable_created() = At(now - absl::Hours(2) - absl::Minutes(5));
  busy->set_allocations(37);
  busy->set_allocation_limit(100);
  busy->set_protocol("h2");
  busy->mutable_tls()->set_version("TLSv1.3");
  busy->mutable_tls()->set_resumed(true);
  busy->mutable_tls()->set_verified(true);
  busy->set_success_count(1200);
  busy->set_no_new_exchanges_reason("drain");
  EXPECT_EQ(FormatConnections(response, now),
            "   ID  ADDRESS                      REMOTE          LOCAL PORT  "
            "PROTO     TLS              STATE   STREAMS    AGE  IDLE FOR  "
            "SERVED  NO NEW EXCHANGES\n"
            "    7  http://127.0.0.1:8080        127.0.0.1:8080       41234  "
            "http/1.1  -                idle        0/1  3m04s       12s  "
            "     3  -\n"
            "12345  https://api.example.org:443  [::1]:443                5  "
            "h2        TLSv1.3 resumed  in use   37/100  2h05m         -  "
            "  1200  drain\n");
}

TEST(PoolTableTest, NoConnections) {
  EXPECT_EQ(FormatConnections(v1::ListConnectionsResponse(), absl::Now()),
            "no open connections\n");
}

TEST(PoolTableTest, Leaks) {
  v1::ListLeaksResponse response;
  v1::LeakReport* leak = response.add_leaks();
  leak->set_call_id(42);
  leak->set_method("GET");
  leak->set_url("http://127.0.0.1:8080/big");
  leak->mutable_age()->set_seconds(61);
  leak->set_bytes_moved(65536);
  leak->set_connection_id(3);
  leak->set_caller("ipv4:127.0.0.1:50000");
  response.set_total(5);
  EXPECT_EQ(FormatLeaks(response),
            "CALL  METHOD  URL                          AGE  BYTES  CONN  "
            "CALLER\n"
            "  42  GET     http://127.0.0.1:8080/big  1m01s  65536     3  "
            "ipv4:127.0.0.1:50000\n"
            "\n"
            "5 leak(s) detected since start, the newest 1 listed\n");
  response.set_total(1);
  EXPECT_THAT(FormatLeaks(response),
              HasSubstr("\n1 leak(s) detected since start\n"));
}

TEST(PoolTableTest, NoLeaks) {
  EXPECT_EQ(FormatLeaks(v1::ListLeaksResponse()),
            "no leaks detected since start\n");
}

TEST(PoolTableTest, Ages) {
  EXPECT_EQ(FormatAge(absl::Milliseconds(-5)), "0s");
  EXPECT_EQ(FormatAge(absl::ZeroDuration()), "0.0s");
  EXPECT_EQ(FormatAge(absl::Milliseconds(420)), "0.4s");
  EXPECT_EQ(FormatAge(absl::Milliseconds(9999)), "9.9s");
  EXPECT_EQ(FormatAge(absl::Seconds(42)), "42s");
  EXPECT_EQ(FormatAge(absl::Seconds(184)), "3m04s");
  EXPECT_EQ(FormatAge(absl::Hours(2) + absl::Minutes(5) + absl::Seconds(59)),
            "2h05m");
  EXPECT_EQ(FormatAge(absl::Hours(76)), "3d04h");
}

TEST(PoolTableTest, EmptyPool) {
  v1::PoolStats stats;
  (*stats.mutable_closed_by_reason())["shutdown"] = 0;
  EXPECT_EQ(FormatPoolStats(stats),
            "connections: 0 open (0 idle, 0 in use), 0 connecting, 0 opened "
            "since start\n"
            "requests: 0 in flight (0 pending)\n"
            "\n"
            "no open connections\n"
            "\n"
            "closed by reason: none\n"
            "\n"
            "config: not reported\n");
}

v1::PoolEvent Event(v1::PoolEvent::Kind kind, uint64_t id) {
  v1::PoolEvent event;
  event.set_kind(kind);
  event.set_connection_id(id);
  event.set_address("http://127.0.0.1:8080");
  // 2024-05-01T12:00:00.250Z
  event.mutable_time()->set_seconds(1714564800);
  event.mutable_time()->set_nanos(250000000);
  return event;
}

TEST(PoolTableTest, EventLinesAlignUnderTheirHeader) {
  v1::PoolEvent acquired = Event(v1::PoolEvent::ACQUIRED, 12);
  v1::PoolEvent released = Event(v1::PoolEvent::RELEASED, 12);
  released.set_succeeded(true);
  v1::PoolEvent closed = Event(v1::PoolEvent::CLOSED, 3456);
  closed.set_reason("evict_request");
  v1::PoolEvent idle = Event(v1::PoolEvent::IDLE, 12);
  EXPECT_EQ(FormatPoolEventHeader(),
            "TIME                      EVENT             CONN  ADDRESS"
            "                       DETAIL\n");
  EXPECT_EQ(FormatPoolEvent(acquired),
            "2024-05-01T12:00:00.250Z  acquired            12  "
            "http://127.0.0.1:8080         new\n");
  EXPECT_EQ(FormatPoolEvent(released),
            "2024-05-01T12:00:00.250Z  released            12  "
            "http://127.0.0.1:8080         completed\n");
  EXPECT_EQ(FormatPoolEvent(closed),
            "2024-05-01T12:00:00.250Z  closed            3456  "
            "http://127.0.0.1:8080         evict_request\n");
  EXPECT_EQ(FormatPoolEvent(idle),
            "2024-05-01T12:00:00.250Z  idle                12  "
            "http://127.0.0.1:8080         -\n");
  const size_t column = FormatPoolEventHeader().find("ADDRESS");
  EXPECT_EQ(FormatPoolEvent(closed).find("http://"), column);
}

TEST(PoolTableTest, EventKindsLostEventsAndLeaks) {
  v1::PoolEvent failed = Event(v1::PoolEvent::CONNECT_FAILED, 5);
  failed.set_reason("refused");
  failed.set_lost(3);
  EXPECT_EQ(FormatPoolEvent(failed),
            "... 3 event(s) lost: egressctl read too slowly\n"
            "2024-05-01T12:00:00.250Z  connect_failed       5  "
            "http://127.0.0.1:8080         refused\n");
  v1::PoolEvent leak = Event(v1::PoolEvent::LEAK_DETECTED, 9);
  leak.mutable_leak()->set_call_id(77);
  leak.mutable_leak()->set_method("GET");
  leak.mutable_leak()->set_url("http://127.0.0.1:8080/big");
  leak.mutable_leak()->mutable_age()->set_seconds(31);
  leak.mutable_leak()->set_bytes_moved(65536);
  leak.mutable_leak()->set_caller("ipv4:127.0.0.1:4000");
  EXPECT_THAT(FormatPoolEvent(leak),
              HasSubstr("leak_detected        9  http://127.0.0.1:8080  "
                        "       call 77 GET http://127.0.0.1:8080/big after "
                        "31s, 65536 bytes, caller ipv4:127.0.0.1:4000\n"));
  EXPECT_EQ(EventKindName(v1::PoolEvent::OPENED), "opened");
  EXPECT_EQ(EventKindName(v1::PoolEvent::KIND_UNSPECIFIED), "unknown");
}

}  // namespace
}  // namespace egress
