// What the hostile-origin and soak tests watch in a live egressd: its file
// descriptors, its memory, and its pool, through /proc and PoolAdmin.
// Header-only test helpers.
#ifndef EGRESS_TESTS_INTEGRATION_EGRESSD_WATCH_H_
#define EGRESS_TESTS_INTEGRATION_EGRESSD_WATCH_H_

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "tests/support/egressd_process.h"

namespace egress::testing {

// Open file descriptors of `pid` (entries of /proc/PID/fd); -1 if gone.
inline int CountFds(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/fd");
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// What `pid`'s descriptors point at ("3 -> socket:[1234]"), for messages.
inline std::string DescribeFds(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/fd");
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return "(gone)";
  std::string out;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    char target[256];
    const std::string link = absl::StrCat(path, "/", entry->d_name);
    const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    absl::StrAppend(&out, entry->d_name, "->",
                    n > 0 ? std::string(target, n) : "?", " ");
  }
  closedir(dir);
  return out;
}

// Resident memory of `pid` in KiB (VmRSS in /proc/PID/status); -1 if gone.
inline int64_t VmRssKb(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:")) {
      rest = absl::StripAsciiWhitespace(rest);
      absl::ConsumeSuffix(&rest, " kB");
      int64_t kb = -1;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kb)) return kb;
    }
  }
  return -1;
}

inline bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

// Polls `condition` every 20 ms until it holds or `timeout` passes: for
// states that settle asynchronously (closed sockets, pool counters) and
// have no event to wait for.
inline bool Eventually(const std::function<bool()>& condition,
                       absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time give_up = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

inline grpc::Status EvictIdle(EgressdProcess& egressd) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::EvictIdleResponse response;
  return egressd.admin().EvictIdle(&context, v1::EvictIdleRequest(),
                                   &response);
}

// Every connection the pool holds (all pages).
inline absl::StatusOr<std::vector<v1::ConnectionStats>> Connections(
    EgressdProcess& egressd) {
  std::vector<v1::ConnectionStats> all;
  uint64_t start = 0;
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::ListConnectionsRequest request;
    request.set_start_id(start);
    v1::ListConnectionsResponse response;
    grpc::Status status =
        egressd.admin().ListConnections(&context, request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(status.error_message());
    }
    for (const v1::ConnectionStats& c : response.connections()) {
      all.push_back(c);
      start = c.id() + 1;
    }
    if (response.end() || response.connections_size() == 0) return all;
  }
}

// The pool holds nothing but idle connections, each taking new exchanges,
// and no call is in flight or waiting. Empty when so; otherwise what is not.
inline std::string PoolProblems(EgressdProcess& egressd) {
  absl::StatusOr<v1::PoolStats> stats = egressd.PoolStats();
  if (!stats.ok()) return std::string(stats.status().message());
  std::string problems;
  if (stats->in_use_count() != 0) {
    absl::StrAppend(&problems, stats->in_use_count(), " in use; ");
  }
  if (stats->requests_in_flight() != 0 || stats->pending_count() != 0 ||
      stats->connecting_count() != 0) {
    absl::StrAppend(&problems, stats->requests_in_flight(), " in flight, ",
                    stats->pending_count(), " pending, ",
                    stats->connecting_count(), " connecting; ");
  }
  absl::StatusOr<std::vector<v1::ConnectionStats>> connections =
      Connections(egressd);
  if (!connections.ok()) return std::string(connections.status().message());
  for (const v1::ConnectionStats& c : *connections) {
    if (c.allocations() != 0 || !c.no_new_exchanges_reason().empty()) {
      absl::StrAppend(&problems, "connection ", c.id(), " (", c.address(),
                      ") allocations=", c.allocations(), " no_new_exchanges=",
                      c.no_new_exchanges_reason(), "; ");
    }
  }
  return problems;
}

// Closes every idle connection and waits until the pool is empty.
inline bool EmptyThePool(EgressdProcess& egressd) {
  return Eventually([&] {
    if (!EvictIdle(egressd).ok()) return false;
    absl::StatusOr<v1::PoolStats> stats = egressd.PoolStats();
    return stats.ok() && stats->connection_count() == 0 &&
           stats->connecting_count() == 0;
  });
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_INTEGRATION_EGRESSD_WATCH_H_
