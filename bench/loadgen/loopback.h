// Loopback checks: the benchmark only ever sends traffic to this machine's
// loopback addresses (127.0.0.0/8, ::1, "localhost"), whatever a caller
// passes on the command line.
#ifndef EGRESS_BENCH_LOADGEN_LOOPBACK_H_
#define EGRESS_BENCH_LOADGEN_LOOPBACK_H_

#include <string>

namespace egress::bench {

// True for "127.x.y.z", "localhost", "::1" and "[::1]".
bool IsLoopbackHost(const std::string& host);
// True for "HOST:PORT" with a loopback HOST and a port in 1..65535.
bool IsLoopbackTarget(const std::string& host_port);
// True for "http://HOST[:PORT]/..." or "https://..." with a loopback HOST.
bool IsLoopbackUrl(const std::string& url);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_LOADGEN_LOOPBACK_H_
