// HTTP header fields as egressd carries them between the caller and the origin.
//
// A header list keeps order and repeats (Set-Cookie may appear several times),
// so it is a vector, never a map. Names compare case-insensitively (RFC 9110
// section 5.1); the spelling given is kept on the wire.
#ifndef EGRESS_CLIENT_CORE_HTTP_HEADER_H_
#define EGRESS_CLIENT_CORE_HTTP_HEADER_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace egress {

struct HeaderField {
  std::string name;
  std::string value;
};

using HeaderList = std::vector<HeaderField>;

// The value of the first field named `name` (case-insensitive), if any.
std::optional<std::string_view> FindHeader(const HeaderList& headers,
                                           std::string_view name);

// True when a comma-separated header (e.g. Connection) named `name` holds
// `token` as one of its elements, case-insensitively. Looks at every field of
// that name.
bool HeaderHasToken(const HeaderList& headers, std::string_view name,
                    std::string_view token);

// True for an RFC 9110 token (method names, header names): one or more of
// ALPHA DIGIT and !#$%&'*+-.^_`|~.
bool IsHttpToken(std::string_view s);

// OK when `name` is a token and `value` is an RFC 9110 field-value: no
// control byte but HTAB, no DEL (CR, LF and NUL would let a caller inject
// header lines: request smuggling; the others are read as separators by
// some servers). obs-text (0x80-0xFF) is legal. The message names the header
// and the offending byte; a value is never echoed, it may hold a secret.
absl::Status ValidateHeaderField(std::string_view name, std::string_view value);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP_HEADER_H_
