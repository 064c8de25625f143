#include "bench/h2load_fetch/fetch_body.h"

#include <cstdint>
#include <string>

namespace egress::bench {

std::string EncodeFetchBody(const v1::FetchRequest& request) {
  const std::string message = request.SerializeAsString();
  const uint32_t n = static_cast<uint32_t>(message.size());
  std::string body;
  body.reserve(5 + message.size());
  body.push_back('\0');  // not compressed
  body.push_back(static_cast<char>(n >> 24));
  body.push_back(static_cast<char>(n >> 16));
  body.push_back(static_cast<char>(n >> 8));
  body.push_back(static_cast<char>(n));
  body += message;
  return body;
}

}  // namespace egress::bench
