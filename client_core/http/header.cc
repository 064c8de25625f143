#include "client_core/http/header.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace egress {
namespace {

// Debian's Abseil is built with its own absl::string_view, which does not
// convert from std::string_view implicitly.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

bool IsTchar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// RFC 9110 OWS is spaces and tabs only; absl's whitespace stripping would also
// eat CR, LF, VT and FF, which are not list separators.
std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Describes a byte for an error message without putting it there raw: a CR or
// LF copied into a log line would forge log entries.
std::string DescribeByte(unsigned char c) {
  switch (c) {
    case '\r':
      return "a CR (0x0d)";
    case '\n':
      return "an LF (0x0a)";
    case '\0':
      return "a NUL (0x00)";
    case ' ':
      return "a space (0x20)";
    default:
      break;
  }
  if (c > 0x20 && c < 0x7f) return absl::StrFormat("'%c' (0x%02x)", c, c);
  return absl::StrFormat("byte 0x%02x", c);
}

// Header names are not secret, but a rejected one is caller input: escape it
// and cap its length before it reaches a log line.
std::string QuoteName(std::string_view name) {
  constexpr size_t kMaxEcho = 64;
  if (name.size() > kMaxEcho) {
    return absl::StrCat("'", absl::CHexEscape(AsAbsl(name.substr(0, kMaxEcho))),
                        "...'");
  }
  return absl::StrCat("'", absl::CHexEscape(AsAbsl(name)), "'");
}

}  // namespace

std::optional<std::string_view> FindHeader(const HeaderList& headers,
                                           std::string_view name) {
  for (const HeaderField& field : headers) {
    if (absl::EqualsIgnoreCase(field.name, AsAbsl(name))) return field.value;
  }
  return std::nullopt;
}

bool HeaderHasToken(const HeaderList& headers, std::string_view name,
                    std::string_view token) {
  // Empty list elements are legal and ignored (RFC 9110 5.6.1), so an empty
  // token must not match them.
  if (token.empty()) return false;
  for (const HeaderField& field : headers) {
    if (!absl::EqualsIgnoreCase(field.name, AsAbsl(name))) continue;
    std::string_view rest = field.value;
    while (true) {
      const size_t comma = rest.find(',');
      if (absl::EqualsIgnoreCase(AsAbsl(TrimOws(rest.substr(0, comma))),
                                 AsAbsl(token))) {
        return true;
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool IsHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

absl::Status ValidateHeaderField(std::string_view name,
                                 std::string_view value) {
  if (name.empty()) return absl::InvalidArgumentError("header name is empty");
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsTchar(name[i])) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "header name %s contains %s at offset %d; a name must be a token",
          QuoteName(name), DescribeByte(static_cast<unsigned char>(name[i])),
          i));
    }
  }
  // RFC 9110 5.5: field-value = *( field-vchar / SP / HTAB ), field-vchar
  // = VCHAR / obs-text. Every other byte (the controls but HTAB, and DEL)
  // is refused, not only those that split lines: an origin or proxy may
  // read them as separators.
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "header %s value contains %s at offset %d", QuoteName(name),
          DescribeByte(static_cast<unsigned char>(c)), i));
    }
  }
  return absl::OkStatus();
}

}  // namespace egress
