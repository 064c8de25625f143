#include "client_core/policy/address_class.h"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "asio/ip/address.hpp"
#include "asio/ip/address_v4.hpp"
#include "asio/ip/address_v6.hpp"
#include "client_core/policy/cidr.h"

namespace egress {
namespace {

struct CategoryRange {
  IpRange range;
  AddressCategory category;
};

// Ranges are written as text so the tables read like the registry; they are
// parsed once, and a typo aborts at the first use (the tests use them all).
IpRange Range(absl::string_view text) {
  absl::StatusOr<IpRange> range = IpRange::Parse(text);
  if (!range.ok()) std::abort();
  return *range;
}

// First match wins, so single addresses come before the blocks holding them.
const std::vector<CategoryRange>& Ipv4Table() {
  static const auto* const table = new std::vector<CategoryRange>{
      {Range("169.254.169.254/32"), AddressCategory::kCloudMetadata},
      {Range("169.254.170.2/32"), AddressCategory::kCloudMetadata},
      {Range("100.100.100.200/32"), AddressCategory::kCloudMetadata},
      {Range("192.0.0.192/32"), AddressCategory::kCloudMetadata},
      {Range("255.255.255.255/32"), AddressCategory::kBroadcast},
      {Range("0.0.0.0/8"), AddressCategory::kUnspecified},
      {Range("127.0.0.0/8"), AddressCategory::kLoopback},
      {Range("169.254.0.0/16"), AddressCategory::kLinkLocal},
      {Range("10.0.0.0/8"), AddressCategory::kPrivate},
      {Range("172.16.0.0/12"), AddressCategory::kPrivate},
      {Range("192.168.0.0/16"), AddressCategory::kPrivate},
      {Range("100.64.0.0/10"), AddressCategory::kCgnat},
      {Range("192.0.2.0/24"), AddressCategory::kDocumentation},
      {Range("198.51.100.0/24"), AddressCategory::kDocumentation},
      {Range("203.0.113.0/24"), AddressCategory::kDocumentation},
      {Range("198.18.0.0/15"), AddressCategory::kBenchmarking},
      {Range("224.0.0.0/4"), AddressCategory::kMulticast},
      {Range("240.0.0.0/4"), AddressCategory::kReserved},
      {Range("192.0.0.0/24"), AddressCategory::kReserved},
      {Range("192.88.99.0/24"), AddressCategory::kReserved},
  };
  return *table;
}

// Consulted after ::, ::1 and the embedded-IPv4 forms.
const std::vector<CategoryRange>& Ipv6Table() {
  static const auto* const table = new std::vector<CategoryRange>{
      {Range("fd00:ec2::254/128"), AddressCategory::kCloudMetadata},
      {Range("fc00::/7"), AddressCategory::kPrivate},
      {Range("fec0::/10"), AddressCategory::kPrivate},
      {Range("fe80::/10"), AddressCategory::kLinkLocal},
      {Range("ff00::/8"), AddressCategory::kMulticast},
      {Range("2001:db8::/32"), AddressCategory::kDocumentation},
      {Range("3fff::/20"), AddressCategory::kDocumentation},
      {Range("2001:2::/48"), AddressCategory::kBenchmarking},
      {Range("100::/64"), AddressCategory::kReserved},
  };
  return *table;
}

asio::ip::address_v4 V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return asio::ip::address_v4(asio::ip::address_v4::bytes_type{a, b, c, d});
}

bool AllZero(const asio::ip::address_v6::bytes_type& b, int from, int to) {
  for (int i = from; i < to; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

}  // namespace

absl::string_view AddressCategoryName(AddressCategory category) {
  switch (category) {
    case AddressCategory::kPublic:
      return "public";
    case AddressCategory::kLoopback:
      return "loopback";
    case AddressCategory::kUnspecified:
      return "unspecified";
    case AddressCategory::kLinkLocal:
      return "link_local";
    case AddressCategory::kCloudMetadata:
      return "cloud_metadata";
    case AddressCategory::kPrivate:
      return "private";
    case AddressCategory::kCgnat:
      return "cgnat";
    case AddressCategory::kMulticast:
      return "multicast";
    case AddressCategory::kBroadcast:
      return "broadcast";
    case AddressCategory::kDocumentation:
      return "documentation";
    case AddressCategory::kBenchmarking:
      return "benchmarking";
    case AddressCategory::kReserved:
      return "reserved";
  }
  return "unknown";
}

absl::string_view Ipv4EmbeddingName(Ipv4Embedding embedding) {
  switch (embedding) {
    case Ipv4Embedding::kNone:
      return "none";
    case Ipv4Embedding::kMapped:
      return "ipv4_mapped";
    case Ipv4Embedding::kCompatible:
      return "ipv4_compatible";
    case Ipv4Embedding::kNat64:
      return "nat64";
    case Ipv4Embedding::kNat64LocalUse:
      return "nat64_local_use";
    case Ipv4Embedding::k6to4:
      return "6to4";
    case Ipv4Embedding::kTeredo:
      return "teredo";
  }
  return "unknown";
}

absl::InlinedVector<EmbeddedIpv4, 4> EmbeddedIpv4Addresses(
    const asio::ip::address_v6& ip) {
  const asio::ip::address_v6::bytes_type b = ip.to_bytes();
  absl::InlinedVector<EmbeddedIpv4, 4> out;
  auto add = [&out](Ipv4Embedding embedding, uint8_t w, uint8_t x, uint8_t y,
                    uint8_t z) {
    out.push_back(EmbeddedIpv4{embedding, V4(w, x, y, z)});
  };
  if (AllZero(b, 0, 10) && b[10] == 0xff && b[11] == 0xff) {
    add(Ipv4Embedding::kMapped, b[12], b[13], b[14], b[15]);
  } else if (AllZero(b, 0, 12)) {
    // :: and ::1 are the IPv6 unspecified and loopback addresses, not
    // IPv4-compatible forms of 0.0.0.0 and 0.0.0.1.
    if (!AllZero(b, 12, 15) || b[15] > 1) {
      add(Ipv4Embedding::kCompatible, b[12], b[13], b[14], b[15]);
    }
  } else if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    if (AllZero(b, 4, 12)) {
      add(Ipv4Embedding::kNat64, b[12], b[13], b[14], b[15]);
    } else if (b[4] == 0x00 && b[5] == 0x01) {
      // RFC 6052 section 2.2 layouts. Bits 64..71 (byte 8) are always zero,
      // so the IPv4 address skips byte 8 when it would straddle it, and the
      // suffix after it is zero; a layout whose zero bytes are not zero is
      // not the one in use.
      const bool u_zero = b[8] == 0;
      if (u_zero && AllZero(b, 11, 16)) {  // /48
        add(Ipv4Embedding::kNat64LocalUse, b[6], b[7], b[9], b[10]);
      }
      if (u_zero && AllZero(b, 12, 16)) {  // /56
        add(Ipv4Embedding::kNat64LocalUse, b[7], b[9], b[10], b[11]);
      }
      if (u_zero && AllZero(b, 13, 16)) {  // /64
        add(Ipv4Embedding::kNat64LocalUse, b[9], b[10], b[11], b[12]);
      }
      // /96, always a candidate. Its 0.0.0.0 is the zero suffix of a shorter
      // layout, not a destination (translators do not forward to 0.0.0.0),
      // unless no other layout fits.
      if (!AllZero(b, 12, 16) || out.empty()) {
        add(Ipv4Embedding::kNat64LocalUse, b[12], b[13], b[14], b[15]);
      }
    }
  } else if (b[0] == 0x20 && b[1] == 0x02) {
    add(Ipv4Embedding::k6to4, b[2], b[3], b[4], b[5]);
  } else if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) {
    add(Ipv4Embedding::kTeredo, static_cast<uint8_t>(~b[12]),
        static_cast<uint8_t>(~b[13]), static_cast<uint8_t>(~b[14]),
        static_cast<uint8_t>(~b[15]));
  }
  return out;
}

AddressCategory ClassifyIpv4(const asio::ip::address_v4& ip) {
  const asio::ip::address address(ip);
  for (const CategoryRange& entry : Ipv4Table()) {
    if (entry.range.Contains(address)) return entry.category;
  }
  return AddressCategory::kPublic;
}

AddressClass ClassifyAddress(const asio::ip::address& ip) {
  AddressClass out;
  if (ip.is_v4()) {
    out.category = ClassifyIpv4(ip.to_v4());
    return out;
  }
  // Drop the scope id: it names an interface, not a different address.
  const asio::ip::address_v6 v6(ip.to_v6().to_bytes());
  const asio::ip::address_v6::bytes_type b = v6.to_bytes();
  if (AllZero(b, 0, 15) && b[15] <= 1) {
    out.category =
        b[15] == 0 ? AddressCategory::kUnspecified : AddressCategory::kLoopback;
    return out;
  }
  const absl::InlinedVector<EmbeddedIpv4, 4> embedded =
      EmbeddedIpv4Addresses(v6);
  if (!embedded.empty()) {
    out.embedding = embedded.front().embedding;
    out.embedded = embedded.front().address;
    for (const EmbeddedIpv4& candidate : embedded) {
      const AddressCategory category = ClassifyIpv4(candidate.address);
      if (category != AddressCategory::kPublic) {
        out.category = category;
        out.embedded = candidate.address;
        return out;
      }
    }
    return out;
  }
  const asio::ip::address address(v6);
  for (const CategoryRange& entry : Ipv6Table()) {
    if (entry.range.Contains(address)) {
      out.category = entry.category;
      return out;
    }
  }
  // 2000::/3 is the only global unicast allocation; the rest of the space
  // is reserved by IANA, and nothing legitimate answers there.
  if ((b[0] & 0xe0) != 0x20) out.category = AddressCategory::kReserved;
  return out;
}

}  // namespace egress
