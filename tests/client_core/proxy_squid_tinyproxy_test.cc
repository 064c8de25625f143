// Real HTTP proxies started on loopback: squid with Basic authentication
// (a password file the test writes) and tinyproxy. Tunnels carry TLS to an
// nginx with a test CA (verification, SNI and ALPN end to end with the
// origin, not the proxy); http:// goes in absolute form. Runs under TSan
// too (no gRPC).
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "client_core/http1/response_parser.h"
#include "client_core/net/transport.h"
#include "client_core/proxy/http_tunnel.h"
#include "client_core/tls/tls_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/nginx.h"
#include "tests/support/run_task.h"
#include "tests/support/squid.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_pki.h"
#include "tests/support/tinyproxy.h"

namespace egress {
namespace {

using ::egress::testing::IssuedCert;
using ::egress::testing::NginxOptions;
using ::egress::testing::NginxServer;
using ::egress::testing::NginxTlsOptions;
using ::egress::testing::RunTask;
using ::egress::testing::SquidAccessLogEntry;
using ::egress::testing::SquidOptions;
using ::egress::testing::SquidServer;
using ::egress::testing::TestPki;
using ::egress::testing::TinyproxyOptions;
using ::egress::testing::TinyproxyServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr char kUser[] = "alice";
constexpr char kPassword[] = "squid-pass-7Qx";
// The origin's name: squid resolves it through its hosts_file, the
// certificate covers it.
constexpr char kOrigin[] = "origin.test";
constexpr char kCredsHost[] = "creds.origin.test";
constexpr char kWrongHost[] = "wrong.origin.test";

asio::awaitable<absl::StatusOr<asio::ip::tcp::socket>> Dial(int port) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(
      {asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)},
      kNoThrow);
  if (ec) co_return absl::UnavailableError(ec.message());
  co_return std::move(socket);
}

// Writes `request` and reads one response; its status and body.
struct Reply {
  int status = 0;
  std::string body;
};
template <typename WriteFn, typename ReadFn>
asio::awaitable<absl::StatusOr<Reply>> Exchange(const std::string& request,
                                                WriteFn write, ReadFn read) {
  auto [wec, wn] = co_await write(request);
  if (wec) co_return absl::UnavailableError(wec.message());
  ResponseParser parser;
  parser.Reset(false);
  Reply reply;
  char buffer[4096];
  while (!parser.message_complete()) {
    auto [rec, n] = co_await read(asio::buffer(buffer));
    if (rec) co_return absl::UnavailableError(rec.message());
    absl::StatusOr<size_t> used = parser.Feed(std::string_view(buffer, n));
    if (!used.ok()) co_return used.status();
    reply.body += parser.TakeBody();
  }
  reply.status = parser.head().status_code;
  co_return reply;
}

asio::awaitable<absl::StatusOr<Reply>> GetOverSocket(
    asio::ip::tcp::socket& socket, const std::string& request) {
  co_return co_await Exchange(
      request,
      [&](const std::string& r) {
        return asio::async_write(socket, asio::buffer(r), kNoThrow);
      },
      [&](asio::mutable_buffer b) {
        return socket.async_read_some(b, kNoThrow);
      });
}

asio::awaitable<absl::StatusOr<Reply>> GetOverTransport(
    Transport& transport, const std::string& request) {
  co_return co_await Exchange(
      request,
      [&](const std::string& r)
          -> asio::awaitable<std::tuple<asio::error_code, size_t>> {
        const asio::const_buffer one = asio::buffer(r);
        co_return co_await transport.Write(absl::MakeConstSpan(&one, 1));
      },
      [&](asio::mutable_buffer b) { return transport.ReadSome(b); });
}

std::string OriginGet(const std::string& host_port, const std::string& path) {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host_port,
                      "\r\n\r\n");
}

void ExpectNoSecrets(absl::string_view text) {
  EXPECT_THAT(std::string(text), Not(HasSubstr(kPassword)));
  EXPECT_THAT(std::string(text),
              Not(HasSubstr(absl::Base64Escape(
                  absl::StrCat(kUser, ":", kPassword)))));
}

// Shared by both proxies' tests: one PKI, one nginx (plain and TLS with
// ALPN h2 + http/1.1).
class RealProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = pki->release();
    absl::StatusOr<IssuedCert> leaf = pki_->IssueLeaf(
        "origin", {.dns_names = {kOrigin, absl::StrCat("*.", kOrigin)},
                   .ip_addresses = {"127.0.0.1"}});
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    NginxOptions options;
    options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                  .key_file = leaf->key_file,
                                  .http2 = true};
    absl::StatusOr<std::unique_ptr<NginxServer>> nginx =
        NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = nginx->release();
  }
  static void TearDownTestSuite() {
    delete nginx_;
    nginx_ = nullptr;
    delete pki_;
    pki_ = nullptr;
  }

  // A TlsClient trusting only the test CA, offering `protocols`.
  static std::unique_ptr<TlsClient> MakeTls(HttpProtocols protocols) {
    DestinationOptions defaults;
    defaults.trust_system_store = false;
    defaults.ca_file = pki_->ca_file();
    defaults.protocols = protocols;
    absl::StatusOr<DestinationRules> rules =
        DestinationRules::Create(defaults, {});
    EXPECT_TRUE(rules.ok()) << rules.status();
    absl::StatusOr<std::unique_ptr<TlsClient>> tls =
        TlsClient::Create(*std::move(rules));
    EXPECT_TRUE(tls.ok()) << tls.status();
    return *std::move(tls);
  }

  static Proxy HttpProxy(int port, const std::string& user = "",
                         const std::string& password = "") {
    Proxy proxy;
    proxy.name = "test";
    proxy.host = "127.0.0.1";
    proxy.port = static_cast<uint16_t>(port);
    proxy.username = user;
    proxy.password = password;
    return proxy;
  }

  // What one tunnelled TLS session did.
  struct TlsRun {
    absl::Status status;
    std::string alpn;
    std::vector<Reply> replies;
    int attempts = 0;
    int connections = 0;
  };

  // CONNECT `target_host`:tls_port through `proxy`, TLS for `tls_host`
  // (the Address the certificate is checked against), then `gets`
  // requests for /hello.txt on the one TLS connection.
  TlsRun TunnelTls(const Proxy& proxy, const std::string& target_host,
                   const std::string& tls_host, HttpProtocols protocols,
                   int gets, const TunnelOptions& options = TunnelOptions()) {
    std::unique_ptr<TlsClient> tls = MakeTls(protocols);
    const uint16_t port = static_cast<uint16_t>(nginx_->tls_port());
    return RunTask(io_, [&]() -> asio::awaitable<TlsRun> {
      TlsRun run;
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(proxy.port);
      if (!socket.ok()) {
        run.status = socket.status();
        co_return run;
      }
      const int proxy_port = proxy.port;
      absl::StatusOr<Tunnel> tunnel = co_await ConnectTunnel(
          *std::move(socket), proxy, target_host, port, deadline, nullptr,
          [proxy_port]() { return Dial(proxy_port); }, options);
      if (!tunnel.ok()) {
        run.status = tunnel.status();
        co_return run;
      }
      run.attempts = tunnel->attempts;
      run.connections = tunnel->connections;
      // Named, not temporaries: GCC 12 mishandles the destruction of
      // class temporaries in a co_await expression.
      const Address address{"https", tls_host, port};
      std::string remote = absl::StrCat("proxy ", proxy.Url());
      absl::StatusOr<TlsClient::Handshaken> handshaken = co_await tls->Handshake(
          std::move(tunnel->socket), address, std::move(remote), deadline);
      if (!handshaken.ok()) {
        run.status = handshaken.status();
        co_return run;
      }
      Transport& transport = *handshaken->transport;
      run.alpn = transport.tls_info()->alpn;
      for (int i = 0; i < gets; ++i) {
        absl::StatusOr<Reply> reply = co_await GetOverTransport(
            transport,
            OriginGet(absl::StrCat(tls_host, ":", port), "/hello.txt"));
        if (!reply.ok()) {
          run.status = reply.status();
          co_return run;
        }
        run.replies.push_back(*std::move(reply));
      }
      transport.Close();
      co_return run;
    }());
  }

  // Absolute-form GETs of `urls` through `proxy`, on one connection.
  absl::StatusOr<std::vector<Reply>> ForwardGets(
      const Proxy& proxy, const std::vector<std::string>& urls) {
    return RunTask(
        io_, [&]() -> asio::awaitable<absl::StatusOr<std::vector<Reply>>> {
          absl::StatusOr<asio::ip::tcp::socket> socket =
              co_await Dial(proxy.port);
          if (!socket.ok()) co_return socket.status();
          std::vector<Reply> replies;
          for (const std::string& url : urls) {
            Request request;
            request.method = "GET";
            request.url = *ParseUrl(url);
            absl::StatusOr<Reply> reply = co_await GetOverSocket(
                *socket, SerializeProxiedRequestHead(request, proxy));
            if (!reply.ok()) co_return reply.status();
            replies.push_back(*std::move(reply));
          }
          co_return replies;
        }());
  }

  static TestPki* pki_;
  static NginxServer* nginx_;
  asio::io_context io_;
};

TestPki* RealProxyTest::pki_ = nullptr;
NginxServer* RealProxyTest::nginx_ = nullptr;

// --- squid ---

class SquidTest : public RealProxyTest {
 protected:
  static void SetUpTestSuite() {
    RealProxyTest::SetUpTestSuite();
    if (::testing::Test::HasFatalFailure()) return;
    SquidOptions options;
    options.users = {{kUser, kPassword}, {"bob", "another-one"}};
    // One name per test, so each finds its own lines in squid's log.
    for (const char* name : {kOrigin, kCredsHost, kWrongHost}) {
      options.hosts[name] = "127.0.0.1";
    }
    absl::StatusOr<std::unique_ptr<SquidServer>> squid =
        SquidServer::Start(options);
    ASSERT_TRUE(squid.ok()) << squid.status();
    squid_ = squid->release();
  }
  static void TearDownTestSuite() {
    delete squid_;
    squid_ = nullptr;
    RealProxyTest::TearDownTestSuite();
  }

  static Proxy Squid(const std::string& user = kUser,
                     const std::string& password = kPassword) {
    return HttpProxy(squid_->port(), user, password);
  }

  static SquidServer* squid_;
};

SquidServer* SquidTest::squid_ = nullptr;

TEST_F(SquidTest, HttpsThroughTheTunnelWithTheRightCredentials) {
  const TlsRun run =
      TunnelTls(Squid(), kCredsHost, kCredsHost, HttpProtocols::kHttp11, 2);
  ASSERT_TRUE(run.status.ok()) << run.status << "\n" << squid_->CacheLog();
  EXPECT_EQ(run.attempts, 1);
  EXPECT_EQ(run.alpn, "http/1.1");
  ASSERT_EQ(run.replies.size(), 2u);
  EXPECT_EQ(run.replies[0].status, 200);
  EXPECT_EQ(run.replies[0].body, "hello\n");
  EXPECT_EQ(run.replies[1].body, "hello\n");

  // nginx saw both requests on one TLS connection, with our SNI: the TLS
  // session is with the origin.
  std::vector<testing::NginxAccessLogEntry> ours;
  for (absl::Time give_up = absl::Now() + absl::Seconds(10);
       ours.size() < 2 && absl::Now() < give_up;) {
    ours.clear();
    for (const auto& e : nginx_->AccessLogEntries()) {
      if (e.sni == kCredsHost) ours.push_back(e);
    }
    // nginx logs when it frees the request; nothing to wait on.
    if (ours.size() < 2) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(ours.size(), 2u) << nginx_->AccessLog();
  EXPECT_EQ(ours[0].connection, ours[1].connection);
  EXPECT_EQ(ours[1].connection_requests, 2);
  // squid logs the tunnel once, when it closes, with the user.
  const std::string target = absl::StrCat(kCredsHost, ":", nginx_->tls_port());
  absl::StatusOr<std::vector<SquidAccessLogEntry>> squid_log =
      squid_->AwaitAccessLogEntries(
          1, [&](const SquidAccessLogEntry& e) { return e.url == target; });
  ASSERT_TRUE(squid_log.ok()) << squid_log.status();
  ASSERT_EQ(squid_log->size(), 1u);
  const SquidAccessLogEntry& tunnel = squid_log->front();
  EXPECT_EQ(tunnel.method, "CONNECT");
  EXPECT_EQ(tunnel.status, 200);
  EXPECT_EQ(tunnel.result, "TCP_TUNNEL");
  EXPECT_EQ(tunnel.user, kUser);
}

TEST_F(SquidTest, AlpnSelectsH2ThroughTheTunnel) {
  const TlsRun run =
      TunnelTls(Squid(), "127.0.0.1", kOrigin, HttpProtocols::kAuto, 0);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.alpn, "h2");
}

TEST_F(SquidTest, CertificateIsCheckedAgainstTheOriginNotTheProxy) {
  const TlsRun run =
      TunnelTls(Squid(), "127.0.0.1", "other.test", HttpProtocols::kHttp11, 0);
  EXPECT_EQ(run.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(run.status.message()), HasSubstr("TLS handshake"));
}

TEST_F(SquidTest, WrongPasswordIsPermissionDeniedNamingThe407) {
  const TlsRun run = TunnelTls(Squid(kUser, "wrong-password"), kWrongHost,
                               kWrongHost, HttpProtocols::kHttp11, 0);
  EXPECT_EQ(run.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(run.status.message()),
              HasSubstr("rejected the configured credentials"));
  EXPECT_THAT(std::string(run.status.message()),
              HasSubstr("HTTP/1.1 407 Proxy Authentication Required"));
  EXPECT_THAT(std::string(run.status.message()), Not(HasSubstr("wrong-password")));
  ExpectNoSecrets(run.status.message());
  const std::string target = absl::StrCat(kWrongHost, ":", nginx_->tls_port());
  absl::StatusOr<std::vector<SquidAccessLogEntry>> squid_log =
      squid_->AwaitAccessLogEntries(
          1, [&](const SquidAccessLogEntry& e) { return e.url == target; });
  ASSERT_TRUE(squid_log.ok()) << squid_log.status();
  EXPECT_EQ(squid_log->front().status, 407);
  EXPECT_EQ(squid_log->front().result, "TCP_DENIED");
}

TEST_F(SquidTest, NoCredentialsIsPermissionDenied) {
  const TlsRun run =
      TunnelTls(Squid("", ""), kOrigin, kOrigin, HttpProtocols::kHttp11, 0);
  EXPECT_EQ(run.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(run.status.message()), HasSubstr("no credentials are configured"));
  EXPECT_THAT(std::string(run.status.message()), HasSubstr("407"));
}

TEST_F(SquidTest, ChallengeAnsweredOnTheKeptConnection) {
  TunnelOptions options;
  options.preemptive_auth = false;
  const TlsRun run = TunnelTls(Squid("bob", "another-one"), kOrigin, kOrigin,
                               HttpProtocols::kHttp11, 1, options);
  ASSERT_TRUE(run.status.ok()) << run.status;
  EXPECT_EQ(run.attempts, 2);
  // squid keeps the connection after its 407.
  EXPECT_EQ(run.connections, 1);
  EXPECT_EQ(run.replies.at(0).body, "hello\n");
}

TEST_F(SquidTest, PlainHttpInAbsoluteFormOneConnectionForTwoOrigins) {
  const std::string by_ip = nginx_->Url("/hello.txt");
  const std::string by_name = nginx_->UrlFor("http", kOrigin, "/hello.txt");
  absl::StatusOr<std::vector<Reply>> replies =
      ForwardGets(Squid(), {by_ip, by_name});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ((*replies)[0].status, 200);
  EXPECT_EQ((*replies)[0].body, "hello\n");
  EXPECT_EQ((*replies)[1].body, "hello\n");
  absl::StatusOr<std::vector<SquidAccessLogEntry>> squid_log =
      squid_->AwaitAccessLogEntries(2, [&](const SquidAccessLogEntry& e) {
        return e.status == 200 && (e.url == by_ip || e.url == by_name);
      });
  ASSERT_TRUE(squid_log.ok()) << squid_log.status();
  const SquidAccessLogEntry& a = (*squid_log)[0];
  const SquidAccessLogEntry& b = (*squid_log)[1];
  EXPECT_EQ(a.method, "GET");
  EXPECT_EQ(a.url, by_ip);
  EXPECT_EQ(a.user, kUser);
  EXPECT_EQ(b.url, by_name);
  // Both origins over the one connection to the proxy.
  EXPECT_EQ(a.client_port, b.client_port);
}

TEST_F(SquidTest, PlainHttpWithoutCredentialsGets407Response) {
  // For http:// the 407 is a response the caller sees (egressd's codec
  // will answer it like a CONNECT's).
  absl::StatusOr<std::vector<Reply>> replies =
      ForwardGets(Squid("", ""), {nginx_->Url("/hello.txt")});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(replies->at(0).status, 407);
}

// --- tinyproxy ---

class TinyproxyTest : public RealProxyTest {};

TEST_F(TinyproxyTest, ConnectAndTls) {
  absl::StatusOr<std::unique_ptr<TinyproxyServer>> tinyproxy =
      TinyproxyServer::Start();
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  const TlsRun run = TunnelTls(HttpProxy((*tinyproxy)->port()), "127.0.0.1",
                               "127.0.0.1", HttpProtocols::kAuto, 0);
  ASSERT_TRUE(run.status.ok()) << run.status << "\n" << (*tinyproxy)->Log();
  EXPECT_EQ(run.alpn, "h2");
  // HTTP/1.1 requests through a second tunnel:
  const TlsRun http1 = TunnelTls(HttpProxy((*tinyproxy)->port()), "127.0.0.1",
                                 "127.0.0.1", HttpProtocols::kHttp11, 2);
  ASSERT_TRUE(http1.status.ok()) << http1.status;
  ASSERT_EQ(http1.replies.size(), 2u);
  EXPECT_EQ(http1.replies[1].body, "hello\n");
  EXPECT_THAT((*tinyproxy)->Log(), HasSubstr("CONNECT 127.0.0.1:"));
}

TEST_F(TinyproxyTest, PlainForwardProxying) {
  absl::StatusOr<std::unique_ptr<TinyproxyServer>> tinyproxy =
      TinyproxyServer::Start();
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  absl::StatusOr<std::vector<Reply>> replies =
      ForwardGets(HttpProxy((*tinyproxy)->port()), {nginx_->Url("/hello.txt")});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(replies->at(0).status, 200);
  EXPECT_EQ(replies->at(0).body, "hello\n");
  EXPECT_THAT((*tinyproxy)->Log(),
              HasSubstr(absl::StrCat("GET ", nginx_->Url("/hello.txt"))));
}

TEST_F(TinyproxyTest, BasicAuth) {
  absl::StatusOr<std::unique_ptr<TinyproxyServer>> tinyproxy =
      TinyproxyServer::Start({.username = kUser, .password = kPassword});
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  const int port = (*tinyproxy)->port();
  const TlsRun ok = TunnelTls(HttpProxy(port, kUser, kPassword), "127.0.0.1",
                              "127.0.0.1", HttpProtocols::kHttp11, 1);
  ASSERT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(ok.replies.at(0).body, "hello\n");
  const TlsRun none = TunnelTls(HttpProxy(port), "127.0.0.1", "127.0.0.1",
                                HttpProtocols::kHttp11, 0);
  EXPECT_EQ(none.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(none.status.message()),
              HasSubstr("no credentials are configured"));
  EXPECT_THAT(std::string(none.status.message()), HasSubstr("HTTP/1.0 407"));
  // tinyproxy answers wrong credentials with 401, not 407: an error naming
  // its status line.
  const TlsRun wrong = TunnelTls(HttpProxy(port, kUser, "nope-wrong"),
                                 "127.0.0.1", "127.0.0.1",
                                 HttpProtocols::kHttp11, 0);
  EXPECT_EQ(wrong.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(wrong.status.message()),
              HasSubstr("HTTP/1.0 401 Unauthorized"));
  EXPECT_THAT(std::string(wrong.status.message()), Not(HasSubstr("nope-wrong")));
}

}  // namespace
}  // namespace egress
