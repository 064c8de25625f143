// Address classification: which special-purpose range an IP address is in,
// from the egress policy's point of view (IANA's IPv4 and IPv6
// Special-Purpose Address Registries, trimmed to what matters for SSRF).
//
// Vocabulary:
//   - A *category* is a named group of ranges that the egress policy denies
//     by default (loopback, private, ...). An address in none of them is
//     *public*. Each category has a stable name ("loopback", "private") used
//     in rule names, counters and error messages; names never change once
//     released.
//   - An IPv6 address *embeds* an IPv4 address when one of the transition
//     mechanisms below would deliver its packets to that IPv4 address. Such
//     an address is judged by the IPv4 address it embeds: ::ffff:127.0.0.1
//     is loopback, 2002:a00:1:: (6to4 for 10.0.0.1) is private.
//
// IPv4 categories (first match wins):
//   cloud_metadata  169.254.169.254/32 (AWS, GCP, Azure, OpenStack),
//                   169.254.170.2/32 (AWS ECS task metadata),
//                   100.100.100.200/32 (Alibaba Cloud), 192.0.0.192/32 (Oracle
//                   Cloud). Named apart from link_local/cgnat/reserved so a
//                   denial counter shows a likely SSRF attempt at a glance.
//   broadcast       255.255.255.255/32
//   unspecified     0.0.0.0/8 ("this network"; Linux connects 0.0.0.0 to the
//                   local host)
//   loopback        127.0.0.0/8
//   link_local      169.254.0.0/16
//   private         10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918)
//   cgnat           100.64.0.0/10 (RFC 6598 shared address space)
//   documentation   192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24
//   benchmarking    198.18.0.0/15
//   multicast       224.0.0.0/4
//   reserved        240.0.0.0/4, 192.0.0.0/24 (IETF protocol assignments),
//                   192.88.99.0/24 (deprecated 6to4 relay anycast)
//
// IPv6 categories (first match wins):
//   unspecified     ::/128
//   loopback        ::1/128
//   (embedded IPv4, judged by the IPv4 address, see Ipv4Embedding)
//   cloud_metadata  fd00:ec2::254/128 (AWS IMDS over IPv6)
//   private         fc00::/7 (unique local), fec0::/10 (deprecated
//                   site-local, the old private range)
//   link_local      fe80::/10
//   multicast       ff00::/8
//   documentation   2001:db8::/32, 3fff::/20
//   benchmarking    2001:2::/48
//   reserved        100::/64 (discard-only), and everything outside 2000::/3,
//                   the only block IANA allocates for global unicast
//
// Pure functions of their arguments; thread-safe.
#ifndef EGRESS_CLIENT_CORE_POLICY_ADDRESS_CLASS_H_
#define EGRESS_CLIENT_CORE_POLICY_ADDRESS_CLASS_H_

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "asio/ip/address.hpp"
#include "asio/ip/address_v4.hpp"
#include "asio/ip/address_v6.hpp"

namespace egress {

enum class AddressCategory {
  kPublic,  // in none of the categories below
  kLoopback,
  kUnspecified,
  kLinkLocal,
  kCloudMetadata,
  kPrivate,
  kCgnat,
  kMulticast,
  kBroadcast,
  kDocumentation,
  kBenchmarking,
  kReserved,
};

// Every category other than kPublic, in declaration order.
inline constexpr AddressCategory kDeniedCategories[] = {
    AddressCategory::kLoopback,      AddressCategory::kUnspecified,
    AddressCategory::kLinkLocal,     AddressCategory::kCloudMetadata,
    AddressCategory::kPrivate,       AddressCategory::kCgnat,
    AddressCategory::kMulticast,     AddressCategory::kBroadcast,
    AddressCategory::kDocumentation, AddressCategory::kBenchmarking,
    AddressCategory::kReserved,
};

// The category's stable name: "public", "loopback", "unspecified",
// "link_local", "cloud_metadata", "private", "cgnat", "multicast",
// "broadcast", "documentation", "benchmarking", "reserved".
absl::string_view AddressCategoryName(AddressCategory category);

// How an IPv6 address embeds an IPv4 address.
enum class Ipv4Embedding {
  kNone,
  // ::ffff:0:0/96 (RFC 4291): a dual-stack socket sends to the IPv4 address
  // itself.
  kMapped,
  // ::/96 minus :: and ::1 (RFC 4291, deprecated IPv4-compatible).
  kCompatible,
  // 64:ff9b::/96 (RFC 6052 well-known NAT64 prefix): the last 32 bits.
  kNat64,
  // 64:ff9b:1::/48 (RFC 8215 local-use NAT64 prefix). The network may use an
  // RFC 6052 prefix of /48, /56, /64 or /96 inside it, each placing the IPv4
  // address differently, and egressd cannot know which. So every layout the
  // address fits (byte 8 and the layout's suffix zero) gives a candidate;
  // the /96 layout always does, except that its 0.0.0.0 (the zero suffix of
  // a shorter layout) is dropped when another layout fits. The address is
  // judged by the first candidate in a category, so it is denied if any
  // plausible reading is.
  kNat64LocalUse,
  // 2002::/16 (RFC 3056 6to4): bits 16..47.
  k6to4,
  // 2001::/32 (RFC 4380 Teredo): the client's IPv4 address is the last 32
  // bits inverted; packets are relayed to it.
  kTeredo,
};

// Stable name: "none", "ipv4_mapped", "ipv4_compatible", "nat64",
// "nat64_local_use", "6to4", "teredo".
absl::string_view Ipv4EmbeddingName(Ipv4Embedding embedding);

struct EmbeddedIpv4 {
  Ipv4Embedding embedding = Ipv4Embedding::kNone;
  asio::ip::address_v4 address;
};

// The IPv4 addresses `ip` embeds: none for an ordinary IPv6 address, one for
// most forms, up to four for kNat64LocalUse.
absl::InlinedVector<EmbeddedIpv4, 4> EmbeddedIpv4Addresses(
    const asio::ip::address_v6& ip);

struct AddressClass {
  AddressCategory category = AddressCategory::kPublic;
  // For an IPv6 address judged by an embedded IPv4 address: how it is
  // embedded (also when that address is public). kNone otherwise.
  Ipv4Embedding embedding = Ipv4Embedding::kNone;
  // The embedded IPv4 address that decided `category`; valid when
  // embedding != kNone.
  asio::ip::address_v4 embedded;
};

// The category of an IPv4 address.
AddressCategory ClassifyIpv4(const asio::ip::address_v4& ip);

// The category of any address, judging IPv6 addresses that embed an IPv4
// address by that address. An IPv6 scope id is ignored.
AddressClass ClassifyAddress(const asio::ip::address& ip);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_POLICY_ADDRESS_CLASS_H_
