#include "client_core/policy/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "asio/ip/address.hpp"
#include "asio/ip/address_v4.hpp"
#include "asio/ip/address_v6.hpp"

namespace egress {
namespace {

// CIDRs come from configuration and flags; a cap on the quoted (escaped)
// text keeps a pasted blob from turning into a pathological error message.
constexpr size_t kMaxEcho = 64;

std::string Quote(absl::string_view text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size(); ++i) {
    const std::string escaped = absl::CHexEscape(text.substr(i, 1));
    if (out.size() - 1 + escaped.size() > kMaxEcho) {
      out += "...";
      break;
    }
    out += escaped;
  }
  out += "'";
  return out;
}

absl::Status Invalid(absl::string_view text, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("CIDR ", Quote(text), ": ", what));
}

// Clears every bit after the first `prefix_length` bits.
void MaskTo(std::array<uint8_t, 16>& bytes, int prefix_length) {
  for (int i = 0; i < 16; ++i) {
    const int bits_in_byte = std::clamp(prefix_length - i * 8, 0, 8);
    bytes[i] &= static_cast<uint8_t>(0xff00 >> bits_in_byte);
  }
}

std::array<uint8_t, 16> BytesOf(const asio::ip::address& ip) {
  std::array<uint8_t, 16> out{};
  if (ip.is_v4()) {
    const asio::ip::address_v4::bytes_type b = ip.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  } else {
    const asio::ip::address_v6::bytes_type b = ip.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  }
  return out;
}

}  // namespace

IpRange::IpRange(bool is_v4, const std::array<uint8_t, 16>& bytes,
                 int prefix_length)
    : is_v4_(is_v4), bytes_(bytes), prefix_length_(prefix_length) {}

absl::StatusOr<IpRange> IpRange::Parse(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("CIDR is empty");
  const size_t slash = text.find('/');
  const absl::string_view address_text = text.substr(0, slash);
  if (address_text.empty()) return Invalid(text, "the address is empty");
  if (address_text.find('%') != absl::string_view::npos) {
    return Invalid(text, "zone identifiers ('%...') are not supported");
  }
  if (address_text.front() == '[') {
    return Invalid(text, "write an IPv6 address without brackets");
  }
  // inet_pton wants a NUL-terminated string, and would stop at an embedded
  // NUL; such text is rejected by the length check below instead.
  const std::string address_copy(address_text);
  if (address_copy.size() != std::strlen(address_copy.c_str())) {
    return Invalid(text, "the address contains a NUL byte");
  }
  std::array<uint8_t, 16> bytes{};
  bool is_v4;
  // glibc's inet_pton takes exactly four dotted-decimal parts without leading
  // zeros for AF_INET, unlike inet_aton ("127.1", "0x7f.1").
  if (inet_pton(AF_INET, address_copy.c_str(), bytes.data()) == 1) {
    is_v4 = true;
  } else if (inet_pton(AF_INET6, address_copy.c_str(), bytes.data()) == 1) {
    is_v4 = false;
  } else if (slash == absl::string_view::npos) {
    return Invalid(text, "not an IPv4 or IPv6 address");
  } else {
    return Invalid(text, absl::StrCat(Quote(address_text),
                                      " is not an IPv4 or IPv6 address"));
  }
  const int max_length = is_v4 ? 32 : 128;
  int prefix_length = max_length;
  if (slash != absl::string_view::npos) {
    const absl::string_view length_text = text.substr(slash + 1);
    if (length_text.empty()) return Invalid(text, "the prefix length is empty");
    if (!std::all_of(length_text.begin(), length_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return Invalid(text, absl::StrCat("prefix length ", Quote(length_text),
                                        " is not a decimal number"));
    }
    if (length_text.size() > 1 && length_text[0] == '0') {
      return Invalid(text, absl::StrCat("prefix length ", Quote(length_text),
                                        " has a leading zero"));
    }
    // Saturates, so a long run of digits cannot overflow.
    prefix_length = 0;
    for (char c : length_text) {
      prefix_length = std::min(prefix_length * 10 + (c - '0'), 1000);
    }
    if (prefix_length > max_length) {
      return Invalid(text, absl::StrCat("prefix length ", Quote(length_text),
                                        " is out of range 0..", max_length,
                                        " for ", is_v4 ? "IPv4" : "IPv6"));
    }
  }
  std::array<uint8_t, 16> masked = bytes;
  MaskTo(masked, prefix_length);
  const IpRange range(is_v4, masked, prefix_length);
  if (masked != bytes) {
    return Invalid(text,
                   absl::StrCat("bits are set after the /", prefix_length,
                                " prefix; the network is ", range.ToString()));
  }
  return range;
}

IpRange IpRange::FromPrefix(const asio::ip::address& address,
                            int prefix_length) {
  const bool is_v4 = address.is_v4();
  prefix_length = std::clamp(prefix_length, 0, is_v4 ? 32 : 128);
  std::array<uint8_t, 16> bytes = BytesOf(address);
  MaskTo(bytes, prefix_length);
  return IpRange(is_v4, bytes, prefix_length);
}

asio::ip::address IpRange::network() const {
  if (is_v4_) {
    return asio::ip::address_v4(asio::ip::address_v4::bytes_type{
        bytes_[0], bytes_[1], bytes_[2], bytes_[3]});
  }
  asio::ip::address_v6::bytes_type b;
  std::copy(bytes_.begin(), bytes_.end(), b.begin());
  return asio::ip::address_v6(b);
}

bool IpRange::Contains(const asio::ip::address& ip) const {
  if (ip.is_v4() != is_v4_) return false;
  std::array<uint8_t, 16> bytes = BytesOf(ip);
  MaskTo(bytes, prefix_length_);
  return bytes == bytes_;
}

std::string IpRange::ToString() const {
  return absl::StrCat(network().to_string(), "/", prefix_length_);
}

}  // namespace egress
