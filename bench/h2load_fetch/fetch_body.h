// The body of one gRPC Fetch call as it travels in HTTP/2 DATA frames: the
// gRPC length prefix (1 byte "compressed" flag = 0, 4 bytes big-endian
// message length) followed by the serialized FetchRequest. Sent with
// `content-type: application/grpc` and `te: trailers` to
// /egress.v1.Fetcher/Fetch, it is a complete unary call that a generic
// HTTP/2 client (h2load, the loadgen's h2c driver) can replay.
#ifndef EGRESS_BENCH_H2LOAD_FETCH_FETCH_BODY_H_
#define EGRESS_BENCH_H2LOAD_FETCH_FETCH_BODY_H_

#include <string>

#include "proto/egress/v1/fetch.pb.h"

namespace egress::bench {

// The :path of the Fetch method.
inline constexpr char kFetchPath[] = "/egress.v1.Fetcher/Fetch";

// Length-prefixed, uncompressed gRPC message for `request`.
std::string EncodeFetchBody(const v1::FetchRequest& request);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_H2LOAD_FETCH_FETCH_BODY_H_
