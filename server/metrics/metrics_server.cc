#include "server/metrics/metrics_server.h"

#include <pthread.h>

#include <chrono>
#include <optional>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/ip/address.hpp"
#include "asio/post.hpp"
#include "asio/read_until.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "server/admin_token.h"
#include "server/metrics/page_html.h"
#include "server/metrics/pool_json.h"
#include "server/metrics/pool_metrics.h"
#include "server/metrics/prometheus_text.h"

namespace egress::metrics {
namespace {

using asio::ip::tcp;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Largest request head read; a longer one is answered 431.
constexpr size_t kMaxRequestHead = 16 * 1024;

// The page may run its own inline script and style and call this server;
// nothing else, from anywhere.
constexpr absl::string_view kPageSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The value of the request's header field `name` (case-insensitive),
// trimmed; nullopt if absent; `*count` says how often it appears.
std::optional<absl::string_view> HeaderValue(absl::string_view head,
                                             absl::string_view name,
                                             int* count) {
  std::optional<absl::string_view> value;
  *count = 0;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos ||
        !absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
      continue;
    }
    ++*count;
    if (!value) value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  }
  return value;
}

std::string Frame(
    int status, absl::string_view content_type, absl::string_view body,
    bool head_only,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status),
                                 "\r\n", "Content-Type: ", content_type, "\r\n",
                                 "Content-Length: ", body.size(), "\r\n",
                                 "Cache-Control: no-store\r\n"
                                 "X-Content-Type-Options: nosniff\r\n"
                                 "Connection: close\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  out += "\r\n";
  if (!head_only) out.append(body.data(), body.size());
  return out;
}

}  // namespace

bool HostNamesListener(absl::string_view host, const asio::ip::address& local,
                       absl::string_view configured_host,
                       const std::vector<std::string>& allowed_hosts) {
  // Drop the port: "[v6]:port", "v4:port", "name:port".
  if (absl::StartsWith(host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    host = host.substr(0, close + 1);
  } else if (const size_t colon = host.rfind(':');
             colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string name = absl::AsciiStrToLower(host);
  if (absl::EndsWith(name, ".")) name.pop_back();  // "localhost." is localhost
  if (name.empty()) return false;
  if (name == "localhost" || name == absl::AsciiStrToLower(configured_host)) {
    return true;
  }
  // An IPv6 entry is written without brackets (the configuration's form).
  const absl::string_view bare = absl::StripSuffix(
      absl::StripPrefix(absl::string_view(name), "["), "]");
  for (const std::string& allowed : allowed_hosts) {
    if (name == allowed || bare == allowed) return true;
  }
  ListenAddress as_address{name, 0};
  if (std::optional<asio::ip::address> ip = as_address.Ip()) {
    const auto plain = [](const asio::ip::address& a) {
      if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        return asio::ip::address(
            asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
      }
      return a;
    };
    return plain(*ip) == plain(local);
  }
  return false;
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

MetricsServer::MetricsServer(HttpClient* client,
                             const CallMetrics* call_metrics,
                             const MetricsServerOptions& options)
    : client_(client), call_metrics_(call_metrics), options_(options) {}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const ListenAddress& address, HttpClient* client,
    const CallMetrics* call_metrics, const MetricsServerOptions& options) {
  auto server = std::unique_ptr<MetricsServer>(
      new MetricsServer(client, call_metrics, options));
  const auto fail = [&](absl::string_view why) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address.ToString(), ": ", why));
  };
  absl::StatusOr<tcp::endpoint> resolved = ResolveListenAddress(address);
  if (!resolved.ok()) return fail(resolved.status().message());
  const tcp::endpoint endpoint = *resolved;
  std::error_code ec;
  tcp::acceptor& acceptor = server->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR only lets a restarted egressd bind while old connections
  // linger in TIME_WAIT; a port someone listens on is still refused.
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec.message());
  const tcp::endpoint local = acceptor.local_endpoint(ec);
  if (ec) return fail(ec.message());
  // The address bound, not the name configured.
  absl::StatusOr<ListenAddress> bound =
      ParseListenAddress("bound", EndpointString(local));
  if (!bound.ok()) return fail(bound.status().message());
  server->bound_ = *bound;
  server->configured_host_ = absl::AsciiStrToLower(address.host);
  // Judged on the address bound, not on the name configured.
  server->page_open_ = IsLoopbackAddress(local.address());

  asio::co_spawn(server->context_, server->Accept(), asio::detached);
  MetricsServer* raw = server.get();
  server->thread_ = std::thread([raw] { raw->context_.run(); });
  pthread_setname_np(server->thread_.native_handle(), "egress-metrics");
  return server;
}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!thread_.joinable()) return;
  // With the acceptor and every connection closed, their operations end
  // with an error, the coroutines return and run() runs out of work.
  asio::post(context_, [this] {
    std::error_code ignored;
    acceptor_.close(ignored);
    for (tcp::socket* socket : open_) socket->close(ignored);
  });
  thread_.join();
}

asio::awaitable<void> MetricsServer::Accept() {
  while (true) {
    auto socket = std::make_shared<tcp::socket>(context_);
    auto [ec] = co_await acceptor_.async_accept(*socket, kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
      co_return;
    }
    if (ec) {
      // Out of descriptors, say: pause rather than spin on the error.
      asio::steady_timer pause(context_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (open_.size() >= options_.max_clients) {
      std::error_code ignored;
      socket->close(ignored);
      continue;
    }
    // Known before the session first runs, so Stop() closes it either way.
    open_.insert(socket.get());
    asio::co_spawn(context_, Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> MetricsServer::Serve(
    std::shared_ptr<tcp::socket> socket) {
  struct Forget {
    MetricsServer* server;
    tcp::socket* socket;
    ~Forget() { server->open_.erase(socket); }
  } forget{this, socket.get()};

  // Closes a connection whose request is not complete in time. The handler
  // may run after this coroutine ended, so it holds the socket weakly.
  asio::steady_timer timer(context_);
  timer.expires_after(absl::ToChronoNanoseconds(options_.request_timeout));
  timer.async_wait(
      [weak = std::weak_ptr<tcp::socket>(socket)](std::error_code ec) {
        if (ec) return;
        if (std::shared_ptr<tcp::socket> s = weak.lock()) {
          std::error_code ignored;
          s->close(ignored);
        }
      });

  std::error_code local_error;
  const asio::ip::address local = socket->local_endpoint(local_error).address();
  std::string buffer;
  auto [read_error, head_size] = co_await asio::async_read_until(
      *socket, asio::dynamic_buffer(buffer, kMaxRequestHead), "\r\n\r\n",
      kNoThrow);
  Reply reply;
  bool head_only = false;
  if (read_error == asio::error::not_found) {
    reply = Reply{431,
                  "text/plain; charset=utf-8",
                  "request head larger than 16 KiB\n",
                  {}};
  } else if (read_error) {
    co_return;  // the client left, or the timer closed the socket
  } else {
    const absl::string_view head(buffer.data(), head_size);
    head_only = absl::StartsWith(head, "HEAD ");
    reply = local_error ? Reply{500, "text/plain; charset=utf-8",
                                "no local address\n", {}}
                        : Answer(head, local);
  }
  const std::string out = Frame(reply.status, reply.content_type, reply.body,
                                head_only, reply.headers);
  auto [write_error, written] =
      co_await asio::async_write(*socket, asio::buffer(out), kNoThrow);
  (void)written;
  std::error_code ignored;
  if (!write_error) {
    // Closing with unread request bytes (a body, a head too large) would
    // reset the connection and could destroy the response before the
    // client read it; so say we are done and read until the client closes
    // (or the request timer fires).
    socket->shutdown(tcp::socket::shutdown_send, ignored);
    char discard[4096];
    while (true) {
      auto [read_error, n] =
          co_await socket->async_read_some(asio::buffer(discard), kNoThrow);
      if (read_error) break;
    }
  }
  socket->close(ignored);
  timer.cancel();
}

MetricsServer::Reply MetricsServer::Answer(absl::string_view head,
                                           const asio::ip::address& local) {
  const auto bad = [](absl::string_view why) {
    return Reply{400, "text/plain; charset=utf-8", absl::StrCat(why, "\n"), {}};
  };
  const size_t line_end = head.find("\r\n");
  const absl::string_view line = head.substr(0, line_end);
  // METHOD SP request-target SP HTTP-version (RFC 9112 section 3).
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == absl::string_view::npos ? absl::string_view::npos
                                                    : line.find(' ', sp1 + 1);
  if (sp2 == absl::string_view::npos ||
      line.find(' ', sp2 + 1) != absl::string_view::npos) {
    return bad("malformed request line");
  }
  const absl::string_view method = line.substr(0, sp1);
  absl::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const absl::string_view version = line.substr(sp2 + 1);
  if (!absl::StartsWith(version, "HTTP/1.")) {
    return Reply{505, "text/plain; charset=utf-8", "HTTP/1.x only\n", {}};
  }
  if (method.empty() || target.empty() || target.front() != '/') {
    return bad("the request target must be a path, e.g. /metrics");
  }
  // The query (e.g. a cache-buster) does not change the answer.
  target = target.substr(0, target.find('?'));
  int hosts = 0;
  const std::optional<absl::string_view> host =
      HeaderValue(head.substr(line_end), "host", &hosts);
  if (hosts != 1) return bad("exactly one Host header field is required");
  if (!HostNamesListener(*host, local, configured_host_,
                         options_.allowed_hosts)) {
    return Reply{403,
                 "text/plain; charset=utf-8",
                 absl::StrCat("Host '", absl::CHexEscape(*host),
                              "' does not name this listener: use its "
                              "address, localhost, or a name in "
                              "listeners.metrics_allowed_hosts\n"),
                 {}};
  }
  int authorizations = 0;
  const std::optional<absl::string_view> authorization =
      HeaderValue(head.substr(line_end), "authorization", &authorizations);
  return Route(method, target, authorization.value_or(""));
}

MetricsServer::Reply MetricsServer::Route(absl::string_view method,
                                          absl::string_view path,
                                          absl::string_view authorization) {
  // The pool page and its API list every destination and connection: off
  // loopback, only for the admin token's holder.
  const bool pool_data = path == "/" || path == "/index.html" ||
                         absl::StartsWith(path, "/api/");
  if (pool_data && !page_open_) {
    if (options_.admin_token.empty()) {
      return Reply{403,
                   "text/plain; charset=utf-8",
                   "the pool page is served off loopback only with "
                   "listeners.admin_token set; /metrics needs none\n",
                   {}};
    }
    if (!AuthorizationCarriesToken(authorization, options_.admin_token)) {
      return Reply{401,
                   "text/plain; charset=utf-8",
                   "the pool page needs egressd's admin token: "
                   "'Authorization: Bearer <token>', or the token as the "
                   "password your browser asks for\n",
                   {{"WWW-Authenticate",
                     "Basic realm=\"egressd pool page\", charset=\"UTF-8\""}}};
    }
  }
  enum class Page { kMetrics, kIndex, kPoolJson };
  std::optional<Page> page;
  if (path == "/metrics") page = Page::kMetrics;
  if (path == "/" || path == "/index.html") page = Page::kIndex;
  if (path == "/api/pool") page = Page::kPoolJson;
  if (!page.has_value()) {
    return Reply{404,
                 "text/plain; charset=utf-8",
                 "not found: egressd serves /metrics, / and /api/pool\n",
                 {}};
  }
  if (method != "GET" && method != "HEAD") {
    return Reply{405,
                 "text/plain; charset=utf-8",
                 absl::StrCat("method ", method, " not allowed: GET or HEAD\n"),
                 {{"Allow", "GET, HEAD"}}};
  }
  switch (*page) {
    case Page::kMetrics: {
      int status = 200;
      std::string body = RenderMetrics(&status);
      return Reply{status,
                   status == 200 ? std::string(kExpositionContentType)
                                 : std::string("text/plain; charset=utf-8"),
                   std::move(body),
                   {}};
    }
    case Page::kIndex:
      return Reply{
          200,
          "text/html; charset=utf-8",
          std::string(kPoolPageHtml),
          {{"Content-Security-Policy", std::string(kPageSecurityPolicy)}}};
    case Page::kPoolJson:
      return Reply{200, "application/json", RenderPool(), {}};
  }
  return Reply{500, "text/plain; charset=utf-8", "unreachable\n", {}};
}

std::string MetricsServer::RenderMetrics(int* status) {
  ExpositionWriter writer;
  WritePoolMetrics(ReadPoolState(*client_, *call_metrics_),
                   PoolMetricsOptions{options_.per_address}, &writer);
  if (!writer.status().ok()) {
    // A bug in the metric definitions: say so rather than serve text that
    // Prometheus would reject as a whole.
    *status = 500;
    return absl::StrCat(
        "egressd metrics are malformed: ", writer.status().message(), "\n");
  }
  return writer.text();
}

std::string MetricsServer::RenderPool() {
  PoolPageData data;
  data.now = absl::Now();
  data.started = started_;
  data.per_address_metrics = options_.per_address;
  data.state = ReadPoolState(*client_, *call_metrics_);
  bool end = false;
  data.look.connections = client_->pool().ListConnections(
      0, options_.max_connections_listed, std::nullopt, &end);
  data.look.complete = end;
  data.look.leaks = client_->leaks().List();
  data.look.leaks_total = data.state.leaks_total;
  events_.Observe(data.state.pool, data.look, data.now);
  data.events = events_.Latest();
  return RenderPoolJson(data);
}

}  // namespace egress::metrics
