#include "client_core/call/caller_limits.h"

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace egress {
namespace {

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// A caller id shown in a message: printable ASCII, at most 64 bytes (it may
// come from request metadata).
std::string Shown(std::string_view caller) {
  std::string out;
  for (char c : caller.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f && c != '\'') ? c : '?';
  }
  if (caller.size() > 64) out += "...";
  return out;
}

}  // namespace

CallerLimiter::Shard& CallerLimiter::ShardFor(std::string_view caller) {
  return shards_[absl::Hash<absl::string_view>()(AsAbsl(caller)) % kShards];
}

absl::Status CallerLimiter::Acquire(std::string_view caller) {
  if (max_ == 0 || caller.empty()) return absl::OkStatus();
  Shard& shard = ShardFor(caller);
  {
    MutexLock lock(&shard.mu);
    uint32_t& count = shard.in_flight[AsAbsl(caller)];
    if (count < max_) {
      ++count;
      return absl::OkStatus();
    }
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return absl::ResourceExhaustedError(
      absl::StrCat("caller '", Shown(caller), "' has ", max_,
                   " calls in flight (max_in_flight_per_caller=", max_, ")"));
}

void CallerLimiter::Release(std::string_view caller) {
  if (max_ == 0 || caller.empty()) return;
  Shard& shard = ShardFor(caller);
  MutexLock lock(&shard.mu);
  auto it = shard.in_flight.find(AsAbsl(caller));
  if (it == shard.in_flight.end()) return;
  if (--it->second == 0) shard.in_flight.erase(it);
}

size_t CallerLimiter::active_callers() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    MutexLock lock(&shard.mu);
    n += shard.in_flight.size();
  }
  return n;
}

}  // namespace egress
