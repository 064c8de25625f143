// Tests for the SSRF egress policy: CIDR parsing (cidr.h), address
// classification (address_class.h) and the policy's evaluation order,
// messages and counters (egress_policy.h). Pure logic: no address here is
// ever dialled.
#include "client_core/policy/egress_policy.h"

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "asio/ip/address.hpp"
#include "client_core/policy/address_class.h"
#include "client_core/policy/cidr.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

asio::ip::address Ip(const char* text) {
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(text, ec);
  EXPECT_FALSE(ec) << "bad test address " << text;
  return ip;
}

std::unique_ptr<EgressPolicy> MustCreate(EgressPolicyOptions options) {
  absl::StatusOr<std::unique_ptr<EgressPolicy>> policy =
      EgressPolicy::Create(std::move(options));
  EXPECT_TRUE(policy.ok()) << policy.status();
  if (!policy.ok()) return nullptr;
  return *std::move(policy);
}

// ---------------------------------------------------------------------------
// IpRange

struct ValidCidr {
  const char* text;
  const char* canonical;
  bool is_v4;
  int prefix_length;
};

TEST(IpRangeTest, ParsesValidCidrs) {
  const ValidCidr kCases[] = {
      {"10.0.0.0/8", "10.0.0.0/8", true, 8},
      {"0.0.0.0/0", "0.0.0.0/0", true, 0},
      {"172.16.0.0/12", "172.16.0.0/12", true, 12},
      {"255.255.255.255/32", "255.255.255.255/32", true, 32},
      {"192.0.2.7", "192.0.2.7/32", true, 32},
      {"::/0", "::/0", false, 0},
      {"::1", "::1/128", false, 128},
      {"::1/128", "::1/128", false, 128},
      {"fd00::/8", "fd00::/8", false, 8},
      {"FD00::/8", "fd00::/8", false, 8},
      {"fe80::/10", "fe80::/10", false, 10},
      {"2001:db8::/32", "2001:db8::/32", false, 32},
      {"2001:0db8:0000::/48", "2001:db8::/48", false, 48},
      {"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104", false, 104},
      {"fd00:ec2::254", "fd00:ec2::254/128", false, 128},
  };
  for (const ValidCidr& c : kCases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<IpRange> range = IpRange::Parse(c.text);
    ASSERT_TRUE(range.ok()) << range.status();
    EXPECT_EQ(range->ToString(), c.canonical);
    EXPECT_EQ(range->is_v4(), c.is_v4);
    EXPECT_EQ(range->prefix_length(), c.prefix_length);
    absl::StatusOr<IpRange> again = IpRange::Parse(range->ToString());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *range);
  }
}

struct InvalidCidr {
  const char* text;
  const char* message;
};

TEST(IpRangeTest, RejectsInvalidCidrsWithPreciseMessages) {
  const InvalidCidr kCases[] = {
      {"", "CIDR is empty"},
      {"10.0.0.0/33",
       "CIDR '10.0.0.0/33': prefix length '33' is out of range 0..32 for "
       "IPv4"},
      {"::/129",
       "CIDR '::/129': prefix length '129' is out of range 0..128 for IPv6"},
      {"10.0.0.0/99999999999999999999",
       "CIDR '10.0.0.0/99999999999999999999': prefix length "
       "'99999999999999999999' is out of range 0..32 for IPv4"},
      {"10.0.0.0/", "CIDR '10.0.0.0/': the prefix length is empty"},
      {"10.0.0.0/-1",
       "CIDR '10.0.0.0/-1': prefix length '-1' is not a decimal number"},
      {"10.0.0.0/+8",
       "CIDR '10.0.0.0/+8': prefix length '+8' is not a decimal number"},
      {"10.0.0.0/8 ",
       "CIDR '10.0.0.0/8 ': prefix length '8 ' is not a decimal number"},
      {"10.0.0.0/8/8",
       "CIDR '10.0.0.0/8/8': prefix length '8/8' is not a decimal number"},
      {"10.0.0.0/08",
       "CIDR '10.0.0.0/08': prefix length '08' has a leading zero"},
      {"10.0.0.1/8",
       "CIDR '10.0.0.1/8': bits are set after the /8 prefix; the network is "
       "10.0.0.0/8"},
      {"172.17.0.0/12",
       "CIDR '172.17.0.0/12': bits are set after the /12 prefix; the network "
       "is 172.16.0.0/12"},
      {"2001:db8::1/32",
       "CIDR '2001:db8::1/32': bits are set after the /32 prefix; the "
       "network is 2001:db8::/32"},
      {"/8", "CIDR '/8': the address is empty"},
      {"300.0.0.0/8",
       "CIDR '300.0.0.0/8': '300.0.0.0' is not an IPv4 or IPv6 address"},
      {"127.1", "CIDR '127.1': not an IPv4 or IPv6 address"},
      {"0x7f.0.0.1", "CIDR '0x7f.0.0.1': not an IPv4 or IPv6 address"},
      {"010.0.0.0/8",
       "CIDR '010.0.0.0/8': '010.0.0.0' is not an IPv4 or IPv6 address"},
      {"2130706433", "CIDR '2130706433': not an IPv4 or IPv6 address"},
      {" 10.0.0.0/8",
       "CIDR ' 10.0.0.0/8': ' 10.0.0.0' is not an IPv4 or IPv6 address"},
      {"example.com", "CIDR 'example.com': not an IPv4 or IPv6 address"},
      {"1::2::3", "CIDR '1::2::3': not an IPv4 or IPv6 address"},
      {"fe80::1%eth0/64",
       "CIDR 'fe80::1%eth0/64': zone identifiers ('%...') are not supported"},
      {"[::1]/128", "CIDR '[::1]/128': write an IPv6 address without brackets"},
  };
  for (const InvalidCidr& c : kCases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<IpRange> range = IpRange::Parse(c.text);
    ASSERT_FALSE(range.ok()) << range->ToString();
    EXPECT_EQ(range.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(range.status().message(), c.message);
  }
}

TEST(IpRangeTest, RejectsEmbeddedNulAndEscapesIt) {
  absl::StatusOr<IpRange> range =
      IpRange::Parse(absl::string_view("10.0.0.0\0/8", 11));
  ASSERT_FALSE(range.ok());
  EXPECT_EQ(range.status().message(),
            "CIDR '10.0.0.0\\x00/8': the address contains a NUL byte");
}

TEST(IpRangeTest, CapsLongTextInMessages) {
  const std::string long_text(200, 'x');
  absl::StatusOr<IpRange> range = IpRange::Parse(long_text);
  ASSERT_FALSE(range.ok());
  EXPECT_THAT(range.status().message(),
              HasSubstr(absl::StrCat("'", std::string(64, 'x'), "...'")));
  EXPECT_THAT(range.status().message(), Not(HasSubstr(std::string(65, 'x'))));
  // The cap is on the escaped text: a byte that escapes to four characters
  // counts four.
  const std::string binary(200, '\x8c');
  range = IpRange::Parse(absl::StrCat(binary, "/8"));
  ASSERT_FALSE(range.ok());
  EXPECT_LT(range.status().message().size(), 200u);
}

struct Containment {
  const char* range;
  const char* ip;
  bool contained;
};

TEST(IpRangeTest, ContainsExactlyItsPrefix) {
  const Containment kCases[] = {
      {"10.0.0.0/8", "9.255.255.255", false},
      {"10.0.0.0/8", "10.0.0.0", true},
      {"10.0.0.0/8", "10.255.255.255", true},
      {"10.0.0.0/8", "11.0.0.0", false},
      {"172.16.0.0/12", "172.15.255.255", false},
      {"172.16.0.0/12", "172.16.0.0", true},
      {"172.16.0.0/12", "172.31.255.255", true},
      {"172.16.0.0/12", "172.32.0.0", false},
      {"192.0.2.7/32", "192.0.2.7", true},
      {"192.0.2.7/32", "192.0.2.6", false},
      {"192.0.2.7/32", "192.0.2.8", false},
      {"0.0.0.0/0", "255.255.255.255", true},
      {"0.0.0.0/0", "::", false},
      {"::/0", "::", true},
      {"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      {"::/0", "0.0.0.0", false},
      {"fe80::/10", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
      {"fe80::/10", "fe80::", true},
      {"fe80::/10", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      {"fe80::/10", "fec0::", false},
      {"fe80::/10", "fe80::1%1", true},  // the scope id is ignored
      {"::1/128", "::1", true},
      {"::1/128", "::2", false},
      // Families never mix: IpRange leaves embedded forms to the policy.
      {"10.0.0.0/8", "::ffff:10.0.0.1", false},
      {"::ffff:0:0/96", "10.0.0.1", false},
  };
  for (const Containment& c : kCases) {
    SCOPED_TRACE(absl::StrCat(c.range, " ", c.ip));
    absl::StatusOr<IpRange> range = IpRange::Parse(c.range);
    ASSERT_TRUE(range.ok()) << range.status();
    EXPECT_EQ(range->Contains(Ip(c.ip)), c.contained);
  }
}

TEST(IpRangeTest, FromPrefixMasksAndClamps) {
  EXPECT_EQ(IpRange::FromPrefix(Ip("10.1.2.3"), 8).ToString(), "10.0.0.0/8");
  EXPECT_EQ(IpRange::FromPrefix(Ip("10.1.2.3"), 40).ToString(), "10.1.2.3/32");
  EXPECT_EQ(IpRange::FromPrefix(Ip("10.1.2.3"), -1).ToString(), "0.0.0.0/0");
  EXPECT_EQ(IpRange::FromPrefix(Ip("2001:db8:1:2::3"), 33).ToString(),
            "2001:db8::/33");
  EXPECT_EQ(IpRange::FromPrefix(Ip("2001:db8:ffff::"), 33).ToString(),
            "2001:db8:8000::/33");
  EXPECT_EQ(IpRange::FromPrefix(Ip("::1"), 200).ToString(), "::1/128");
}

// ---------------------------------------------------------------------------
// Address classification

struct Classified {
  const char* ip;
  AddressCategory category;
};

// Each category with the addresses on both sides of each of its edges.
TEST(ClassifyAddressTest, Ipv4CategoryBoundaries) {
  using C = AddressCategory;
  const Classified kCases[] = {
      {"0.0.0.0", C::kUnspecified},
      {"0.255.255.255", C::kUnspecified},
      {"1.0.0.0", C::kPublic},
      {"8.8.8.8", C::kPublic},
      {"9.255.255.255", C::kPublic},
      {"10.0.0.0", C::kPrivate},
      {"10.255.255.255", C::kPrivate},
      {"11.0.0.0", C::kPublic},
      {"100.63.255.255", C::kPublic},
      {"100.64.0.0", C::kCgnat},
      {"100.100.100.199", C::kCgnat},
      {"100.100.100.200", C::kCloudMetadata},
      {"100.100.100.201", C::kCgnat},
      {"100.127.255.255", C::kCgnat},
      {"100.128.0.0", C::kPublic},
      {"126.255.255.255", C::kPublic},
      {"127.0.0.0", C::kLoopback},
      {"127.0.0.1", C::kLoopback},
      {"127.255.255.255", C::kLoopback},
      {"128.0.0.0", C::kPublic},
      {"169.253.255.255", C::kPublic},
      {"169.254.0.0", C::kLinkLocal},
      {"169.254.169.253", C::kLinkLocal},
      {"169.254.169.254", C::kCloudMetadata},
      {"169.254.169.255", C::kLinkLocal},
      {"169.254.170.1", C::kLinkLocal},
      {"169.254.170.2", C::kCloudMetadata},
      {"169.254.170.3", C::kLinkLocal},
      {"169.254.255.255", C::kLinkLocal},
      {"169.255.0.0", C::kPublic},
      {"172.15.255.255", C::kPublic},
      {"172.16.0.0", C::kPrivate},
      {"172.31.255.255", C::kPrivate},
      {"172.32.0.0", C::kPublic},
      {"191.255.255.255", C::kPublic},
      {"192.0.0.0", C::kReserved},
      {"192.0.0.191", C::kReserved},
      {"192.0.0.192", C::kCloudMetadata},
      {"192.0.0.193", C::kReserved},
      {"192.0.0.255", C::kReserved},
      {"192.0.1.0", C::kPublic},
      {"192.0.1.255", C::kPublic},
      {"192.0.2.0", C::kDocumentation},
      {"192.0.2.255", C::kDocumentation},
      {"192.0.3.0", C::kPublic},
      {"192.88.98.255", C::kPublic},
      {"192.88.99.0", C::kReserved},
      {"192.88.99.255", C::kReserved},
      {"192.88.100.0", C::kPublic},
      {"192.167.255.255", C::kPublic},
      {"192.168.0.0", C::kPrivate},
      {"192.168.255.255", C::kPrivate},
      {"192.169.0.0", C::kPublic},
      {"198.17.255.255", C::kPublic},
      {"198.18.0.0", C::kBenchmarking},
      {"198.19.255.255", C::kBenchmarking},
      {"198.20.0.0", C::kPublic},
      {"198.51.99.255", C::kPublic},
      {"198.51.100.0", C::kDocumentation},
      {"198.51.100.255", C::kDocumentation},
      {"198.51.101.0", C::kPublic},
      {"203.0.112.255", C::kPublic},
      {"203.0.113.0", C::kDocumentation},
      {"203.0.113.255", C::kDocumentation},
      {"203.0.114.0", C::kPublic},
      {"223.255.255.255", C::kPublic},
      {"224.0.0.0", C::kMulticast},
      {"239.255.255.255", C::kMulticast},
      {"240.0.0.0", C::kReserved},
      {"255.255.255.254", C::kReserved},
      {"255.255.255.255", C::kBroadcast},
  };
  for (const Classified& c : kCases) {
    SCOPED_TRACE(c.ip);
    const AddressClass got = ClassifyAddress(Ip(c.ip));
    EXPECT_EQ(AddressCategoryName(got.category),
              AddressCategoryName(c.category));
    EXPECT_EQ(got.embedding, Ipv4Embedding::kNone);
    EXPECT_EQ(ClassifyIpv4(Ip(c.ip).to_v4()), c.category);
  }
}

TEST(ClassifyAddressTest, Ipv6CategoryBoundaries) {
  using C = AddressCategory;
  const Classified kCases[] = {
      {"::", C::kUnspecified},
      {"::1", C::kLoopback},
      // Global unicast is 2000::/3; the rest is reserved.
      {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kReserved},
      {"2000::", C::kPublic},
      {"2606:4700:4700::1111", C::kPublic},
      {"2a00:1450:4001:80b::200e", C::kPublic},
      {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kPublic},
      {"4000::", C::kReserved},
      {"0:0:0:0:0:fffe:ffff:ffff", C::kReserved},
      {"0:0:0:0:1:ffff:7f00:1", C::kReserved},
      {"::1:0:0", C::kReserved},
      {"100::", C::kReserved},
      {"100::ffff:ffff:ffff:ffff", C::kReserved},
      // Unique local fc00::/7 and the old site-local fec0::/10.
      {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kReserved},
      {"fc00::", C::kPrivate},
      {"fd12:3456:789a::1", C::kPrivate},
      {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kPrivate},
      {"fe00::", C::kReserved},
      {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kReserved},
      {"fe80::", C::kLinkLocal},
      {"fe80::1%1", C::kLinkLocal},
      {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kLinkLocal},
      {"fec0::", C::kPrivate},
      {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kPrivate},
      {"ff00::", C::kMulticast},
      {"ff02::1", C::kMulticast},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kMulticast},
      // AWS IMDS over IPv6, inside the ULA block.
      {"fd00:ec2::253", C::kPrivate},
      {"fd00:ec2::254", C::kCloudMetadata},
      {"fd00:ec2::255", C::kPrivate},
      // Documentation.
      {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", C::kPublic},
      {"2001:db8::", C::kDocumentation},
      {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", C::kDocumentation},
      {"2001:db9::", C::kPublic},
      {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", C::kPublic},
      {"3fff::", C::kDocumentation},
      {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", C::kDocumentation},
      {"3fff:1000::", C::kPublic},
      // Benchmarking.
      {"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", C::kPublic},
      {"2001:2::", C::kBenchmarking},
      {"2001:2:0:ffff:ffff:ffff:ffff:ffff", C::kBenchmarking},
      {"2001:2:1::", C::kPublic},
  };
  for (const Classified& c : kCases) {
    SCOPED_TRACE(c.ip);
    const AddressClass got = ClassifyAddress(Ip(c.ip));
    EXPECT_EQ(AddressCategoryName(got.category),
              AddressCategoryName(c.category));
    EXPECT_EQ(got.embedding, Ipv4Embedding::kNone);
  }
}

struct EmbeddedCase {
  const char* ip;
  AddressCategory category;
  Ipv4Embedding embedding;
  const char* embedded;  // the IPv4 address that decided
};

TEST(ClassifyAddressTest, JudgesEmbeddedIpv4ByTheEmbeddedAddress) {
  using C = AddressCategory;
  using E = Ipv4Embedding;
  const EmbeddedCase kCases[] = {
      // IPv4-mapped ::ffff:0:0/96.
      {"::ffff:0.0.0.0", C::kUnspecified, E::kMapped, "0.0.0.0"},
      {"::ffff:127.0.0.1", C::kLoopback, E::kMapped, "127.0.0.1"},
      {"::ffff:169.254.169.254", C::kCloudMetadata, E::kMapped,
       "169.254.169.254"},
      {"::ffff:169.254.1.1", C::kLinkLocal, E::kMapped, "169.254.1.1"},
      {"::ffff:10.0.0.1", C::kPrivate, E::kMapped, "10.0.0.1"},
      {"::ffff:100.64.0.1", C::kCgnat, E::kMapped, "100.64.0.1"},
      {"::ffff:224.0.0.1", C::kMulticast, E::kMapped, "224.0.0.1"},
      {"::ffff:255.255.255.255", C::kBroadcast, E::kMapped, "255.255.255.255"},
      {"::ffff:8.8.8.8", C::kPublic, E::kMapped, "8.8.8.8"},
      // IPv4-compatible ::/96 (:: and ::1 excepted, see above).
      {"::2", C::kUnspecified, E::kCompatible, "0.0.0.2"},
      {"::127.0.0.1", C::kLoopback, E::kCompatible, "127.0.0.1"},
      {"::10.0.0.1", C::kPrivate, E::kCompatible, "10.0.0.1"},
      {"::169.254.169.254", C::kCloudMetadata, E::kCompatible,
       "169.254.169.254"},
      {"::255.255.255.255", C::kBroadcast, E::kCompatible, "255.255.255.255"},
      {"::8.8.8.8", C::kPublic, E::kCompatible, "8.8.8.8"},
      // Well-known NAT64 prefix 64:ff9b::/96.
      {"64:ff9b::7f00:1", C::kLoopback, E::kNat64, "127.0.0.1"},
      {"64:ff9b::a9fe:a9fe", C::kCloudMetadata, E::kNat64, "169.254.169.254"},
      {"64:ff9b::c0a8:1", C::kPrivate, E::kNat64, "192.168.0.1"},
      {"64:ff9b::6440:1", C::kCgnat, E::kNat64, "100.64.0.1"},
      {"64:ff9b::808:808", C::kPublic, E::kNat64, "8.8.8.8"},
      // Local-use NAT64 prefix 64:ff9b:1::/48, in each RFC 6052 layout.
      {"64:ff9b:1::7f00:1", C::kLoopback, E::kNat64LocalUse,
       "127.0.0.1"},  // /96
      {"64:ff9b:1::a00:1", C::kPrivate, E::kNat64LocalUse, "10.0.0.1"},
      {"64:ff9b:1::808:808", C::kPublic, E::kNat64LocalUse, "8.8.8.8"},
      {"64:ff9b:1:7f00:0:100::", C::kLoopback, E::kNat64LocalUse,
       "127.0.0.1"},  // /48
      {"64:ff9b:1:808:8:800::", C::kPublic, E::kNat64LocalUse,
       "8.8.8.8"},  // /48, every fitting layout public
      {"64:ff9b:1:aa0a:0:1::", C::kPrivate, E::kNat64LocalUse,
       "10.0.0.1"},  // /56
      {"64:ff9b:1:0:7f:0:100:0", C::kLoopback, E::kNat64LocalUse,
       "127.0.0.1"},  // /64 (read as /96 it would be public 1.0.0.0)
      {"64:ff9b:1::", C::kUnspecified, E::kNat64LocalUse, "0.0.0.0"},
      // 6to4 2002::/16.
      {"2002:7f00:1::", C::kLoopback, E::k6to4, "127.0.0.1"},
      {"2002:a9fe:a9fe::1", C::kCloudMetadata, E::k6to4, "169.254.169.254"},
      {"2002:a00:1::", C::kPrivate, E::k6to4, "10.0.0.1"},
      {"2002:ac10:1:ffff::1", C::kPrivate, E::k6to4, "172.16.0.1"},
      {"2002::", C::kUnspecified, E::k6to4, "0.0.0.0"},
      {"2002:808:808::1", C::kPublic, E::k6to4, "8.8.8.8"},
      // Teredo 2001::/32: the client address is the inverted last 32 bits.
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", C::kDocumentation, E::kTeredo,
       "192.0.2.45"},  // RFC 4380's example
      {"2001:0:4136:e378:8000:63bf:80ff:fffe", C::kLoopback, E::kTeredo,
       "127.0.0.1"},
      {"2001::f5ff:fffe", C::kPrivate, E::kTeredo, "10.0.0.1"},
      {"2001::5601:5601", C::kCloudMetadata, E::kTeredo, "169.254.169.254"},
      {"2001::ffff:ffff", C::kUnspecified, E::kTeredo, "0.0.0.0"},
      {"2001::", C::kBroadcast, E::kTeredo, "255.255.255.255"},
      {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", C::kPublic, E::kTeredo,
       "8.8.8.8"},
  };
  for (const EmbeddedCase& c : kCases) {
    SCOPED_TRACE(c.ip);
    const AddressClass got = ClassifyAddress(Ip(c.ip));
    EXPECT_EQ(AddressCategoryName(got.category),
              AddressCategoryName(c.category));
    EXPECT_EQ(Ipv4EmbeddingName(got.embedding), Ipv4EmbeddingName(c.embedding));
    EXPECT_EQ(got.embedded.to_string(), c.embedded);
  }
}

TEST(ClassifyAddressTest, NeighboursOfTheEmbeddingPrefixesEmbedNothing) {
  const char* kCases[] = {
      "64:ff9b::1:7f00:1",  // inside 64:ff9b::/32 but not the /96
      "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff",
      "64:ff9b:2::7f00:1",  // next to the local-use /48
      "2001:1::7f00:1",     // next to Teredo's /32
      "2003:7f00:1::",      // next to 6to4's /16
      "2001:ffff:7f00:1::",
  };
  for (const char* ip : kCases) {
    SCOPED_TRACE(ip);
    EXPECT_TRUE(EmbeddedIpv4Addresses(Ip(ip).to_v6()).empty());
    EXPECT_EQ(ClassifyAddress(Ip(ip)).embedding, Ipv4Embedding::kNone);
  }
}

TEST(ClassifyAddressTest, LocalUseNat64ListsEveryFittingLayout) {
  std::vector<std::string> got;
  for (const EmbeddedIpv4& e :
       EmbeddedIpv4Addresses(Ip("64:ff9b:1:808:8:800::").to_v6())) {
    EXPECT_EQ(e.embedding, Ipv4Embedding::kNat64LocalUse);
    got.push_back(e.address.to_string());
  }
  // /48, /56, /64; the /96 reading 0.0.0.0 is the others' zero suffix.
  EXPECT_THAT(got, ElementsAre("8.8.8.8", "8.8.8.0", "8.8.0.0"));

  got.clear();
  for (const EmbeddedIpv4& e :
       EmbeddedIpv4Addresses(Ip("64:ff9b:1::808:808").to_v6())) {
    got.push_back(e.address.to_string());
  }
  EXPECT_THAT(got, ElementsAre("8.8.8.8"));  // only /96 fits
}

TEST(ClassifyAddressTest, CategoryNamesAreStable) {
  std::vector<std::string> names;
  for (AddressCategory c : kDeniedCategories) {
    names.push_back(std::string(AddressCategoryName(c)));
  }
  EXPECT_THAT(names, ElementsAre("loopback", "unspecified", "link_local",
                                 "cloud_metadata", "private", "cgnat",
                                 "multicast", "broadcast", "documentation",
                                 "benchmarking", "reserved"));
  EXPECT_EQ(AddressCategoryName(AddressCategory::kPublic), "public");
}

// ---------------------------------------------------------------------------
// EgressPolicy: defaults

struct DefaultDenial {
  const char* ip;
  const char* rule;
};

TEST(EgressPolicyTest, DefaultDeniesEveryCategoryByName) {
  std::unique_ptr<EgressPolicy> policy = MustCreate({});
  ASSERT_NE(policy, nullptr);
  const DefaultDenial kCases[] = {
      {"127.0.0.1", "deny:loopback"},
      {"::1", "deny:loopback"},
      {"0.0.0.0", "deny:unspecified"},
      {"::", "deny:unspecified"},
      {"169.254.1.1", "deny:link_local"},
      {"fe80::1", "deny:link_local"},
      {"169.254.169.254", "deny:cloud_metadata"},
      {"fd00:ec2::254", "deny:cloud_metadata"},
      {"10.0.0.1", "deny:private"},
      {"172.16.0.1", "deny:private"},
      {"192.168.1.1", "deny:private"},
      {"fd12::1", "deny:private"},
      {"100.64.0.1", "deny:cgnat"},
      {"224.0.0.1", "deny:multicast"},
      {"ff02::1", "deny:multicast"},
      {"255.255.255.255", "deny:broadcast"},
      {"240.0.0.1", "deny:reserved"},
      {"192.0.2.1", "deny:documentation"},
      {"2001:db8::1", "deny:documentation"},
      {"198.18.0.1", "deny:benchmarking"},
      {"::ffff:127.0.0.1", "deny:loopback"},
      {"::127.0.0.1", "deny:loopback"},
      {"64:ff9b::a00:1", "deny:private"},
      {"64:ff9b:1::a00:1", "deny:private"},
      {"2002:a9fe:a9fe::", "deny:cloud_metadata"},
      {"2001::f5ff:fffe", "deny:private"},
  };
  for (const DefaultDenial& c : kCases) {
    SCOPED_TRACE(c.ip);
    const PolicyDecision d = policy->Check("h.example", Ip(c.ip), 443);
    EXPECT_FALSE(d.allowed);
    EXPECT_FALSE(d.report_only_would_deny);
    EXPECT_EQ(d.rule, c.rule);
    const absl::Status status = d.ToStatus("h.example");
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    // The resolved address describes the operator's network: never echoed.
    EXPECT_THAT(status.message(), Not(HasSubstr(Ip(c.ip).to_string())));
  }
}

TEST(EgressPolicyTest, DefaultAllowsPublicAddressesOnAnyPort) {
  std::unique_ptr<EgressPolicy> policy = MustCreate({});
  ASSERT_NE(policy, nullptr);
  const char* kPublic[] = {
      "8.8.8.8",        "1.1.1.1",        "2606:4700:4700::1111",
      "::ffff:8.8.8.8", "2002:808:808::", "64:ff9b::808:808"};
  for (const char* ip : kPublic) {
    for (uint16_t port : {uint16_t{1}, uint16_t{80}, uint16_t{65535}}) {
      SCOPED_TRACE(absl::StrCat(ip, " port ", port));
      const PolicyDecision d = policy->Check("example.com", Ip(ip), port);
      EXPECT_TRUE(d.allowed);
      EXPECT_FALSE(d.report_only_would_deny);
      EXPECT_EQ(d.rule, "allow:public");
      EXPECT_EQ(d.reason, "");
      EXPECT_TRUE(d.ToStatus("example.com").ok());
    }
  }
}

struct Message {
  const char* host;
  const char* ip;
  const char* message;
};

TEST(EgressPolicyTest, DenialMessagesNameTheRuleAndNoAddress) {
  std::unique_ptr<EgressPolicy> policy = MustCreate({});
  ASSERT_NE(policy, nullptr);
  const Message kCases[] = {
      {"db.internal", "10.1.2.3",
       "egress to 'db.internal' denied by rule 'private' (resolved address "
       "is in a private range)"},
      {"metadata.internal", "169.254.169.254",
       "egress to 'metadata.internal' denied by rule 'cloud_metadata' "
       "(resolved address is a cloud metadata endpoint)"},
      {"localhost", "127.0.0.1",
       "egress to 'localhost' denied by rule 'loopback' (resolved address is "
       "a loopback address)"},
      {"x", "100.64.1.1",
       "egress to 'x' denied by rule 'cgnat' (resolved address is in the "
       "carrier-grade NAT range)"},
      {"x", "0.0.0.0",
       "egress to 'x' denied by rule 'unspecified' (resolved address is an "
       "unspecified address)"},
      {"x", "fe80::1",
       "egress to 'x' denied by rule 'link_local' (resolved address is "
       "link-local)"},
      {"x", "ff02::1",
       "egress to 'x' denied by rule 'multicast' (resolved address is a "
       "multicast address)"},
      {"x", "255.255.255.255",
       "egress to 'x' denied by rule 'broadcast' (resolved address is the "
       "broadcast address)"},
      {"x", "203.0.113.1",
       "egress to 'x' denied by rule 'documentation' (resolved address is in "
       "a documentation range)"},
      {"x", "198.18.0.1",
       "egress to 'x' denied by rule 'benchmarking' (resolved address is in "
       "the benchmarking range)"},
      {"x", "240.0.0.1",
       "egress to 'x' denied by rule 'reserved' (resolved address is in a "
       "reserved range)"},
      {"rebind.example", "::ffff:127.0.0.1",
       "egress to 'rebind.example' denied by rule 'loopback' (resolved "
       "address is an IPv4-mapped IPv6 address whose embedded IPv4 address "
       "is a loopback address)"},
      {"x", "::10.0.0.1",
       "egress to 'x' denied by rule 'private' (resolved address is an "
       "IPv4-compatible IPv6 address whose embedded IPv4 address is in a "
       "private range)"},
      {"x", "64:ff9b::a9fe:a9fe",
       "egress to 'x' denied by rule 'cloud_metadata' (resolved address is a "
       "NAT64 IPv6 address whose embedded IPv4 address is a cloud metadata "
       "endpoint)"},
      {"x", "64:ff9b:1::a00:1",
       "egress to 'x' denied by rule 'private' (resolved address is a "
       "local-use NAT64 IPv6 address whose embedded IPv4 address is in a "
       "private range)"},
      {"x", "2002:a00:1::",
       "egress to 'x' denied by rule 'private' (resolved address is a 6to4 "
       "IPv6 address whose embedded IPv4 address is in a private range)"},
      {"x", "2001::f5ff:fffe",
       "egress to 'x' denied by rule 'private' (resolved address is a Teredo "
       "IPv6 address whose embedded IPv4 address is in a private range)"},
  };
  for (const Message& c : kCases) {
    SCOPED_TRACE(c.ip);
    const absl::Status status = policy->CheckStatus(c.host, Ip(c.ip), 80);
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(EgressPolicyTest, DenialMessageEscapesAndCapsTheHost) {
  std::unique_ptr<EgressPolicy> policy = MustCreate({});
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->CheckStatus("evil\n'host", Ip("10.0.0.1"), 80).message(),
            "egress to 'evil\\n\\'host' denied by rule 'private' (resolved "
            "address is in a private range)");
  const std::string long_host(300, 'a');
  const std::string message(
      policy->CheckStatus(long_host, Ip("10.0.0.1"), 80).message());
  EXPECT_THAT(message, HasSubstr(absl::StrCat("'", std::string(253, 'a'),
                                              "...' denied")));
  EXPECT_THAT(message, Not(HasSubstr(std::string(254, 'a'))));
}

TEST(EgressPolicyTest, RuleNameIsTheWordAfterTheVerdict) {
  PolicyDecision d;
  d.rule = "deny:cidr_denylist 10.1.0.0/16";
  EXPECT_EQ(d.rule_name(), "cidr_denylist");
  d.rule = "allow:cidr 127.0.0.0/8";
  EXPECT_EQ(d.rule_name(), "cidr");
  d.rule = "deny:private";
  EXPECT_EQ(d.rule_name(), "private");
}

// ---------------------------------------------------------------------------
// EgressPolicy: allow and deny lists

struct Verdict {
  const char* host;
  const char* ip;
  uint16_t port;
  bool allowed;
  const char* rule;
};

void ExpectVerdicts(const EgressPolicy& policy,
                    const std::vector<Verdict>& cases) {
  for (const Verdict& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.host, " ", c.ip, " port ", c.port));
    const PolicyDecision d = policy.Check(c.host, Ip(c.ip), c.port);
    EXPECT_EQ(d.allowed, c.allowed);
    EXPECT_EQ(d.rule, c.rule);
    EXPECT_FALSE(d.report_only_would_deny);
    EXPECT_EQ(d.ToStatus(c.host).ok(), c.allowed);
  }
}

TEST(EgressPolicyTest, AllowCidrOpensTheRangeAndItsMappedTwinOnly) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"127.0.0.0/8"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"localhost", "127.0.0.1", 8080, true, "allow:cidr 127.0.0.0/8"},
          {"localhost", "127.255.255.255", 80, true, "allow:cidr 127.0.0.0/8"},
          {"localhost", "::ffff:127.0.0.1", 80, true, "allow:cidr 127.0.0.0/8"},
          // IPv6 loopback is not in an IPv4 range.
          {"localhost", "::1", 80, false, "deny:loopback"},
          // Tunnel and translator forms are other destinations.
          {"x", "2002:7f00:1::", 80, false, "deny:loopback"},
          {"x", "64:ff9b::7f00:1", 80, false, "deny:loopback"},
          {"x", "::127.0.0.1", 80, false, "deny:loopback"},
          {"x", "2001::80ff:fffe", 80, false, "deny:loopback"},
          {"x", "128.0.0.0", 80, true, "allow:public"},
          {"x", "10.0.0.1", 80, false, "deny:private"},
      });
}

TEST(EgressPolicyTest, Ipv6AllowCidrCoversTheIpv4Twin) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"::ffff:10.0.0.0/104", "::1"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"x", "10.2.3.4", 80, true, "allow:cidr ::ffff:10.0.0.0/104"},
          {"x", "::ffff:10.2.3.4", 80, true, "allow:cidr ::ffff:10.0.0.0/104"},
          {"x", "11.0.0.0", 80, true, "allow:public"},
          {"x", "::1", 80, true, "allow:cidr ::1/128"},
          {"x", "127.0.0.1", 80, false, "deny:loopback"},
      });
}

TEST(EgressPolicyTest, FirstMatchingAllowCidrNamesTheRule) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"10.0.0.0/8", "10.1.0.0/16"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(*policy,
                 {{"x", "10.1.2.3", 80, true, "allow:cidr 10.0.0.0/8"}});
}

TEST(EgressPolicyTest, DenyCidrBeatsAllowCidr) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"10.0.0.0/8"};
  options.deny_cidrs = {"10.0.0.0/24"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"x", "10.0.0.255", 80, false, "deny:cidr_denylist 10.0.0.0/24"},
          {"x", "10.0.1.0", 80, true, "allow:cidr 10.0.0.0/8"},
          {"x", "9.255.255.255", 80, true, "allow:public"},
      });
  EXPECT_EQ(
      policy->CheckStatus("internal.example", Ip("10.0.0.5"), 80).message(),
      "egress to 'internal.example' denied by rule 'cidr_denylist' "
      "(resolved address is in a denied range)");
}

TEST(EgressPolicyTest, DenyCidrCatchesEveryFormOfAnAddress) {
  EgressPolicyOptions options;
  options.deny_cidrs = {"8.8.8.0/24"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  const char* kForms[] = {
      "8.8.8.8",          "::ffff:8.8.8.8",     "::8.8.8.8",
      "64:ff9b::808:808", "64:ff9b:1::808:808", "64:ff9b:1:808:8:800::",
      "2002:808:808::1",  "2001::f7f7:f7f7",
  };
  for (const char* ip : kForms) {
    SCOPED_TRACE(ip);
    const PolicyDecision d = policy->Check("dns.example", Ip(ip), 53);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.rule, "deny:cidr_denylist 8.8.8.0/24");
  }
  EXPECT_TRUE(policy->Check("x", Ip("8.8.9.8"), 53).allowed);
}

TEST(EgressPolicyTest, Ipv6DenyCidrCoversTheIpv4Twin) {
  EgressPolicyOptions options;
  options.deny_cidrs = {"::ffff:0:0/96", "2002::/16"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"x", "8.8.8.8", 80, false, "deny:cidr_denylist ::ffff:0.0.0.0/96"},
          {"x", "2002:808:808::", 80, false, "deny:cidr_denylist 2002::/16"},
          {"x", "2606:4700::1", 80, true, "allow:public"},
      });
}

TEST(EgressPolicyTest, ExemptHostsMatchExactlyAndCaseInsensitively) {
  EgressPolicyOptions options;
  options.exempt_hosts = {"Internal.Example.com."};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"internal.example.com", "10.0.0.1", 80, true,
           "allow:exempt_host internal.example.com"},
          {"INTERNAL.example.COM.", "10.0.0.1", 80, true,
           "allow:exempt_host internal.example.com"},
          {"internal.example.com", "fd00::1", 80, true,
           "allow:exempt_host internal.example.com"},
          {"internal.example.com", "127.0.0.1", 80, true,
           "allow:exempt_host internal.example.com"},
          {"internal.example.com", "169.254.1.1", 80, true,
           "allow:exempt_host internal.example.com"},
          {"internal.example.com", "8.8.8.8", 80, true,
           "allow:exempt_host internal.example.com"},
          {"x.internal.example.com", "10.0.0.1", 80, false, "deny:private"},
          {"internal.example.com.evil", "10.0.0.1", 80, false, "deny:private"},
          {"other.example.com", "10.0.0.1", 80, false, "deny:private"},
      });
}

TEST(EgressPolicyTest, DomainSuffixMatchesProperSubdomainsNotTheApex) {
  EgressPolicyOptions options;
  options.exempt_domain_suffixes = {".svc.cluster.local", ".example.com",
                                    ".a.example.com"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"api.svc.cluster.local", "10.96.0.1", 80, true,
           "allow:exempt_domain_suffix .svc.cluster.local"},
          {"b.api.svc.cluster.local", "10.96.0.1", 80, true,
           "allow:exempt_domain_suffix .svc.cluster.local"},
          {"API.SVC.Cluster.Local.", "10.96.0.1", 80, true,
           "allow:exempt_domain_suffix .svc.cluster.local"},
          // The apex is not a subdomain of itself.
          {"svc.cluster.local", "10.96.0.1", 80, false, "deny:private"},
          {"evilsvc.cluster.local", "10.96.0.1", 80, false, "deny:private"},
          {"api.svc.cluster.local.evil.com", "10.96.0.1", 80, false,
           "deny:private"},
          {".svc.cluster.local", "10.96.0.1", 80, false, "deny:private"},
          // The longest matching suffix names the rule.
          {"x.a.example.com", "10.0.0.1", 80, true,
           "allow:exempt_domain_suffix .a.example.com"},
          {"a.example.com", "10.0.0.1", 80, true,
           "allow:exempt_domain_suffix .example.com"},
      });
}

TEST(EgressPolicyTest, HostDenyListsBeatHostExemptions) {
  EgressPolicyOptions options;
  options.exempt_domain_suffixes = {".example.com"};
  options.exempt_hosts = {"x.corp.example.com"};
  options.deny_hosts = {"secret.example.com"};
  options.deny_domain_suffixes = {".corp.example.com"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(*policy,
                 {
                     {"secret.example.com", "10.0.0.1", 80, false,
                      "deny:host_denylist secret.example.com"},
                     // A host deny list holds for public addresses too.
                     {"Secret.Example.com.", "8.8.8.8", 80, false,
                      "deny:host_denylist secret.example.com"},
                     {"x.corp.example.com", "10.0.0.1", 80, false,
                      "deny:domain_denylist .corp.example.com"},
                     {"corp.example.com", "10.0.0.1", 80, true,
                      "allow:exempt_domain_suffix .example.com"},
                     {"www.example.com", "10.0.0.1", 80, true,
                      "allow:exempt_domain_suffix .example.com"},
                 });
  EXPECT_EQ(
      policy->CheckStatus("secret.example.com", Ip("8.8.8.8"), 80).message(),
      "egress to 'secret.example.com' denied by rule 'host_denylist' "
      "(host is on the deny list)");
  EXPECT_EQ(
      policy->CheckStatus("a.corp.example.com", Ip("8.8.8.8"), 80).message(),
      "egress to 'a.corp.example.com' denied by rule 'domain_denylist' "
      "(host is in a denied domain)");
}

TEST(EgressPolicyTest, DenyCidrBeatsHostExemption) {
  EgressPolicyOptions options;
  options.exempt_hosts = {"partner.example"};
  options.deny_cidrs = {"10.9.0.0/16"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(*policy, {
                              {"partner.example", "10.9.1.1", 80, false,
                               "deny:cidr_denylist 10.9.0.0/16"},
                              {"partner.example", "10.8.1.1", 80, true,
                               "allow:exempt_host partner.example"},
                          });
}

TEST(EgressPolicyTest, HostExemptionNeverOpensCloudMetadataOrUnspecified) {
  EgressPolicyOptions options;
  options.exempt_hosts = {"metadata.google.internal"};
  options.exempt_domain_suffixes = {".internal"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"metadata.google.internal", "169.254.169.254", 80, false,
           "deny:cloud_metadata"},
          {"metadata.google.internal", "::ffff:169.254.169.254", 80, false,
           "deny:cloud_metadata"},
          {"metadata.google.internal", "fd00:ec2::254", 80, false,
           "deny:cloud_metadata"},
          {"x.internal", "100.100.100.200", 80, false, "deny:cloud_metadata"},
          {"x.internal", "0.0.0.0", 80, false, "deny:unspecified"},
          {"x.internal", "::", 80, false, "deny:unspecified"},
          // Other categories are the operator's call.
          {"metadata.google.internal", "169.254.169.253", 80, true,
           "allow:exempt_host metadata.google.internal"},
          {"x.internal", "10.0.0.1", 80, true,
           "allow:exempt_domain_suffix .internal"},
      });
}

TEST(EgressPolicyTest, AllowCidrOpensCloudMetadata) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"169.254.169.254/32"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(*policy, {
                              {"metadata", "169.254.169.254", 80, true,
                               "allow:cidr 169.254.169.254/32"},
                              {"metadata", "169.254.170.2", 80, false,
                               "deny:cloud_metadata"},
                          });
}

// ---------------------------------------------------------------------------
// EgressPolicy: egressd's own addresses

TEST(EgressPolicyTest, SelfAddressesAreDeniedInEveryForm) {
  EgressPolicyOptions options;
  options.self_addresses = {Ip("8.8.4.4"), Ip("2606:4700::1"),
                            Ip("::ffff:9.9.9.9")};
  options.exempt_hosts = {"me.example"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy, {
                   {"x", "8.8.4.4", 9000, false, "deny:self_address"},
                   {"x", "::ffff:8.8.4.4", 9000, false, "deny:self_address"},
                   {"x", "2002:808:404::", 9000, false, "deny:self_address"},
                   {"x", "64:ff9b::808:404", 9000, false, "deny:self_address"},
                   {"x", "2606:4700::1", 443, false, "deny:self_address"},
                   {"x", "9.9.9.9", 443, false, "deny:self_address"},
                   // A host exemption does not open egressd itself.
                   {"me.example", "8.8.4.4", 80, false, "deny:self_address"},
                   {"x", "8.8.4.5", 80, true, "allow:public"},
                   {"x", "2606:4700::2", 80, true, "allow:public"},
               });
  EXPECT_EQ(policy->CheckStatus("x", Ip("8.8.4.4"), 80).message(),
            "egress to 'x' denied by rule 'self_address' (resolved address is "
            "an address of egressd's own host)");
}

TEST(EgressPolicyTest, AllowCidrOpensSelfAddresses) {
  EgressPolicyOptions options;
  options.self_addresses = {Ip("127.0.0.1")};
  options.allow_cidrs = {"127.0.0.0/8"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(*policy, {{"localhost", "127.0.0.1", 50051, true,
                            "allow:cidr 127.0.0.0/8"}});
}

// Issue 14: "one of egressd's own addresses" for any loopback port misled
// operators. A port that is not one of egressd's listeners, on an address in
// a denied category, is named by the category; egressd's own listener is
// named as such.
TEST(EgressPolicyTest, SelfAddressInADeniedCategoryIsNamedByItsCategory) {
  EgressPolicyOptions options;
  options.self_addresses = {Ip("10.0.0.7"), Ip("127.0.0.1")};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  policy->SetOwnListeners({{Ip("10.0.0.7"), 7070, "Fetch"},
                           {Ip("127.0.0.1"), 9902, "metrics"}});
  ExpectVerdicts(*policy, {
                              {"x", "10.0.0.7", 80, false, "deny:private"},
                              {"x", "10.0.0.7", 7070, false, "deny:self_address"},
                              {"x", "10.0.0.8", 7070, false, "deny:private"},
                              {"x", "127.0.0.1", 8080, false, "deny:loopback"},
                              {"x", "127.0.0.1", 9902, false, "deny:self_address"},
                          });
  EXPECT_EQ(policy->CheckStatus("x", Ip("127.0.0.1"), 8080).message(),
            "egress to 'x' denied by rule 'loopback' (resolved address is a "
            "loopback address)");
  EXPECT_EQ(policy->CheckStatus("x", Ip("::ffff:127.0.0.1"), 9902).message(),
            "egress to 'x' denied by rule 'self_address' (resolved address "
            "and port are egressd's own metrics listener)");
}

// No allow rule opens a loop back into egressd: its listeners are judged
// before the allow lists, so --allow_cidr=127.0.0.0/8 (local development)
// still keeps a caller off the admin and metrics ports.
TEST(EgressPolicyTest, OwnListenersAreDeniedWhateverTheAllowLists) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"127.0.0.0/8", "::1"};
  options.exempt_hosts = {"me.example"};
  options.self_addresses = {Ip("192.0.2.10")};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  // Before SetOwnListeners, nothing is a listener.
  ExpectVerdicts(*policy, {{"x", "127.0.0.1", 9901, true,
                            "allow:cidr 127.0.0.0/8"}});
  policy->SetOwnListeners({{Ip("127.0.0.1"), 9901, "admin"},
                           {Ip("0.0.0.0"), 9902, "metrics"}});
  ExpectVerdicts(
      *policy,
      {
          {"x", "127.0.0.1", 9901, false, "deny:self_address"},
          {"x", "::ffff:127.0.0.1", 9901, false, "deny:self_address"},
          {"me.example", "127.0.0.1", 9901, false, "deny:self_address"},
          {"x", "127.0.0.2", 9901, true, "allow:cidr 127.0.0.0/8"},
          {"x", "127.0.0.1", 9000, true, "allow:cidr 127.0.0.0/8"},
          // A wildcard listener: every loopback address and every one of
          // egressd's own addresses, on its port.
          {"x", "127.0.0.2", 9902, false, "deny:self_address"},
          {"x", "::1", 9902, false, "deny:self_address"},
          {"x", "192.0.2.10", 9902, false, "deny:self_address"},
          {"x", "192.0.2.11", 9902, false, "deny:documentation"},
      });
}

// ---------------------------------------------------------------------------
// EgressPolicy: ports

TEST(EgressPolicyTest, PortAllowListBeatsEveryAllowList) {
  EgressPolicyOptions options;
  options.allowed_ports = {443, 80};
  options.allow_cidrs = {"0.0.0.0/0"};
  options.exempt_hosts = {"example.com"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectVerdicts(
      *policy,
      {
          {"example.com", "8.8.8.8", 443, true, "allow:cidr 0.0.0.0/0"},
          {"example.com", "8.8.8.8", 80, true, "allow:cidr 0.0.0.0/0"},
          {"example.com", "8.8.8.8", 8443, false, "deny:port"},
          {"example.com", "8.8.8.8", 22, false, "deny:port"},
          {"example.com", "8.8.8.8", 79, false, "deny:port"},
          {"example.com", "8.8.8.8", 81, false, "deny:port"},
          {"example.com", "2606:4700::1", 443, true,
           "allow:exempt_host example.com"},
          // Port first: a denied port is reported before the category.
          {"x", "10.0.0.1", 8443, false, "deny:port"},
      });
  EXPECT_EQ(policy->CheckStatus("example.com", Ip("8.8.8.8"), 8443).message(),
            "egress to 'example.com' denied by rule 'port' (port 8443 is not "
            "an allowed port)");
}

// ---------------------------------------------------------------------------
// EgressPolicy: report-only

TEST(EgressPolicyTest, ReportOnlyAllowsButFlagsEveryDenial) {
  EgressPolicyOptions options;
  options.report_only = true;
  options.allowed_ports = {443};
  options.deny_hosts = {"blocked.example"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);

  struct Case {
    const char* host;
    const char* ip;
    uint16_t port;
    const char* rule;
    bool would_deny;
  };
  const Case kCases[] = {
      {"db.internal", "10.0.0.1", 443, "deny:private", true},
      {"x", "169.254.169.254", 443, "deny:cloud_metadata", true},
      {"x", "8.8.8.8", 80, "deny:port", true},
      {"blocked.example", "8.8.8.8", 443, "deny:host_denylist blocked.example",
       true},
      {"x", "8.8.8.8", 443, "allow:public", false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.ip);
    const PolicyDecision d = policy->Check(c.host, Ip(c.ip), c.port);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.report_only_would_deny, c.would_deny);
    EXPECT_EQ(d.rule, c.rule);
    EXPECT_EQ(!d.reason.empty(), c.would_deny);
    EXPECT_TRUE(d.ToStatus(c.host).ok());
  }
  for (const RuleCount& count : policy->RuleCounters()) {
    SCOPED_TRACE(count.rule);
    const bool hit = count.rule == "deny:private" ||
                     count.rule == "deny:cloud_metadata" ||
                     count.rule == "deny:port" ||
                     count.rule == "deny:host_denylist blocked.example";
    EXPECT_EQ(count.decisions, hit || count.rule == "allow:public" ? 1u : 0u);
    EXPECT_EQ(count.report_only, hit ? 1u : 0u);
  }
}

// ---------------------------------------------------------------------------
// EgressPolicy: counters

TEST(EgressPolicyTest, CountersListEveryRuleInEvaluationOrder) {
  EgressPolicyOptions options;
  options.allowed_ports = {443};
  options.deny_hosts = {"bad.example"};
  options.deny_domain_suffixes = {".bad.example"};
  options.deny_cidrs = {"10.0.0.0/24"};
  options.allow_cidrs = {"10.0.0.0/8", "10.0.0.0/8"};  // duplicates share
  options.exempt_hosts = {"good.example", "GOOD.example."};
  options.exempt_domain_suffixes = {".good.example"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);

  std::vector<std::string> rules;
  for (const RuleCount& count : policy->RuleCounters()) {
    rules.push_back(count.rule);
    EXPECT_EQ(count.decisions, 0u);
    EXPECT_EQ(count.report_only, 0u);
  }
  EXPECT_THAT(
      rules,
      ElementsAre("deny:port", "deny:host_denylist bad.example",
                  "deny:domain_denylist .bad.example",
                  "deny:cidr_denylist 10.0.0.0/24", "allow:cidr 10.0.0.0/8",
                  "deny:self_address", "allow:exempt_host good.example",
                  "allow:exempt_domain_suffix .good.example", "deny:loopback",
                  "deny:unspecified", "deny:link_local", "deny:cloud_metadata",
                  "deny:private", "deny:cgnat", "deny:multicast",
                  "deny:broadcast", "deny:documentation", "deny:benchmarking",
                  "deny:reserved", "allow:public"));

  policy->Check("x", Ip("10.1.0.1"), 443);
  policy->Check("x", Ip("10.2.0.1"), 443);
  policy->Check("x", Ip("10.0.0.1"), 443);
  policy->Check("x", Ip("8.8.8.8"), 80);
  policy->Check("a.good.example", Ip("192.168.0.1"), 443);
  for (const RuleCount& count : policy->RuleCounters()) {
    SCOPED_TRACE(count.rule);
    uint64_t expected = 0;
    if (count.rule == "allow:cidr 10.0.0.0/8") expected = 2;
    if (count.rule == "deny:cidr_denylist 10.0.0.0/24") expected = 1;
    if (count.rule == "deny:port") expected = 1;
    if (count.rule == "allow:exempt_domain_suffix .good.example") expected = 1;
    EXPECT_EQ(count.decisions, expected);
    EXPECT_EQ(count.report_only, 0u);
  }
}

// Check() is const and lock-free; run under TSan this also proves it is
// race-free. Counts must be exact.
TEST(EgressPolicyTest, ConcurrentChecksCountExactly) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"127.0.0.0/8"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  constexpr int kThreads = 8;
  constexpr int kChecksPerThread = 2000;
  const asio::ip::address loopback = Ip("127.0.0.1");
  const asio::ip::address priv = Ip("10.0.0.1");
  const asio::ip::address pub = Ip("2606:4700::1");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kChecksPerThread; ++i) {
        EXPECT_TRUE(policy->Check("a", loopback, 80).allowed);
        EXPECT_FALSE(policy->Check("b", priv, 80).allowed);
        EXPECT_TRUE(policy->Check("c", pub, 80).allowed);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  constexpr uint64_t kEach = uint64_t{kThreads} * kChecksPerThread;
  for (const RuleCount& count : policy->RuleCounters()) {
    SCOPED_TRACE(count.rule);
    if (count.rule == "allow:cidr 127.0.0.0/8" ||
        count.rule == "deny:private" || count.rule == "allow:public") {
      EXPECT_EQ(count.decisions, kEach);
    } else {
      EXPECT_EQ(count.decisions, 0u);
    }
  }
}

// ---------------------------------------------------------------------------
// EgressPolicy: bad options

struct BadOptions {
  const char* name;
  EgressPolicyOptions options;
  const char* message;
};

TEST(EgressPolicyTest, CreateRejectsBadOptionsWithPreciseMessages) {
  auto with = [](auto set) {
    EgressPolicyOptions options;
    set(options);
    return options;
  };
  const BadOptions kCases[] = {
      {"allow cidr /33", with([](EgressPolicyOptions& o) {
         o.allow_cidrs = {"10.0.0.0/8", "10.0.0.0/33"};
       }),
       "allow_cidrs[1]: CIDR '10.0.0.0/33': prefix length '33' is out of "
       "range 0..32 for IPv4"},
      {"deny cidr host bits",
       with([](EgressPolicyOptions& o) { o.deny_cidrs = {"10.0.0.1/8"}; }),
       "deny_cidrs[0]: CIDR '10.0.0.1/8': bits are set after the /8 prefix; "
       "the network is 10.0.0.0/8"},
      {"deny cidr not an address",
       with([](EgressPolicyOptions& o) { o.deny_cidrs = {"localhost/8"}; }),
       "deny_cidrs[0]: CIDR 'localhost/8': 'localhost' is not an IPv4 or "
       "IPv6 address"},
      {"empty host",
       with([](EgressPolicyOptions& o) { o.exempt_hosts = {""}; }),
       "exempt_hosts[0]: host is empty"},
      {"wildcard host", with([](EgressPolicyOptions& o) {
         o.exempt_hosts = {"ok.example", "*.example.com"};
       }),
       "exempt_hosts[1]: host '*.example.com' has a wildcard; wildcards are "
       "not supported, write a domain suffix such as '.example.com' (it "
       "matches every subdomain)"},
      {"suffix as host",
       with([](EgressPolicyOptions& o) { o.deny_hosts = {".example.com"}; }),
       "deny_hosts[0]: host '.example.com' starts with '.'; domain suffixes "
       "belong in the *_domain_suffixes lists"},
      {"invalid host character",
       with([](EgressPolicyOptions& o) { o.deny_hosts = {"a b"}; }),
       "deny_hosts[0]: host 'a b' has an invalid character at offset 1"},
      {"host with URL", with([](EgressPolicyOptions& o) {
         o.exempt_hosts = {"http://example.com"};
       }),
       "exempt_hosts[0]: host 'http://example.com' has an invalid character "
       "at offset 5"},
      {"suffix without dot", with([](EgressPolicyOptions& o) {
         o.exempt_domain_suffixes = {"example.com"};
       }),
       "exempt_domain_suffixes[0]: domain suffix 'example.com' must start "
       "with '.' (\".example.com\" matches the subdomains of example.com; "
       "list example.com itself as a host)"},
      {"suffix of nothing",
       with([](EgressPolicyOptions& o) { o.deny_domain_suffixes = {"."}; }),
       "deny_domain_suffixes[0]: domain suffix '.' names no domain"},
      {"suffix with two dots", with([](EgressPolicyOptions& o) {
         o.deny_domain_suffixes = {"..example.com"};
       }),
       "deny_domain_suffixes[0]: domain suffix '..example.com' names no "
       "domain"},
      {"empty suffix",
       with([](EgressPolicyOptions& o) { o.exempt_domain_suffixes = {""}; }),
       "exempt_domain_suffixes[0]: domain suffix is empty"},
      {"port zero", with([](EgressPolicyOptions& o) {
         o.allowed_ports = {443, 0};
       }),
       "allowed_ports: 0 is not a valid port (1..65535)"},
  };
  for (const BadOptions& c : kCases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<std::unique_ptr<EgressPolicy>> policy =
        EgressPolicy::Create(c.options);
    ASSERT_FALSE(policy.ok());
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(policy.status().message(), c.message);
  }
}

TEST(EgressPolicyTest, KeepsTheOptionsItWasCreatedWith) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"127.0.0.0/8"};
  options.report_only = true;
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_THAT(policy->options().allow_cidrs, ElementsAre("127.0.0.0/8"));
  EXPECT_TRUE(policy->options().report_only);
}

// --- the host allow-list (CheckHost) ----------------------------------------

uint64_t DecisionsOf(const EgressPolicy& policy, const std::string& rule) {
  for (const RuleCount& count : policy.RuleCounters()) {
    if (count.rule == rule) return count.decisions;
  }
  ADD_FAILURE() << "no counter for " << rule;
  return 0;
}

std::unique_ptr<EgressPolicy> AllowListPolicy(bool report_only = false) {
  EgressPolicyOptions options;
  options.host_allowlist = {"API.Partner.example.", "[::1]", "127.0.0.1"};
  options.domain_suffix_allowlist = {"example.com", ".svc.cluster.local"};
  options.report_only = report_only;
  return MustCreate(options);
}

TEST(EgressPolicyHostAllowListTest, AdmitsListedHostsAndSuffixesOnly) {
  std::unique_ptr<EgressPolicy> policy = AllowListPolicy();
  ASSERT_NE(policy, nullptr);
  struct Case {
    const char* host;
    bool allowed;
  };
  const Case cases[] = {
      // Exact host, case-insensitive, one trailing dot ignored.
      {"api.partner.example", true},
      {"API.PARTNER.EXAMPLE.", true},
      {"www.partner.example", false},
      {"partner.example", false},
      // A suffix covers the domain itself and every subdomain...
      {"example.com", true},
      {"www.example.com", true},
      {"a.b.EXAMPLE.com", true},
      {"svc.cluster.local", true},
      {"db.ns.svc.cluster.local", true},
      // ...by whole labels: look-alikes are not covered.
      {"badexample.com", false},
      {"example.com.evil.net", false},
      {"example.co", false},
      {"com", false},
      // IP literals: canonical comparison; a suffix never covers one.
      {"127.0.0.1", true},
      {"::1", true},
      {"0:0::1", true},
      {"127.0.0.2", false},
      {"", false},
  };
  uint64_t denied = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.host);
    const PolicyDecision d = policy->CheckHost(c.host);
    EXPECT_EQ(d.allowed, c.allowed);
    EXPECT_FALSE(d.report_only_would_deny);
    if (c.allowed) {
      EXPECT_TRUE(d.ToStatus(c.host).ok());
      EXPECT_EQ(d.rule, "");
    } else {
      ++denied;
      EXPECT_EQ(d.rule, "deny:host_not_allowed");
      EXPECT_EQ(d.rule_name(), "host_not_allowed");
      const absl::Status status = d.ToStatus(c.host);
      EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
      EXPECT_THAT(std::string(status.message()),
                  HasSubstr("denied by rule 'host_not_allowed'"));
      EXPECT_THAT(
          std::string(status.message()),
          HasSubstr("egress.allow_hosts / egress.allow_domain_suffixes"));
    }
  }
  // Denials are counted by rule; admissions are left to the address check.
  EXPECT_EQ(DecisionsOf(*policy, "deny:host_not_allowed"), denied);
  EXPECT_EQ(policy->RuleCounters().front().rule, "deny:host_not_allowed");
}

TEST(EgressPolicyHostAllowListTest, DeniedHostMessageNamesHostAndRule) {
  std::unique_ptr<EgressPolicy> policy = AllowListPolicy();
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->CheckHost("x").ToStatus("x"),
            absl::PermissionDeniedError(
                "egress to 'x' denied by rule 'host_not_allowed' (host is not "
                "in egress.allow_hosts / egress.allow_domain_suffixes)"));
}

TEST(EgressPolicyHostAllowListTest, WithoutAListEveryHostPassesUncounted) {
  std::unique_ptr<EgressPolicy> policy = MustCreate(EgressPolicyOptions{});
  ASSERT_NE(policy, nullptr);
  const PolicyDecision d = policy->CheckHost("anything.example");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, "");
  for (const RuleCount& count : policy->RuleCounters()) {
    EXPECT_NE(count.rule, "deny:host_not_allowed");
    EXPECT_EQ(count.decisions, 0u) << count.rule;
  }
}

TEST(EgressPolicyHostAllowListTest, OnlySuffixesIsAnAllowListToo) {
  EgressPolicyOptions options;
  options.domain_suffix_allowlist = {"example.com"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->CheckHost("x.example.com").allowed);
  EXPECT_FALSE(policy->CheckHost("example.net").allowed);
}

TEST(EgressPolicyHostAllowListTest, ReportOnlyAdmitsButFlagsAndCounts) {
  std::unique_ptr<EgressPolicy> policy = AllowListPolicy(/*report_only=*/true);
  ASSERT_NE(policy, nullptr);
  const PolicyDecision d = policy->CheckHost("elsewhere.example");
  EXPECT_TRUE(d.allowed);
  EXPECT_TRUE(d.report_only_would_deny);
  EXPECT_EQ(d.rule, "deny:host_not_allowed");
  EXPECT_TRUE(d.ToStatus("elsewhere.example").ok());
  const PolicyDecision listed = policy->CheckHost("example.com");
  EXPECT_TRUE(listed.allowed);
  EXPECT_FALSE(listed.report_only_would_deny);
  for (const RuleCount& count : policy->RuleCounters()) {
    if (count.rule != "deny:host_not_allowed") continue;
    EXPECT_EQ(count.decisions, 1u);
    EXPECT_EQ(count.report_only, 1u);
  }
}

// The allow-list narrows, never widens: an admitted host is still judged on
// its resolved addresses, and it exempts nothing from the address rules.
TEST(EgressPolicyHostAllowListTest, AdmittedHostsStillPassTheAddressRules) {
  EgressPolicyOptions options;
  options.host_allowlist = {"internal.example"};
  options.deny_cidrs = {"203.0.113.0/24"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ASSERT_TRUE(policy->CheckHost("internal.example").allowed);
  ExpectVerdicts(
      *policy, {
                   {"internal.example", "10.0.0.1", 443, false, "deny:private"},
                   {"internal.example", "169.254.169.254", 80, false,
                    "deny:cloud_metadata"},
                   {"internal.example", "203.0.113.9", 443, false,
                    "deny:cidr_denylist 203.0.113.0/24"},
                   {"internal.example", "8.8.8.8", 443, true, "allow:public"},
               });
}

// The two kinds of list are independent: an exemption is no allow-list
// entry, and an allow-list entry is no exemption.
TEST(EgressPolicyHostAllowListTest, ExemptionsAndAllowListDoNotMix) {
  EgressPolicyOptions options;
  options.host_allowlist = {"listed.example"};
  options.exempt_hosts = {"exempt.example", "listed.example"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  EXPECT_FALSE(policy->CheckHost("exempt.example").allowed);
  EXPECT_TRUE(policy->CheckHost("listed.example").allowed);
  ExpectVerdicts(*policy, {{"listed.example", "10.0.0.1", 443, true,
                            "allow:exempt_host listed.example"}});
}

TEST(EgressPolicyHostAllowListTest, CreateRejectsBadEntries) {
  struct Case {
    std::vector<std::string> hosts;
    std::vector<std::string> suffixes;
    std::string message;
  };
  const Case cases[] = {
      {{"ok.example", ""}, {}, "host_allowlist[1]: host is empty"},
      {{"*.example.com"},
       {},
       "host_allowlist[0]: host '*.example.com' has a "
       "wildcard"},
      {{},
       {"."},
       "domain_suffix_allowlist[0]: domain suffix '.' names no "
       "domain"},
      {{},
       {"10.0.0.1"},
       "domain_suffix_allowlist[0]: domain suffix "
       "'10.0.0.1' is an IP address"},
      {{},
       {"a b"},
       "domain_suffix_allowlist[0]: host 'a b' has an invalid "
       "character"},
  };
  for (const Case& c : cases) {
    EgressPolicyOptions options;
    options.host_allowlist = c.hosts;
    options.domain_suffix_allowlist = c.suffixes;
    absl::StatusOr<std::unique_ptr<EgressPolicy>> policy =
        EgressPolicy::Create(options);
    ASSERT_FALSE(policy.ok()) << c.message;
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(policy.status().message()), HasSubstr(c.message));
  }
}

// CheckHost is const and lock-free like Check; under TSan this proves it.
TEST(EgressPolicyHostAllowListTest, ConcurrentCheckHostCountsExactly) {
  std::unique_ptr<EgressPolicy> policy = AllowListPolicy();
  ASSERT_NE(policy, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&policy] {
      for (int i = 0; i < kPerThread; ++i) {
        policy->CheckHost("denied.example");
        policy->CheckHost("ok.example.com");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(DecisionsOf(*policy, "deny:host_not_allowed"),
            static_cast<uint64_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

// ---------------------------------------------------------------------------
// EgressPolicy::CheckDestination: a request's destination, before a route
// is chosen (issue 14: a forward proxy bypassed the policy).

struct DestinationVerdict {
  const char* host;
  uint16_t port;
  bool allowed;
  const char* rule;  // "" when allowed without a deciding rule
};

void ExpectDestinations(const EgressPolicy& policy,
                        const std::vector<DestinationVerdict>& cases) {
  for (const DestinationVerdict& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.host, " port ", c.port));
    const PolicyDecision d = policy.CheckDestination(c.host, c.port);
    EXPECT_EQ(d.allowed, c.allowed);
    if (!c.allowed) {
      EXPECT_EQ(d.rule, c.rule);
    }
  }
}

TEST(EgressPolicyDestinationTest, IpLiteralsAreJudgedByTheAddressRules) {
  std::unique_ptr<EgressPolicy> policy = MustCreate({});
  ASSERT_NE(policy, nullptr);
  ExpectDestinations(*policy, {
                                  {"127.0.0.2", 80, false, "deny:loopback"},
                                  {"::ffff:127.0.0.2", 80, false, "deny:loopback"},
                                  {"[::ffff:127.0.0.2]", 80, false, "deny:loopback"},
                                  {"169.254.169.254", 80, false, "deny:cloud_metadata"},
                                  {"10.1.2.3", 443, false, "deny:private"},
                                  {"::1", 443, false, "deny:loopback"},
                                  {"64:ff9b::7f00:1", 80, false, "deny:loopback"},
                                  {"93.184.216.34", 80, true, ""},
                                  {"2606:4700::1", 443, true, ""},
                              });
}

TEST(EgressPolicyDestinationTest, NamesAreJudgedByTheNameRules) {
  EgressPolicyOptions options;
  options.deny_hosts = {"blocked.example"};
  options.deny_domain_suffixes = {".internal.example"};
  options.allowed_ports = {80, 443};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectDestinations(
      *policy,
      {
          {"blocked.example", 80, false, "deny:host_denylist blocked.example"},
          {"BLOCKED.example.", 80, false, "deny:host_denylist blocked.example"},
          {"db.internal.example", 443, false,
           "deny:domain_denylist .internal.example"},
          {"origin.example", 8080, false, "deny:port"},
          // Names that always resolve to loopback (RFC 6761).
          {"localhost", 80, false, "deny:loopback"},
          {"LocalHost.", 80, false, "deny:loopback"},
          {"app.localhost", 443, false, "deny:loopback"},
          // Judged percent-decoded, as a proxy may resolve it.
          {"%6C%6F%63%61%6C%68%6F%73%74", 80, false, "deny:loopback"},
          {"blocked%2Eexample", 80, false, "deny:host_denylist blocked.example"},
          {"%31%32%37.0.0.1", 80, false, "deny:loopback"},
          {"origin.example", 443, true, ""},
          {"localhost.example", 443, true, ""},
      });
}

TEST(EgressPolicyDestinationTest, TheAllowListComesFirst) {
  EgressPolicyOptions options;
  options.host_allowlist = {"api.example", "127.0.0.1"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  ExpectDestinations(*policy, {
                                  {"other.example", 443, false, "deny:host_not_allowed"},
                                  {"api.example", 443, true, ""},
                                  // Admitted by the allow-list, still loopback.
                                  {"127.0.0.1", 80, false, "deny:loopback"},
                              });
}

TEST(EgressPolicyDestinationTest, AllowCidrOpensLocalhostButNotOwnListeners) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"127.0.0.0/8", "::1"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  policy->SetOwnListeners({{Ip("127.0.0.1"), 9902, "metrics"}});
  ExpectDestinations(*policy, {
                                  {"localhost", 8080, true, ""},
                                  {"127.0.0.1", 8080, true, ""},
                                  {"localhost", 9902, false, "deny:self_address"},
                                  {"127.0.0.1", 9902, false, "deny:self_address"},
                              });
  EXPECT_EQ(policy->CheckDestination("localhost", 9902).ToStatus("localhost")
                .message(),
            "egress to 'localhost' denied by rule 'self_address' (resolved "
            "address and port are egressd's own metrics listener)");
}

// Denials are counted once; an admitted destination is not counted here,
// since the connection's own check counts what it admits.
TEST(EgressPolicyDestinationTest, CountsDenialsOnly) {
  std::unique_ptr<EgressPolicy> policy = MustCreate({});
  ASSERT_NE(policy, nullptr);
  policy->CheckDestination("127.0.0.1", 80);
  policy->CheckDestination("93.184.216.34", 80);
  policy->CheckDestination("example.com", 80);
  uint64_t loopback = 0, public_count = 0;
  for (const RuleCount& count : policy->RuleCounters()) {
    if (count.rule == "deny:loopback") loopback = count.decisions;
    if (count.rule == "allow:public") public_count = count.decisions;
  }
  EXPECT_EQ(loopback, 1u);
  EXPECT_EQ(public_count, 0u);
}

// egressd sets its listeners once its ports are bound, while the policy is
// already shared: setting them races with checks (TSan watches this).
TEST(EgressPolicyDestinationTest, OwnListenersMaySetWhileOthersCheck) {
  EgressPolicyOptions options;
  options.allow_cidrs = {"127.0.0.0/8"};
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  std::thread checker([&] {
    for (int i = 0; i < 2000; ++i) {
      const PolicyDecision d = policy->Check("x", Ip("127.0.0.1"), 9902);
      EXPECT_TRUE(d.rule == "deny:self_address" ||
                  d.rule == "allow:cidr 127.0.0.0/8")
          << d.rule;
    }
  });
  for (int i = 0; i < 200; ++i) {
    policy->SetOwnListeners({{Ip("127.0.0.1"), 9902, "metrics"}});
  }
  checker.join();
  EXPECT_EQ(policy->Check("x", Ip("127.0.0.1"), 9902).rule,
            "deny:self_address");
}

TEST(EgressPolicyDestinationTest, ReportOnlyLetsDenialsThroughMarked) {
  EgressPolicyOptions options;
  options.report_only = true;
  std::unique_ptr<EgressPolicy> policy = MustCreate(options);
  ASSERT_NE(policy, nullptr);
  const PolicyDecision d = policy->CheckDestination("localhost", 80);
  EXPECT_TRUE(d.allowed);
  EXPECT_TRUE(d.report_only_would_deny);
  EXPECT_EQ(d.rule, "deny:loopback");
}

}  // namespace
}  // namespace egress
