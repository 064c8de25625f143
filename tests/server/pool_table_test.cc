#include "server/pool_table.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
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
  v1::AddressStats* a = stats.add_addresses();
  a->set_address("http://example.com:80");
  a->set_connection_count(2);
  a->set_idle_count(1);
  a->set_in_use_count(1);
  a->set_requests_served(17);
  v1::AddressStats* b = stats.add_addresses();
  b->set_address("https://api.example.org:443");
  b->set_connection_count(1);
  b->set_idle_count(0);
  b->set_in_use_count(1);
  b->set_requests_served(1234567);
  (*stats.mutable_closed_by_reason())["peer_closed"] = 2;
  (*stats.mutable_closed_by_reason())["idle_timeout"] = 7;
  (*stats.mutable_closed_by_reason())["shutdown"] = 0;
  stats.mutable_config()->set_max_idle_connections(100);
  stats.mutable_config()->mutable_keep_alive()->set_seconds(90);
  return stats;
}

TEST(PoolTableTest, TwoAddresses) {
  EXPECT_EQ(FormatPoolStats(TwoAddressStats()),
            "connections: 3 open (1 idle, 2 in use), 12 opened since start\n"
            "\n"
            "ADDRESS                      CONNS  IDLE  IN USE   SERVED\n"
            "http://example.com:80            2     1       1       17\n"
            "https://api.example.org:443      1     0       1  1234567\n"
            "\n"
            "closed by reason:\n"
            "  idle_timeout  7\n"
            "  peer_closed   2\n"
            "\n"
            "config: max idle connections 100, keep-alive 1m30s\n");
}

TEST(PoolTableTest, TableColumnsAlign) {
  const std::string text = FormatPoolStats(TwoAddressStats());
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  ASSERT_GE(lines.size(), 5u);
  const std::string& header = lines[2];
  // Right-aligned numeric columns: every row ends where the header ends, and
  // each header label's right edge is a cell's right edge in every row.
  for (int row = 3; row <= 4; ++row) {
    EXPECT_EQ(lines[row].size(), header.size()) << lines[row];
    for (const char* label : {"CONNS", "IDLE", "IN USE"}) {
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
  EXPECT_THAT(FormatPoolStats(TwoAddressStats()), Not(HasSubstr("shutdown")));
}

TEST(PoolTableTest, EmptyPool) {
  v1::PoolStats stats;
  (*stats.mutable_closed_by_reason())["shutdown"] = 0;
  EXPECT_EQ(FormatPoolStats(stats),
            "connections: 0 open (0 idle, 0 in use), 0 opened since start\n"
            "\n"
            "no open connections\n"
            "\n"
            "closed by reason: none\n"
            "\n"
            "config: not reported\n");
}

}  // namespace
}  // namespace egress
