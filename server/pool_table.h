// Human-readable rendering of PoolAdmin responses for egressctl: "pool"
// (GetPoolStats), "conns" (ListConnections), "leaks" (ListLeaks) and "watch"
// (WatchPoolEvents). Pure
// (no I/O, no gRPC calls, the current time passed in) so that the layouts are
// unit-tested.
//
// Tables share one layout: a header row of upper-case labels, columns two
// spaces apart, each as wide as its widest cell; text left-aligned, numbers
// and durations right-aligned; "-" for a cell with nothing to say. No line
// has trailing whitespace, and the text ends in a newline.
#ifndef EGRESS_SERVER_POOL_TABLE_H_
#define EGRESS_SERVER_POOL_TABLE_H_

#include <string>

#include "absl/time/time.h"
#include "proto/egress/v1/admin.pb.h"

namespace egress {

// Renders stats in blocks separated by a blank line:
//   the totals: "connections: ..." (open, idle, in use, connecting, opened
//     since start) and "requests: N in flight (M pending)"; then, only when
//     non-zero, "connect failures: N" and "leaks detected: N";
//   a table with one row per address, in the order given (egressd sends
//     them sorted): ADDRESS, CONNS, IDLE, IN USE, CONNECTING, PENDING,
//     IN FLIGHT, SERVED; "no open connections" instead when there are none;
//   "closed by reason:" and one indented, aligned line per reason with a
//     non-zero count, sorted by reason ("closed by reason: none" if none);
//   only if some count is non-zero, "rejected by limit:" in the same form;
//   the pool config (max idle connections, keep-alive).
std::string FormatPoolStats(const egress::v1::PoolStats& stats);

// Renders the connections of `connections` (all pages merged) as a table:
// ID, ADDRESS, REMOTE, LOCAL PORT, PROTO ("http/1.1", "h2"), TLS (version,
// plus "resumed" and "UNVERIFIED" when they apply; "-" for cleartext), STATE
// ("idle" when idle_since is set, else "in use"), STREAMS (allocations /
// allocation limit), AGE (now - created), IDLE FOR (now - idle_since, "-" in
// use), SERVED (success_count), NO NEW EXCHANGES (the reason, "-" if none).
// "no open connections" when empty. `end` is not looked at.
std::string FormatConnections(
    const egress::v1::ListConnectionsResponse& connections, absl::Time now);

// Renders leak reports as a table (CALL, METHOD, URL, AGE, BYTES, CONN,
// CALLER) followed by the total detected since start, which says how many
// the table shows when the ring no longer holds them all. Just
// "no leaks detected since start" when there are none.
std::string FormatLeaks(const egress::v1::ListLeaksResponse& leaks);

// The event stream of "watch", one line per event in fixed-width columns
// (a stream cannot be measured first): TIME (UTC, milliseconds, 24 wide),
// EVENT (14), CONN (the connection id, right-aligned, 6 at least), ADDRESS
// (28 at least), DETAIL. The header line, and each event's line; an event
// that says the watcher lost events before it is preceded by the line
// "... N event(s) lost: egressctl read too slowly". DETAIL: "new" or
// "reused" (acquired), "completed" or "failed" (released), the reason
// (closed, connect_failed), "call ID METHOD URL after AGE, BYTES bytes,
// caller PEER" (leak_detected); "-" when there is nothing to say.
std::string FormatPoolEventHeader();
std::string FormatPoolEvent(const egress::v1::PoolEvent& event);

// "opened", "acquired", "released", "idle", "closed", "connect_failed",
// "leak_detected" ("unknown" otherwise).
std::string EventKindName(egress::v1::PoolEvent::Kind kind);

// A duration for a table cell, short and with two significant units at
// most: "0.4s", "9.9s", "42s", "3m04s", "2h05m", "3d04h". Negative durations
// (clock skew between egressd and egressctl) show as "0s".
std::string FormatAge(absl::Duration d);

}  // namespace egress

#endif  // EGRESS_SERVER_POOL_TABLE_H_
