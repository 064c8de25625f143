// Issue 14, section 2, with concurrent callers: a live egressd in front of an
// origin that now and then sends a response nobody asked for. HTTP/1.1 pairs
// responses with requests by order alone, so a stray that lands in caller
// A's exchange can push A's real response to whoever uses the connection
// next. Sequential callers are covered by tests/client_core:stray_bytes_test;
// here 8 callers run at once, and with --partition_pool_by_caller no caller
// may ever get a response meant for another caller. Without it the test only
// reports how often that happened (the race is the origin's to win).
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "client_core/base/sync.h"
#include "gtest/gtest.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/support/egressd_process.h"
#include "tests/support/scripted_origin.h"

namespace egress::testing {
namespace {

constexpr int kCallers = 8;
// Long enough for strays sent up to 1 s after their response to land.
constexpr absl::Duration kRunFor = absl::Milliseconds(2500);
// Every kStrayEvery-th response is followed by a stray, after one of these
// delays in turn.
constexpr int kStrayEvery = 25;
constexpr int kDelaysMs[] = {0, 20, 50, 300, 1000};

std::string HeaderOf(const std::string& head, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, name) &&
        line.size() > name.size() && line[name.size()] == ':') {
      line.remove_prefix(name.size() + 1);
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

ScriptedOrigin::Reply Answer(int n, const std::string& head) {
  const std::string id = HeaderOf(head, "x-request-id");
  ScriptedOrigin::Reply reply;
  reply.bytes = absl::StrCat("HTTP/1.1 200 OK\r\nX-Echo: ", id,
                             "\r\nContent-Length: ", id.size(), "\r\n\r\n", id);
  if (n % kStrayEvery == kStrayEvery / 2) {
    // Echoes no request: a caller that gets it is spoiled, not misled.
    reply.later = absl::StrCat(
        "HTTP/1.1 200 OK\r\nX-Echo: stray\r\nContent-Length: 5\r\n\r\nstray");
    reply.later_after = absl::Milliseconds(
        kDelaysMs[(n / kStrayEvery) % (sizeof kDelaysMs / sizeof kDelaysMs[0])]);
  }
  return reply;
}

struct Outcome {
  int own = 0;
  int spoiled = 0;          // an error or the stray
  int same_caller = 0;      // an earlier response of the same caller
  int other_caller = 0;     // a response meant for another caller
  std::vector<std::string> examples;
};

// Runs kCallers callers at once, each making calls in a row for kRunFor,
// each call carrying "caller-K/N" as X-Request-Id.
Outcome RunCallers(EgressdProcess& egressd, const ScriptedOrigin& origin) {
  Mutex mu;
  Outcome outcome;
  std::vector<std::thread> threads;
  const absl::Time end = absl::Now() + kRunFor;
  for (int k = 0; k < kCallers; ++k) {
    threads.emplace_back([&, k] {
      const std::string caller = absl::StrCat("caller-", k);
      for (int i = 0; absl::Now() < end; ++i) {
        const std::string id = absl::StrCat(caller, "/", i);
        v1::FetchRequest request = Get(origin.Url("/"));
        v1::Header* h = request.add_headers();
        h->set_name("X-Request-Id");
        h->set_value(id);
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
        context.AddMetadata("x-egress-caller", caller);
        v1::FetchResponse response;
        const grpc::Status status =
            egressd.fetcher().Fetch(&context, request, &response);
        std::string echo;
        for (const v1::Header& header : response.headers()) {
          if (absl::EqualsIgnoreCase(header.name(), "X-Echo")) {
            echo = header.value();
          }
        }
        MutexLock lock(&mu);
        if (status.ok() && echo == id) {
          ++outcome.own;
        } else if (!status.ok() || echo == "stray" || echo.empty()) {
          ++outcome.spoiled;
        } else {
          if (absl::StartsWith(echo, caller + "/")) {
            ++outcome.same_caller;
          } else {
            ++outcome.other_caller;
          }
          if (outcome.examples.size() < 5) {
            outcome.examples.push_back(absl::StrCat(id, " got ", echo));
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return outcome;
}

void Report(const char* name, const Outcome& o) {
  std::cout << name << ": own=" << o.own << " spoiled=" << o.spoiled
            << " same_caller=" << o.same_caller
            << " other_caller=" << o.other_caller;
  for (const std::string& e : o.examples) std::cout << " [" << e << "]";
  std::cout << std::endl;
  ::testing::Test::RecordProperty(absl::StrCat(name, "_other_caller"),
                                  o.other_caller);
}

TEST(StrayPartitionTest, PartitionedPoolNeverHandsOneCallerAnothersResponse) {
  ScriptedOrigin origin(Answer);
  absl::StatusOr<std::unique_ptr<EgressdProcess>> egressd =
      EgressdProcess::Start({"--event_loops=2", "--completion_queues=2",
                             "--caller_metadata_key=x-egress-caller",
                             "--partition_pool_by_caller"});
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  const Outcome o = RunCallers(**egressd, origin);
  Report("partitioned", o);
  EXPECT_EQ(o.other_caller, 0) << ::testing::PrintToString(o.examples);
  EXPECT_GT(origin.later_written(), 0);
  // One address (and so at least one connection) per caller.
  absl::StatusOr<v1::PoolStats> stats = (*egressd)->PoolStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->connections_opened(), static_cast<uint64_t>(kCallers));
}

TEST(StrayPartitionTest, SharedPoolReportsHowOftenACallerGotAnothersResponse) {
  ScriptedOrigin origin(Answer);
  absl::StatusOr<std::unique_ptr<EgressdProcess>> egressd =
      EgressdProcess::Start({"--event_loops=2", "--completion_queues=2",
                             "--caller_metadata_key=x-egress-caller"});
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  const Outcome o = RunCallers(**egressd, origin);
  Report("shared", o);
  // Not a defect egressd can rule out without the partition: reported only.
  // What must hold: no lasting off-by-one (a handful at most per stray).
  const int calls = o.own + o.spoiled + o.same_caller + o.other_caller;
  EXPECT_LE(o.same_caller + o.other_caller, 2 * (calls / kStrayEvery + 1));
}

}  // namespace
}  // namespace egress::testing
