#include "client_core/http1/request_writer.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client_core/http/header.h"
#include "client_core/http/request.h"

namespace egress {
namespace {

// Framing and connection reuse are egressd's: a caller's Content-Length or
// Transfer-Encoding could desynchronise the connection (request smuggling),
// and hop-by-hop headers would override the pool's reuse decisions.
constexpr std::string_view kManagedHeaders[] = {
    "Host",       "Content-Length",   "Transfer-Encoding",
    "Connection", "Keep-Alive",       "Upgrade",
    "TE",         "Proxy-Connection",
};

// Debian's Abseil has its own absl::string_view, which std::string_view does
// not convert to implicitly.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

bool IsManagedHeader(std::string_view name) {
  for (std::string_view managed : kManagedHeaders) {
    if (absl::EqualsIgnoreCase(AsAbsl(name), AsAbsl(managed))) return true;
  }
  return false;
}

// Offset of the first byte that cannot appear in a request line or Host
// value (space, control, non-ASCII), or npos. Url normally guarantees there
// is none, but a hand-built Url must not be able to split the request.
size_t FindUnsafeByte(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c <= 0x20 || c >= 0x7f) return i;
  }
  return std::string_view::npos;
}

bool AlwaysSendsContentLength(std::string_view method) {
  // Methods are case-sensitive (RFC 9110 9.1). A server may expect a body
  // for these and wait for one unless told its length is 0.
  return method == "POST" || method == "PUT" || method == "PATCH";
}

}  // namespace

bool IsConnectionClose(const HeaderField& field) {
  return absl::EqualsIgnoreCase(AsAbsl(field.name), "Connection") &&
         absl::EqualsIgnoreCase(
             absl::StripAsciiWhitespace(AsAbsl(field.value)), "close");
}

absl::Status ValidateRequest(const Request& request) {
  if (request.method.empty()) {
    return absl::InvalidArgumentError("request method is empty");
  }
  if (!IsHttpToken(request.method)) {
    return absl::InvalidArgumentError("request method is not an HTTP token");
  }
  const std::string_view target = request.url.path_and_query;
  if (target.empty() || target.front() != '/') {
    return absl::InvalidArgumentError("request target does not start with '/'");
  }
  if (const size_t i = FindUnsafeByte(target); i != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request target contains byte 0x%02x at offset %d",
                        static_cast<unsigned char>(target[i]), i));
  }
  if (request.url.host.empty()) {
    return absl::InvalidArgumentError("request URL has no host");
  }
  if (const size_t i = FindUnsafeByte(request.url.host);
      i != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request host contains byte 0x%02x at offset %d",
                        static_cast<unsigned char>(request.url.host[i]), i));
  }
  for (const HeaderField& field : request.headers) {
    if (absl::Status status = ValidateHeaderField(field.name, field.value);
        !status.ok()) {
      return status;
    }
    // A caller may ask for the connection to be closed after its request
    // (the one Connection value that cannot upset the pool's reuse rules).
    if (IsConnectionClose(field)) continue;
    // egressd authenticates to its proxies itself; a caller's credentials
    // would go to whichever proxy or origin reads them.
    if (absl::EqualsIgnoreCase(AsAbsl(field.name), "Proxy-Authorization")) {
      return absl::InvalidArgumentError(
          "header 'Proxy-Authorization' cannot be set: egressd authenticates "
          "to its proxies with the credentials of its configuration "
          "(proxy.proxies[].username)");
    }
    // The name is a token by now, safe to quote.
    if (IsManagedHeader(field.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "header '", field.name, "' is managed by egressd and cannot be set"));
    }
  }
  return absl::OkStatus();
}

std::string SerializeRequestHead(const Request& request) {
  std::string out;
  size_t size = request.method.size() + request.url.path_and_query.size() +
                request.url.host.size() + 64;
  for (const HeaderField& field : request.headers) {
    size += field.name.size() + field.value.size() + 4;
  }
  out.reserve(size);

  absl::StrAppend(&out, request.method, " ", request.url.path_and_query,
                  " HTTP/1.1\r\nHost: ", request.url.Authority(), "\r\n");
  for (const HeaderField& field : request.headers) {
    absl::StrAppend(&out, field.name, ": ", field.value, "\r\n");
  }
  if (!request.body.empty() || AlwaysSendsContentLength(request.method)) {
    absl::StrAppend(&out, "Content-Length: ", request.body.size(), "\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace egress
