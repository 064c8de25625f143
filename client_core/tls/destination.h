// Destination options: how egressd talks to one origin host — TLS
// verification and trust, the TLS policy (OkHttp's ConnectionSpec), a client
// certificate, the HTTP protocols to use — chosen by host name rules.
//
// Safe by default: a host no rule names gets the defaults (verification on
// against the system trust store, modern TLS, ALPN h2 + http/1.1). Turning
// verification off takes an explicit rule naming the destination; egressd
// logs every such rule at start-up.
//
// Because the options depend only on the host, two requests with the same
// Address always get the same options: the pool key needs nothing more.
//
// Thread-safety: immutable after construction; share freely.
#ifndef EGRESS_CLIENT_CORE_TLS_DESTINATION_H_
#define EGRESS_CLIENT_CORE_TLS_DESTINATION_H_

#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/policy/cidr.h"

namespace egress {

// Which TLS versions and cipher suites are offered (OkHttp's ConnectionSpec).
enum class TlsSpec {
  // TLS 1.2 and 1.3; TLS 1.2 only with ECDHE key exchange and AEAD ciphers
  // (AES-GCM, ChaCha20-Poly1305). The default.
  kModern,
  // TLS 1.0 and later with OpenSSL's whole default suite list at security
  // level 0, for legacy origins; an explicit opt-in per destination.
  kCompatible,
};

// Which HTTP protocol to speak.
enum class HttpProtocols {
  // https: ALPN offers h2 and http/1.1, the server chooses. http: HTTP/1.1.
  kAuto,
  // HTTP/1.1 only (ALPN offers http/1.1 alone).
  kHttp11,
  // https: h2 only (ALPN offers h2; a server that does not select it fails
  // the connect). http: h2c with prior knowledge (RFC 9113 section 3.3).
  kHttp2,
};

std::string_view TlsSpecName(TlsSpec spec);          // "modern", "compatible"
std::string_view HttpProtocolsName(HttpProtocols p);  // "auto", "http1", "h2"
absl::StatusOr<TlsSpec> ParseTlsSpec(absl::string_view name);
absl::StatusOr<HttpProtocols> ParseHttpProtocols(absl::string_view name);

struct DestinationOptions {
  // Verify the server's certificate chain and host name. Off only by an
  // explicit rule.
  bool verify = true;
  // Extra trust anchors (PEM file), in addition to the system trust store
  // (or instead of it, with trust_system_store off).
  std::string ca_file;
  bool trust_system_store = true;
  // Client certificate chain and key (PEM files) for mutual TLS.
  std::string client_cert_file;
  std::string client_key_file;
  TlsSpec spec = TlsSpec::kModern;
  HttpProtocols protocols = HttpProtocols::kAuto;
  // Whether http:// (cleartext) requests may go to this destination at all.
  bool allow_cleartext = true;
  // Bound on the TLS handshake; the call's deadline caps it too. Default
  // 10 s, as the connect timeout.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

// Which hosts a rule covers: an exact host name (case-insensitive), a
// domain suffix ("example.com" covers example.com and every name under it),
// or a range of IP literals (a URL naming an IP in it; host names never
// match it: this is about the URL, before DNS).
struct DestinationRule {
  std::string host;
  std::string domain_suffix;
  std::optional<IpRange> cidr;
  DestinationOptions options;
  // For logs and errors: "host a.example.com" / "suffix example.com" /
  // "cidr 10.0.0.0/8".
  std::string Describe() const;
};

class DestinationRules {
 public:
  // Defaults for every host.
  DestinationRules() = default;
  // Fails with kInvalidArgument for a rule naming not exactly one of host,
  // domain_suffix and cidr, or naming the same hosts twice.
  static absl::StatusOr<DestinationRules> Create(
      DestinationOptions defaults, std::vector<DestinationRule> rules);

  // The rule for `host`: an exact host rule first, else the longest matching
  // suffix (for an IP literal: the narrowest matching cidr), else the
  // defaults. Returns the rule's index (0 for the defaults,
  // i + 1 for rules()[i]) so callers can key per-rule state by it.
  size_t IndexFor(absl::string_view host) const;
  const DestinationOptions& OptionsAt(size_t index) const {
    return index == 0 ? defaults_ : rules_[index - 1].options;
  }
  const DestinationOptions& For(absl::string_view host) const {
    return OptionsAt(IndexFor(host));
  }
  size_t size() const { return rules_.size() + 1; }
  const DestinationOptions& defaults() const { return defaults_; }
  const std::vector<DestinationRule>& rules() const { return rules_; }

 private:
  DestinationOptions defaults_;
  std::vector<DestinationRule> rules_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_TLS_DESTINATION_H_
