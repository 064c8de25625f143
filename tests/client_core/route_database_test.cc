// RouteDatabase: failed routes are postponed until they connect again or
// their failure expires. Time is injected: no sleeps.
#include "client_core/route/route_database.h"

#include "gtest/gtest.h"

namespace egress {
namespace {

Route MakeRoute(const char* ip, uint16_t port = 80) {
  return Route{Address{"http", "example.test", port},
               asio::ip::tcp::endpoint(asio::ip::make_address(ip), port)};
}

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(RouteDatabaseTest, UnknownRouteIsNotPostponed) {
  RouteDatabase db;
  EXPECT_FALSE(db.ShouldPostpone(MakeRoute("10.0.0.1"), kT0));
  EXPECT_EQ(db.size(), 0u);
}

TEST(RouteDatabaseTest, FailedRouteIsPostponedUntilExpiry) {
  RouteDatabase db(absl::Minutes(5));
  const Route route = MakeRoute("10.0.0.1");
  db.Failed(route, kT0);
  EXPECT_TRUE(db.ShouldPostpone(route, kT0));
  EXPECT_TRUE(
      db.ShouldPostpone(route, kT0 + absl::Minutes(5) - absl::Nanoseconds(1)));
  EXPECT_FALSE(db.ShouldPostpone(route, kT0 + absl::Minutes(5)));
  // Expired means forgotten, not merely ignored.
  EXPECT_EQ(db.size(), 0u);
  EXPECT_FALSE(db.ShouldPostpone(route, kT0));
}

TEST(RouteDatabaseTest, DefaultExpiryIsFiveMinutes) {
  RouteDatabase db;
  EXPECT_EQ(db.expiry(), absl::Minutes(5));
}

TEST(RouteDatabaseTest, ConnectedForgetsTheFailure) {
  RouteDatabase db;
  const Route route = MakeRoute("10.0.0.1");
  db.Failed(route, kT0);
  db.Connected(route);
  EXPECT_FALSE(db.ShouldPostpone(route, kT0));
  EXPECT_EQ(db.size(), 0u);
}

TEST(RouteDatabaseTest, LaterFailureRenewsTheEntry) {
  RouteDatabase db(absl::Seconds(10));
  const Route route = MakeRoute("10.0.0.1");
  db.Failed(route, kT0);
  db.Failed(route, kT0 + absl::Seconds(8));
  EXPECT_TRUE(db.ShouldPostpone(route, kT0 + absl::Seconds(12)));
  EXPECT_FALSE(db.ShouldPostpone(route, kT0 + absl::Seconds(18)));
}

TEST(RouteDatabaseTest, RoutesDifferByAddressAndEndpoint) {
  RouteDatabase db;
  db.Failed(MakeRoute("10.0.0.1", 80), kT0);
  EXPECT_TRUE(db.ShouldPostpone(MakeRoute("10.0.0.1", 80), kT0));
  EXPECT_FALSE(db.ShouldPostpone(MakeRoute("10.0.0.2", 80), kT0));
  EXPECT_FALSE(db.ShouldPostpone(MakeRoute("10.0.0.1", 81), kT0));
  Route other_host = MakeRoute("10.0.0.1", 80);
  other_host.address.host = "other.test";
  EXPECT_FALSE(db.ShouldPostpone(other_host, kT0));
  Route https = MakeRoute("10.0.0.1", 80);
  https.address.scheme = "https";
  EXPECT_FALSE(db.ShouldPostpone(https, kT0));
}

TEST(RouteDatabaseTest, ExpiredEntriesAreSweptAsTheTableGrows) {
  RouteDatabase db(absl::Seconds(1));
  for (int i = 0; i < 1000; ++i) {
    db.Failed(MakeRoute("10.0.0.1", static_cast<uint16_t>(1000 + i)),
              kT0 + absl::Seconds(i));
  }
  // Each sweep drops everything older than a second, so the table stays
  // small although nobody asked about those routes again.
  EXPECT_LT(db.size(), 200u);
  EXPECT_TRUE(
      db.ShouldPostpone(MakeRoute("10.0.0.1", 1999), kT0 + absl::Seconds(999)));
}

}  // namespace
}  // namespace egress
