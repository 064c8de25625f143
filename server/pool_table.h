// Human-readable rendering of PoolAdmin.GetPoolStats for egressctl's "pool"
// command. Pure (no I/O, no gRPC calls) so that the layout is unit-tested.
#ifndef EGRESS_SERVER_POOL_TABLE_H_
#define EGRESS_SERVER_POOL_TABLE_H_

#include <string>

#include "proto/egress/v1/admin.pb.h"

namespace egress {

// Renders stats as text ending in a newline, in four blocks separated by a
// blank line:
//   a totals line: open connections, idle, in use, opened since start;
//   a table with one row per address, in the order given (egressd sends
//     them sorted): ADDRESS left-aligned, CONNS, IDLE, IN USE and SERVED
//     right-aligned, columns two spaces apart, each as wide as its widest
//     cell; "no open connections" instead when there are no addresses;
//   "closed by reason:" and one indented, aligned line per reason with a
//     non-zero count, sorted by reason ("closed by reason: none" if none);
//   the pool config (max idle connections, keep-alive).
// No line has trailing whitespace.
std::string FormatPoolStats(const egress::v1::PoolStats& stats);

}  // namespace egress

#endif  // EGRESS_SERVER_POOL_TABLE_H_
