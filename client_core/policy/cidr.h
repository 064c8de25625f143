// IpRange: a block of IP addresses written in CIDR notation, e.g.
// "10.0.0.0/8", "fd00::/8", or a bare address ("192.0.2.7" is a /32,
// "2001:db8::1" a /128). The egress policy's allow and deny lists are made of
// these.
//
// Parsing is strict, because a range that silently means something other than
// what the operator wrote is an SSRF hole:
//   - the address is dotted-decimal IPv4 (four numbers 0..255, no leading
//     zeros, no "127.1" shorthand) or RFC 4291 IPv6 text; no brackets, no
//     zone identifier ("fe80::1%eth0");
//   - the prefix length is decimal, without sign or leading zero, 0..32 for
//     IPv4 and 0..128 for IPv6;
//   - no bits may be set after the prefix ("10.0.0.1/8" is rejected rather
//     than read as 10.0.0.0/8 or as 10.0.0.1/32: either guess could be
//     wrong; the message names the network the text would mean).
// Errors are kInvalidArgument and quote the text (capped, escaped).
//
// An IPv4 range only contains IPv4 addresses and an IPv6 range only IPv6
// addresses: ::ffff:10.0.0.1 is not in 10.0.0.0/8 as far as IpRange is
// concerned. The egress policy decides how embedded IPv4 addresses are judged
// (see egress_policy.h).
//
// A value type; immutable after construction, so safe to share across threads.
#ifndef EGRESS_CLIENT_CORE_POLICY_CIDR_H_
#define EGRESS_CLIENT_CORE_POLICY_CIDR_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "asio/ip/address.hpp"

namespace egress {

class IpRange {
 public:
  // Parses "address/prefix-length" or a bare address (a single-address
  // range). See the file comment for what is accepted.
  static absl::StatusOr<IpRange> Parse(absl::string_view text);

  // The range of addresses sharing the first `prefix_length` bits of
  // `address`; bits after the prefix are cleared. `prefix_length` is clamped
  // to 0..32 (IPv4) or 0..128 (IPv6). For building ranges in code, where the
  // input is trusted.
  static IpRange FromPrefix(const asio::ip::address& address,
                            int prefix_length);

  bool is_v4() const { return is_v4_; }
  int prefix_length() const { return prefix_length_; }
  // The first address of the range.
  asio::ip::address network() const;

  // True when `ip` has this range's family and its first prefix_length()
  // bits equal the network's. An IPv6 scope id is ignored.
  bool Contains(const asio::ip::address& ip) const;

  // Canonical text, always with the prefix length: "10.0.0.0/8",
  // "fd00::/8", "192.0.2.7/32". Parse(ToString()) gives an equal range.
  std::string ToString() const;

  friend bool operator==(const IpRange& a, const IpRange& b) {
    return a.is_v4_ == b.is_v4_ && a.prefix_length_ == b.prefix_length_ &&
           a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const IpRange& a, const IpRange& b) {
    return !(a == b);
  }

 private:
  IpRange(bool is_v4, const std::array<uint8_t, 16>& bytes, int prefix_length);

  bool is_v4_ = true;
  // Network address in network byte order; an IPv4 range uses bytes_[0..3]
  // and leaves the rest zero. Bits after the prefix are always zero.
  std::array<uint8_t, 16> bytes_{};
  int prefix_length_ = 0;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_POLICY_CIDR_H_
