#include "tests/support/h2_fault_server.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "asio/buffer.hpp"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/post.hpp"
#include "asio/ssl.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace egress::testing {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

// ALPN: h2 or nothing (the client then fails the handshake).
int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen,
             const unsigned char* in, unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (nghttp2_select_next_protocol(&selected, outlen, in, inlen) != 1) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string H2Frame(uint8_t type, uint8_t flags, int32_t stream_id,
                    const std::string& payload) {
  const uint32_t length = static_cast<uint32_t>(payload.size());
  const uint32_t id = static_cast<uint32_t>(stream_id) & 0x7fffffffu;
  std::string frame = {static_cast<char>(length >> 16),
                       static_cast<char>(length >> 8),
                       static_cast<char>(length),
                       static_cast<char>(type),
                       static_cast<char>(flags),
                       static_cast<char>(id >> 24),
                       static_cast<char>(id >> 16),
                       static_cast<char>(id >> 8),
                       static_cast<char>(id)};
  return frame + payload;
}

// The server's event loop: the acceptor and every connection. Everything in
// it runs on the server's thread.
class H2FaultServer::Loop {
 public:
  Loop(H2FaultServer* server, Script script, H2FaultServerOptions options)
      : server_(server),
        script_(std::move(script)),
        options_(options),
        acceptor_(io_, asio::ip::tcp::endpoint(
                           asio::ip::make_address("127.0.0.1"), 0)) {
    if (options_.tls) {
      tls_context_.emplace(asio::ssl::context::tls_server);
      tls_context_->use_certificate_chain_file(options_.tls->chain_file);
      tls_context_->use_private_key_file(options_.tls->key_file,
                                         asio::ssl::context::pem);
      SSL_CTX_set_alpn_select_cb(tls_context_->native_handle(), &SelectH2,
                                 nullptr);
    }
  }

  asio::io_context& io() { return io_; }
  int port() const { return acceptor_.local_endpoint().port(); }
  const H2FaultServerOptions& options() const { return options_; }
  bool answer_pings() const { return server_->answer_pings_.load(); }
  // Set when the server speaks TLS.
  asio::ssl::context* tls_context() {
    return tls_context_ ? &*tls_context_ : nullptr;
  }

  H2Reply CallScript(const H2Request& request) { return script_(request); }

  // Updates the server's stats under its lock.
  template <typename F>
  void Record(F&& update) {
    MutexLock lock(&server_->mu_);
    update(server_->stats_);
  }

  void StartAccepting() {
    asio::co_spawn(io_, Accept(), asio::detached);
  }
  // Closes the acceptor and every connection; the loop then runs out of
  // work. Runs on the loop.
  void Shutdown();

 private:
  asio::awaitable<void> Accept();

  H2FaultServer* const server_;
  const Script script_;
  const H2FaultServerOptions options_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{
      io_.get_executor()};
  asio::ip::tcp::acceptor acceptor_;
  std::optional<asio::ssl::context> tls_context_;
  std::vector<std::shared_ptr<Connection>> connections_;
};

// One accepted connection: an nghttp2 server session over the socket.
class H2FaultServer::Connection
    : public std::enable_shared_from_this<H2FaultServer::Connection> {
 public:
  Connection(Loop* loop, int index, asio::ip::tcp::socket socket)
      : loop_(loop), index_(index), executor_(socket.get_executor()) {
    if (loop->tls_context() != nullptr) {
      tls_.emplace(std::move(socket), *loop->tls_context());
    } else {
      socket_.emplace(std::move(socket));
    }
  }
  ~Connection() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  void Start() {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks,
                                                            &OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                              &OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks,
                                                         &OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                           &OnStreamClose);
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    // PINGs are answered (or not) by OnFrameRecv.
    nghttp2_option_set_no_auto_ping_ack(option, 1);
    nghttp2_session_server_new2(&session_, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         loop_->options().max_concurrent_streams},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                            std::size(settings));
    asio::co_spawn(executor_, ReadLoop(shared_from_this()), asio::detached);
    if (!tls_) Flush();  // with TLS, once the handshake is done (ReadLoop)
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    Lowest().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    Lowest().close(ignored);
    for (auto& timer : timers_) timer->cancel();
    held_.clear();
  }

 private:
  asio::ip::tcp::socket::lowest_layer_type& Lowest() {
    return tls_ ? tls_->lowest_layer() : socket_->lowest_layer();
  }

  static Connection* From(void* user_data) {
    return static_cast<Connection*>(user_data);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame,
                            void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    Connection* c = From(user_data);
    H2Request& request = c->incoming_[frame->hd.stream_id];
    request.connection = c->index_;
    request.stream_id = frame->hd.stream_id;
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame,
                      const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    Connection* c = From(user_data);
    auto it = c->incoming_.find(frame->hd.stream_id);
    if (it == c->incoming_.end()) return 0;
    H2Request& request = it->second;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":method") {
      request.method = std::move(v);
    } else if (n == ":scheme") {
      request.scheme = std::move(v);
    } else if (n == ":authority") {
      request.authority = std::move(v);
    } else if (n == ":path") {
      request.path = std::move(v);
    } else {
      request.headers.push_back(HeaderField{std::move(n), std::move(v)});
    }
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t stream_id,
                    const uint8_t* data, size_t len, void* user_data) {
    Connection* c = From(user_data);
    auto it = c->incoming_.find(stream_id);
    if (it != c->incoming_.end()) {
      it->second.body.append(reinterpret_cast<const char*>(data), len);
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                         void* user_data) {
    Connection* c = From(user_data);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            c->incoming_.count(frame->hd.stream_id) > 0) {
          c->OnRequestComplete(frame->hd.stream_id);
        }
        break;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
          c->loop_->Record([](H2ServerStats& s) { ++s.pings_received; });
          if (c->loop_->answer_pings()) {
            nghttp2_submit_ping(session, NGHTTP2_FLAG_ACK,
                                frame->ping.opaque_data);
          }
        }
        break;
      case NGHTTP2_RST_STREAM: {
        const uint32_t code = frame->rst_stream.error_code;
        c->loop_->Record(
            [code](H2ServerStats& s) { s.rst_stream_codes.push_back(code); });
        break;
      }
      default:
        break;
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t,
                           void* user_data) {
    Connection* c = From(user_data);
    c->incoming_.erase(stream_id);
    c->outgoing_.erase(stream_id);
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id,
                          uint8_t* buf, size_t length, uint32_t* data_flags,
                          nghttp2_data_source*, void* user_data) {
    Connection* c = From(user_data);
    auto it = c->outgoing_.find(stream_id);
    if (it == c->outgoing_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    Outgoing& out = it->second;
    const size_t n = std::min(length, out.body.size() - out.offset);
    std::memcpy(buf, out.body.data() + out.offset, n);
    out.offset += n;
    c->loop_->Record([n](H2ServerStats& s) { s.data_bytes_sent += n; });
    if (out.offset == out.body.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!out.trailers.empty()) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva = ToNva(out.trailers);
        nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
      }
    }
    return static_cast<ssize_t>(n);
  }

  // Points into `fields` (whose names are lower-cased in place).
  static std::vector<nghttp2_nv> ToNva(HeaderList& fields) {
    std::vector<nghttp2_nv> nva;
    for (HeaderField& field : fields) {
      absl::AsciiStrToLower(&field.name);
      nva.push_back(Nv(field.name, field.value));
    }
    return nva;
  }

  static nghttp2_nv Nv(const std::string& name, const std::string& value) {
    nghttp2_nv nv;
    nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
    nv.namelen = name.size();
    nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
    nv.valuelen = value.size();
    nv.flags = NGHTTP2_NV_FLAG_NONE;
    return nv;
  }

  void OnRequestComplete(int32_t stream_id) {
    auto node = incoming_.extract(stream_id);
    H2Request request = std::move(node.mapped());
    request.index_on_connection = requests_++;
    const int connection = index_;
    loop_->Record([&](H2ServerStats& s) {
      request.index = s.requests++;
      ++s.streams_per_connection[connection];
    });
    H2Reply reply = loop_->CallScript(request);
    // Acted on outside nghttp2's callback: closing the socket or submitting
    // frames is then plain sailing.
    asio::post(executor_,
               [self = shared_from_this(), stream_id,
                reply = std::move(reply)]() mutable {
                 self->Apply(stream_id, std::move(reply));
               });
  }

  void Apply(int32_t stream_id, H2Reply reply) {
    if (closed_) return;
    if (reply.max_concurrent_streams) {
      const nghttp2_settings_entry settings[] = {
          {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
           *reply.max_concurrent_streams},
      };
      nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
    }
    if (reply.goaway_last_stream_id) {
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            *reply.goaway_last_stream_id, NGHTTP2_NO_ERROR,
                            nullptr, 0);
      goaway_last_ = *reply.goaway_last_stream_id;
    }
    if (reply.release_held) {
      std::vector<std::pair<int32_t, H2Reply>> held = std::move(held_);
      held_.clear();
      for (auto& [id, held_reply] : held) Respond(id, held_reply);
    }
    raw_after_ += reply.raw_after;
    if (reply.close_connection) {
      CloseNow();
      return;
    }
    if (reply.reset_code) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id,
                                *reply.reset_code);
      if (reply.second_reset_code) {
        const uint32_t code = *reply.second_reset_code;
        raw_after_ += H2Frame(
            NGHTTP2_RST_STREAM, 0, stream_id,
            {static_cast<char>(code >> 24), static_cast<char>(code >> 16),
             static_cast<char>(code >> 8), static_cast<char>(code)});
      }
    } else if (reply.no_reply) {
      // Nothing: the client gives up by itself.
    } else if (reply.hold) {
      reply.hold = false;
      held_.emplace_back(stream_id, std::move(reply));
    } else if (reply.delay > absl::ZeroDuration()) {
      auto timer = std::make_shared<asio::steady_timer>(
          executor_, absl::ToChronoNanoseconds(reply.delay));
      timers_.push_back(timer);
      timer->async_wait([self = shared_from_this(), stream_id,
                         reply = std::move(reply),
                         timer](const asio::error_code& ec) {
        if (ec || self->closed_) return;
        self->Respond(stream_id, reply);
      });
    } else {
      Respond(stream_id, reply);
    }
    Flush();
  }

  void Respond(int32_t stream_id, const H2Reply& reply) {
    if (closed_) return;
    if (goaway_last_ && stream_id > *goaway_last_) return;
    // Reset by the client meanwhile.
    if (nghttp2_session_find_stream(session_, stream_id) == nullptr) return;
    const std::string status_name = ":status";
    if (reply.interim_status) {
      const std::string interim = absl::StrCat(*reply.interim_status);
      const std::string link_name = "link";
      const std::string link = "</style.css>; rel=preload";
      const nghttp2_nv interim_nva[] = {Nv(status_name, interim),
                                        Nv(link_name, link)};
      nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream_id, nullptr,
                             interim_nva, 2, nullptr);
    }
    HeaderList fields = reply.headers;
    const std::string status = absl::StrCat(reply.status);
    std::vector<nghttp2_nv> nva;
    nva.push_back(Nv(status_name, status));
    for (const nghttp2_nv& nv : ToNva(fields)) nva.push_back(nv);
    const bool has_data = !reply.body.empty() || !reply.trailers.empty();
    if (has_data) {
      Outgoing& out = outgoing_[stream_id];
      out.body = reply.body;
      out.trailers = reply.trailers;
    }
    nghttp2_data_provider provider;
    provider.source.ptr = nullptr;
    provider.read_callback = &ReadBody;
    nghttp2_submit_response(session_, stream_id, nva.data(), nva.size(),
                            has_data ? &provider : nullptr);
    Flush();
  }

  asio::awaitable<void> ReadLoop(std::shared_ptr<Connection> self) {
    if (tls_) {
      writing_ = true;  // nothing goes out before the handshake
      auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                                 kNoThrow);
      writing_ = false;
      if (ec) {
        CloseNow();
        co_return;
      }
      Flush();
    }
    std::array<uint8_t, 16 * 1024> buffer;
    while (!closed_) {
      std::tuple<asio::error_code, size_t> read;
      if (tls_) {
        read = co_await tls_->async_read_some(asio::buffer(buffer), kNoThrow);
      } else {
        read = co_await socket_->async_read_some(asio::buffer(buffer),
                                                 kNoThrow);
      }
      auto [ec, n] = read;
      if (closed_) break;
      if (ec) {
        loop_->Record(
            [](H2ServerStats& s) { ++s.connections_closed_by_client; });
        CloseNow();
        break;
      }
      if (nghttp2_session_mem_recv(session_, buffer.data(), n) < 0) {
        CloseNow();
        break;
      }
      Flush();
    }
  }

  void Flush() {
    if (writing_ || closed_) return;
    writing_ = true;
    asio::co_spawn(executor_, FlushLoop(shared_from_this()),
                   asio::detached);
  }

  asio::awaitable<void> FlushLoop(std::shared_ptr<Connection> self) {
    std::string batch;
    while (!closed_) {
      batch.clear();
      for (;;) {
        const uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_, &data);
        if (n <= 0) break;
        batch.append(reinterpret_cast<const char*>(data), n);
      }
      // Raw frames (H2Reply::raw_after) go after nghttp2's, in one write.
      batch += raw_after_;
      raw_after_.clear();
      if (batch.empty()) break;
      std::tuple<asio::error_code, size_t> wrote;
      if (tls_) {
        wrote = co_await asio::async_write(*tls_, asio::buffer(batch),
                                           kNoThrow);
      } else {
        wrote = co_await asio::async_write(*socket_, asio::buffer(batch),
                                           kNoThrow);
      }
      auto [ec, written] = wrote;
      if (ec) {
        CloseNow();
        break;
      }
    }
    writing_ = false;
  }

  struct Outgoing {
    std::string body;
    size_t offset = 0;
    HeaderList trailers;
  };

  Loop* const loop_;
  const int index_;
  const asio::any_io_executor executor_;
  // One of the two: cleartext, or TLS over the accepted socket.
  std::optional<asio::ip::tcp::socket> socket_;
  std::optional<TlsStream> tls_;
  nghttp2_session* session_ = nullptr;
  bool writing_ = false;
  bool closed_ = false;
  // Bytes to write after nghttp2's next output (H2Reply::raw_after).
  std::string raw_after_;
  int requests_ = 0;
  std::map<int32_t, H2Request> incoming_;
  std::map<int32_t, Outgoing> outgoing_;
  std::vector<std::pair<int32_t, H2Reply>> held_;
  std::optional<int32_t> goaway_last_;
  std::vector<std::shared_ptr<asio::steady_timer>> timers_;
};

asio::awaitable<void> H2FaultServer::Loop::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kNoThrow);
    if (ec) co_return;  // the acceptor was closed
    int index = 0;
    Record([&](H2ServerStats& s) {
      index = s.connections_accepted++;
      s.streams_per_connection.push_back(0);
    });
    auto connection =
        std::make_shared<Connection>(this, index, std::move(socket));
    connections_.push_back(connection);
    connection->Start();
  }
}

void H2FaultServer::Loop::Shutdown() {
  asio::error_code ignored;
  acceptor_.close(ignored);
  for (auto& connection : connections_) connection->CloseNow();
  work_.reset();
}

H2FaultServer::H2FaultServer(Script script, H2FaultServerOptions options)
    : answer_pings_(options.answer_pings),
      tls_(options.tls.has_value()),
      loop_(std::make_unique<Loop>(this, std::move(script), options)) {
  port_ = loop_->port();
  loop_->StartAccepting();
  thread_ = std::thread([this] { loop_->io().run(); });
}

H2FaultServer::~H2FaultServer() {
  asio::post(loop_->io(), [this] { loop_->Shutdown(); });
  thread_.join();
  loop_.reset();
}

std::string H2FaultServer::Url(const std::string& path) const {
  return absl::StrCat(tls_ ? "https" : "http", "://127.0.0.1:", port_, path);
}

H2ServerStats H2FaultServer::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

bool H2FaultServer::AwaitStats(
    const std::function<bool(const H2ServerStats&)>& done,
    absl::Duration timeout) const {
  MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done(stats_); }, timeout);
}

}  // namespace egress::testing
