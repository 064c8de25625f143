#include "client_core/tls/tls_info.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include <string>


namespace egress {

bool TlsInfo::CertificateCovers(absl::string_view host) const {
  if (peer_certificate == nullptr || host.empty()) return false;
  const std::string name(host);
  // An IP literal matches only an IP SAN; a name only DNS SANs (wildcards in
  // the left-most label, never partial: X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS).
  if (X509_check_ip_asc(peer_certificate.get(), name.c_str(), 0) == 1) {
    return true;
  }
  unsigned char ip[16];
  if (inet_pton(AF_INET, name.c_str(), ip) == 1 ||
      inet_pton(AF_INET6, name.c_str(), ip) == 1) {
    return false;  // an IP literal is never matched by a DNS SAN
  }
  return X509_check_host(peer_certificate.get(), name.data(), name.size(),
                         X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
                             X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                         nullptr) == 1;
}

}  // namespace egress
