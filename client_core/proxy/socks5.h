// SOCKS5 client handshake (RFC 1928, with RFC 1929 username/password
// authentication): turns a TCP connection to a SOCKS5 proxy into a byte
// pipe to the target, for http:// and https:// alike (TLS runs over it as
// over a direct connection).
//
// The exchange:
//   1. greeting: the methods offered, "no authentication" (0x00) and, when
//      the proxy has credentials, "username/password" (0x02);
//   2. with 0x02 chosen: the RFC 1929 sub-negotiation;
//   3. CONNECT: by domain name (ATYP 3: the proxy resolves it, as curl's
//      socks5h://), or by address for an IP-literal target (ATYP 1 / 4);
//   4. the reply; its bound address is read and dropped, so no byte of the
//      tunnel is consumed.
// Every read takes exactly the bytes the protocol announces, so nothing the
// target sends early is lost.
//
// Errors (messages name the proxy as Proxy::Describe() and the target,
// never the credentials):
//   kPermissionDenied  the proxy accepts none of the offered methods, rejects
//                      the username/password, or refuses by its ruleset
//                      (reply 2): "SOCKS5 proxy 'corp' (socks5://p:1080)
//                      refused CONNECT to a.test:443: connection not allowed
//                      by ruleset (reply 2)";
//   kUnavailable       any other reply code ("... connection refused by
//                      destination (reply 5)"), a malformed or truncated
//                      answer, I/O errors;
//   kDeadlineExceeded  `deadline` passed; kCancelled: `abort` fired;
//   kInvalidArgument   a target host longer than 255 bytes or holding
//                      bytes no host has, or not a SOCKS5 proxy.
//
// Threading: runs on the socket's executor; the socket must not be used by
// anyone else meanwhile. On an error the socket is left open; the caller
// closes it.
#ifndef EGRESS_CLIENT_CORE_PROXY_SOCKS5_H_
#define EGRESS_CLIENT_CORE_PROXY_SOCKS5_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "client_core/net/call_abort.h"
#include "client_core/proxy/proxy_rules.h"

namespace egress {

// RFC 1928 section 6's words for a reply code: 1 "general SOCKS server
// failure", 2 "connection not allowed by ruleset", 3 "network unreachable",
// 4 "host unreachable", 5 "connection refused by destination", 6 "TTL
// expired", 7 "command not supported", 8 "address type not supported";
// others "unassigned reply code".
std::string_view Socks5ReplyName(uint8_t reply);

// Runs the handshake on `socket`, connected to `proxy` (a SOCKS5 proxy),
// for `target_host`:`target_port` (a host name or IP literal, IPv6 without
// brackets). OK: the socket now carries bytes to and from the target.
asio::awaitable<absl::Status> Socks5Connect(asio::ip::tcp::socket& socket,
                                            const Proxy& proxy,
                                            const std::string& target_host,
                                            uint16_t target_port,
                                            absl::Time deadline,
                                            CallAbort* abort = nullptr);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_PROXY_SOCKS5_H_
