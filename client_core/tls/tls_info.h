// TlsInfo: what a completed TLS handshake established, for the admin RPC,
// for coalescing (does the certificate cover another host?) and for metrics.
//
// Immutable after the handshake; shared (shared_ptr<const TlsInfo>) and safe
// to read from any thread.
#ifndef EGRESS_CLIENT_CORE_TLS_TLS_INFO_H_
#define EGRESS_CLIENT_CORE_TLS_TLS_INFO_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

typedef struct x509_st X509;

namespace egress {

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_128_GCM_SHA256"
  // The ALPN protocol the server selected: "h2", "http/1.1", or empty.
  std::string alpn;
  // The handshake resumed an earlier session (no full handshake).
  bool session_resumed = false;
  // Whether the peer's certificate was verified (false only for a
  // destination configured with verification off).
  bool verified = false;
  // The leaf certificate's subject ("CN=example.com,O=...") and expiry.
  std::string peer_subject;
  absl::Time peer_not_after = absl::InfinitePast();
  // The leaf certificate itself (X509_up_ref'd; freed with the TlsInfo).
  std::shared_ptr<X509> peer_certificate;

  // True when the peer's certificate is valid for `host` (a DNS name or an
  // IP literal), by the rules of hostname verification (RFC 6125: SANs,
  // wildcards in the left-most label only). False without a certificate.
  // HTTP/2 coalescing uses it.
  bool CertificateCovers(absl::string_view host) const;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_TLS_TLS_INFO_H_
