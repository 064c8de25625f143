#include "bench/loadgen/h2c_driver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace egress::bench {
namespace {

const char* GrpcCodeName(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",
      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS",   "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",        "OUT_OF_RANGE",
      "UNIMPLEMENTED",    "INTERNAL",          "UNAVAILABLE",
      "DATA_LOSS",        "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) {
    return kNames[code];
  }
  return "GRPC_UNKNOWN_CODE";
}

class H2cLoad;

// One request on the wire.
struct Stream {
  int64_t start_ns = 0;  // intended (open loop) or actual (closed) start
  int http_status = 0;
  int grpc_status = -1;
  int64_t body_bytes = 0;
  size_t body_sent = 0;
};

struct Conn {
  H2cLoad* owner = nullptr;
  int index = 0;
  int fd = -1;
  nghttp2_session* session = nullptr;
  bool dead = false;
  bool epollout = false;
  // Bytes nghttp2 produced that the socket has not taken yet.
  std::string out;
  size_t out_offset = 0;
  std::unordered_set<Stream*> streams;
};

class H2cLoad {
 public:
  H2cLoad(const LoadOptions& options, const H2cRequest& request)
      : options_(options), request_(request) {
    authority_ = request.authority.empty() ? options.target : request.authority;
    Header(":method", request_.method);
    Header(":scheme", "http");
    Header(":authority", authority_);
    Header(":path", request_.path);
    for (const auto& [name, value] : request_.headers) Header(name, value);
  }

  ~H2cLoad() {
    for (auto& c : conns_) {
      for (Stream* s : c->streams) delete s;
      if (c->session != nullptr) nghttp2_session_del(c->session);
      if (c->fd >= 0) close(c->fd);
    }
    if (timer_fd_ >= 0) close(timer_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  absl::StatusOr<RunReport> Run() {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epoll_fd_ < 0 || timer_fd_ < 0) {
      return absl::InternalError(absl::StrCat("epoll/timerfd: ", strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // nullptr marks the timer
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev);
    for (int i = 0; i < std::max(1, options_.connections); ++i) {
      if (absl::Status s = Connect(i); !s.ok()) return s;
    }

    start_ns_ = NowNanos() + 1'000'000;
    warm_end_ns_ = start_ns_ + absl::ToInt64Nanoseconds(options_.warmup);
    stop_ns_ = warm_end_ns_ + absl::ToInt64Nanoseconds(options_.duration);
    const int64_t drain_limit =
        stop_ns_ + absl::ToInt64Nanoseconds(options_.timeout);
    const double period_ns = 1e9 / options_.rate;
    int64_t next_index = 0;
    bool closed_started = false;

    std::vector<epoll_event> events(64);
    while (true) {
      int64_t now = NowNanos();
      if (options_.open_loop) {
        while (outstanding_ < options_.max_outstanding) {
          const int64_t intended =
              start_ns_ +
              static_cast<int64_t>(static_cast<double>(next_index) * period_ns);
          if (intended > now || intended >= stop_ns_) break;
          if (intended >= warm_end_ns_) {
            schedule_.send_lag_ns.Record(now - intended);
          }
          Submit(conns_[next_index % conns_.size()].get(), intended);
          ++next_index;
        }
      } else if (!closed_started && now >= start_ns_) {
        closed_started = true;
        for (int i = 0; i < options_.concurrency; ++i) {
          Submit(conns_[i % conns_.size()].get(), now);
        }
      }
      for (auto& c : conns_) Flush(c.get());

      now = NowNanos();
      if (now >= stop_ns_ && outstanding_ == 0) break;
      if (now >= drain_limit) break;
      // With every connection gone, a closed loop has nothing left to do;
      // an open loop goes on, so each request of the schedule counts as a
      // CONNECTION_ERROR and the outage shows at its full length.
      if (!options_.open_loop &&
          std::none_of(conns_.begin(), conns_.end(),
                       [](const auto& c) { return !c->dead; })) {
        break;
      }

      // Wake at the next send time, or at start / the stop / the drain
      // limit; completions wake the loop through their sockets.
      int64_t wake = drain_limit;
      if (now < start_ns_) {
        wake = start_ns_;
      } else if (options_.open_loop &&
                 outstanding_ < options_.max_outstanding) {
        // (At the cap, a completion's socket wakes the loop instead.)
        const int64_t next =
            start_ns_ +
            static_cast<int64_t>(static_cast<double>(next_index) * period_ns);
        if (next < stop_ns_) wake = std::min(wake, next);
      }
      if (now < stop_ns_) wake = std::min(wake, stop_ns_);
      ArmTimer(wake);
      const int n = epoll_wait(epoll_fd_, events.data(),
                               static_cast<int>(events.size()), -1);
      if (n < 0 && errno != EINTR) {
        return absl::InternalError(absl::StrCat("epoll_wait: ", strerror(errno)));
      }
      for (int i = 0; i < n; ++i) {
        Conn* c = static_cast<Conn*>(events[i].data.ptr);
        if (c == nullptr) {
          uint64_t expirations;
          while (read(timer_fd_, &expirations, sizeof expirations) > 0) {
          }
          continue;
        }
        if (c->dead) continue;
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) Receive(c);
        if (!c->dead && (events[i].events & EPOLLOUT)) Flush(c);
      }
    }

    // Whatever is still open after the drain limit is a failure to answer.
    for (auto& c : conns_) {
      for (Stream* s : c->streams) {
        Complete(s, "UNFINISHED", NowNanos());
        delete s;
      }
      c->streams.clear();
    }

    RunReport report = std::move(stats_);
    report.Merge(schedule_);
    report.protocol = "h2c";
    report.label = options_.label;
    report.mode = options_.open_loop ? "open" : "closed";
    report.target = options_.target;
    report.request = absl::StrCat(request_.method, " ", request_.path);
    report.offered_rate = options_.open_loop ? options_.rate : 0;
    report.concurrency = options_.open_loop ? 0 : options_.concurrency;
    report.connections = static_cast<int>(conns_.size());
    report.window_seconds = (stop_ns_ - warm_end_ns_) / 1e9;
    return report;
  }

 private:
  void Header(const std::string& name, const std::string& value) {
    names_.push_back(name);
    values_.push_back(value);
  }

  absl::Status Connect(int index) {
    const size_t colon = options_.target.rfind(':');
    int port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(options_.target.substr(colon + 1), &port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad target '", options_.target, "'"));
    }
    std::string host = options_.target.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) !=
            0 ||
        res == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", host));
    }
    const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0) {
      const int err = errno;
      if (fd >= 0) close(fd);
      return absl::UnavailableError(absl::StrCat(
          "connect to ", options_.target, ": ", strerror(err)));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    auto conn = std::make_unique<Conn>();
    conn->owner = this;
    conn->index = index;
    conn->fd = fd;
    nghttp2_session_callbacks* callbacks;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                              OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                           OnStreamClose);
    nghttp2_session_client_new(&conn->session, callbacks, conn.get());
    nghttp2_session_callbacks_del(callbacks);
    // Large windows: flow control must not be what a 64 KiB body measures.
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20}};
    nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0,
                                          1 << 30);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = conn.get();
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    conns_.push_back(std::move(conn));
    Flush(conns_.back().get());
    return absl::OkStatus();
  }

  // Starts one request on `c`, or on the next live connection when `c` died.
  void Submit(Conn* c, int64_t start_ns) {
    for (size_t tries = 0; c->dead && tries < conns_.size(); ++tries) {
      c = conns_[(c->index + 1) % conns_.size()].get();
    }
    auto* s = new Stream;
    s->start_ns = start_ns;
    ++outstanding_;
    if (c->dead) {
      Complete(s, "CONNECTION_ERROR", NowNanos());
      delete s;
      return;
    }
    std::vector<nghttp2_nv> nva;
    for (size_t i = 0; i < names_.size(); ++i) {
      nva.push_back({reinterpret_cast<uint8_t*>(names_[i].data()),
                     reinterpret_cast<uint8_t*>(values_[i].data()),
                     names_[i].size(), values_[i].size(),
                     NGHTTP2_NV_FLAG_NO_COPY_NAME |
                         NGHTTP2_NV_FLAG_NO_COPY_VALUE});
    }
    nghttp2_data_provider body;
    body.source.ptr = this;
    body.read_callback = ReadBody;
    const int32_t id = nghttp2_submit_request(
        c->session, nullptr, nva.data(), nva.size(),
        request_.body.empty() ? nullptr : &body, s);
    if (id < 0) {
      Complete(s, "SUBMIT_ERROR", NowNanos());
      delete s;
      return;
    }
    c->streams.insert(s);
  }

  // Records a finished request; `outcome` names it ("OK" or an error).
  void Complete(Stream* s, const std::string& outcome, int64_t now) {
    --outstanding_;
    ++stats_.all_calls;
    if (now >= warm_end_ns_ && now < stop_ns_) ++stats_.completed_in_window;
    if (s->start_ns < warm_end_ns_ || s->start_ns >= stop_ns_) return;
    ++stats_.measured_calls;
    stats_.latency_ns.Record(now - s->start_ns);
    ++stats_.status[outcome];
    if (s->http_status != 0) ++stats_.http_status[s->http_status];
    stats_.response_body_bytes += s->body_bytes;
  }

  void Fail(Conn* c) {
    if (c->dead) return;
    c->dead = true;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    const int64_t now = NowNanos();
    for (Stream* s : c->streams) {
      Complete(s, "CONNECTION_ERROR", now);
      delete s;
    }
    c->streams.clear();
  }

  void Flush(Conn* c) {
    while (!c->dead) {
      if (c->out_offset == c->out.size()) {
        c->out.clear();
        c->out_offset = 0;
        const uint8_t* data;
        const ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) return Fail(c);
        if (n == 0) break;
        c->out.append(reinterpret_cast<const char*>(data), n);
      }
      const ssize_t w = write(c->fd, c->out.data() + c->out_offset,
                              c->out.size() - c->out_offset);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          SetEpollOut(c, true);
          return;
        }
        return Fail(c);
      }
      c->out_offset += w;
    }
    if (!c->dead) SetEpollOut(c, false);
  }

  void SetEpollOut(Conn* c, bool on) {
    if (c->epollout == on) return;
    c->epollout = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
  }

  void Receive(Conn* c) {
    uint8_t buf[64 * 1024];
    while (!c->dead) {
      const ssize_t n = read(c->fd, buf, sizeof buf);
      if (n == 0) return Fail(c);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return Fail(c);
      }
      if (nghttp2_session_mem_recv(c->session, buf, n) < 0) return Fail(c);
    }
    // Completions may have made room; closed loop submitted new requests;
    // WINDOW_UPDATEs are due.
    Flush(c);
  }

  void ArmTimer(int64_t at_ns) {
    itimerspec spec{};
    spec.it_value.tv_sec = at_ns / 1'000'000'000;
    spec.it_value.tv_nsec = at_ns % 1'000'000'000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) {
      spec.it_value.tv_nsec = 1;  // zero would disarm
    }
    timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                      const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t,
                      void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* s = static_cast<Stream*>(
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
    if (s == nullptr) return 0;
    const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
    const absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      absl::SimpleAtoi(v, &s->http_status);
    } else if (n == "grpc-status") {
      absl::SimpleAtoi(v, &s->grpc_status);
    }
    return 0;
  }

  static int OnData(nghttp2_session* session, uint8_t, int32_t stream_id,
                    const uint8_t*, size_t len, void*) {
    auto* s = static_cast<Stream*>(
        nghttp2_session_get_stream_user_data(session, stream_id));
    if (s != nullptr) s->body_bytes += static_cast<int64_t>(len);
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t stream_id,
                           uint32_t error_code, void* user_data) {
    auto* c = static_cast<Conn*>(user_data);
    auto* s = static_cast<Stream*>(
        nghttp2_session_get_stream_user_data(session, stream_id));
    if (s == nullptr) return 0;
    H2cLoad* self = c->owner;
    const int64_t now = NowNanos();
    std::string outcome = "OK";
    if (error_code != NGHTTP2_NO_ERROR) {
      outcome = absl::StrCat("RST_STREAM_", nghttp2_http2_strerror(error_code));
    } else if (self->request_.grpc) {
      outcome = s->grpc_status < 0 ? "NO_GRPC_STATUS"
                                   : GrpcCodeName(s->grpc_status);
    } else if (s->http_status == 0) {
      outcome = "NO_RESPONSE";
    }
    self->Complete(s, outcome, now);
    c->streams.erase(s);
    delete s;
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    if (!self->options_.open_loop && now < self->stop_ns_) {
      self->Submit(c, now);
    }
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id,
                          uint8_t* buf, size_t length, uint32_t* data_flags,
                          nghttp2_data_source* source, void*) {
    auto* self = static_cast<H2cLoad*>(source->ptr);
    auto* s = static_cast<Stream*>(
        nghttp2_session_get_stream_user_data(session, stream_id));
    const std::string& body = self->request_.body;
    const size_t from = s == nullptr ? body.size() : s->body_sent;
    const size_t n = std::min(length, body.size() - from);
    memcpy(buf, body.data() + from, n);
    if (s != nullptr) s->body_sent += n;
    if (from + n == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  const LoadOptions options_;
  const H2cRequest request_;
  std::string authority_;
  // Header storage that nva entries point into (NO_COPY flags).
  std::vector<std::string> names_;
  std::vector<std::string> values_;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  int64_t start_ns_ = 0;
  int64_t warm_end_ns_ = 0;
  int64_t stop_ns_ = 0;
  int64_t outstanding_ = 0;
  RunReport stats_;
  RunReport schedule_;
};

}  // namespace

absl::StatusOr<RunReport> RunH2cLoad(const LoadOptions& options,
                                     const H2cRequest& request) {
  H2cLoad load(options, request);
  return load.Run();
}

}  // namespace egress::bench
