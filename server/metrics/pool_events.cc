#include "server/metrics/pool_events.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace egress::metrics {
namespace {

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

absl::string_view View(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

bool IsIdle(const ConnectionSnapshot& c) {
  return c.idle_since != absl::InfinitePast();
}

}  // namespace

void PoolEventLog::Observe(const PoolSnapshot& pool, const PoolLook& look,
                           absl::Time now) {
  std::vector<PoolEvent> found;
  auto add = [&](std::string kind, uint64_t id, std::string address,
                 std::string detail) {
    found.push_back(PoolEvent{now, std::move(kind), id, std::move(address),
                              std::move(detail)});
  };

  MutexLock lock(&mu_);
  const Counters before = counters_;
  Counters after;
  after.connections_opened = pool.connections_opened;
  after.closed_by_reason = pool.closed_by_reason;
  after.connect_failures = pool.connect_failures;
  after.rejected_by_limit = pool.rejected_by_limit;
  after.leaks_total = look.leaks_total;

  absl::flat_hash_map<uint64_t, Seen> now_seen;
  now_seen.reserve(look.connections.size());
  for (const ConnectionSnapshot& c : look.connections) {
    now_seen[c.id] = Seen{c.address.ToString(), IsIdle(c), c.success_count,
                          !c.no_new_exchanges_reason.empty()};
  }

  if (!looked_) {
    looked_ = true;
    add("watching", 0, "",
        absl::StrCat("first look: ",
                     Plural(pool.connection_count, "connection", "connections"),
                     " open, ",
                     Plural(pool.addresses.size(), "address", "addresses")));
  } else {
    uint64_t opened_seen = 0;
    for (const ConnectionSnapshot& c : look.connections) {
      const std::string address = c.address.ToString();
      const char* state = IsIdle(c) ? "idle" : "in use";
      auto it = seen_.find(c.id);
      if (it == seen_.end()) {
        // Ids only grow: an unseen id at or below the largest seen one was
        // open before but past a truncated list.
        if (c.id <= max_id_seen_) continue;
        ++opened_seen;
        add("opened", c.id, address,
            absl::StrCat("to ", c.remote_address, " from local port ",
                         c.local_port, ", ", state));
        continue;
      }
      const Seen& was = it->second;
      if (c.success_count > was.success_count) {
        add("served", c.id, address,
            absl::StrCat(Plural(c.success_count - was.success_count, "exchange",
                                "exchanges"),
                         ", now ", state));
      } else if (was.idle && !IsIdle(c)) {
        add("acquired", c.id, address, "idle -> in use");
      }
      if (!was.no_new_exchanges && !c.no_new_exchanges_reason.empty()) {
        add("no_new_exchanges", c.id, address,
            absl::StrCat("takes no new exchanges: ",
                         c.no_new_exchanges_reason));
      }
    }

    // Closes, by reason, since the last look.
    std::vector<std::string> reasons;
    uint64_t closed = 0;
    std::string only_reason;
    for (CloseReason reason : kAllCloseReasons) {
      const size_t i = static_cast<size_t>(reason);
      const uint64_t delta =
          after.closed_by_reason[i] - before.closed_by_reason[i];
      if (delta == 0) continue;
      closed += delta;
      only_reason = std::string(View(CloseReasonName(reason)));
      reasons.push_back(absl::StrCat(only_reason, " x", delta));
    }
    const std::string reason_text =
        reasons.size() == 1
            ? only_reason
            : absl::StrCat("one of ", absl::StrJoin(reasons, ", "));
    // With a truncated list, a connection past the listed ones is not gone.
    const uint64_t last_listed =
        look.connections.empty() ? 0 : look.connections.back().id;
    uint64_t vanished = 0;
    for (const auto& [id, was] : seen_) {
      if (now_seen.contains(id)) continue;
      if (!look.complete && id > last_listed) continue;
      ++vanished;
      add("closed", id, was.address,
          reasons.empty() ? std::string("closed") : reason_text);
    }
    if (closed > vanished) {
      add("closed", 0, "",
          absl::StrCat(Plural(closed - vanished, "connection", "connections"),
                       " closed unseen (", absl::StrJoin(reasons, ", "), ")"));
    }
    const uint64_t opened =
        after.connections_opened - before.connections_opened;
    if (opened > opened_seen) {
      add("opened", 0, "",
          absl::StrCat(
              Plural(opened - opened_seen, "connection", "connections"),
              look.complete ? " opened and closed between two looks"
                            : " opened, not listed"));
    }
    if (after.connect_failures > before.connect_failures) {
      add("connect_failed", 0, "",
          absl::StrCat(Plural(after.connect_failures - before.connect_failures,
                              "connection attempt", "connection attempts"),
                       " failed on every route"));
    }
    for (size_t i = 0; i < kPoolLimitCount; ++i) {
      const uint64_t delta =
          after.rejected_by_limit[i] - before.rejected_by_limit[i];
      if (delta == 0) continue;
      add("rejected", 0, "",
          absl::StrCat(Plural(delta, "call", "calls"), " refused by ",
                       PoolLimitName(static_cast<PoolLimit>(i))));
    }
    // The newest reports are the last ones; the ring may hold fewer.
    const uint64_t new_leaks = after.leaks_total - before.leaks_total;
    const size_t listed =
        static_cast<size_t>(std::min<uint64_t>(new_leaks, look.leaks.size()));
    for (size_t i = look.leaks.size() - listed; i < look.leaks.size(); ++i) {
      const LeakReport& leak = look.leaks[i];
      add("leak", leak.connection_id, "",
          absl::StrCat("call ", leak.call_id, " ", leak.method, " ", leak.url,
                       " held its connection ",
                       absl::FormatDuration(
                           absl::Trunc(leak.age, absl::Milliseconds(1))),
                       " without reading"));
    }
    if (new_leaks > listed) {
      add("leak", 0, "",
          absl::StrCat(Plural(new_leaks - listed, "more leak", "more leaks"),
                       " (no longer in the ring)"));
    }
  }

  if (found.size() > kMaxEventsPerLook) {
    const size_t more = found.size() - (kMaxEventsPerLook - 1);
    found.resize(kMaxEventsPerLook - 1);
    add("more", 0, "",
        absl::StrCat(Plural(more, "more change", "more changes"),
                     " in this look"));
  }
  for (PoolEvent& e : found) events_.push_back(std::move(e));
  while (events_.size() > capacity_) events_.pop_front();
  for (const auto& [id, unused] : now_seen) {
    max_id_seen_ = std::max(max_id_seen_, id);
  }
  seen_ = std::move(now_seen);
  counters_ = after;
}

std::vector<PoolEvent> PoolEventLog::Latest() const {
  MutexLock lock(&mu_);
  return std::vector<PoolEvent>(events_.rbegin(), events_.rend());
}

}  // namespace egress::metrics
