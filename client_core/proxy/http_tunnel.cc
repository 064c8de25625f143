#include "client_core/proxy/http_tunnel.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "client_core/http/header.h"
#include "client_core/http1/request_writer.h"
#include "client_core/http1/response_parser.h"
#include "client_core/net/socket_deadline.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 4096;

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// A host we may put on a request line: no spaces, controls, non-ASCII, or
// the delimiters that would change what the request means.
bool IsSafeTargetHost(const std::string& host) {
  if (host.empty()) return false;
  for (const char ch : host) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@' || c == '[' ||
        c == ']' || c == '?' || c == '#') {
      return false;
    }
  }
  return true;
}

// The proxy's reason phrase, fit for an error message: printable ASCII
// only, capped.
std::string SafeReason(const std::string& reason) {
  constexpr size_t kMax = 100;
  std::string out;
  for (size_t i = 0; i < reason.size() && out.size() < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(reason[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (reason.size() > kMax) out.append("...");
  return out;
}

std::string StatusLine(const ResponseHead& head) {
  return absl::StrFormat("HTTP/1.%d %d %s", head.version_minor,
                         head.status_code, SafeReason(head.reason));
}

// One challenge of a Proxy-Authenticate field (RFC 9110 section 11.6.1).
struct Challenge {
  std::string scheme;  // lower case
  std::string realm;
};

// Splits a header value at commas outside quoted strings.
std::vector<std::string_view> SplitOutsideQuotes(std::string_view value) {
  std::vector<std::string_view> out;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.push_back(value.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(value.substr(start));
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Unquote(std::string_view s) {
  s = TrimOws(s);
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') {
    return std::string(s);
  }
  std::string out;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size()) ++i;
    out.push_back(s[i]);
  }
  return out;
}

// Records an auth-param ("realm=..." ) on `challenge`.
void AddParam(std::string_view param, Challenge* challenge) {
  const size_t eq = param.find('=');
  if (eq == std::string_view::npos) return;  // token68 (not for Basic)
  if (absl::EqualsIgnoreCase(AsAbsl(TrimOws(param.substr(0, eq))), "realm")) {
    challenge->realm = Unquote(param.substr(eq + 1));
  }
}

// Every challenge of every Proxy-Authenticate field, in order. A list
// element "Scheme param=..." or "Scheme" starts a challenge; an element
// "param=..." continues the current one.
std::vector<Challenge> ParseChallenges(const HeaderList& headers) {
  std::vector<Challenge> out;
  for (const HeaderField& field : headers) {
    if (!absl::EqualsIgnoreCase(AsAbsl(field.name), "Proxy-Authenticate")) {
      continue;
    }
    bool in_challenge = false;
    for (std::string_view element : SplitOutsideQuotes(field.value)) {
      element = TrimOws(element);
      if (element.empty()) continue;
      const size_t space = element.find_first_of(" \t");
      const size_t eq = element.find('=');
      if (eq == std::string_view::npos || (space != std::string_view::npos &&
                                           space < eq)) {
        // A new challenge: its scheme, then maybe its first parameter.
        Challenge challenge;
        const std::string_view scheme = element.substr(0, space);
        if (!IsHttpToken(scheme)) continue;
        challenge.scheme = absl::AsciiStrToLower(AsAbsl(scheme));
        if (space != std::string_view::npos) {
          AddParam(TrimOws(element.substr(space)), &challenge);
        }
        out.push_back(std::move(challenge));
        in_challenge = true;
      } else if (in_challenge) {
        AddParam(element, &out.back());
      }
    }
  }
  return out;
}

// Counts a CONNECT that was refused by a 407 too often.
absl::Status TooManyAttempts(const Proxy& proxy, const std::string& target,
                             const TunnelProgress& progress) {
  return absl::PermissionDeniedError(absl::StrCat(
      proxy.Describe(), " still demanded authentication for CONNECT to ",
      target, " after ", progress.attempts, " attempts; last answer: ",
      progress.last_status_line));
}

// The safety net: no error leaves here holding the password or the
// Authorization value, whatever a proxy echoed (its reason phrase is the
// only text from outside in our messages). The username is not a secret and
// is left alone: scrubbing it would mangle a target that happens to hold
// it.
absl::Status Scrub(absl::Status status, const Proxy& proxy,
                   const TunnelProgress& progress) {
  if (status.ok() || !proxy.has_credentials()) return status;
  std::string message(status.message());
  std::vector<std::pair<std::string, std::string>> secrets;
  const std::string token = ProxyAuthorizationValue(proxy);
  for (const std::string* secret :
       {&token, &progress.proxy_authorization, &proxy.password}) {
    if (secret->size() >= 3 && absl::StrContains(message, *secret)) {
      message = absl::StrReplaceAll(message, {{*secret, "<redacted>"}});
    }
  }
  return absl::Status(status.code(), message);
}

}  // namespace

std::string TunnelAuthority(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

std::string ProxyAuthorizationValue(const Proxy& proxy) {
  if (!proxy.has_credentials()) return std::string();
  return absl::StrCat(
      "Basic ", absl::Base64Escape(
                    absl::StrCat(proxy.username, ":", proxy.password)));
}

namespace {

// EstablishTunnel without the final scrubbing of its error.
asio::awaitable<absl::StatusOr<TunnelOutcome>> EstablishTunnelUnscrubbed(
    asio::ip::tcp::socket& socket, const Proxy& proxy,
    const std::string& target_host, uint16_t target_port, absl::Time deadline,
    CallAbort* abort, TunnelProgress* progress, const TunnelOptions& options) {
  ++progress->connections;
  if (!IsSafeTargetHost(target_host)) {
    co_return absl::InvalidArgumentError(
        "CONNECT target host is empty or holds bytes no host has");
  }
  const std::string target = TunnelAuthority(target_host, target_port);
  const std::string who = proxy.Describe();
  if (proxy.scheme != Proxy::Scheme::kHttp) {
    co_return absl::InvalidArgumentError(
        absl::StrCat(who, " is not an HTTP proxy; CONNECT needs one"));
  }

  SocketDeadline guard(socket, deadline, abort);
  const auto io_error = [&](const asio::error_code& ec,
                            absl::string_view during) -> absl::Status {
    if (guard.aborted()) {
      return absl::CancelledError(absl::StrCat(
          "the call was cancelled while ", during, " ", who, " (CONNECT to ",
          target, ")"));
    }
    if (guard.expired()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "deadline exceeded while ", during, " ", who, " (CONNECT to ",
          target, ")"));
    }
    return absl::UnavailableError(absl::StrCat(
        "connection to ", who, " failed while ", during,
        " it (CONNECT to ", target, "): ", ec.message()));
  };
  if (guard.aborted()) {
    co_return io_error(asio::error::operation_aborted, "connecting through");
  }

  if (proxy.has_credentials() && options.preemptive_auth &&
      progress->attempts == 0 && progress->proxy_authorization.empty()) {
    progress->proxy_authorization = ProxyAuthorizationValue(proxy);
    progress->sent_preemptively = true;
  }

  std::unique_ptr<char[]> chunk(new char[kReadChunk]);
  int requests_on_this_connection = 0;
  for (;;) {
    if (progress->attempts >= options.max_attempts) {
      co_return TooManyAttempts(proxy, target, *progress);
    }
    std::string request = absl::StrCat(
        "CONNECT ", target, " HTTP/1.1\r\nHost: ", target,
        "\r\nProxy-Connection: Keep-Alive\r\nUser-Agent: ", options.user_agent,
        "\r\n");
    const bool carried_credentials = !progress->proxy_authorization.empty();
    if (carried_credentials) {
      absl::StrAppend(&request, "Proxy-Authorization: ",
                      progress->proxy_authorization, "\r\n");
    }
    request.append("\r\n");
    auto [wec, written] =
        co_await asio::async_write(socket, asio::buffer(request), kNoThrow);
    if (wec) co_return io_error(wec, "sending CONNECT to");
    ++progress->attempts;
    ++requests_on_this_connection;

    // The answer's head. A parser in HEAD mode completes exactly at the end
    // of the head (a 2xx answer to CONNECT has no body whatever its headers
    // say, RFC 9110 section 9.3.6), so what it did not consume came after.
    std::string received;
    ResponseParser head_parser(options.limits);
    head_parser.Reset(/*request_was_head=*/true);
    size_t head_bytes = 0;
    while (!head_parser.message_complete()) {
      auto [rec, n] = co_await socket.async_read_some(
          asio::buffer(chunk.get(), kReadChunk), kNoThrow);
      if (rec == asio::error::eof && received.empty() &&
          requests_on_this_connection > 1) {
        // The proxy kept the connection after its 407, then closed it
        // before answering: try again on a new one.
        co_return TunnelOutcome::kReconnect;
      }
      if (rec == asio::error::eof) {
        co_return absl::UnavailableError(absl::StrCat(
            who, " closed the connection before answering CONNECT to ",
            target, received.empty() ? "" : " completely"));
      }
      if (rec) co_return io_error(rec, "reading the CONNECT answer from");
      const std::string_view data(chunk.get(), n);
      received.append(data);
      absl::StatusOr<size_t> used = head_parser.Feed(data);
      if (!used.ok()) {
        co_return absl::Status(
            used.status().code() == absl::StatusCode::kResourceExhausted
                ? absl::StatusCode::kResourceExhausted
                : absl::StatusCode::kUnavailable,
            absl::StrCat(who, " answered CONNECT to ", target,
                         " with a malformed response: ",
                         used.status().message()));
      }
      head_bytes += *used;
    }
    const ResponseHead& head = head_parser.head();
    const std::string status_line = StatusLine(head);

    if (head.status_code >= 200 && head.status_code < 300) {
      asio::error_code ignored;
      const size_t extra =
          received.size() - head_bytes + socket.available(ignored);
      if (extra > 0) {
        co_return absl::UnavailableError(absl::StrCat(
            who, " sent ", extra,
            " unexpected bytes after the CONNECT response (", status_line,
            ") for ", target));
      }
      progress->last_status_line.clear();
      co_return TunnelOutcome::kEstablished;
    }
    progress->last_status_line = status_line;

    if (head.status_code != 407) {
      const absl::StatusCode code =
          head.status_code == 401 || head.status_code == 403
              ? absl::StatusCode::kPermissionDenied
              : absl::StatusCode::kUnavailable;
      co_return absl::Status(code, absl::StrCat(who, " refused CONNECT to ",
                                                target, ": ", status_line));
    }

    // 407: answer the challenge, or say why not.
    if (!proxy.has_credentials()) {
      co_return absl::PermissionDeniedError(absl::StrCat(
          who, " requires authentication for CONNECT to ", target,
          " and no credentials are configured for it: ", status_line));
    }
    const std::vector<Challenge> challenges = ParseChallenges(head.headers);
    const Challenge* basic = nullptr;
    for (const Challenge& challenge : challenges) {
      if (challenge.scheme == "basic") {
        basic = &challenge;
        break;
      }
    }
    if (basic == nullptr) {
      std::vector<std::string> schemes;
      for (const Challenge& challenge : challenges) {
        schemes.push_back(challenge.scheme);
      }
      co_return absl::PermissionDeniedError(absl::StrCat(
          who, " asks for ",
          schemes.empty() ? std::string("an unnamed")
                          : absl::StrJoin(schemes, ", "),
          " authentication for CONNECT to ", target,
          "; egressd answers Basic only: ", status_line));
    }
    const bool realm_answered =
        std::find(progress->answered_realms.begin(),
                  progress->answered_realms.end(),
                  basic->realm) != progress->answered_realms.end();
    if (carried_credentials &&
        (realm_answered || (progress->sent_preemptively &&
                            progress->answered_realms.empty()))) {
      co_return absl::PermissionDeniedError(absl::StrCat(
          who, " rejected the configured credentials for CONNECT to ", target,
          ": ", status_line));
    }
    progress->answered_realms.push_back(basic->realm);
    progress->proxy_authorization = ProxyAuthorizationValue(proxy);
    if (progress->attempts >= options.max_attempts) {
      co_return TooManyAttempts(proxy, target, *progress);
    }

    // Read the 407's body to its end, so the connection can carry the next
    // CONNECT; give the connection up when it will not (Connection: close,
    // HTTP/1.0, a close-delimited or overlong body).
    ResponseParser body_parser(options.limits);
    body_parser.Reset(/*request_was_head=*/false);
    absl::StatusOr<size_t> used = body_parser.Feed(received);
    bool reusable = used.ok() && *used == received.size();
    body_parser.TakeBody();
    while (reusable && !body_parser.message_complete()) {
      if (body_parser.body_bytes() > options.max_discarded_body_bytes) {
        reusable = false;
        break;
      }
      auto [rec, n] = co_await socket.async_read_some(
          asio::buffer(chunk.get(), kReadChunk), kNoThrow);
      if (rec == asio::error::eof) {
        reusable = false;  // close-delimited or cut short: either way, gone
        break;
      }
      if (rec) {
        if (guard.aborted() || guard.expired()) {
          co_return io_error(rec, "reading the 407 answer from");
        }
        reusable = false;
        break;
      }
      used = body_parser.Feed(std::string_view(chunk.get(), n));
      reusable = used.ok() && *used == n;
      body_parser.TakeBody();
    }
    if (!reusable || !body_parser.KeepAlive()) {
      co_return TunnelOutcome::kReconnect;
    }
  }
}

}  // namespace

asio::awaitable<absl::StatusOr<TunnelOutcome>> EstablishTunnel(
    asio::ip::tcp::socket& socket, const Proxy& proxy,
    const std::string& target_host, uint16_t target_port, absl::Time deadline,
    CallAbort* abort, TunnelProgress* progress, const TunnelOptions& options) {
  absl::StatusOr<TunnelOutcome> outcome = co_await EstablishTunnelUnscrubbed(
      socket, proxy, target_host, target_port, deadline, abort, progress,
      options);
  if (!outcome.ok()) co_return Scrub(outcome.status(), proxy, *progress);
  co_return outcome;
}

asio::awaitable<absl::StatusOr<Tunnel>> ConnectTunnel(
    asio::ip::tcp::socket socket, const Proxy& proxy,
    const std::string& target_host, uint16_t target_port, absl::Time deadline,
    CallAbort* abort, ProxyReconnect reconnect, const TunnelOptions& options) {
  TunnelProgress progress;
  for (;;) {
    absl::StatusOr<TunnelOutcome> outcome =
        co_await EstablishTunnel(socket, proxy, target_host, target_port,
                                 deadline, abort, &progress, options);
    if (outcome.ok() && *outcome == TunnelOutcome::kEstablished) {
      Tunnel tunnel{std::move(socket), progress.attempts, progress.connections};
      co_return tunnel;
    }
    asio::error_code ignored;
    socket.close(ignored);
    if (!outcome.ok()) co_return outcome.status();
    if (progress.attempts >= options.max_attempts) {
      co_return TooManyAttempts(proxy, TunnelAuthority(target_host, target_port),
                                progress);
    }
    absl::StatusOr<asio::ip::tcp::socket> next = co_await reconnect();
    if (!next.ok()) co_return next.status();
    socket = *std::move(next);
  }
}

std::string SerializeProxiedRequestHead(const Request& request,
                                        const Proxy& proxy,
                                        bool with_credentials) {
  // SerializeRequestHead's layout: request line, Host line, the rest.
  const std::string head = SerializeRequestHead(request);
  const size_t line_end = head.find("\r\n");
  const size_t host_end = head.find("\r\n", line_end + 2);
  std::string out = absl::StrCat(request.method, " ", request.url.scheme,
                                 "://", request.url.Authority(),
                                 request.url.path_and_query, " HTTP/1.1");
  out.append(head, line_end, host_end + 2 - line_end);
  if (with_credentials && proxy.has_credentials()) {
    absl::StrAppend(&out, "Proxy-Authorization: ",
                    ProxyAuthorizationValue(proxy), "\r\n");
  }
  out.append(head, host_end + 2, std::string::npos);
  return out;
}

}  // namespace egress
