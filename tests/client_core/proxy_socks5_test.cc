// SOCKS5 (RFC 1928 / 1929) through our own server (Socks5Server: both
// authentication modes, every reply code on demand) and Debian's danted (no
// authentication). Tunnels carry HTTP to a ScriptedOrigin and TLS to an
// nginx with a test CA. Runs under TSan too (no gRPC).
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/read.hpp"
#include "asio/write.hpp"
#include "client_core/base/sync.h"
#include "client_core/http1/response_parser.h"
#include "client_core/proxy/socks5.h"
#include "client_core/tls/tls_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dante.h"
#include "tests/support/nginx.h"
#include "tests/support/run_task.h"
#include "tests/support/scripted_origin.h"
#include "tests/support/socks5_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_pki.h"

namespace egress {
namespace {

using ::egress::testing::DanteServer;
using ::egress::testing::IssuedCert;
using ::egress::testing::NginxOptions;
using ::egress::testing::NginxServer;
using ::egress::testing::NginxTlsOptions;
using ::egress::testing::RunTask;
using ::egress::testing::ScriptedOrigin;
using ::egress::testing::Socks5Server;
using ::egress::testing::Socks5ServerOptions;
using ::egress::testing::TestPki;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr char kUser[] = "carol";
constexpr char kPassword[] = "socks-secret-42";

asio::awaitable<absl::StatusOr<asio::ip::tcp::socket>> Dial(int port) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(
      {asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)},
      kNoThrow);
  if (ec) co_return absl::UnavailableError(ec.message());
  co_return std::move(socket);
}

asio::awaitable<absl::StatusOr<std::string>> GetOver(
    asio::ip::tcp::socket& socket) {
  const std::string request = "GET /s HTTP/1.1\r\nHost: origin.test\r\n\r\n";
  auto [wec, wn] =
      co_await asio::async_write(socket, asio::buffer(request), kNoThrow);
  if (wec) co_return absl::UnavailableError(wec.message());
  ResponseParser parser;
  parser.Reset(false);
  std::string body;
  char buffer[4096];
  while (!parser.message_complete()) {
    auto [rec, n] =
        co_await socket.async_read_some(asio::buffer(buffer), kNoThrow);
    if (rec) co_return absl::UnavailableError(rec.message());
    absl::StatusOr<size_t> used = parser.Feed(std::string_view(buffer, n));
    if (!used.ok()) co_return used.status();
    body += parser.TakeBody();
  }
  co_return body;
}

Proxy Socks(int port, const std::string& user = "",
            const std::string& password = "") {
  Proxy proxy;
  proxy.name = "socks";
  proxy.scheme = Proxy::Scheme::kSocks5;
  proxy.host = "127.0.0.1";
  proxy.port = static_cast<uint16_t>(port);
  proxy.username = user;
  proxy.password = password;
  return proxy;
}

struct Outcome {
  absl::Status status;
  std::string body;
};

class Socks5Test : public ::testing::Test {
 protected:
  Socks5Test()
      : origin_([](int, const std::string&) {
          return ScriptedOrigin::Reply{ScriptedOrigin::Ok("via socks"), false};
        }) {}

  // Socks5Connect to `host`:`port` through `proxy`, then a GET.
  Outcome Run(const Proxy& proxy, const std::string& host, int port,
              absl::Duration timeout = absl::Seconds(10),
              CallAbort* abort = nullptr) {
    return RunTask(io_, [&]() -> asio::awaitable<Outcome> {
      Outcome out;
      absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(proxy.port);
      if (!socket.ok()) {
        out.status = socket.status();
        co_return out;
      }
      out.status = co_await Socks5Connect(*socket, proxy, host,
                                          static_cast<uint16_t>(port),
                                          absl::Now() + timeout, abort);
      if (!out.status.ok()) co_return out;
      absl::StatusOr<std::string> body = co_await GetOver(*socket);
      if (!body.ok()) {
        out.status = body.status();
      } else {
        out.body = *body;
      }
      co_return out;
    }());
  }

  Outcome RunToOrigin(const Proxy& proxy) {
    return Run(proxy, "127.0.0.1", origin_.port());
  }

  asio::io_context io_;
  ScriptedOrigin origin_;
};

TEST_F(Socks5Test, NoAuthentication) {
  Socks5Server server;
  const Outcome out = RunToOrigin(Socks(server.port()));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "via socks");
  const std::vector<Socks5Server::Handshake> h = server.handshakes();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_THAT(h[0].methods_offered, ElementsAre(0));
  EXPECT_EQ(h[0].method_chosen, 0);
  EXPECT_EQ(h[0].address_type, 1);  // IPv4 literal
  EXPECT_EQ(h[0].host, "127.0.0.1");
  EXPECT_EQ(h[0].port, origin_.port());
  EXPECT_EQ(h[0].reply, 0);
}

TEST_F(Socks5Test, UsernamePassword) {
  Socks5Server server({.username = kUser, .password = kPassword});
  const Outcome out = RunToOrigin(Socks(server.port(), kUser, kPassword));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "via socks");
  const std::vector<Socks5Server::Handshake> h = server.handshakes();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_THAT(h[0].methods_offered, ElementsAre(0, 2));
  EXPECT_EQ(h[0].method_chosen, 2);
  EXPECT_TRUE(h[0].authenticated);
  EXPECT_EQ(h[0].username, kUser);
}

TEST_F(Socks5Test, CredentialsOfferedButNotRequired) {
  // A server that takes "no authentication" is fine with a client that
  // could also authenticate.
  Socks5Server server;
  const Outcome out = RunToOrigin(Socks(server.port(), kUser, kPassword));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(server.handshakes().at(0).method_chosen, 0);
  EXPECT_TRUE(server.handshakes().at(0).username.empty());
}

TEST_F(Socks5Test, WrongPassword) {
  Socks5Server server({.username = kUser, .password = kPassword});
  const Outcome out = RunToOrigin(Socks(server.port(), kUser, "not-it-xyz"));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("rejected the configured username/password"));
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("SOCKS5 proxy 'socks'"));
  EXPECT_THAT(std::string(out.status.message()), Not(HasSubstr("not-it-xyz")));
  EXPECT_THAT(std::string(out.status.message()), Not(HasSubstr(kUser)));
}

TEST_F(Socks5Test, AuthenticationRequiredButNoCredentials) {
  Socks5Server server({.username = kUser, .password = kPassword});
  const Outcome out = RunToOrigin(Socks(server.port()));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("accepts none of the offered authentication methods"));
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("no credentials are configured"));
}

TEST_F(Socks5Test, DomainNameIsResolvedByTheProxy) {
  Socks5Server server({.hosts = {{"origin.test", "127.0.0.1"}}});
  const Outcome out = Run(Socks(server.port()), "origin.test", origin_.port());
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "via socks");
  const Socks5Server::Handshake h = server.handshakes().at(0);
  EXPECT_EQ(h.address_type, 3);
  EXPECT_EQ(h.host, "origin.test");
}

TEST_F(Socks5Test, Ipv6LiteralTarget) {
  Socks5Server server({.forced_reply = 5});
  const Outcome out = Run(Socks(server.port()), "::1", 8443);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  const Socks5Server::Handshake h = server.handshakes().at(0);
  EXPECT_EQ(h.address_type, 4);
  EXPECT_EQ(h.host, "::1");
  EXPECT_EQ(h.port, 8443);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("CONNECT to [::1]:8443"));
}

TEST_F(Socks5Test, EveryReplyCodeIsNamed) {
  struct Case {
    uint8_t reply;
    absl::StatusCode code;
    const char* words;
  };
  const Case cases[] = {
      {1, absl::StatusCode::kUnavailable, "general SOCKS server failure"},
      {2, absl::StatusCode::kPermissionDenied,
       "connection not allowed by ruleset"},
      {3, absl::StatusCode::kUnavailable, "network unreachable"},
      {4, absl::StatusCode::kUnavailable, "host unreachable"},
      {5, absl::StatusCode::kUnavailable, "connection refused by destination"},
      {6, absl::StatusCode::kUnavailable, "TTL expired"},
      {7, absl::StatusCode::kUnavailable, "command not supported"},
      {8, absl::StatusCode::kUnavailable, "address type not supported"},
      {42, absl::StatusCode::kUnavailable, "unassigned reply code"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reply);
    Socks5Server server({.forced_reply = c.reply});
    const Outcome out = RunToOrigin(Socks(server.port()));
    EXPECT_EQ(out.status.code(), c.code);
    EXPECT_EQ(out.status.message(),
              absl::StrCat("SOCKS5 proxy 'socks' (socks5://127.0.0.1:",
                           server.port(), ") refused CONNECT to 127.0.0.1:",
                           origin_.port(), ": ", c.words, " (reply ",
                           c.reply, ")"));
  }
}

TEST_F(Socks5Test, RealRefusalFromOurServer) {
  Socks5Server server;
  const int closed_port = testing::PickFreePort();
  const Outcome out = Run(Socks(server.port()), "127.0.0.1", closed_port);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("connection refused by destination (reply 5)"));
}

TEST_F(Socks5Test, NotASocksServer) {
  // Something that answers in HTTP.
  asio::ip::tcp::acceptor http(io_, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket accepted(io_);
  const std::string answer = "HTTP/1.1 400 Bad Request\r\n\r\n";
  http.async_accept(accepted, [&](const asio::error_code& ec) {
    if (!ec) {
      asio::async_write(accepted, asio::buffer(answer),
                        [](const asio::error_code&, size_t) {});
    }
  });
  const Outcome out = RunToOrigin(Socks(http.local_endpoint().port()));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("broke the SOCKS5 protocol"));
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("version 72, not 5"));
}

TEST_F(Socks5Test, DeadlineWhenTheProxyIsSilent) {
  // Accepted by the kernel (listen backlog), never answered.
  asio::ip::tcp::acceptor silent(io_, {asio::ip::make_address("127.0.0.1"), 0});
  const absl::Time start = absl::Now();
  const Outcome out = Run(Socks(silent.local_endpoint().port()), "127.0.0.1",
                          origin_.port(), absl::Milliseconds(200));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("SOCKS5 proxy 'socks'"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(Socks5Test, AbortWhenTheProxyIsSilent) {
  // A "proxy" that reads the greeting and then says nothing; the call is
  // aborted once the greeting has arrived (the handshake is then waiting
  // for the method choice).
  asio::ip::tcp::acceptor silent(io_, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket accepted(io_);
  std::array<char, 3> greeting{};
  CallAbort abort;
  silent.async_accept(accepted, [&](const asio::error_code& ec) {
    if (ec) return;
    asio::async_read(accepted, asio::buffer(greeting),
                     [&](const asio::error_code&, size_t) { abort.Abort(); });
  });
  const Outcome out = Run(Socks(silent.local_endpoint().port()), "127.0.0.1",
                          origin_.port(), absl::Seconds(30), &abort);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(greeting[0], 5);
}

TEST_F(Socks5Test, BadTargets) {
  Socks5Server server;
  EXPECT_EQ(Run(Socks(server.port()), std::string(256, 'a'), 80).status.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(Socks(server.port()), "a b", 80).status.code(),
            absl::StatusCode::kInvalidArgument);
  Proxy http = Socks(server.port());
  http.scheme = Proxy::Scheme::kHttp;
  EXPECT_EQ(Run(http, "127.0.0.1", 80).status.code(),
            absl::StatusCode::kInvalidArgument);
  // Connections were opened (by the test) but not a byte was sent.
  for (const Socks5Server::Handshake& h : server.handshakes()) {
    EXPECT_TRUE(h.methods_offered.empty());
  }
}

// --- danted, and TLS through SOCKS5 ---

class DanteTest : public Socks5Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<DanteServer>> dante = DanteServer::Start();
    ASSERT_TRUE(dante.ok()) << dante.status();
    dante_ = dante->release();
  }
  static void TearDownTestSuite() {
    delete dante_;
    dante_ = nullptr;
  }
  static DanteServer* dante_;
};

DanteServer* DanteTest::dante_ = nullptr;

TEST_F(DanteTest, ConnectByAddress) {
  const Outcome out = RunToOrigin(Socks(dante_->port()));
  ASSERT_TRUE(out.status.ok()) << out.status << "\n" << dante_->Log();
  EXPECT_EQ(out.body, "via socks");
}

TEST_F(DanteTest, ConnectByName) {
  const Outcome out = Run(Socks(dante_->port()), "localhost", origin_.port());
  ASSERT_TRUE(out.status.ok()) << out.status << "\n" << dante_->Log();
  EXPECT_EQ(out.body, "via socks");
}

TEST_F(DanteTest, RefusedByTheDestination) {
  const Outcome out =
      Run(Socks(dante_->port()), "127.0.0.1", testing::PickFreePort());
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("connection refused by destination (reply 5)"));
}

TEST_F(DanteTest, TlsToTheOriginThroughSocks5) {
  absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<IssuedCert> leaf =
      (*pki)->IssueLeaf("origin", {.dns_names = {"localhost"}});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  NginxOptions nginx_options;
  nginx_options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                      .key_file = leaf->key_file};
  absl::StatusOr<std::unique_ptr<NginxServer>> nginx =
      NginxServer::Start(nginx_options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  DestinationOptions defaults;
  defaults.trust_system_store = false;
  defaults.ca_file = (*pki)->ca_file();
  absl::StatusOr<std::unique_ptr<TlsClient>> tls =
      TlsClient::Create(*DestinationRules::Create(defaults, {}));
  ASSERT_TRUE(tls.ok()) << tls.status();

  const Proxy proxy = Socks(dante_->port());
  const uint16_t tls_port = static_cast<uint16_t>((*nginx)->tls_port());
  const absl::StatusOr<std::string> alpn =
      RunTask(io_, [&]() -> asio::awaitable<absl::StatusOr<std::string>> {
        const absl::Time deadline = absl::Now() + absl::Seconds(10);
        absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(proxy.port);
        if (!socket.ok()) co_return socket.status();
        absl::Status connected = co_await Socks5Connect(
            *socket, proxy, "localhost", tls_port, deadline);
        if (!connected.ok()) co_return connected;
        // Named, not temporaries: GCC 12 mishandles the destruction of
        // class temporaries in a co_await expression.
        const Address address{"https", "localhost", tls_port};
        std::string remote = proxy.Url();
        absl::StatusOr<TlsClient::Handshaken> handshaken =
            co_await (*tls)->Handshake(*std::move(socket), address,
                                       std::move(remote), deadline);
        if (!handshaken.ok()) co_return handshaken.status();
        std::string protocol = handshaken->transport->tls_info()->alpn;
        handshaken->transport->Close();
        co_return protocol;
      }());
  ASSERT_TRUE(alpn.ok()) << alpn.status();
  EXPECT_EQ(*alpn, "h2");
}

}  // namespace
}  // namespace egress
