#include "client_core/url/url.h"

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace egress {
namespace {

// Debian's Abseil is built with its own absl::string_view, which does not
// convert from std::string_view implicitly.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// Echoed fragments (scheme, port) come from caller input; a cap keeps a
// pathological URL from turning into a pathological log line.
constexpr size_t kMaxEcho = 32;

std::string Echo(std::string_view s) {
  if (s.size() <= kMaxEcho) return std::string(s);
  return absl::StrCat(AsAbsl(s.substr(0, kMaxEcho)), "...");
}

bool IsUnreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsSubDelim(char c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

bool IsPchar(char c) {
  return IsUnreserved(c) || IsSubDelim(c) || c == ':' || c == '@';
}

bool IsHexDigit(char c) {
  return absl::ascii_isxdigit(static_cast<unsigned char>(c));
}

bool IsDigit(char c) {
  return absl::ascii_isdigit(static_cast<unsigned char>(c));
}

absl::Status MalformedEscape(size_t offset) {
  // The bytes after '%' are not echoed: they may belong to a query token.
  return absl::InvalidArgumentError(absl::StrFormat(
      "URL has a malformed percent-escape at offset %d ('%%' must be followed "
      "by two hex digits)",
      offset));
}

// Checks text[begin, end) against RFC 3986's path / query / fragment grammar.
// `part` names the component in the message.
absl::Status ValidateTail(std::string_view text, size_t begin, size_t end,
                          std::string_view part, bool allow_question_mark) {
  for (size_t i = begin; i < end; ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= end || !IsHexDigit(text[i + 1]) ||
          !IsHexDigit(text[i + 2])) {
        return MalformedEscape(i);
      }
      i += 2;
      continue;
    }
    if (IsPchar(c) || c == '/' || (allow_question_mark && c == '?')) continue;
    // Safe to echo: the whole-URL scan already rejected anything that is not
    // printable ASCII.
    return absl::InvalidArgumentError(
        absl::StrFormat("URL %s has an invalid character '%c' at offset %d; "
                        "percent-encode it",
                        part, c, i));
  }
  return absl::OkStatus();
}

// Spaces, controls and non-ASCII bytes cannot be sent on a request line as
// they are, and guessing an encoding would send something the caller did not
// write; later checks rely on this to echo single characters safely.
absl::Status ValidateBytes(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL contains a space at offset %d; percent-encode it", i));
    }
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL contains a control character (0x%02x) at offset %d", c, i));
    }
    if (c >= 0x80) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL contains a non-ASCII byte (0x%02x) at offset %d; "
          "percent-encode it",
          c, i));
    }
  }
  return absl::OkStatus();
}

// A strict RFC 3986 dec-octet: 0..255 without leading zeros.
bool ParseDecOctet(std::string_view s) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  if (s.size() > 1 && s[0] == '0') return false;
  int value = 0;
  for (char c : s) value = value * 10 + (c - '0');
  return value <= 255;
}

bool IsDottedDecimalIpv4(std::string_view s) {
  int parts = 0;
  while (true) {
    const size_t dot = s.find('.');
    if (!ParseDecOctet(s.substr(0, dot))) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

// Resolvers parse inet_aton forms ("127.1", "0x7f.0.0.1", "2130706433") as
// addresses, so a host whose last label is a number would reach an address
// its text does not show. Such hosts must be plain dotted decimal instead
// (the same trigger WHATWG URL uses); real TLDs are never numeric.
bool LooksNumeric(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  const size_t dot = host.rfind('.');
  std::string_view label =
      dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (label.empty()) return false;
  if (label.size() >= 2 && label[0] == '0' &&
      (label[1] == 'x' || label[1] == 'X')) {
    for (char c : label.substr(2)) {
      if (!IsHexDigit(c)) return false;
    }
    return true;
  }
  for (char c : label) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// Lower-cases a reg-name but upper-cases percent-escape hex digits, the
// normal forms of RFC 3986 section 6.2.2.1, so equal hosts compare equal
// (connection pooling keys on the host).
std::string NormaliseRegName(std::string_view host) {
  std::string out(host);
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '%') {
      out[i + 1] = absl::ascii_toupper(static_cast<unsigned char>(out[i + 1]));
      out[i + 2] = absl::ascii_toupper(static_cast<unsigned char>(out[i + 2]));
      i += 2;
    } else {
      out[i] = absl::ascii_tolower(static_cast<unsigned char>(out[i]));
    }
  }
  return out;
}

// Parses the host of text[begin, end) (an IP literal's brackets included)
// into `url`.
absl::Status ParseHost(std::string_view text, size_t begin, size_t end,
                       Url& url) {
  if (begin == end) return absl::InvalidArgumentError("URL host is empty");
  const std::string_view host = text.substr(begin, end - begin);

  if (host.front() == '[') {
    const std::string_view literal = host.substr(1, host.size() - 2);
    if (literal.empty()) {
      return absl::InvalidArgumentError(
          "URL host is an empty IPv6 literal '[]'");
    }
    if (literal.front() == 'v' || literal.front() == 'V') {
      return absl::InvalidArgumentError(
          "URL host is an IPvFuture literal ('[v...]'), which is not "
          "supported");
    }
    if (const size_t pct = literal.find('%'); pct != std::string_view::npos) {
      // A zone names an interface of the sending host; it has no meaning to
      // egressd's peers and RFC 3986 has no syntax for it.
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL IPv6 literal has a zone identifier at offset %d, which is not "
          "supported",
          begin + 1 + pct));
    }
    // inet_pton needs a NUL-terminated string; the literal has no NUL since
    // ValidateBytes rejected controls.
    const std::string copy(literal);
    in6_addr addr;
    if (inet_pton(AF_INET6, copy.c_str(), &addr) != 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL host '[%s]' is not a valid IPv6 address", Echo(literal)));
    }
    url.host = absl::AsciiStrToLower(AsAbsl(literal));
    url.host_is_ipv6 = true;
    return absl::OkStatus();
  }

  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (c == '%') {
      if (i + 2 >= host.size() || !IsHexDigit(host[i + 1]) ||
          !IsHexDigit(host[i + 2])) {
        return MalformedEscape(begin + i);
      }
      i += 2;
      continue;
    }
    if (IsUnreserved(c) || IsSubDelim(c)) continue;
    return absl::InvalidArgumentError(absl::StrFormat(
        "URL host has an invalid character '%c' at offset %d", c, begin + i));
  }
  if (LooksNumeric(host) && !IsDottedDecimalIpv4(host)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "URL host '%s' looks numeric but is not a dotted-decimal IPv4 address "
        "(four numbers 0..255 without leading zeros)",
        Echo(host)));
  }
  url.host = NormaliseRegName(host);
  url.host_is_ipv6 = false;
  return absl::OkStatus();
}

absl::Status ParsePort(std::string_view port, Url& url) {
  // RFC 3986 allows an empty port and makes it equivalent to the default
  // (section 6.2.3), so "http://h:/" is the same URL as "http://h/".
  if (port.empty()) {
    url.port = url.DefaultPort();
    return absl::OkStatus();
  }
  uint32_t value = 0;
  for (char c : port) {
    if (!IsDigit(c)) {
      // Not echoed: in "http://user:pass/word@host" the "port" is part of a
      // password, since the authority ends at the first '/'.
      return absl::InvalidArgumentError("URL port is not a decimal number");
    }
    // Saturate rather than overflow; anything past 65535 fails alike.
    if (value <= 65535) value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value < 1 || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("URL port '%s' is out of range 1..65535", Echo(port)));
  }
  url.port = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

}  // namespace

uint16_t Url::DefaultPort() const { return scheme == "https" ? 443 : 80; }

std::string Url::Authority() const {
  std::string out = host_is_ipv6 ? absl::StrCat("[", host, "]") : host;
  if (port != DefaultPort()) absl::StrAppend(&out, ":", port);
  return out;
}

std::string Url::ToString() const {
  return absl::StrCat(scheme, "://", Authority(), path_and_query);
}

std::string Url::Redacted() const {
  const std::string_view target = path_and_query;
  return absl::StrCat(scheme, "://", Authority(),
                      AsAbsl(target.substr(0, target.find('?'))));
}

absl::StatusOr<Url> ParseUrl(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("URL is empty");
  if (absl::Status s = ValidateBytes(text); !s.ok()) return s;

  // scheme ":" -- a ':' only counts before any '/', '?' or '#' (RFC 3986
  // section 4.2: otherwise the text is a relative reference).
  const size_t colon = text.find_first_of(":/?#");
  if (colon == std::string_view::npos || text[colon] != ':') {
    return absl::InvalidArgumentError(
        "URL is not absolute (no scheme); expected 'http://' or 'https://'");
  }
  if (colon == 0) return absl::InvalidArgumentError("URL scheme is empty");
  const std::string_view raw_scheme = text.substr(0, colon);
  for (size_t i = 0; i < raw_scheme.size(); ++i) {
    const char c = raw_scheme[i];
    const bool ok = absl::ascii_isalpha(static_cast<unsigned char>(c)) ||
                    (i > 0 && (IsDigit(c) || c == '+' || c == '-' || c == '.'));
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL scheme has an invalid character '%c' at offset %d", c, i));
    }
  }
  Url url;
  url.scheme = absl::AsciiStrToLower(AsAbsl(raw_scheme));
  const std::string_view rest = text.substr(colon + 1);
  if (url.scheme != "http" && url.scheme != "https") {
    // "alice:secret@host" parses as scheme "alice"; echoing the scheme then
    // would be fine, but say what it looks like so the caller fixes the
    // credentials rather than the scheme.
    const std::string_view head = rest.substr(0, rest.find_first_of("/?#"));
    if (rest.substr(0, 2) != "//" && head.find('@') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          "URL has no http or https scheme and looks like userinfo "
          "('user:password@'); send credentials in a header instead");
    }
    return absl::InvalidArgumentError(
        absl::StrFormat("URL has unsupported scheme '%s' (only http and https)",
                        Echo(raw_scheme)));
  }
  if (rest.substr(0, 2) != "//") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "URL has no authority: expected '//' after '%s:'", url.scheme));
  }

  const size_t auth_begin = colon + 3;
  size_t auth_end = text.find_first_of("/?#", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = text.size();
  const std::string_view authority =
      text.substr(auth_begin, auth_end - auth_begin);
  // Checked before anything else in the authority, so no later message can
  // quote part of a password as a host or port.
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "URL has userinfo ('user@'); send credentials in a header instead");
  }

  size_t host_end;  // Offset in `text` just past the host.
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL has an unterminated IPv6 literal: '[' at offset %d has no ']'",
          auth_begin));
    }
    host_end = auth_begin + close + 1;
    if (host_end != auth_end && text[host_end] != ':') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL has an unexpected character '%c' at offset %d after the IPv6 "
          "literal (expected ':port' or the path)",
          text[host_end], host_end));
    }
  } else {
    const size_t port_colon = authority.find(':');
    host_end = port_colon == std::string_view::npos ? auth_end
                                                    : auth_begin + port_colon;
  }
  if (absl::Status s = ParseHost(text, auth_begin, host_end, url); !s.ok()) {
    return s;
  }
  if (host_end == auth_end) {
    url.port = url.DefaultPort();
  } else if (absl::Status s = ParsePort(
                 text.substr(host_end + 1, auth_end - host_end - 1), url);
             !s.ok()) {
    return s;
  }

  const size_t fragment = text.find('#', auth_end);
  const size_t target_end =
      fragment == std::string_view::npos ? text.size() : fragment;
  const size_t query = text.find('?', auth_end);
  const size_t path_end = query == std::string_view::npos || query > target_end
                              ? target_end
                              : query;
  if (absl::Status s = ValidateTail(text, auth_end, path_end, "path",
                                    /*allow_question_mark=*/false);
      !s.ok()) {
    return s;
  }
  if (path_end < target_end) {
    if (absl::Status s = ValidateTail(text, path_end + 1, target_end, "query",
                                      /*allow_question_mark=*/true);
        !s.ok()) {
      return s;
    }
  }
  // The fragment is never sent, but a malformed one still means the caller
  // built the URL wrongly; strictness here costs nothing.
  if (fragment != std::string_view::npos) {
    if (absl::Status s = ValidateTail(text, fragment + 1, text.size(),
                                      "fragment", /*allow_question_mark=*/true);
        !s.ok()) {
      return s;
    }
  }

  const std::string_view target = text.substr(auth_end, target_end - auth_end);
  url.path_and_query = target.empty() || target.front() != '/'
                           ? absl::StrCat("/", AsAbsl(target))
                           : std::string(target);
  return url;
}

}  // namespace egress
