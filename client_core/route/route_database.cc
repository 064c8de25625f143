#include "client_core/route/route_database.h"

#include <algorithm>

namespace egress {
namespace {

// Below this size a sweep is not worth its scan.
constexpr size_t kMinSweepSize = 64;

}  // namespace

RouteDatabase::RouteDatabase(absl::Duration expiry) : expiry_(expiry) {}

void RouteDatabase::Failed(const Route& route, absl::Time now) {
  MutexLock lock(&mu_);
  failed_[route] = now;
  if (failed_.size() >= std::max(kMinSweepSize, 2 * swept_size_)) {
    SweepExpired(now);
  }
}

void RouteDatabase::Connected(const Route& route) {
  MutexLock lock(&mu_);
  failed_.erase(route);
}

bool RouteDatabase::ShouldPostpone(const Route& route, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = failed_.find(route);
  if (it == failed_.end()) return false;
  if (now - it->second < expiry_) return true;
  failed_.erase(it);  // expired: forgotten
  return false;
}

size_t RouteDatabase::size() const {
  MutexLock lock(&mu_);
  return failed_.size();
}

void RouteDatabase::SweepExpired(absl::Time now) {
  absl::erase_if(failed_, [&](const auto& entry) {
    return now - entry.second >= expiry_;
  });
  swept_size_ = failed_.size();
}

}  // namespace egress
