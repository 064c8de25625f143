// Proves the TLS and HTTP/2 test fixtures: TestPki's certificates verify (or
// fail to, as asked) with OpenSSL's own verifier, nginx serves them over TLS
// with ALPN, resumption and mTLS, and nginx's h2c listener and nghttpd speak
// HTTP/2. The client here is a deliberately tiny blocking OpenSSL client,
// independent of client_core, so a fixture bug cannot hide behind a client
// bug.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/nghttpd.h"
#include "tests/support/nginx.h"
#include "tests/support/test_pki.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

// --- in-process certificate checks ------------------------------------------

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

X509Ptr ReadCert(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  fclose(f);
  return cert;
}

// OpenSSL's verdict on `leaf_file` (with `untrusted_chain_file`'s extra
// certificates, if any) against the roots in `ca_file`, for `purpose`.
int VerifyCode(const std::string& ca_file, const std::string& leaf_file,
               const std::string& untrusted_chain_file = "",
               int purpose = X509_PURPOSE_SSL_SERVER) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_load_file(store, ca_file.c_str());
  X509Ptr leaf = ReadCert(leaf_file);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  if (!untrusted_chain_file.empty()) {
    FILE* f = fopen(untrusted_chain_file.c_str(), "r");
    while (X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
      sk_X509_push(untrusted, x);
    }
    ERR_clear_error();  // the read past the last certificate queues one
    fclose(f);
  }
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.get(), untrusted);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  const int ok = X509_verify_cert(ctx);
  const int code = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(untrusted, X509_free);
  X509_STORE_free(store);
  return code;
}

TEST(TestPkiTest, ServerLeafVerifiesAndNamesItsHosts) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  LeafOptions options;
  options.dns_names = {"a.test", "*.b.test"};
  options.ip_addresses = {"127.0.0.1", "::1"};
  auto leaf = (*pki)->IssueLeaf("server", options);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), leaf->cert_file), X509_V_OK);

  X509Ptr cert = ReadCert(leaf->cert_file);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_host(cert.get(), "a.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "x.b.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "c.test", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);

  X509Ptr key_cert = ReadCert(leaf->chain_file);
  ASSERT_NE(key_cert, nullptr);
  EXPECT_EQ(X509_cmp(key_cert.get(), cert.get()), 0) << "chain starts with leaf";
  FILE* key_file = fopen(leaf->key_file.c_str(), "r");
  ASSERT_NE(key_file, nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(key_file, nullptr, nullptr, nullptr);
  fclose(key_file);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key), 1);
  EVP_PKEY_free(key);
}

TEST(TestPkiTest, ClientLeafIsForClientAuth) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  LeafOptions options;
  options.client = true;
  auto leaf = (*pki)->IssueLeaf("client", options);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), leaf->cert_file, "",
                       X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), leaf->cert_file, "",
                       X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
}

TEST(TestPkiTest, ValidityOffsetsMakeExpiredAndNotYetValidLeaves) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  LeafOptions expired;
  expired.not_before = -absl::Hours(48);
  expired.not_after = -absl::Hours(1);
  auto old = (*pki)->IssueLeaf("expired", expired);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), old->cert_file),
            X509_V_ERR_CERT_HAS_EXPIRED);

  LeafOptions future;
  future.not_before = absl::Hours(1);
  future.not_after = absl::Hours(48);
  auto young = (*pki)->IssueLeaf("future", future);
  ASSERT_TRUE(young.ok()) << young.status();
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), young->cert_file),
            X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST(TestPkiTest, UntrustedCaLeafLacksAnIssuer) {
  auto trusted = TestPki::Create();
  auto untrusted = TestPki::CreateUntrustedCa();
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  ASSERT_TRUE(untrusted.ok()) << untrusted.status();
  auto leaf = (*untrusted)->IssueLeaf("server");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(VerifyCode((*trusted)->ca_file(), leaf->cert_file),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(VerifyCode((*untrusted)->ca_file(), leaf->cert_file), X509_V_OK);
}

TEST(TestPkiTest, IntermediateLeafNeedsItsChain) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  LeafOptions options;
  options.via_intermediate = true;
  auto leaf = (*pki)->IssueLeaf("deep", options);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), leaf->cert_file, leaf->chain_file),
            X509_V_OK);
  EXPECT_EQ(VerifyCode((*pki)->ca_file(), leaf->cert_file),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(TestPkiTest, RejectsBadInput) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  EXPECT_EQ((*pki)->IssueLeaf("../escape").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*pki)->IssueLeaf("").status().code(),
            absl::StatusCode::kInvalidArgument);
  LeafOptions bad_ip;
  bad_ip.ip_addresses = {"localhost"};
  EXPECT_EQ((*pki)->IssueLeaf("x", bad_ip).status().code(),
            absl::StatusCode::kInvalidArgument);
  LeafOptions backwards;
  backwards.not_before = absl::Hours(1);
  backwards.not_after = -absl::Hours(1);
  EXPECT_EQ((*pki)->IssueLeaf("y", backwards).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- a tiny blocking client ----------------------------------------------------

// A TCP connection to a loopback address, optionally wrapped in TLS.
// Blocking, with 10 s socket timeouts so a broken fixture fails rather than
// hangs.
class Conn {
 public:
  struct TlsOptions {
    std::string ca_file;
    std::string sni;          // sent as server name when non-empty
    std::string verify_host;  // name or IP literal checked against the cert
    std::vector<std::string> alpn;
    std::string client_cert_file;  // mTLS, with client_key_file
    std::string client_key_file;
    SSL_SESSION* session = nullptr;  // offered for resumption
  };

  ~Conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }

  static std::unique_ptr<Conn> Tcp(const std::string& ip, int port) {
    auto conn = std::unique_ptr<Conn>(new Conn());
    sockaddr_storage addr{};
    socklen_t len;
    if (ip.find(':') != std::string::npos) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
      len = sizeof *a;
    }
    conn->fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{10, 0};
    setsockopt(conn->fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(conn->fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    conn->connected_ =
        connect(conn->fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
    return conn;
  }

  // Connects and runs the TLS handshake; see handshake_ok() and friends.
  static std::unique_ptr<Conn> Tls(const std::string& ip, int port,
                                   const TlsOptions& options) {
    std::unique_ptr<Conn> conn = Tcp(ip, port);
    if (!conn->connected_) return conn;
    conn->ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(conn->ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_load_verify_locations(conn->ctx_, options.ca_file.c_str(), nullptr);
    // Keep sessions so SSL_get1_session has one to return.
    SSL_CTX_set_session_cache_mode(conn->ctx_, SSL_SESS_CACHE_CLIENT);
    if (!options.client_cert_file.empty()) {
      SSL_CTX_use_certificate_chain_file(conn->ctx_,
                                         options.client_cert_file.c_str());
      SSL_CTX_use_PrivateKey_file(conn->ctx_, options.client_key_file.c_str(),
                                  SSL_FILETYPE_PEM);
    }
    SSL* ssl = conn->ssl_ = SSL_new(conn->ctx_);
    SSL_set_fd(ssl, conn->fd_);
    if (!options.sni.empty()) SSL_set_tlsext_host_name(ssl, options.sni.c_str());
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (!options.verify_host.empty() &&
        X509_VERIFY_PARAM_set1_ip_asc(param, options.verify_host.c_str()) != 1) {
      X509_VERIFY_PARAM_set1_host(param, options.verify_host.c_str(), 0);
    }
    if (!options.alpn.empty()) {
      std::string wire;
      for (const std::string& p : options.alpn) {
        wire += static_cast<char>(p.size());
        wire += p;
      }
      SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                          wire.size());
    }
    if (options.session != nullptr) SSL_set_session(ssl, options.session);
    conn->handshake_ok_ = SSL_connect(ssl) == 1;
    ERR_clear_error();
    return conn;
  }

  bool connected() const { return connected_; }
  bool handshake_ok() const { return handshake_ok_; }
  long verify_result() const { return SSL_get_verify_result(ssl_); }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    return std::string(reinterpret_cast<const char*>(p), len);
  }
  std::string tls_version() const { return SSL_get_version(ssl_); }
  bool session_reused() const { return SSL_session_reused(ssl_) == 1; }
  // The session to offer on a later connection (caller frees). With TLS 1.3
  // the ticket comes after the handshake: read a response first.
  SSL_SESSION* Get1Session() const { return SSL_get1_session(ssl_); }

  bool Write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const int n = ssl_ != nullptr
                        ? SSL_write(ssl_, bytes.data() + done, bytes.size() - done)
                        : static_cast<int>(write(fd_, bytes.data() + done,
                                                 bytes.size() - done));
      if (n <= 0) return false;
      done += n;
    }
    return true;
  }

  // Up to `max` bytes; "" at EOF or error.
  std::string ReadSome(size_t max = 16384) {
    std::string buf(max, '\0');
    const int n = ssl_ != nullptr
                      ? SSL_read(ssl_, buf.data(), max)
                      : static_cast<int>(read(fd_, buf.data(), max));
    buf.resize(n > 0 ? n : 0);
    return buf;
  }

  std::string ReadExactly(size_t n) {
    std::string out;
    while (out.size() < n) {
      std::string more = ReadSome(n - out.size());
      if (more.empty()) break;
      out += more;
    }
    return out;
  }

  std::string ReadToEnd() {
    std::string out;
    for (std::string more = ReadSome(); !more.empty(); more = ReadSome()) {
      out += more;
    }
    return out;
  }

 private:
  Conn() = default;
  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool handshake_ok_ = false;
};

// GET `path` with Connection: close; the whole response.
std::string Get(Conn& conn, const std::string& host, const std::string& path) {
  if (!conn.Write(absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host,
                               "\r\nConnection: close\r\n\r\n"))) {
    return "";
  }
  return conn.ReadToEnd();
}

// The HTTP/2 client connection preface and an empty SETTINGS frame.
const std::string& ClientPreface() {
  static const std::string* preface = new std::string(
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
      std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9));
  return *preface;
}

struct Frame {
  uint32_t length = 0;
  uint8_t type = 0xff;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
};

// Reads one HTTP/2 frame (type 0xff if the connection ended first).
Frame ReadFrame(Conn& conn) {
  Frame f;
  const std::string head = conn.ReadExactly(9);
  if (head.size() != 9) return f;
  auto byte = [&](int i) { return static_cast<uint8_t>(head[i]); };
  f.length = byte(0) << 16 | byte(1) << 8 | byte(2);
  f.type = byte(3);
  f.flags = byte(4);
  f.stream = (byte(5) & 0x7f) << 24 | byte(6) << 16 | byte(7) << 8 | byte(8);
  f.payload = conn.ReadExactly(f.length);
  return f;
}

// The value of SETTINGS parameter `id` in a SETTINGS payload, or -1.
int64_t Setting(const std::string& payload, uint16_t id) {
  for (size_t i = 0; i + 6 <= payload.size(); i += 6) {
    auto byte = [&](size_t k) { return static_cast<uint8_t>(payload[i + k]); };
    if ((byte(0) << 8 | byte(1)) == id) {
      return static_cast<int64_t>(byte(2)) << 24 | byte(3) << 16 |
             byte(4) << 8 | byte(5);
    }
  }
  return -1;
}

constexpr uint8_t kDataFrame = 0x0;
constexpr uint8_t kHeadersFrame = 0x1;
constexpr uint8_t kSettingsFrame = 0x4;
constexpr uint16_t kMaxConcurrentStreams = 0x3;
constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kEndHeaders = 0x4;

struct H2Response {
  bool status_200 = false;  // the response HEADERS began with :status 200
  std::string body;
};

// After the preface: GET `path` on stream 1 and read its response. The
// header block is hand-made HPACK (static table indices, literals without
// indexing), enough to prove a server answers HTTP/2 without an HPACK
// library here.
H2Response H2Get(Conn& conn, bool https, const std::string& authority,
                 const std::string& path) {
  std::string block;
  block += '\x82';                   // :method GET
  block += https ? '\x87' : '\x86';  // :scheme https / http
  block += '\x04';                   // :path, literal value follows
  block += static_cast<char>(path.size());
  block += path;
  block += '\x01';                   // :authority, literal value follows
  block += static_cast<char>(authority.size());
  block += authority;
  std::string frame = {0, 0, static_cast<char>(block.size()),
                       static_cast<char>(kHeadersFrame),
                       static_cast<char>(kEndStream | kEndHeaders),
                       0, 0, 0, 1};
  H2Response response;
  if (!conn.Write(frame + block)) return response;
  while (true) {
    const Frame f = ReadFrame(conn);
    if (f.type == 0xff) break;
    if (f.stream != 1) continue;
    if (f.type == kHeadersFrame && !f.payload.empty()) {
      response.status_200 = static_cast<uint8_t>(f.payload[0]) == 0x88;
    }
    if (f.type == kDataFrame) response.body += f.payload;
    if (f.flags & kEndStream) break;
  }
  return response;
}

// --- nginx over TLS -------------------------------------------------------------

class NginxTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    LeafOptions options;
    options.dns_names = {"a.test", "b.test"};
    options.ip_addresses = {"127.0.0.1", "::1"};
    auto leaf = pki_->IssueLeaf("nginx", options);
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    leaf_ = *leaf;
  }

  // nginx serving `cert`, TLS plus whatever `options` adds.
  std::unique_ptr<NginxServer> StartNginx(const IssuedCert& cert,
                                          NginxOptions options = {}) {
    if (!options.tls.has_value()) options.tls.emplace();
    options.tls->cert_file = cert.chain_file;
    options.tls->key_file = cert.key_file;
    auto nginx = NginxServer::Start(options);
    EXPECT_TRUE(nginx.ok()) << nginx.status();
    return nginx.ok() ? *std::move(nginx) : nullptr;
  }

  Conn::TlsOptions ClientOptions(const std::string& host = "a.test") const {
    Conn::TlsOptions o;
    o.ca_file = pki_->ca_file();
    o.sni = host;
    o.verify_host = host;
    o.alpn = {"h2", "http/1.1"};
    return o;
  }

  std::unique_ptr<TestPki> pki_;
  IssuedCert leaf_;
};

TEST_F(NginxTlsTest, VerifiedTlsWithAlpnH2AndHttp11) {
  std::unique_ptr<NginxServer> nginx = StartNginx(leaf_);
  ASSERT_NE(nginx, nullptr);
  ASSERT_GT(nginx->tls_port(), 0);
  EXPECT_EQ(nginx->TlsUrl("/x"),
            absl::StrCat("https://127.0.0.1:", nginx->tls_port(), "/x"));

  // Offered both: nginx picks h2 and speaks HTTP/2 at once.
  auto h2 = Conn::Tls("127.0.0.1", nginx->tls_port(), ClientOptions());
  ASSERT_TRUE(h2->handshake_ok())
      << X509_verify_cert_error_string(h2->verify_result());
  EXPECT_EQ(h2->verify_result(), X509_V_OK);
  EXPECT_EQ(h2->alpn(), "h2");
  EXPECT_EQ(h2->tls_version(), "TLSv1.3");
  ASSERT_TRUE(h2->Write(ClientPreface()));
  const Frame settings = ReadFrame(*h2);
  EXPECT_EQ(settings.type, kSettingsFrame);
  EXPECT_EQ(settings.flags & 0x1, 0) << "the server's own SETTINGS, not an ACK";
  EXPECT_EQ(settings.stream, 0u);
  const H2Response h2_response = H2Get(*h2, true, "a.test", "/hello.txt");
  EXPECT_TRUE(h2_response.status_200);
  EXPECT_EQ(h2_response.body, "hello\n");
  // Logged when nginx frees the stream, maybe after we read the response.
  auto h2_log = nginx->AwaitAccessLogEntries(1);
  ASSERT_TRUE(h2_log.ok()) << h2_log.status();
  EXPECT_EQ((*h2_log)[0].request, "GET /hello.txt HTTP/2.0");
  EXPECT_EQ((*h2_log)[0].protocol, "HTTP/2.0");
  EXPECT_EQ((*h2_log)[0].alpn, "h2");

  // Offered only http/1.1: an HTTP/1.1 exchange.
  Conn::TlsOptions http11 = ClientOptions();
  http11.alpn = {"http/1.1"};
  auto h1 = Conn::Tls("127.0.0.1", nginx->tls_port(), http11);
  ASSERT_TRUE(h1->handshake_ok());
  EXPECT_EQ(h1->alpn(), "http/1.1");
  const std::string response = Get(*h1, "a.test", "/hello.txt");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(absl::EndsWith(response, "\r\n\r\nhello\n")) << response;

  auto entries = nginx->AwaitAccessLogEntries(2);
  ASSERT_TRUE(entries.ok()) << entries.status();
  const std::vector<NginxAccessLogEntry>& log = *entries;
  ASSERT_THAT(log, SizeIs(2)) << nginx->AccessLog();
  EXPECT_EQ(log[1].request, "GET /hello.txt HTTP/1.1");
  EXPECT_EQ(log[1].status, 200);
  EXPECT_EQ(log[1].port, nginx->tls_port());
  EXPECT_EQ(log[1].protocol, "HTTP/1.1");
  EXPECT_EQ(log[1].tls_protocol, "TLSv1.3");
  EXPECT_EQ(log[1].alpn, "http/1.1");
  EXPECT_EQ(log[1].sni, "a.test");
  EXPECT_FALSE(log[1].session_reused);
  EXPECT_EQ(log[1].connection_requests, 1);
  EXPECT_EQ(log[1].client_verify, "NONE");
  EXPECT_NE(log[0].connection, log[1].connection);
}

TEST_F(NginxTlsTest, VerifiesByIpAddressWithoutSni) {
  std::unique_ptr<NginxServer> nginx = StartNginx(leaf_);
  ASSERT_NE(nginx, nullptr);
  Conn::TlsOptions o = ClientOptions("127.0.0.1");
  o.sni = "";  // no SNI for IP literals (RFC 6066)
  auto conn = Conn::Tls("127.0.0.1", nginx->tls_port(), o);
  ASSERT_TRUE(conn->handshake_ok())
      << X509_verify_cert_error_string(conn->verify_result());
  EXPECT_EQ(conn->verify_result(), X509_V_OK);
}

TEST_F(NginxTlsTest, WrongHostNameFailsVerification) {
  std::unique_ptr<NginxServer> nginx = StartNginx(leaf_);
  ASSERT_NE(nginx, nullptr);
  auto conn =
      Conn::Tls("127.0.0.1", nginx->tls_port(), ClientOptions("other.test"));
  EXPECT_FALSE(conn->handshake_ok());
  EXPECT_EQ(conn->verify_result(), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(NginxTlsTest, ExpiredLeafFailsVerification) {
  LeafOptions options;
  options.dns_names = {"a.test"};
  options.not_before = -absl::Hours(48);
  options.not_after = -absl::Hours(1);
  auto expired = pki_->IssueLeaf("expired", options);
  ASSERT_TRUE(expired.ok()) << expired.status();
  std::unique_ptr<NginxServer> nginx = StartNginx(*expired);
  ASSERT_NE(nginx, nullptr);
  auto conn = Conn::Tls("127.0.0.1", nginx->tls_port(), ClientOptions());
  EXPECT_FALSE(conn->handshake_ok());
  EXPECT_EQ(conn->verify_result(), X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(NginxTlsTest, UntrustedCaLeafFailsVerification) {
  auto other = TestPki::CreateUntrustedCa();
  ASSERT_TRUE(other.ok()) << other.status();
  LeafOptions options;
  options.dns_names = {"a.test"};
  auto stranger = (*other)->IssueLeaf("stranger", options);
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  std::unique_ptr<NginxServer> nginx = StartNginx(*stranger);
  ASSERT_NE(nginx, nullptr);
  auto conn = Conn::Tls("127.0.0.1", nginx->tls_port(), ClientOptions());
  EXPECT_FALSE(conn->handshake_ok());
  EXPECT_EQ(conn->verify_result(), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_F(NginxTlsTest, PresentsIntermediateChain) {
  LeafOptions options;
  options.dns_names = {"a.test"};
  options.via_intermediate = true;
  auto deep = pki_->IssueLeaf("deep", options);
  ASSERT_TRUE(deep.ok()) << deep.status();
  std::unique_ptr<NginxServer> nginx = StartNginx(*deep);
  ASSERT_NE(nginx, nullptr);
  auto conn = Conn::Tls("127.0.0.1", nginx->tls_port(), ClientOptions());
  EXPECT_TRUE(conn->handshake_ok())
      << X509_verify_cert_error_string(conn->verify_result());
}

TEST_F(NginxTlsTest, Http11OnlyListenerSelectsHttp11) {
  NginxOptions options;
  options.tls.emplace().http2 = false;
  std::unique_ptr<NginxServer> nginx = StartNginx(leaf_, options);
  ASSERT_NE(nginx, nullptr);
  auto conn = Conn::Tls("127.0.0.1", nginx->tls_port(), ClientOptions());
  ASSERT_TRUE(conn->handshake_ok());
  EXPECT_EQ(conn->alpn(), "http/1.1");

  Conn::TlsOptions h2_only = ClientOptions();
  h2_only.alpn = {"h2"};
  EXPECT_FALSE(Conn::Tls("127.0.0.1", nginx->tls_port(), h2_only)->handshake_ok())
      << "nginx 1.22 refuses an ALPN list with nothing it speaks";
}

TEST_F(NginxTlsTest, SessionResumptionShowsInAccessLog) {
  for (const std::string version : {"TLSv1.3", "TLSv1.2"}) {
    for (const bool tickets : {true, false}) {
      SCOPED_TRACE(absl::StrCat(version, tickets ? " tickets" : " cache"));
      NginxOptions options;
      options.tls.emplace();
      options.tls->protocols = version;
      options.tls->session_tickets = tickets;
      std::unique_ptr<NginxServer> nginx = StartNginx(leaf_, options);
      ASSERT_NE(nginx, nullptr);
      Conn::TlsOptions o = ClientOptions();
      o.alpn = {"http/1.1"};
      auto first = Conn::Tls("127.0.0.1", nginx->tls_port(), o);
      ASSERT_TRUE(first->handshake_ok());
      EXPECT_EQ(first->tls_version(), version);
      EXPECT_THAT(Get(*first, "a.test", "/hello.txt"), HasSubstr("200 OK"));
      SSL_SESSION* session = first->Get1Session();
      ASSERT_NE(session, nullptr);
      o.session = session;
      auto second = Conn::Tls("127.0.0.1", nginx->tls_port(), o);
      SSL_SESSION_free(session);
      ASSERT_TRUE(second->handshake_ok());
      EXPECT_TRUE(second->session_reused());
      EXPECT_THAT(Get(*second, "a.test", "/hello.txt"), HasSubstr("200 OK"));

      auto entries = nginx->AwaitAccessLogEntries(2);
      ASSERT_TRUE(entries.ok()) << entries.status();
      const std::vector<NginxAccessLogEntry>& log = *entries;
      ASSERT_THAT(log, SizeIs(2)) << nginx->AccessLog();
      EXPECT_FALSE(log[0].session_reused);
      EXPECT_TRUE(log[1].session_reused);
      EXPECT_EQ(log[1].tls_protocol, version);
      EXPECT_NE(log[0].connection, log[1].connection);
    }
  }
}

TEST_F(NginxTlsTest, MutualTlsRequiresAClientCertificate) {
  LeafOptions client_options;
  client_options.client = true;
  auto client = pki_->IssueLeaf("client", client_options);
  ASSERT_TRUE(client.ok()) << client.status();
  NginxOptions options;
  options.tls.emplace().client_ca_file = pki_->ca_file();
  std::unique_ptr<NginxServer> nginx = StartNginx(leaf_, options);
  ASSERT_NE(nginx, nullptr);

  Conn::TlsOptions with_cert = ClientOptions();
  with_cert.alpn = {"http/1.1"};
  with_cert.client_cert_file = client->chain_file;
  with_cert.client_key_file = client->key_file;
  auto good = Conn::Tls("127.0.0.1", nginx->tls_port(), with_cert);
  ASSERT_TRUE(good->handshake_ok());
  EXPECT_THAT(Get(*good, "a.test", "/hello.txt"), StartsWith("HTTP/1.1 200"));

  Conn::TlsOptions without = ClientOptions();
  without.alpn = {"http/1.1"};
  auto bare = Conn::Tls("127.0.0.1", nginx->tls_port(), without);
  ASSERT_TRUE(bare->handshake_ok()) << "nginx answers 400, not an alert";
  EXPECT_THAT(Get(*bare, "a.test", "/hello.txt"), StartsWith("HTTP/1.1 400"));

  auto entries = nginx->AwaitAccessLogEntries(2);
  ASSERT_TRUE(entries.ok()) << entries.status();
  const std::vector<NginxAccessLogEntry>& log = *entries;
  ASSERT_THAT(log, SizeIs(2)) << nginx->AccessLog();
  EXPECT_EQ(log[0].client_verify, "SUCCESS");
  EXPECT_EQ(log[1].client_verify, "NONE");
  EXPECT_EQ(log[1].status, 400);
}

TEST_F(NginxTlsTest, Ipv6LoopbackListeners) {
  NginxOptions options;
  options.ipv6_loopback = true;
  options.h2c = true;
  std::unique_ptr<NginxServer> nginx = StartNginx(leaf_, options);
  ASSERT_NE(nginx, nullptr);
  EXPECT_EQ(nginx->UrlFor("https", "::1", "/a"),
            absl::StrCat("https://[::1]:", nginx->tls_port(), "/a"));
  auto conn = Conn::Tls("::1", nginx->tls_port(), ClientOptions("::1"));
  EXPECT_TRUE(conn->handshake_ok())
      << X509_verify_cert_error_string(conn->verify_result());
  auto plain = Conn::Tcp("::1", nginx->port());
  ASSERT_TRUE(plain->connected());
  EXPECT_THAT(Get(*plain, "a.test", "/hello.txt"), StartsWith("HTTP/1.1 200"));
  EXPECT_TRUE(Conn::Tcp("::1", nginx->h2c_port())->connected());
}

// --- nginx cleartext listeners ------------------------------------------------

TEST(NginxTest, PlainAndH2cListeners) {
  NginxOptions options;
  options.h2c = true;
  auto nginx = NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  EXPECT_EQ((*nginx)->tls_port(), 0);
  ASSERT_GT((*nginx)->h2c_port(), 0);
  EXPECT_EQ((*nginx)->H2cUrl("/h"),
            absl::StrCat("http://127.0.0.1:", (*nginx)->h2c_port(), "/h"));
  EXPECT_EQ((*nginx)->UrlFor("http", "a.test", "/p"),
            absl::StrCat("http://a.test:", (*nginx)->port(), "/p"));
  EXPECT_EQ((*nginx)->UrlFor("h2c", "a.test", "/p"),
            absl::StrCat("http://a.test:", (*nginx)->h2c_port(), "/p"));

  auto plain = Conn::Tcp("127.0.0.1", (*nginx)->port());
  ASSERT_TRUE(plain->connected());
  EXPECT_THAT(Get(*plain, "127.0.0.1", "/hello.txt"),
              StartsWith("HTTP/1.1 200 OK"));

  auto h2c = Conn::Tcp("127.0.0.1", (*nginx)->h2c_port());
  ASSERT_TRUE(h2c->connected());
  ASSERT_TRUE(h2c->Write(ClientPreface()));
  EXPECT_EQ(ReadFrame(*h2c).type, kSettingsFrame);
  EXPECT_EQ(H2Get(*h2c, false, "a.test", "/hello.txt").body, "hello\n");

  auto entries = (*nginx)->AwaitAccessLogEntries(2);
  ASSERT_TRUE(entries.ok()) << entries.status();
  const std::vector<NginxAccessLogEntry>& log = *entries;
  ASSERT_THAT(log, SizeIs(2)) << (*nginx)->AccessLog();
  EXPECT_EQ(log[1].protocol, "HTTP/2.0");
  EXPECT_EQ(log[1].port, (*nginx)->h2c_port());
  EXPECT_EQ(log[0].protocol, "HTTP/1.1");
  EXPECT_EQ(log[0].tls_protocol, "");
  EXPECT_EQ(log[0].port, (*nginx)->port());
  // The format stays a superset of "combined": existing tests grep it.
  EXPECT_THAT((*nginx)->AccessLog(), HasSubstr("\"GET /hello.txt HTTP/1.1\" 200 6"));
}

// --- nghttpd ----------------------------------------------------------------------

TEST(NghttpdTest, H2cAnswersPrefaceWithItsSettings) {
  NghttpdOptions options;
  options.max_concurrent_streams = 7;
  auto nghttpd = NghttpdServer::Start(options);
  ASSERT_TRUE(nghttpd.ok()) << nghttpd.status();
  EXPECT_FALSE((*nghttpd)->tls());
  EXPECT_EQ((*nghttpd)->Url("/x"),
            absl::StrCat("http://127.0.0.1:", (*nghttpd)->port(), "/x"));
  auto conn = Conn::Tcp("127.0.0.1", (*nghttpd)->port());
  ASSERT_TRUE(conn->connected());
  ASSERT_TRUE(conn->Write(ClientPreface()));
  const Frame settings = ReadFrame(*conn);
  EXPECT_EQ(settings.type, kSettingsFrame);
  EXPECT_EQ(settings.stream, 0u);
  EXPECT_EQ(Setting(settings.payload, kMaxConcurrentStreams), 7);
  const H2Response response = H2Get(*conn, false, "a.test", "/hello.txt");
  EXPECT_TRUE(response.status_200);
  EXPECT_EQ(response.body, "hello\n");
}

TEST(NghttpdTest, TlsWithAlpnH2) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  LeafOptions leaf_options;
  leaf_options.dns_names = {"a.test"};
  auto leaf = (*pki)->IssueLeaf("nghttpd", leaf_options);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  NghttpdOptions options;
  options.cert_file = leaf->chain_file;
  options.key_file = leaf->key_file;
  options.verbose = true;
  auto nghttpd = NghttpdServer::Start(options);
  ASSERT_TRUE(nghttpd.ok()) << nghttpd.status();
  EXPECT_TRUE((*nghttpd)->tls());
  EXPECT_EQ((*nghttpd)->UrlFor("a.test", "/x"),
            absl::StrCat("https://a.test:", (*nghttpd)->port(), "/x"));

  Conn::TlsOptions o;
  o.ca_file = (*pki)->ca_file();
  o.sni = o.verify_host = "a.test";
  o.alpn = {"h2", "http/1.1"};
  auto conn = Conn::Tls("127.0.0.1", (*nghttpd)->port(), o);
  ASSERT_TRUE(conn->handshake_ok())
      << X509_verify_cert_error_string(conn->verify_result());
  EXPECT_EQ(conn->alpn(), "h2");
  ASSERT_TRUE(conn->Write(ClientPreface()));
  const Frame settings = ReadFrame(*conn);
  EXPECT_EQ(settings.type, kSettingsFrame);
  EXPECT_EQ(Setting(settings.payload, kMaxConcurrentStreams), 100);
  EXPECT_EQ(H2Get(*conn, true, "a.test", "/hello.txt").body, "hello\n");
  // With verbose, the frames land in the log, not in a pipe.
  EXPECT_THAT((*nghttpd)->Log(), HasSubstr("SETTINGS"));
}

TEST(NghttpdTest, Ipv6AndStopOnDestruction) {
  NghttpdOptions options;
  options.address = "::1";
  auto nghttpd = NghttpdServer::Start(options);
  ASSERT_TRUE(nghttpd.ok()) << nghttpd.status();
  const int port = (*nghttpd)->port();
  EXPECT_EQ((*nghttpd)->Url("/"), absl::StrCat("http://[::1]:", port, "/"));
  EXPECT_TRUE(Conn::Tcp("::1", port)->connected());
  nghttpd->reset();
  EXPECT_FALSE(Conn::Tcp("::1", port)->connected()) << "stopped, port closed";
}

TEST(NghttpdTest, RejectsBadOptions) {
  NghttpdOptions remote;
  remote.address = "10.0.0.1";
  EXPECT_EQ(NghttpdServer::Start(remote).status().code(),
            absl::StatusCode::kInvalidArgument);
  NghttpdOptions half_tls;
  half_tls.cert_file = "/nonexistent.crt";
  EXPECT_EQ(NghttpdServer::Start(half_tls).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace egress::testing
