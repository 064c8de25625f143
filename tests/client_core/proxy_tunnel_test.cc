// CONNECT tunnels through our own proxy (FaultProxy), for what real proxies
// do not do on demand: 407 with Connection: close, two-step challenges,
// refused CONNECTs, garbage after the 200, challenges without end, silence.
// Every tunnel that comes up carries a real request to a ScriptedOrigin.
// Runs under TSan too (no gRPC).
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "client_core/base/sync.h"
#include "client_core/http1/response_parser.h"
#include "client_core/proxy/http_tunnel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/run_task.h"
#include "tests/support/scripted_origin.h"

namespace egress {
namespace {

using ::egress::testing::FaultProxy;
using ::egress::testing::RunTask;
using ::egress::testing::ScriptedOrigin;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr char kUser[] = "alice";
constexpr char kPassword[] = "correct-horse-battery";

asio::awaitable<absl::StatusOr<asio::ip::tcp::socket>> Dial(int port) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(
      {asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)},
      kNoThrow);
  if (ec) co_return absl::UnavailableError(ec.message());
  co_return std::move(socket);
}

// One HTTP/1.1 GET over `socket` (a tunnel); the response body.
asio::awaitable<absl::StatusOr<std::string>> GetOver(
    asio::ip::tcp::socket& socket, const std::string& path) {
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: origin.test\r\n\r\n");
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

// No secret of the test's proxy in `text`.
void ExpectNoSecrets(absl::string_view text) {
  EXPECT_THAT(std::string(text), Not(HasSubstr(kPassword)));
  EXPECT_THAT(std::string(text),
              Not(HasSubstr(absl::Base64Escape(
                  absl::StrCat(kUser, ":", kPassword)))));
}

struct Outcome {
  absl::Status status;
  std::string body;  // what the origin answered through the tunnel
  int attempts = 0;
  int connections = 0;
};

class ProxyTunnelTest : public ::testing::Test {
 protected:
  ProxyTunnelTest()
      : origin_([](int n, const std::string&) {
          return ScriptedOrigin::Reply{ScriptedOrigin::Ok("through the tunnel"),
                                       false};
        }) {}

  Proxy ProxyAt(const FaultProxy& fault, bool with_credentials = true) {
    Proxy proxy;
    proxy.name = "fault";
    proxy.host = "127.0.0.1";
    proxy.port = static_cast<uint16_t>(fault.port());
    if (with_credentials) {
      proxy.username = kUser;
      proxy.password = kPassword;
    }
    return proxy;
  }

  // ConnectTunnel to the origin through `fault`, then a GET through it.
  Outcome Run(const FaultProxy& fault, const Proxy& proxy,
              const TunnelOptions& options = TunnelOptions(),
              absl::Duration timeout = absl::Seconds(10),
              CallAbort* abort = nullptr) {
    return RunTask(io_, [&]() -> asio::awaitable<Outcome> {
      Outcome out;
      absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(fault.port());
      if (!socket.ok()) {
        out.status = socket.status();
        co_return out;
      }
      const int port = fault.port();
      absl::StatusOr<Tunnel> tunnel = co_await ConnectTunnel(
          *std::move(socket), proxy, "127.0.0.1",
          static_cast<uint16_t>(origin_.port()), absl::Now() + timeout, abort,
          [port]() { return Dial(port); }, options);
      if (!tunnel.ok()) {
        out.status = tunnel.status();
        co_return out;
      }
      out.attempts = tunnel->attempts;
      out.connections = tunnel->connections;
      absl::StatusOr<std::string> body = co_await GetOver(tunnel->socket, "/x");
      if (!body.ok()) {
        out.status = body.status();
        co_return out;
      }
      out.body = *body;
      co_return out;
    }());
  }

  asio::io_context io_;
  ScriptedOrigin origin_;
};

TEST_F(ProxyTunnelTest, ConnectRequestAsOkHttpSendsIt) {
  FaultProxy fault(
      [](int, const FaultProxy::Request&) { return FaultProxy::Established(); });
  const Outcome out = Run(fault, ProxyAt(fault));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "through the tunnel");
  EXPECT_EQ(out.attempts, 1);
  EXPECT_EQ(out.connections, 1);
  const std::vector<FaultProxy::Request> requests = fault.requests();
  ASSERT_EQ(requests.size(), 1u);
  const std::string target = absl::StrCat("127.0.0.1:", origin_.port());
  // Preemptive Basic credentials by default.
  EXPECT_EQ(requests[0].head,
            absl::StrCat("CONNECT ", target, " HTTP/1.1\r\n", "Host: ", target,
                         "\r\n", "Proxy-Connection: Keep-Alive\r\n",
                         "User-Agent: egressd\r\n", "Proxy-Authorization: ",
                         FaultProxy::BasicCredentials(kUser, kPassword),
                         "\r\n\r\n"));
}

TEST_F(ProxyTunnelTest, NoCredentialsNoAuthorizationHeader) {
  FaultProxy fault(
      [](int, const FaultProxy::Request&) { return FaultProxy::Established(); });
  const Outcome out = Run(fault, ProxyAt(fault, /*with_credentials=*/false));
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(fault.requests().size(), 1u);
  EXPECT_FALSE(fault.requests()[0].proxy_authorization.has_value());
}

TEST_F(ProxyTunnelTest, ChallengeAnsweredOnTheSameConnection) {
  // Not preemptive: the 407 (keep-alive) asks, the second CONNECT answers.
  FaultProxy fault([](int n, const FaultProxy::Request& r) {
    if (!r.proxy_authorization.has_value()) {
      return FaultProxy::AuthRequired("Basic realm=\"proxy\"", false);
    }
    return FaultProxy::Established();
  });
  TunnelOptions options;
  options.preemptive_auth = false;
  const Outcome out = Run(fault, ProxyAt(fault), options);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "through the tunnel");
  EXPECT_EQ(out.attempts, 2);
  EXPECT_EQ(out.connections, 1);
  EXPECT_EQ(fault.connections_accepted(), 1);
  const std::vector<FaultProxy::Request> requests = fault.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].connection, 0);
  EXPECT_EQ(requests[1].proxy_authorization,
            FaultProxy::BasicCredentials(kUser, kPassword));
}

TEST_F(ProxyTunnelTest, ConnectionCloseAfter407MeansANewConnection) {
  FaultProxy fault([](int n, const FaultProxy::Request& r) {
    if (!r.proxy_authorization.has_value()) {
      return FaultProxy::AuthRequired("Basic realm=\"proxy\"", /*close=*/true);
    }
    return FaultProxy::Established();
  });
  TunnelOptions options;
  options.preemptive_auth = false;
  const Outcome out = Run(fault, ProxyAt(fault), options);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "through the tunnel");
  EXPECT_EQ(out.attempts, 2);
  EXPECT_EQ(out.connections, 2);
  EXPECT_EQ(fault.connections_accepted(), 2);
  const std::vector<FaultProxy::Request> requests = fault.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].connection, 0);
  EXPECT_EQ(requests[1].connection, 1);
  EXPECT_EQ(requests[1].proxy_authorization,
            FaultProxy::BasicCredentials(kUser, kPassword));
}

TEST_F(ProxyTunnelTest, EstablishTunnelSaysReconnectWithTheHeaderToSend) {
  FaultProxy fault([](int n, const FaultProxy::Request& r) {
    if (!r.proxy_authorization.has_value()) {
      return FaultProxy::AuthRequired("Basic realm=\"proxy\"", /*close=*/true);
    }
    return FaultProxy::Established();
  });
  const Proxy proxy = ProxyAt(fault);
  TunnelOptions options;
  options.preemptive_auth = false;
  const uint16_t origin_port = static_cast<uint16_t>(origin_.port());
  const int proxy_port = fault.port();
  RunTask(io_, [&]() -> asio::awaitable<bool> {
    TunnelProgress progress;
    absl::StatusOr<asio::ip::tcp::socket> first = co_await Dial(proxy_port);
    EXPECT_TRUE(first.ok());
    absl::StatusOr<TunnelOutcome> outcome = co_await EstablishTunnel(
        *first, proxy, "127.0.0.1", origin_port,
        absl::Now() + absl::Seconds(10), nullptr, &progress, options);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, TunnelOutcome::kReconnect);
    EXPECT_EQ(progress.attempts, 1);
    EXPECT_EQ(progress.proxy_authorization,
              FaultProxy::BasicCredentials(kUser, kPassword));
    EXPECT_THAT(progress.last_status_line,
                HasSubstr("407 Proxy Authentication Required"));
    first->close();

    absl::StatusOr<asio::ip::tcp::socket> second = co_await Dial(proxy_port);
    EXPECT_TRUE(second.ok());
    outcome = co_await EstablishTunnel(*second, proxy, "127.0.0.1",
                                       origin_port,
                                       absl::Now() + absl::Seconds(10), nullptr,
                                       &progress, options);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, TunnelOutcome::kEstablished);
    EXPECT_EQ(progress.attempts, 2);
    EXPECT_EQ(progress.connections, 2);
    absl::StatusOr<std::string> body = co_await GetOver(*second, "/y");
    EXPECT_TRUE(body.ok()) << body.status();
    co_return true;
  }());
}

TEST_F(ProxyTunnelTest, TwoStepChallenge) {
  // Two realms, one after the other (e.g. chained proxies): each is
  // answered once.
  FaultProxy fault([](int n, const FaultProxy::Request&) {
    if (n == 0) return FaultProxy::AuthRequired("Basic realm=\"outer\"", false);
    if (n == 1) return FaultProxy::AuthRequired("Basic realm=\"inner\"", true);
    return FaultProxy::Established();
  });
  TunnelOptions options;
  options.preemptive_auth = false;
  const Outcome out = Run(fault, ProxyAt(fault), options);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.attempts, 3);
  EXPECT_EQ(out.connections, 2);
  EXPECT_EQ(out.body, "through the tunnel");
}

TEST_F(ProxyTunnelTest, ChallengeAmongOtherSchemes) {
  FaultProxy fault([](int n, const FaultProxy::Request& r) {
    if (!r.proxy_authorization.has_value()) {
      return FaultProxy::AuthRequired(
          "Negotiate, Digest realm=\"d, with comma\", nonce=\"abc\", "
          "Basic realm=\"b\", charset=\"UTF-8\"",
          false);
    }
    return FaultProxy::Established();
  });
  TunnelOptions options;
  options.preemptive_auth = false;
  const Outcome out = Run(fault, ProxyAt(fault), options);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.attempts, 2);
}

TEST_F(ProxyTunnelTest, WrongCredentialsCostOneAttempt) {
  // The proxy rejects whatever it gets.
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::AuthRequired("Basic realm=\"proxy\"", false);
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("rejected the configured credentials"));
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("HTTP/1.1 407 Proxy Authentication Required"));
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("proxy 'fault'"));
  ExpectNoSecrets(out.status.message());
  EXPECT_EQ(fault.requests().size(), 1u);

  // Not preemptive: asked once, answered once, rejected.
  TunnelOptions options;
  options.preemptive_auth = false;
  FaultProxy fault2([](int, const FaultProxy::Request&) {
    return FaultProxy::AuthRequired("Basic realm=\"proxy\"", true);
  });
  const Outcome out2 = Run(fault2, ProxyAt(fault2), options);
  EXPECT_EQ(out2.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out2.status.message()), HasSubstr("407"));
  ExpectNoSecrets(out2.status.message());
  EXPECT_EQ(fault2.requests().size(), 2u);
}

TEST_F(ProxyTunnelTest, NoCredentialsConfigured) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::AuthRequired("Basic realm=\"proxy\"", false);
  });
  const Outcome out = Run(fault, ProxyAt(fault, /*with_credentials=*/false));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("no credentials are configured"));
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("407"));
}

TEST_F(ProxyTunnelTest, OnlySchemesWeDoNotSpeak) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::AuthRequired("NTLM, Negotiate", false);
  });
  TunnelOptions options;
  options.preemptive_auth = false;
  const Outcome out = Run(fault, ProxyAt(fault), options);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("asks for ntlm, negotiate"));
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("Basic only"));
}

TEST_F(ProxyTunnelTest, AtMost21Attempts) {
  // A new realm every time, and the connection closed each time: the
  // client keeps answering until the limit.
  FaultProxy fault([](int n, const FaultProxy::Request&) {
    return FaultProxy::AuthRequired(absl::StrCat("Basic realm=\"r", n, "\""),
                                    n % 2 == 0);
  });
  TunnelOptions options;
  options.preemptive_auth = false;
  const Outcome out = Run(fault, ProxyAt(fault), options);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("after 21 attempts"));
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("407"));
  ExpectNoSecrets(out.status.message());
  EXPECT_EQ(fault.requests().size(), 21u);
  EXPECT_EQ(fault.connections_accepted(), 11);
}

TEST_F(ProxyTunnelTest, RefusedConnect) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Status(403, "Forbidden");
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(out.status.message(),
            absl::StrCat("proxy 'fault' (http://127.0.0.1:", fault.port(),
                         ") refused CONNECT to 127.0.0.1:", origin_.port(),
                         ": HTTP/1.1 403 Forbidden"));
}

TEST_F(ProxyTunnelTest, OtherStatusesAreUnavailable) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Status(502, "Bad Gateway");
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("HTTP/1.1 502 Bad Gateway"));
}

TEST_F(ProxyTunnelTest, BytesAfterTheConnectResponse) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Reply{
        "HTTP/1.1 200 Connection established\r\n\r\nGARBAGE", false, false};
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("sent 7 unexpected bytes after the CONNECT response"));
}

TEST_F(ProxyTunnelTest, ContentLengthOnA200IsIgnored) {
  // RFC 9110 9.3.6: a client ignores Content-Length on a 2xx to CONNECT;
  // the bytes after the head belong to the tunnel.
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Reply{
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, true};
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.body, "through the tunnel");
}

TEST_F(ProxyTunnelTest, ProxyClosesWithoutAnswering) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Reply{"", true, false};
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()),
              HasSubstr("closed the connection before answering CONNECT"));
}

TEST_F(ProxyTunnelTest, MalformedAnswer) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Reply{"SSH-2.0-OpenSSH_9.2\r\n\r\n", false, false};
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("malformed response"));
}

TEST_F(ProxyTunnelTest, AProxyEchoingTheSecretIsRedacted) {
  // Whatever a proxy puts in its reason phrase, the password does not
  // reach the error.
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Status(
        403, absl::StrCat("Forbidden for ", kUser, ":", kPassword, " ",
                          FaultProxy::BasicCredentials(kUser, kPassword)));
  });
  const Outcome out = Run(fault, ProxyAt(fault));
  EXPECT_EQ(out.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("<redacted>"));
  ExpectNoSecrets(out.status.message());
}

TEST_F(ProxyTunnelTest, DeadlineWhileTheProxyIsSilent) {
  Notification release;
  FaultProxy fault([&](int, const FaultProxy::Request&) {
    release.WaitForNotification();
    return FaultProxy::Reply{"", true, false};
  });
  const absl::Time start = absl::Now();
  const Outcome out =
      Run(fault, ProxyAt(fault), TunnelOptions(), absl::Milliseconds(200));
  release.Notify();
  EXPECT_EQ(out.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("proxy 'fault'"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(ProxyTunnelTest, AbortWhileTheProxyIsSilent) {
  Notification arrived;
  Notification release;
  FaultProxy fault([&](int, const FaultProxy::Request&) {
    arrived.Notify();
    release.WaitForNotification();
    return FaultProxy::Reply{"", true, false};
  });
  CallAbort abort;
  std::thread aborter([&] {
    arrived.WaitForNotification();
    abort.Abort();
  });
  const Outcome out =
      Run(fault, ProxyAt(fault), TunnelOptions(), absl::Seconds(30), &abort);
  aborter.join();
  release.Notify();
  EXPECT_EQ(out.status.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(out.status.message()), HasSubstr("cancelled"));
}

TEST_F(ProxyTunnelTest, AlreadyAborted) {
  FaultProxy fault(
      [](int, const FaultProxy::Request&) { return FaultProxy::Established(); });
  CallAbort abort;
  abort.Abort();
  const Outcome out =
      Run(fault, ProxyAt(fault), TunnelOptions(), absl::Seconds(10), &abort);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(fault.requests().empty());
}

TEST_F(ProxyTunnelTest, BadTargetHost) {
  FaultProxy fault(
      [](int, const FaultProxy::Request&) { return FaultProxy::Established(); });
  const Proxy proxy = ProxyAt(fault);
  const int port = fault.port();
  const absl::Status status = RunTask(io_, [&]() -> asio::awaitable<absl::Status> {
    absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(port);
    if (!socket.ok()) co_return socket.status();
    TunnelProgress progress;
    absl::StatusOr<TunnelOutcome> outcome = co_await EstablishTunnel(
        *socket, proxy, "a.test\r\nX-Injected: 1", 443,
        absl::Now() + absl::Seconds(5), nullptr, &progress);
    co_return outcome.status();
  }());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fault.requests().empty());
}

TEST_F(ProxyTunnelTest, FailoverToTheNextProxyAndTheFailedOneGoesLast) {
  // The loop the Connector runs over Select()'s choices, in miniature.
  FaultProxy good(
      [](int, const FaultProxy::Request&) { return FaultProxy::Established(); });
  uint16_t dead_port = 0;
  {
    // A port nothing listens on any more.
    asio::ip::tcp::acceptor probe(io_, {asio::ip::make_address("127.0.0.1"), 0});
    dead_port = probe.local_endpoint().port();
  }
  ProxySelectorOptions options;
  Proxy dead = ProxyAt(good);
  dead.name = "dead";
  dead.port = dead_port;
  Proxy alive = ProxyAt(good);
  alive.name = "alive";
  options.proxies = {dead, alive};
  options.default_via = {"dead", "alive"};
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(options);
  ASSERT_TRUE(selector.ok()) << selector.status();
  ProxyDatabase database;
  const uint16_t origin_port = static_cast<uint16_t>(origin_.port());

  const auto fetch = [&](std::vector<std::string>* tried) {
    return RunTask(io_, [&]() -> asio::awaitable<absl::StatusOr<std::string>> {
      for (const ProxyChoice& choice :
           selector->Select("https", "origin.test", &database)) {
        tried->push_back(choice.proxy->name);
        const int port = choice.proxy->port;
        absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(port);
        if (!socket.ok()) {
          database.Failed(choice);
          continue;
        }
        absl::StatusOr<Tunnel> tunnel = co_await ConnectTunnel(
            *std::move(socket), *choice.proxy, "127.0.0.1", origin_port,
            absl::Now() + absl::Seconds(10), nullptr,
            [port]() { return Dial(port); });
        if (!tunnel.ok()) {
          database.Failed(choice);
          continue;
        }
        database.Connected(choice);
        co_return co_await GetOver(tunnel->socket, "/f");
      }
      co_return absl::UnavailableError("every proxy failed");
    }());
  };
  std::vector<std::string> first_tries;
  absl::StatusOr<std::string> first = fetch(&first_tries);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, "through the tunnel");
  EXPECT_EQ(first_tries, (std::vector<std::string>{"dead", "alive"}));
  std::vector<std::string> second_tries;
  absl::StatusOr<std::string> second = fetch(&second_tries);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second_tries, (std::vector<std::string>{"alive"}));
  EXPECT_EQ(good.connections_accepted(), 2);
}

TEST_F(ProxyTunnelTest, AbsoluteFormRequestThroughTheProxy) {
  FaultProxy fault([](int, const FaultProxy::Request&) {
    return FaultProxy::Reply{ScriptedOrigin::Ok("proxied"), false, false};
  });
  Request request;
  request.method = "GET";
  request.url = *ParseUrl("http://origin.test:8080/a?b=c");
  const std::string head = SerializeProxiedRequestHead(request, ProxyAt(fault));
  const int port = fault.port();
  absl::StatusOr<std::string> body =
      RunTask(io_, [&]() -> asio::awaitable<absl::StatusOr<std::string>> {
        absl::StatusOr<asio::ip::tcp::socket> socket = co_await Dial(port);
        if (!socket.ok()) co_return socket.status();
        auto [wec, wn] =
            co_await asio::async_write(*socket, asio::buffer(head), kNoThrow);
        if (wec) co_return absl::UnavailableError(wec.message());
        ResponseParser parser;
        parser.Reset(false);
        char buffer[1024];
        std::string out;
        while (!parser.message_complete()) {
          auto [rec, n] =
              co_await socket->async_read_some(asio::buffer(buffer), kNoThrow);
          if (rec) co_return absl::UnavailableError(rec.message());
          absl::StatusOr<size_t> used = parser.Feed(std::string_view(buffer, n));
          if (!used.ok()) co_return used.status();
          out += parser.TakeBody();
        }
        co_return out;
      }());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "proxied");
  const std::vector<FaultProxy::Request> requests = fault.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "http://origin.test:8080/a?b=c");
  EXPECT_THAT(requests[0].head, HasSubstr("\r\nHost: origin.test:8080\r\n"));
  EXPECT_EQ(requests[0].proxy_authorization,
            FaultProxy::BasicCredentials(kUser, kPassword));
}

}  // namespace
}  // namespace egress
