#include "client_core/call/request_limits.h"

#include "absl/strings/str_cat.h"

namespace egress {
namespace {

absl::Status Over(const char* what, uint64_t size, const char* unit,
                  uint64_t limit, const char* name) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "request ", what, " ", size, " ", unit, ", over the limit of ", limit,
      " (", name, ")"));
}

}  // namespace

absl::Status CheckRequestLimits(const Request& request,
                                const RequestLimits& limits) {
  if (limits.max_url_bytes > 0) {
    // scheme "://" [ "[" ] host [ "]" ] [ ":" port ] path-and-query, as
    // Url::ToString writes it, counted without building it.
    const Url& url = request.url;
    size_t port_bytes = 0;
    if (url.port != url.DefaultPort()) {
      port_bytes = 2;  // ':' and the first digit
      for (unsigned p = url.port; p >= 10; p /= 10) ++port_bytes;
    }
    const size_t size = url.scheme.size() + 3 + url.host.size() +
                        (url.host_is_ipv6 ? 2 : 0) + port_bytes +
                        url.path_and_query.size();
    if (size > limits.max_url_bytes) {
      return Over("URL is", size, "bytes", limits.max_url_bytes,
                  "max_request_url_bytes");
    }
  }
  if (limits.max_header_count > 0 &&
      request.headers.size() > limits.max_header_count) {
    return Over("has", request.headers.size(), "header fields",
                limits.max_header_count, "max_request_header_count");
  }
  if (limits.max_header_bytes > 0) {
    uint64_t bytes = 0;
    for (const HeaderField& field : request.headers) {
      bytes += field.name.size() + 2 + field.value.size() + 2;
    }
    if (bytes > limits.max_header_bytes) {
      return Over("header section is", bytes, "bytes",
                  limits.max_header_bytes, "max_request_header_bytes");
    }
  }
  if (limits.max_body_bytes > 0 && request.body.size() > limits.max_body_bytes) {
    return Over("body is", request.body.size(), "bytes", limits.max_body_bytes,
                "max_request_body_bytes");
  }
  return absl::OkStatus();
}

}  // namespace egress
