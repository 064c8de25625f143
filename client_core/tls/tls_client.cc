#include "client_core/tls/tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/ssl/stream.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/net/socket_deadline.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// TLS 1.2 suites of the modern spec: forward secrecy and AEAD only (TLS 1.3's
// suites are all of that kind and keep OpenSSL's defaults).
constexpr char kModernCiphers[] =
    "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL";
// Legacy origins: everything OpenSSL can still do. Security level 0 is what
// lets TLS 1.0/1.1 and SHA-1 signatures through in OpenSSL 3.
constexpr char kCompatibleCiphers[] = "DEFAULT:@SECLEVEL=0";

// ALPN wire format: length-prefixed names.
std::string AlpnWire(HttpProtocols protocols) {
  switch (protocols) {
    case HttpProtocols::kAuto:
      return std::string("\x02h2\x08http/1.1", 12);
    case HttpProtocols::kHttp11:
      return std::string("\x08http/1.1", 9);
    case HttpProtocols::kHttp2:
      return std::string("\x02h2", 3);
  }
  return "";
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Index of the SSL ex_data slot holding the session-cache key (a heap
// std::string freed with the SSL).
void FreeKey(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}
int KeyIndex() {
  static const int index =
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeKey);
  return index;
}
// Index of the SSL_CTX ex_data slot pointing back at the TlsClient (not
// SSL_CTX_set_app_data: asio::ssl::context keeps its own state there).
int ClientIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// The verification result as a failure class and a phrase.
std::pair<TlsFailure, std::string> ClassifyVerify(long result) {
  switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return {TlsFailure::kExpired, "certificate has expired"};
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return {TlsFailure::kNotYetValid, "certificate is not yet valid"};
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return {TlsFailure::kHostnameMismatch,
              "certificate does not match the host name"};
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return {TlsFailure::kUntrustedIssuer,
              absl::StrCat("certificate issuer is not trusted (",
                           X509_verify_cert_error_string(result), ")")};
    default:
      return {TlsFailure::kCertificateInvalid,
              absl::StrCat("certificate verification failed (",
                           X509_verify_cert_error_string(result), ")")};
  }
}

bool IsProtocolVersionError(const asio::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      return true;
    default:
      return false;
  }
}

std::string SubjectOf(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string subject(data, size > 0 ? size : 0);
  BIO_free(bio);
  return subject;
}

absl::Time NotAfterOf(X509* cert) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
    return absl::InfinitePast();
  }
  return absl::FromTimeT(timegm(&tm));
}

}  // namespace

std::string_view TlsFailureName(TlsFailure failure) {
  switch (failure) {
    case TlsFailure::kUntrustedIssuer: return "untrusted_issuer";
    case TlsFailure::kExpired: return "expired";
    case TlsFailure::kNotYetValid: return "not_yet_valid";
    case TlsFailure::kHostnameMismatch: return "hostname_mismatch";
    case TlsFailure::kCertificateInvalid: return "certificate_invalid";
    case TlsFailure::kProtocolVersion: return "protocol_version";
    case TlsFailure::kAlpn: return "alpn";
    case TlsFailure::kHandshakeFailure: return "handshake_failure";
  }
  return "unknown";
}

struct TlsClient::Context {
  Context() : ssl(asio::ssl::context::tls_client) {}
  asio::ssl::context ssl;
  std::string alpn;
};

TlsClient::TlsClient(DestinationRules rules) : rules_(std::move(rules)) {}

TlsClient::~TlsClient() {
  for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
}

absl::StatusOr<std::unique_ptr<TlsClient>> TlsClient::Create(
    DestinationRules rules) {
  std::unique_ptr<TlsClient> client(new TlsClient(std::move(rules)));
  KeyIndex();  // allocate the ex_data slot before any handshake
  for (size_t i = 0; i < client->rules_.size(); ++i) {
    const DestinationOptions& o = client->rules_.OptionsAt(i);
    const std::string name =
        i == 0 ? std::string("default destination")
               : absl::StrCat("destination ",
                              client->rules_.rules()[i - 1].Describe());
    auto context = std::make_unique<Context>();
    SSL_CTX* ctx = context->ssl.native_handle();
    ERR_clear_error();
    if (o.spec == TlsSpec::kModern) {
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_cipher_list(ctx, kModernCiphers);
    } else {
      SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
      SSL_CTX_set_cipher_list(ctx, kCompatibleCiphers);
    }
    if (o.verify) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      if (o.trust_system_store) SSL_CTX_set_default_verify_paths(ctx);
      if (!o.ca_file.empty() &&
          SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) !=
              1) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": cannot load CA file '", o.ca_file,
                         "': ", OpenSslErrors()));
      }
      if (!o.trust_system_store && o.ca_file.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, ": verification is on but nothing is trusted (no CA file "
                  "and the system trust store is off)"));
      }
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    if (o.client_cert_file.empty() != o.client_key_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": a client certificate needs both a certificate and a key "
                "file"));
    }
    if (!o.client_cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx, o.client_cert_file.c_str()) !=
          1) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": cannot load client certificate '",
                         o.client_cert_file, "': ", OpenSslErrors()));
      }
      if (SSL_CTX_use_PrivateKey_file(ctx, o.client_key_file.c_str(),
                                      SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(ctx) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": cannot load client key '",
                         o.client_key_file, "': ", OpenSslErrors()));
      }
    }
    // Sessions are cached by us, per address (OnNewSession), not by
    // OpenSSL's internal cache, which is keyed for servers.
    SSL_CTX_set_session_cache_mode(
        ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &TlsClient::OnNewSession);
    SSL_CTX_set_ex_data(ctx, ClientIndex(), client.get());
    // An idle pooled connection holds no 16 KiB read/write buffers.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    context->alpn = AlpnWire(o.protocols);
    client->contexts_.push_back(std::move(context));
  }
  return client;
}

std::string TlsClient::SessionKey(const Address& address) {
  return absl::StrCat(address.host, ":", address.port);
}

int TlsClient::OnNewSession(struct ssl_st* ssl, SSL_SESSION* session) {
  auto* client = static_cast<TlsClient*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ClientIndex()));
  auto* key = static_cast<std::string*>(SSL_get_ex_data(ssl, KeyIndex()));
  if (client == nullptr || key == nullptr) return 0;
  client->StoreSession(*key, session);
  return 1;  // we own the reference now
}

void TlsClient::StoreSession(const std::string& key, SSL_SESSION* session) {
  SSL_SESSION* old = nullptr;
  {
    MutexLock lock(&sessions_mu_);
    auto it = sessions_.find(key);
    if (it != sessions_.end()) {
      old = it->second;
      it->second = session;
    } else {
      if (sessions_.size() >= kMaxSessions) {
        // Bounded: drop an arbitrary entry (a resumption missed, nothing
        // more).
        auto victim = sessions_.begin();
        old = victim->second;
        sessions_.erase(victim);
      }
      sessions_.emplace(key, session);
    }
  }
  if (old != nullptr) SSL_SESSION_free(old);
}

SSL_SESSION* TlsClient::TakeSessionRef(const std::string& key) {
  MutexLock lock(&sessions_mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION_up_ref(it->second);
  return it->second;
}

void TlsClient::CountFailure(TlsFailure failure) {
  failures_[static_cast<size_t>(failure)].fetch_add(1,
                                                     std::memory_order_relaxed);
}

TlsStats TlsClient::stats() const {
  TlsStats s;
  s.handshakes = handshakes_.load(std::memory_order_relaxed);
  s.resumed = resumed_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kTlsFailureCount; ++i) {
    s.failures[i] = failures_[i].load(std::memory_order_relaxed);
  }
  return s;
}

asio::awaitable<absl::StatusOr<TlsClient::Handshaken>> TlsClient::Handshake(
    asio::ip::tcp::socket socket, const Address& address,
    std::string remote_address, absl::Time deadline, CallAbort* abort) {
  const absl::Time started = absl::Now();
  const size_t index = rules_.IndexFor(address.host);
  const DestinationOptions& options = rules_.OptionsAt(index);
  Context& context = *contexts_[index];
  auto stream =
      std::make_unique<Transport::TlsStream>(std::move(socket), context.ssl);
  SSL* ssl = stream->native_handle();
  const std::string& host = address.host;
  const bool ip_literal = IsIpLiteral(host);
  if (!ip_literal) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (options.verify) {
    if (ip_literal) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    } else {
      SSL_set1_host(ssl, host.c_str());
    }
  }
  SSL_set_alpn_protos(ssl,
                      reinterpret_cast<const unsigned char*>(context.alpn.data()),
                      static_cast<unsigned>(context.alpn.size()));
  const std::string key = SessionKey(address);
  SSL_set_ex_data(ssl, KeyIndex(), new std::string(key));
  if (SSL_SESSION* session = TakeSessionRef(key)) {
    SSL_set_session(ssl, session);
    SSL_SESSION_free(session);
  }

  const std::string who = absl::StrCat("TLS handshake with ", address.ToString(),
                                       " (", remote_address, ")");
  const absl::Time timeout_at = started + options.handshake_timeout;
  const bool deadline_first = deadline <= timeout_at;
  std::tuple<asio::error_code> outcome;
  bool expired = false;
  bool aborted = false;
  {
    SocketDeadline guard(stream->next_layer(),
                         deadline_first ? deadline : timeout_at, abort);
    if (!guard.aborted()) {
      outcome = co_await stream->async_handshake(
          asio::ssl::stream_base::client, kNoThrow);
    }
    expired = guard.expired();
    aborted = guard.aborted();
  }
  const asio::error_code ec = std::get<0>(outcome);
  auto close = [&stream] {
    asio::error_code ignored;
    stream->next_layer().close(ignored);
  };
  if (aborted) {
    close();
    co_return absl::CancelledError(
        absl::StrCat("the call was cancelled during the ", who));
  }
  if (expired) {
    close();
    if (deadline_first) {
      co_return absl::DeadlineExceededError(
          absl::StrCat("deadline exceeded during the ", who));
    }
    CountFailure(TlsFailure::kHandshakeFailure);
    co_return absl::UnavailableError(
        absl::StrCat(who, " timed out after ",
                     absl::FormatDuration(options.handshake_timeout)));
  }
  if (ec) {
    close();
    const long verify = SSL_get_verify_result(ssl);
    TlsFailure failure = TlsFailure::kHandshakeFailure;
    std::string cause;
    if (options.verify && verify != X509_V_OK) {
      std::tie(failure, cause) = ClassifyVerify(verify);
      if (failure == TlsFailure::kHostnameMismatch) {
        cause = absl::StrCat("certificate does not cover ",
                             ip_literal ? "IP address '" : "host name '", host,
                             "'");
      }
    } else if (IsProtocolVersionError(ec)) {
      failure = TlsFailure::kProtocolVersion;
      cause = absl::StrCat("no TLS protocol version in common (",
                           ec.message(), ")");
    } else if (ec == asio::error::eof ||
               ec == asio::ssl::error::stream_truncated) {
      cause = "the server closed the connection";
    } else {
      cause = ec.message();
    }
    CountFailure(failure);
    co_return absl::UnavailableError(absl::StrCat(who, " failed: ", cause));
  }

  auto info = std::make_shared<TlsInfo>();
  const unsigned char* alpn = nullptr;
  unsigned int alpn_size = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_size);
  if (alpn_size > 0) {
    info->alpn.assign(reinterpret_cast<const char*>(alpn), alpn_size);
  }
  if (options.protocols == HttpProtocols::kHttp2 && info->alpn != "h2") {
    close();
    CountFailure(TlsFailure::kAlpn);
    co_return absl::UnavailableError(absl::StrCat(
        who, " failed: the server did not select h2 over ALPN (selected '",
        info->alpn, "'), and this destination requires h2"));
  }
  info->version = SSL_get_version(ssl);
  info->cipher = SSL_get_cipher_name(ssl);
  info->session_resumed = SSL_session_reused(ssl) == 1;
  info->verified = options.verify;
  if (X509* cert = SSL_get1_peer_certificate(ssl)) {
    info->peer_certificate = std::shared_ptr<X509>(cert, X509_free);
    info->peer_subject = SubjectOf(cert);
    info->peer_not_after = NotAfterOf(cert);
  }
  handshakes_.fetch_add(1, std::memory_order_relaxed);
  if (info->session_resumed) resumed_.fetch_add(1, std::memory_order_relaxed);

  Handshaken result;
  result.transport =
      std::make_unique<Transport>(std::move(stream), std::move(info));
  result.handshake_time = absl::Now() - started;
  co_return result;
}

}  // namespace egress
