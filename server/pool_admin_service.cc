#include "server/pool_admin_service.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "server/proto_mapping.h"

namespace egress {

grpc::ServerUnaryReactor* PoolAdminService::GetPoolStats(
    grpc::CallbackServerContext* context,
    const v1::GetPoolStatsRequest* /*request*/, v1::PoolStats* response) {
  ToPoolStats(client_->pool().Snapshot(), client_->pool().options(), response);
  response->set_leaks_detected(client_->leaks().total());
  ToCallTotals(client_->totals(), response->mutable_call_totals());
  ToTlsTotals(client_->connector().tls().stats(), response->mutable_tls());
  ToConnectFailures(client_->connector().failures(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Page size when the caller asks for 0, and the largest page served.
constexpr uint32_t kDefaultPage = 100;
constexpr uint32_t kMaxPage = 1000;

}  // namespace

grpc::ServerUnaryReactor* PoolAdminService::ListConnections(
    grpc::CallbackServerContext* context,
    const v1::ListConnectionsRequest* request,
    v1::ListConnectionsResponse* response) {
  std::optional<Address> address;
  if (!request->address().empty()) {
    absl::StatusOr<Address> parsed = ParseAddress(request->address());
    if (!parsed.ok()) return Finish(context, ToGrpcStatus(parsed.status()));
    address = *parsed;
  }
  uint32_t page = request->max_results();
  if (page == 0) page = kDefaultPage;
  if (page > kMaxPage) page = kMaxPage;
  bool end = false;
  for (const ConnectionSnapshot& c : client_->pool().ListConnections(
           request->start_id(), page, address, &end)) {
    ToConnectionStats(c, response->add_connections());
  }
  response->set_end(end);
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PoolAdminService::EvictIdle(
    grpc::CallbackServerContext* context, const v1::EvictIdleRequest* request,
    v1::EvictIdleResponse* response) {
  std::optional<Address> address;
  if (!request->address().empty()) {
    absl::StatusOr<Address> parsed = ParseAddress(request->address());
    if (!parsed.ok()) return Finish(context, ToGrpcStatus(parsed.status()));
    address = *parsed;
  }
  response->set_evicted(
      static_cast<uint32_t>(client_->pool().EvictIdle(address)));
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PoolAdminService::ListLeaks(
    grpc::CallbackServerContext* context, const v1::ListLeaksRequest* /*request*/,
    v1::ListLeaksResponse* response) {
  for (const LeakReport& leak : client_->leaks().List()) {
    ToLeakReport(leak, response->add_leaks());
  }
  response->set_total(client_->leaks().total());
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PoolAdminService::Drain(
    grpc::CallbackServerContext* context, const v1::DrainRequest* /*request*/,
    v1::DrainResponse* response) {
  response->set_marked(static_cast<uint32_t>(client_->pool().Drain()));
  return Finish(context, grpc::Status::OK);
}

namespace {

// A WatchPoolEvents call refused before it started: finished at once.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::PoolEvent> {
 public:
  explicit RefusedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

v1::PoolEvent::Kind ToKind(PoolEventRecord::Kind kind) {
  switch (kind) {
    case PoolEventRecord::Kind::kOpened: return v1::PoolEvent::OPENED;
    case PoolEventRecord::Kind::kAcquired: return v1::PoolEvent::ACQUIRED;
    case PoolEventRecord::Kind::kReleased: return v1::PoolEvent::RELEASED;
    case PoolEventRecord::Kind::kIdle: return v1::PoolEvent::IDLE;
    case PoolEventRecord::Kind::kClosed: return v1::PoolEvent::CLOSED;
    case PoolEventRecord::Kind::kConnectFailed:
      return v1::PoolEvent::CONNECT_FAILED;
    case PoolEventRecord::Kind::kLeakDetected:
      return v1::PoolEvent::LEAK_DETECTED;
  }
  return v1::PoolEvent::KIND_UNSPECIFIED;
}

}  // namespace

void ToPoolEvent(const PoolEventRecord& event, uint64_t lost,
                 v1::PoolEvent* proto) {
  proto->Clear();
  const int64_t seconds = absl::ToUnixSeconds(event.time);
  proto->mutable_time()->set_seconds(seconds);
  proto->mutable_time()->set_nanos(static_cast<int32_t>(
      (event.time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
  proto->set_kind(ToKind(event.kind));
  proto->set_connection_id(event.connection_id);
  proto->set_address(event.address);
  proto->set_reason(event.reason);
  proto->set_reused(event.reused);
  proto->set_succeeded(event.succeeded);
  if (event.leak.has_value()) ToLeakReport(*event.leak, proto->mutable_leak());
  proto->set_lost(lost);
}

// One WatchPoolEvents stream: takes events from its hub subscription and
// writes them one at a time.
//
// Lifetime: owned through `self_` from Start until OnDone; the hub's wake
// callback holds it weakly, so a wake that races the end finds it gone or
// finished. Reactions and wakes may run on any thread, and gRPC may run one
// inline inside StartWrite or Finish; so those are called without `mu_`,
// and Pump lets one thread at a time take events (another one asking
// meanwhile makes it look again).
class PoolAdminService::Watch final
    : public grpc::ServerWriteReactor<v1::PoolEvent>,
      public std::enable_shared_from_this<Watch> {
 public:
  static Watch* Start(grpc::CallbackServerContext* context,
                      PoolEventsHub* hub, std::atomic<int>* watches,
                      std::string address_filter) {
    std::shared_ptr<Watch> watch(new Watch(hub, watches));
    std::weak_ptr<Watch> weak = watch;
    std::shared_ptr<PoolEventsHub::Subscription> subscription =
        hub->Subscribe(std::move(address_filter), [weak] {
          if (std::shared_ptr<Watch> alive = weak.lock()) alive->Pump();
        });
    {
      MutexLock lock(&watch->mu_);
      watch->self_ = watch;
      watch->subscription_ = std::move(subscription);
    }
    // The caller may rely on it: events from now on are streamed.
    context->AddInitialMetadata(std::string(kWatchStartedKey), "1");
    watch->StartSendInitialMetadata();
    watch->Pump();
    return watch.get();
  }

  void OnWriteDone(bool ok) override {
    std::shared_ptr<Watch> keep = shared_from_this();
    {
      MutexLock lock(&mu_);
      writing_ = false;
      // The caller is gone (or cancelled): nothing more can be written.
      if (!ok) cancelled_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    std::shared_ptr<Watch> keep = shared_from_this();
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
    }
    Pump();
  }

  void OnDone() override {
    std::shared_ptr<Watch> self;
    std::shared_ptr<PoolEventsHub::Subscription> subscription;
    {
      MutexLock lock(&mu_);
      self = std::move(self_);
      subscription = std::move(subscription_);
    }
    if (subscription != nullptr) hub_->Unsubscribe(subscription);
    watches_->fetch_sub(1, std::memory_order_acq_rel);
    // `self` may hold the last reference: this object goes with it.
  }

 private:
  Watch(PoolEventsHub* hub, std::atomic<int>* watches)
      : hub_(hub), watches_(watches) {}

  // Writes the next event, or finishes the call, unless a write is in
  // flight (its completion pumps again) or another thread is pumping.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    if (pumping_) {
      repump_ = true;
      mu_.Unlock();
      return;
    }
    pumping_ = true;
    while (true) {
      repump_ = false;
      if (finishing_ || writing_ || subscription_ == nullptr) break;
      std::optional<grpc::Status> finish;
      if (cancelled_) {
        finish = grpc::Status::CANCELLED;
      } else {
        PoolEventsHub::Delivery delivery;
        const PoolEventsHub::NextResult next =
            hub_->Next(*subscription_, &delivery);
        if (next == PoolEventsHub::NextResult::kEmpty) {
          // The hub wakes this watch when an event comes; a Pump that came
          // meanwhile asked to look once more.
          if (repump_) continue;
          break;
        }
        if (next == PoolEventsHub::NextResult::kClosed) {
          finish = grpc::Status::OK;  // egressd is shutting down
        } else {
          ToPoolEvent(*delivery.event, delivery.lost, &message_);
          writing_ = true;
        }
      }
      if (finish.has_value()) finishing_ = true;
      mu_.Unlock();
      if (finish.has_value()) {
        Finish(*finish);
      } else {
        StartWrite(&message_);
      }
      mu_.Lock();
    }
    pumping_ = false;
    mu_.Unlock();
  }

  PoolEventsHub* const hub_;
  std::atomic<int>* const watches_;

  Mutex mu_;
  std::shared_ptr<Watch> self_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<PoolEventsHub::Subscription> subscription_
      ABSL_GUARDED_BY(mu_);
  // Written only while no write is in flight; gRPC reads it during one.
  v1::PoolEvent message_;
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool repump_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerWriteReactor<v1::PoolEvent>* PoolAdminService::WatchPoolEvents(
    grpc::CallbackServerContext* context,
    const v1::WatchPoolEventsRequest* request) {
  if (events_ == nullptr) {
    return new RefusedWatch(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        "this PoolAdmin has no event source (WatchPoolEvents)"));
  }
  std::string filter;
  if (!request->address().empty()) {
    absl::StatusOr<Address> parsed = ParseAddress(request->address());
    if (!parsed.ok()) return new RefusedWatch(ToGrpcStatus(parsed.status()));
    filter = parsed->ToString();
  }
  if (watches_.fetch_add(1, std::memory_order_acq_rel) >= kMaxWatches) {
    watches_.fetch_sub(1, std::memory_order_acq_rel);
    return new RefusedWatch(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat(kMaxWatches,
                     " WatchPoolEvents streams are open already; end one "
                     "first")));
  }
  return Watch::Start(context, events_, &watches_, std::move(filter));
}

}  // namespace egress
