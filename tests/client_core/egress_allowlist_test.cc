// The host allow-list end to end through HttpClient: a host that is not
// listed is refused with kPermissionDenied before any DNS lookup or
// connection, and counted as an egress_policy connect failure; a listed host
// resolves, is judged on its address, and connects.
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/address.hpp"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/connection/connector.h"
#include "client_core/policy/egress_policy.h"
#include "client_core/route/resolver.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/scripted_origin.h"

namespace egress {
namespace {

using ::egress::testing::ScriptedOrigin;
using ::testing::HasSubstr;

// A StaticResolver (every test host -> 127.0.0.1) that counts lookups, so a
// test can prove a host was never resolved.
class CountingResolver : public Resolver {
 public:
  CountingResolver()
      : inner_(StaticHostMap{
            {"allowed.test", {asio::ip::make_address("127.0.0.1")}},
            {"api.allowed-domain.test", {asio::ip::make_address("127.0.0.1")}},
            {"denied.test", {asio::ip::make_address("127.0.0.1")}},
        }) {}

  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolve(
      const std::string& host, absl::Time deadline) override {
    lookups_.fetch_add(1, std::memory_order_relaxed);
    co_return co_await inner_.Resolve(host, deadline);
  }

  int lookups() const { return lookups_.load(std::memory_order_relaxed); }

 private:
  StaticResolver inner_;
  std::atomic<int> lookups_{0};
};

absl::StatusOr<Response> Fetch(HttpClient& client, const std::string& url) {
  Request request;
  request.method = "GET";
  request.url = *ParseUrl(url);
  request.deadline = absl::Now() + absl::Seconds(20);
  return testing::ExecuteAndWait(client, std::move(request));
}

uint64_t PolicyFailures(HttpClient& client) {
  return client.connector()
      .failures()[static_cast<size_t>(ConnectFailure::kEgressPolicy)];
}

TEST(EgressAllowListTest, UnlistedHostIsDeniedBeforeDnsAndConnect) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("hello"), false};
  });
  EgressPolicyOptions policy_options;
  policy_options.host_allowlist = {"allowed.test"};
  policy_options.domain_suffix_allowlist = {"allowed-domain.test"};
  // Tests may only reach loopback: open it, as --allow_cidr does.
  policy_options.allow_cidrs = {"127.0.0.0/8"};
  absl::StatusOr<std::unique_ptr<EgressPolicy>> policy =
      EgressPolicy::Create(policy_options);
  ASSERT_TRUE(policy.ok()) << policy.status();

  auto resolver = std::make_shared<CountingResolver>();
  HttpClientOptions options;
  options.event_loops = 1;
  options.resolver = resolver;
  options.connector.policy = std::move(*policy);
  HttpClient client(options);

  // Not listed: refused by name, never resolved, never dialled.
  for (const std::string host :
       {"denied.test", "badallowed.test", "allowed.test.evil", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    absl::StatusOr<Response> denied =
        Fetch(client, absl::StrCat("http://", host, ":", origin.port(), "/"));
    ASSERT_FALSE(denied.ok());
    EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(denied.status().message()),
                HasSubstr("denied by rule 'host_not_allowed'"));
    EXPECT_THAT(std::string(denied.status().message()), HasSubstr(host));
  }
  EXPECT_EQ(resolver->lookups(), 0);
  EXPECT_EQ(origin.connections_accepted(), 0);
  // Refused as requests, before any connect was attempted.
  EXPECT_EQ(PolicyFailures(client), 0u);
  EXPECT_EQ(client.pool().Snapshot().connect_failures, 0u);

  // Listed, exactly or by suffix (case-insensitively): resolved, judged on
  // the address (allowed by the CIDR) and fetched.
  for (const std::string host : {"allowed.test", "API.allowed-domain.test"}) {
    SCOPED_TRACE(host);
    absl::StatusOr<Response> ok =
        Fetch(client, absl::StrCat("http://", host, ":", origin.port(), "/"));
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(ok->status_code, 200);
  }
  EXPECT_EQ(resolver->lookups(), 2);
  EXPECT_GE(origin.connections_accepted(), 1);
  EXPECT_EQ(PolicyFailures(client), 0u);

  // The counter says which rule denied, and how often.
  for (const RuleCount& count :
       client.connector().options().policy->RuleCounters()) {
    if (count.rule == "deny:host_not_allowed") {
      EXPECT_EQ(count.decisions, 4u);
    }
  }
}

}  // namespace
}  // namespace egress
