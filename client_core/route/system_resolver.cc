#include "client_core/route/system_resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "asio/async_result.hpp"
#include "asio/dispatch.hpp"
#include "asio/posix/stream_descriptor.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/strand.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/route/timer_deadline.h"

namespace egress {
namespace {

void InitAresOnce() {
  // Needed only on Windows these days, but c-ares asks for it; not
  // thread-safe itself, hence once.
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

std::string Ms(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
}

// "ip", "ip:port", "[ipv6]" or "[ipv6]:port" -> c-ares's "ip:port" /
// "[ipv6]:port".
absl::StatusOr<std::string> NormalizeNameserver(absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("nameserver '", text, "': ", why));
  };
  if (text.empty()) return bad("empty");
  std::string host;
  absl::string_view port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return bad("missing ']' after the IPv6 address");
    }
    host = std::string(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':port' after ']'");
      port_text = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    host = std::string(text);  // a bare IPv6 address, no port
  } else {
    const size_t colon = text.find(':');
    host = std::string(text.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = text.substr(colon + 1);
  }
  uint32_t port = 53;
  if (!port_text.empty() || text.back() == ':') {
    if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
      return bad(absl::StrCat("'", port_text, "' is not a port"));
    }
  }
  asio::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return bad(absl::StrCat("'", host, "' is not an IP address"));
  if (ip.is_v6()) return absl::StrCat("[", ip.to_string(), "]:", port);
  return absl::StrCat(ip.to_string(), ":", port);
}

absl::StatusOr<std::string> NameserversCsv(
    const std::vector<std::string>& nameservers) {
  std::vector<std::string> normalized;
  for (const std::string& server : nameservers) {
    absl::StatusOr<std::string> one = NormalizeNameserver(server);
    if (!one.ok()) return one.status();
    normalized.push_back(*std::move(one));
  }
  return absl::StrJoin(normalized, ",");
}

asio::ip::address FromSockaddr(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    asio::ip::address_v4::bytes_type bytes;
    std::memcpy(bytes.data(), &sin->sin_addr, bytes.size());
    return asio::ip::address_v4(bytes);
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
  asio::ip::address_v6::bytes_type bytes;
  std::memcpy(bytes.data(), &sin6->sin6_addr, bytes.size());
  return asio::ip::address_v6(bytes, sin6->sin6_scope_id);
}

// One c-ares lookup: a channel of its own, its sockets watched on a strand of
// the caller's executor. Owned by its pending asynchronous operations (the
// deadline timer is always one of them until the lookup finishes); destroyed
// when the last completes, which is never inside a c-ares call.
class AresLookup : public std::enable_shared_from_this<AresLookup> {
 public:
  // Invoked once, on the strand, unless the event loop is destroyed first.
  using Done = absl::AnyInvocable<void(absl::StatusOr<Resolution>) &&>;

  AresLookup(asio::any_io_executor executor, std::string host,
             const ResolverOptions& options, std::string servers_csv,
             absl::Time caller_deadline, Done done)
      : strand_(asio::make_strand(executor)),
        host_(std::move(host)),
        attempt_timeout_(options.attempt_timeout),
        attempts_(options.attempts),
        lookup_timeout_(options.lookup_timeout),
        servers_csv_(std::move(servers_csv)),
        started_(absl::Now()),
        caller_deadline_(caller_deadline),
        deadline_timer_(strand_),
        ares_timer_(strand_),
        done_(std::move(done)) {}

  ~AresLookup() {
    // Suppresses our callbacks while c-ares tears the channel down: it
    // reports each socket closing and fails the pending query.
    destroying_ = true;
    finished_ = true;
    for (auto& [fd, watch] : watches_) Unwatch(*watch);
    watches_.clear();
    if (channel_ != nullptr) ares_destroy(channel_);
  }

  AresLookup(const AresLookup&) = delete;
  AresLookup& operator=(const AresLookup&) = delete;

  // Starts the lookup on the strand.
  void Start() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->Begin(); });
  }

 private:
  // A socket c-ares asked us to watch.
  struct Watch {
    explicit Watch(const asio::strand<asio::any_io_executor>& strand)
        : descriptor(strand) {}
    asio::posix::stream_descriptor descriptor;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;  // a wait_read is pending
    bool writing = false;  // a wait_write is pending
    // c-ares is done with the socket (it closes it itself; we only stopped
    // watching). Late completions of its waits do nothing.
    bool released = false;
  };

  absl::Time Deadline() const {
    return std::min(caller_deadline_, started_ + lookup_timeout_);
  }

  absl::Status TimedOut() const {
    const std::string message =
        absl::StrCat("DNS lookup of '", host_, "' timed out after ",
                     Ms(absl::Now() - started_));
    // The caller's deadline is the caller's business; our own lookup timeout
    // is a DNS failure like any other.
    if (caller_deadline_ <= started_ + lookup_timeout_) {
      return absl::DeadlineExceededError(message);
    }
    return absl::UnavailableError(message);
  }

  void Begin() {
    if (absl::Now() >= Deadline()) {
      Finish(TimedOut());
      return;
    }
    ares_options options;
    std::memset(&options, 0, sizeof(options));
    options.sock_state_cb = &AresLookup::OnSockState;
    options.sock_state_cb_data = this;
    options.timeout = static_cast<int>(
        std::max<int64_t>(1, absl::ToInt64Milliseconds(attempt_timeout_)));
    options.tries = std::max(1, attempts_);
    const int mask =
        ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int rc = ares_init_options(&channel_, &options, mask);
    if (rc != ARES_SUCCESS) {
      channel_ = nullptr;
      Finish(absl::UnavailableError(
          absl::StrCat("DNS lookup of '", host_,
                       "' failed: cannot start c-ares: ", ares_strerror(rc))));
      return;
    }
    if (!servers_csv_.empty()) {
      rc = ares_set_servers_ports_csv(channel_, servers_csv_.c_str());
      if (rc != ARES_SUCCESS) {
        Finish(absl::UnavailableError(absl::StrCat(
            "DNS lookup of '", host_, "' failed: bad nameservers '",
            servers_csv_, "': ", ares_strerror(rc))));
        return;
      }
    }
    // Holds a reference to this lookup until it finishes.
    ExpireAt(deadline_timer_, Deadline());
    deadline_timer_.async_wait(
        [self = shared_from_this()](const asio::error_code& ec) {
          if (ec || self->finished_) return;
          self->Finish(self->TimedOut());
        });

    ares_addrinfo_hints hints;
    std::memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    // May complete at once (an /etc/hosts answer or an early error).
    ares_getaddrinfo(channel_, host_.c_str(), /*service=*/nullptr, &hints,
                     &AresLookup::OnAddrInfo, this);
    AfterAres();
  }

  static void OnSockState(void* data, ares_socket_t fd, int readable,
                          int writable) {
    static_cast<AresLookup*>(data)->SockState(fd, readable != 0, writable != 0);
  }

  void SockState(ares_socket_t fd, bool readable, bool writable) {
    if (destroying_) return;
    auto it = watches_.find(fd);
    if (!readable && !writable) {
      // c-ares is about to close the socket: stop watching it first.
      if (it != watches_.end()) {
        Unwatch(*it->second);
        watches_.erase(it);
      }
      return;
    }
    if (finished_) return;
    if (it == watches_.end()) {
      auto watch = std::make_shared<Watch>(strand_);
      asio::error_code ec;
      watch->descriptor.assign(fd, ec);
      if (ec) {
        Finish(absl::UnavailableError(
            absl::StrCat("DNS lookup of '", host_,
                         "' failed: cannot watch a socket: ", ec.message())));
        return;
      }
      it = watches_.emplace(fd, std::move(watch)).first;
    }
    const std::shared_ptr<Watch> watch = it->second;
    watch->want_read = readable;
    watch->want_write = writable;
    if (readable) WaitFor(fd, watch, asio::posix::descriptor_base::wait_read);
    if (writable) WaitFor(fd, watch, asio::posix::descriptor_base::wait_write);
  }

  void WaitFor(ares_socket_t fd, const std::shared_ptr<Watch>& watch,
               asio::posix::descriptor_base::wait_type type) {
    const bool read = type == asio::posix::descriptor_base::wait_read;
    bool& pending = read ? watch->reading : watch->writing;
    if (pending) return;
    pending = true;
    watch->descriptor.async_wait(
        type, [self = shared_from_this(), watch, fd, type,
               read](const asio::error_code& ec) {
          (read ? watch->reading : watch->writing) = false;
          if (ec == asio::error::operation_aborted || self->finished_ ||
              watch->released) {
            return;
          }
          // Asio registers descriptors edge-triggered: readiness that comes
          // while no wait is pending is never reported. So wait again before
          // letting c-ares read, then drain what is already there.
          if (!ec && (read ? watch->want_read : watch->want_write)) {
            self->WaitFor(fd, watch, type);
          }
          self->ProcessReady(fd, *watch, read);
        });
  }

  // Lets c-ares handle a ready socket, again while it stays ready (c-ares
  // reads a TCP answer in pieces), within reason.
  void ProcessReady(ares_socket_t fd, const Watch& watch, bool read) {
    for (int round = 0; round < 16; ++round) {
      ares_process_fd(channel_, read ? fd : ARES_SOCKET_BAD,
                      read ? ARES_SOCKET_BAD : fd);
      if (finished_ || watch.released) break;
      pollfd p{fd, static_cast<short>(read ? POLLIN : POLLOUT), 0};
      if (::poll(&p, 1, 0) != 1) break;
    }
    AfterAres();
  }

  // After any c-ares call: re-arm the timer for c-ares's next retry.
  void AfterAres() {
    if (finished_) return;
    timeval tv;
    const timeval* next = ares_timeout(channel_, nullptr, &tv);
    if (next == nullptr) {
      ares_timer_.cancel();
      return;
    }
    ares_timer_.expires_after(std::chrono::seconds(next->tv_sec) +
                              std::chrono::microseconds(next->tv_usec));
    ares_timer_.async_wait(
        [self = shared_from_this()](const asio::error_code& ec) {
          if (ec == asio::error::operation_aborted || self->finished_) return;
          // No socket ready: c-ares only handles its timeouts and retries.
          ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
          self->AfterAres();
        });
  }

  void Unwatch(Watch& watch) {
    watch.released = true;
    // Cancels pending waits; c-ares keeps (and closes) the socket.
    watch.descriptor.release();
  }

  static void OnAddrInfo(void* arg, int status, int /*timeouts*/,
                         ares_addrinfo* result) {
    auto* self = static_cast<AresLookup*>(arg);
    std::unique_ptr<ares_addrinfo, void (*)(ares_addrinfo*)> owned(
        result, [](ares_addrinfo* r) {
          if (r != nullptr) ares_freeaddrinfo(r);
        });
    if (self->finished_) return;  // cancelled, timed out or destroyed
    if (status != ARES_SUCCESS) {
      self->Finish(absl::UnavailableError(
          absl::StrCat("DNS lookup of '", self->host_,
                       "' failed: ", ares_strerror(status))));
      return;
    }
    Resolution resolution;
    int64_t ttl_seconds = -1;
    const auto lower = [&](int ttl) {
      const int64_t t = std::max(0, ttl);
      ttl_seconds = ttl_seconds < 0 ? t : std::min(ttl_seconds, t);
    };
    for (const ares_addrinfo_node* node = result ? result->nodes : nullptr;
         node != nullptr; node = node->ai_next) {
      if (node->ai_addr == nullptr ||
          (node->ai_family != AF_INET && node->ai_family != AF_INET6)) {
        continue;
      }
      const asio::ip::address ip = FromSockaddr(node->ai_addr);
      if (std::find(resolution.addresses.begin(), resolution.addresses.end(),
                    ip) == resolution.addresses.end()) {
        resolution.addresses.push_back(ip);
      }
      lower(node->ai_ttl);
    }
    for (const ares_addrinfo_cname* cname = result ? result->cnames : nullptr;
         cname != nullptr; cname = cname->next) {
      lower(cname->ttl);
    }
    if (resolution.addresses.empty()) {
      self->Finish(absl::UnavailableError(
          absl::StrCat("DNS lookup of '", self->host_, "' found no address")));
      return;
    }
    resolution.ttl = absl::Seconds(std::max<int64_t>(ttl_seconds, 0));
    self->Finish(std::move(resolution));
  }

  void Finish(absl::StatusOr<Resolution> result) {
    if (finished_) return;
    finished_ = true;
    deadline_timer_.cancel();
    ares_timer_.cancel();
    for (auto& [fd, watch] : watches_) Unwatch(*watch);
    watches_.clear();
    // The channel (and a query still pending in it) goes with the last
    // reference, outside any c-ares callback.
    std::move(done_)(std::move(result));
  }

  asio::strand<asio::any_io_executor> strand_;
  const std::string host_;
  const absl::Duration attempt_timeout_;
  const int attempts_;
  const absl::Duration lookup_timeout_;
  const std::string servers_csv_;
  const absl::Time started_;
  const absl::Time caller_deadline_;

  // All below: used on strand_ only.
  ares_channel channel_ = nullptr;
  absl::flat_hash_map<ares_socket_t, std::shared_ptr<Watch>> watches_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer ares_timer_;
  Done done_;
  bool finished_ = false;
  bool destroying_ = false;
};

// Runs one AresLookup and completes `token` with its result on the token's
// executor.
template <typename CompletionToken>
auto AsyncAresLookup(asio::any_io_executor executor, std::string host,
                     const ResolverOptions& options, std::string servers_csv,
                     absl::Time deadline, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken,
                              void(absl::StatusOr<Resolution>)>(
      [executor, host = std::move(host), options,
       servers_csv = std::move(servers_csv), deadline](auto handler) mutable {
        auto handler_executor =
            asio::get_associated_executor(handler, executor);
        auto lookup = std::make_shared<AresLookup>(
            executor, std::move(host), options, std::move(servers_csv),
            deadline,
            [handler = std::move(handler),
             handler_executor](absl::StatusOr<Resolution> result) mutable {
              // Posted, not called: the handler resumes a coroutine, which
              // must not run inside a c-ares callback.
              asio::post(handler_executor,
                         [handler = std::move(handler),
                          result = std::move(result)]() mutable {
                           std::move(handler)(std::move(result));
                         });
            });
        lookup->Start();
      },
      std::forward<CompletionToken>(token));
}

}  // namespace

absl::Status ValidateResolverOptions(const ResolverOptions& options) {
  if (options.lookup_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("resolver lookup_timeout must be > 0");
  }
  if (options.attempt_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("resolver attempt_timeout must be > 0");
  }
  if (options.attempts < 1) {
    return absl::InvalidArgumentError("resolver attempts must be >= 1");
  }
  if (options.ttl_floor < absl::ZeroDuration() ||
      options.ttl_floor > options.ttl_ceiling) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resolver ttl_floor (", absl::FormatDuration(options.ttl_floor),
        ") must be between 0 and ttl_ceiling (",
        absl::FormatDuration(options.ttl_ceiling), ")"));
  }
  if (options.max_cache_entries < 1) {
    return absl::InvalidArgumentError(
        "resolver max_cache_entries must be >= 1");
  }
  return NameserversCsv(options.nameservers).status();
}

SystemResolver::SystemResolver(const ResolverOptions& options)
    : options_(options) {
  InitAresOnce();
  absl::StatusOr<std::string> csv = NameserversCsv(options.nameservers);
  if (csv.ok()) {
    servers_csv_ = *std::move(csv);
  } else {
    servers_error_ = csv.status();
  }
}

asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>>
SystemResolver::Resolve(const std::string& host, absl::Time deadline) {
  absl::StatusOr<Resolution> resolved = co_await ResolveWithTtl(host, deadline);
  if (!resolved.ok()) co_return resolved.status();
  co_return std::move(resolved->addresses);
}

asio::awaitable<absl::StatusOr<Resolution>> SystemResolver::ResolveWithTtl(
    const std::string& host, absl::Time deadline) {
  if (std::optional<asio::ip::address> ip = IpLiteral(host)) {
    co_return Resolution{{*ip}, absl::InfiniteDuration()};
  }
  if (!servers_error_.ok()) {
    co_return absl::UnavailableError(absl::StrCat(
        "DNS lookup of '", host, "' failed: ", servers_error_.message()));
  }
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  // A named result, not `co_return co_await`: g++ 12 mishandles temporaries
  // in that form (see http_client.cc).
  absl::StatusOr<Resolution> resolution = co_await AsyncAresLookup(
      executor, host, options_, servers_csv_, deadline, asio::use_awaitable);
  co_return resolution;
}

}  // namespace egress
