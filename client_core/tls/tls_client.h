// TlsClient: egressd's TLS client side. Builds one OpenSSL context per
// destination rule (trust, TLS policy, client certificate), runs handshakes
// over connected TCP sockets, keeps TLS sessions per address for resumption,
// and names every failure.
//
// A handshake (Handshake()):
//   - SNI with the host name (not for IP literals);
//   - ALPN per the destination's HttpProtocols: "h2,http/1.1", "http/1.1" or
//     "h2";
//   - verification (unless the destination turned it off): the chain against
//     the system trust store and/or the destination's CA file, and the host
//     name against the certificate's DNS SANs, or an IP literal against its IP
//     SANs;
//   - resumption: the last session the address's server gave us (TLS 1.3
//     tickets or a TLS 1.2 session) is offered.
//
// Failures are kUnavailable with a message naming the cause, and are counted
// by TlsFailure.
//
// Thread-safety: every method is thread-safe; one TlsClient serves every
// event loop. Handshake() runs on the socket's executor.
#ifndef EGRESS_CLIENT_CORE_TLS_TLS_CLIENT_H_
#define EGRESS_CLIENT_CORE_TLS_TLS_CLIENT_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/ssl/context.hpp"
#include "client_core/base/sync.h"
#include "client_core/connection/address.h"
#include "client_core/net/call_abort.h"
#include "client_core/net/transport.h"
#include "client_core/tls/destination.h"

typedef struct ssl_session_st SSL_SESSION;

namespace egress {

// Why a handshake failed; counted, and named in metrics as TlsFailureName.
enum class TlsFailure {
  kUntrustedIssuer,   // chain does not lead to a trusted CA (or self-signed)
  kExpired,           // a certificate's notAfter has passed
  kNotYetValid,       // a certificate's notBefore is in the future
  kHostnameMismatch,  // the certificate does not cover the host / IP
  kCertificateInvalid,  // another verification failure (bad signature, ...)
  kProtocolVersion,   // no TLS version in common
  kAlpn,              // h2 required and not selected
  kHandshakeFailure,  // anything else: alerts, resets, timeouts mid-handshake
};
inline constexpr size_t kTlsFailureCount = 8;
// "untrusted_issuer", "expired", "not_yet_valid", "hostname_mismatch",
// "certificate_invalid", "protocol_version", "alpn", "handshake_failure".
std::string_view TlsFailureName(TlsFailure failure);

struct TlsStats {
  uint64_t handshakes = 0;  // completed
  uint64_t resumed = 0;     // of which resumed a session
  std::array<uint64_t, kTlsFailureCount> failures{};
};

class TlsClient {
 public:
  // Loads every rule's trust store and client certificate. Fails with
  // kInvalidArgument naming the rule and the file when one cannot be read.
  static absl::StatusOr<std::unique_ptr<TlsClient>> Create(
      DestinationRules rules);
  ~TlsClient();

  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  const DestinationRules& rules() const { return rules_; }

  // The result of a handshake.
  struct Handshaken {
    std::unique_ptr<Transport> transport;
    absl::Duration handshake_time;
  };

  // Runs the TLS handshake for `address` over `socket` (connected to
  // `remote_ip`). Ends at the earlier of `deadline` and the destination's
  // handshake_timeout (kDeadlineExceeded when `deadline` was the one), or
  // when `abort` fires (kCancelled). On failure the socket is closed.
  // Message: "TLS handshake with https://a.test:443 (127.0.0.1:443) failed:
  // certificate has expired".
  asio::awaitable<absl::StatusOr<Handshaken>> Handshake(
      asio::ip::tcp::socket socket, const Address& address,
      std::string remote_address, absl::Time deadline,
      CallAbort* abort = nullptr);

  TlsStats stats() const;

 private:
  struct Context;
  explicit TlsClient(DestinationRules rules);
  // The session cache's key for an address: "host:port".
  static std::string SessionKey(const Address& address);
  // OpenSSL's new-session callback (installed on every context).
  static int OnNewSession(struct ssl_st* ssl, SSL_SESSION* session);
  void StoreSession(const std::string& key, SSL_SESSION* session)
      ABSL_LOCKS_EXCLUDED(sessions_mu_);
  // A reference the caller must SSL_SESSION_free, or null.
  SSL_SESSION* TakeSessionRef(const std::string& key)
      ABSL_LOCKS_EXCLUDED(sessions_mu_);
  void CountFailure(TlsFailure failure);

  const DestinationRules rules_;
  // One per rules_ index.
  std::vector<std::unique_ptr<Context>> contexts_;

  mutable Mutex sessions_mu_;
  // Latest session per address; bounded (oldest dropped past kMaxSessions).
  absl::flat_hash_map<std::string, SSL_SESSION*> sessions_
      ABSL_GUARDED_BY(sessions_mu_);
  static constexpr size_t kMaxSessions = 4096;

  std::atomic<uint64_t> handshakes_{0};
  std::atomic<uint64_t> resumed_{0};
  std::array<std::atomic<uint64_t>, kTlsFailureCount> failures_{};
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_TLS_TLS_CLIENT_H_
