// RouteSelector: one route per distinct IP, families interleaved starting
// with the first answer's, postponed routes last.
#include "client_core/route/route_selector.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const Address kAddress{"https", "example.test", 443};
const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

std::vector<asio::ip::address> Ips(const std::vector<std::string>& texts) {
  std::vector<asio::ip::address> ips;
  for (const std::string& t : texts) ips.push_back(asio::ip::make_address(t));
  return ips;
}

std::vector<std::string> Endpoints(const std::vector<Route>& routes) {
  std::vector<std::string> out;
  for (const Route& r : routes) {
    EXPECT_EQ(r.address, kAddress);
    out.push_back(EndpointToString(r.endpoint));
  }
  return out;
}

Route RouteTo(const std::string& ip) {
  return Route{kAddress,
               asio::ip::tcp::endpoint(asio::ip::make_address(ip), 443)};
}

TEST(RouteSelectorTest, OneRoutePerIpAtTheAddressPort) {
  RouteSelector selector(nullptr);
  EXPECT_THAT(Endpoints(selector.Select(kAddress, Ips({"10.0.0.1"}), kT0)),
              ElementsAre("10.0.0.1:443"));
  EXPECT_THAT(selector.Select(kAddress, {}, kT0), IsEmpty());
}

TEST(RouteSelectorTest, SameFamilyKeepsResolverOrder) {
  RouteSelector selector(nullptr);
  EXPECT_THAT(Endpoints(selector.Select(
                  kAddress, Ips({"10.0.0.3", "10.0.0.1", "10.0.0.2"}), kT0)),
              ElementsAre("10.0.0.3:443", "10.0.0.1:443", "10.0.0.2:443"));
}

TEST(RouteSelectorTest, InterleavesFamiliesStartingWithTheFirstAnswer) {
  RouteSelector selector(nullptr);
  EXPECT_THAT(
      Endpoints(selector.Select(kAddress,
                                Ips({"2001:db8::1", "2001:db8::2",
                                     "2001:db8::3", "10.0.0.1", "10.0.0.2"}),
                                kT0)),
      ElementsAre("[2001:db8::1]:443", "10.0.0.1:443", "[2001:db8::2]:443",
                  "10.0.0.2:443", "[2001:db8::3]:443"));
  EXPECT_THAT(
      Endpoints(selector.Select(
          kAddress, Ips({"10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1"}),
          kT0)),
      ElementsAre("10.0.0.1:443", "[2001:db8::1]:443", "10.0.0.2:443",
                  "10.0.0.3:443"));
}

TEST(RouteSelectorTest, DropsRepeatedIps) {
  RouteSelector selector(nullptr);
  EXPECT_THAT(Endpoints(selector.Select(
                  kAddress, Ips({"10.0.0.1", "::1", "10.0.0.1", "::1"}), kT0)),
              ElementsAre("10.0.0.1:443", "[::1]:443"));
}

TEST(RouteSelectorTest, PostponedRoutesGoLastInOrder) {
  RouteDatabase db;
  db.Failed(RouteTo("2001:db8::1"), kT0);
  db.Failed(RouteTo("10.0.0.2"), kT0);
  RouteSelector selector(&db);
  EXPECT_THAT(
      Endpoints(selector.Select(kAddress,
                                Ips({"2001:db8::1", "2001:db8::2", "10.0.0.1",
                                     "10.0.0.2", "10.0.0.3"}),
                                kT0)),
      // Interleaved: v6:1 v4:1 v6:2 v4:2 v4:3; then v6:1 and v4:2
      // move to the end, keeping their order.
      ElementsAre("10.0.0.1:443", "[2001:db8::2]:443", "10.0.0.3:443",
                  "[2001:db8::1]:443", "10.0.0.2:443"));
}

TEST(RouteSelectorTest, ExpiredFailuresAreInOrderAgain) {
  RouteDatabase db(absl::Seconds(30));
  db.Failed(RouteTo("10.0.0.1"), kT0);
  RouteSelector selector(&db);
  const std::vector<asio::ip::address> ips = Ips({"10.0.0.1", "10.0.0.2"});
  EXPECT_THAT(Endpoints(selector.Select(kAddress, ips, kT0)),
              ElementsAre("10.0.0.2:443", "10.0.0.1:443"));
  EXPECT_THAT(
      Endpoints(selector.Select(kAddress, ips, kT0 + absl::Seconds(30))),
      ElementsAre("10.0.0.1:443", "10.0.0.2:443"));
}

TEST(RouteSelectorTest, AllPostponedStillAllTried) {
  RouteDatabase db;
  db.Failed(RouteTo("10.0.0.1"), kT0);
  db.Failed(RouteTo("10.0.0.2"), kT0);
  RouteSelector selector(&db);
  EXPECT_THAT(
      Endpoints(selector.Select(kAddress, Ips({"10.0.0.1", "10.0.0.2"}), kT0)),
      ElementsAre("10.0.0.1:443", "10.0.0.2:443"));
}

TEST(RouteTest, ToStringAndEquality) {
  const Route a = RouteTo("10.0.0.1");
  EXPECT_EQ(a.ToString(), "https://example.test:443 via 10.0.0.1:443");
  EXPECT_EQ(RouteTo("::1").ToString(),
            "https://example.test:443 via [::1]:443");
  EXPECT_EQ(a, RouteTo("10.0.0.1"));
  EXPECT_NE(a, RouteTo("10.0.0.2"));
}

}  // namespace
}  // namespace egress
