#include "client_core/http2/http2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstring>
#include <list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "asio/buffer.hpp"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
using SteadyClock = std::chrono::steady_clock;

// The reader's buffer. Unlike HTTP/1.1 the reader runs for the connection's
// whole life (the peer may send SETTINGS, PING or GOAWAY at any time), so an
// idle pooled HTTP/2 connection holds this buffer too.
constexpr size_t kReadChunk = 16 * 1024;
// One Transport::Write carries at most this much of nghttp2's output.
constexpr size_t kMaxWriteBatch = 64 * 1024;
// Our SETTINGS_MAX_CONCURRENT_STREAMS limits streams the *server* opens
// (server push), which ENABLE_PUSH=0 already forbids; 100 rather than 0
// because some servers misread 0.
constexpr uint32_t kOwnMaxConcurrentStreams = 100;

// Debian's Abseil has its own absl::string_view, which std::string_view does
// not convert to implicitly.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

SteadyClock::time_point ToSteady(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return SteadyClock::time_point::max();
  absl::Duration left = deadline - absl::Now();
  if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
  // Far-future deadlines would overflow the steady clock's arithmetic.
  if (left > absl::Hours(24 * 365)) return SteadyClock::time_point::max();
  return SteadyClock::now() +
         std::chrono::duration_cast<SteadyClock::duration>(
             absl::ToChronoNanoseconds(left));
}

std::string ErrorCodeName(uint32_t code) {
  return absl::StrCat(nghttp2_http2_strerror(code));
}

// GOAWAY debug data for a message: at most 200 bytes, C-escaped (an
// origin's may hold any bytes).
std::string Printable(const uint8_t* data, size_t len) {
  constexpr size_t kMax = 200;
  std::string text = absl::CHexEscape(absl::string_view(
      reinterpret_cast<const char*>(data), std::min(len, kMax)));
  if (len > kMax) text += "...";
  return text;
}

const char* FrameTypeName(uint8_t type) {
  switch (type) {
    case NGHTTP2_DATA: return "DATA";
    case NGHTTP2_HEADERS: return "HEADERS";
    case NGHTTP2_PRIORITY: return "PRIORITY";
    case NGHTTP2_RST_STREAM: return "RST_STREAM";
    case NGHTTP2_SETTINGS: return "SETTINGS";
    case NGHTTP2_PUSH_PROMISE: return "PUSH_PROMISE";
    case NGHTTP2_PING: return "PING";
    case NGHTTP2_GOAWAY: return "GOAWAY";
    case NGHTTP2_WINDOW_UPDATE: return "WINDOW_UPDATE";
    case NGHTTP2_CONTINUATION: return "CONTINUATION";
    default: return "unknown";
  }
}

constexpr char kNoStreamsAllowed[] =
    "the origin allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)";

// Header fields HTTP/2 forbids in a request (RFC 9113 8.2.2): connection
// management belongs to the connection, not to the message. "te" is allowed
// with the value "trailers" only.
bool IsConnectionSpecific(absl::string_view lower_name,
                          absl::string_view value) {
  if (lower_name == "te") {
    return !absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(value),
                                   "trailers");
  }
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" ||
         lower_name == "transfer-encoding" || lower_name == "upgrade" ||
         lower_name == "http2-settings";
}

bool AlwaysSendsContentLength(std::string_view method) {
  // As the HTTP/1.1 writer: a server may wait for a body of these methods
  // unless told its length is 0.
  return method == "POST" || method == "PUT" || method == "PATCH";
}

// A request's header block: owns the strings nghttp2_nv points at (nghttp2
// copies them when the request is submitted).
struct RequestHeaderBlock {
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<nghttp2_nv> nva;
};

RequestHeaderBlock BuildRequestHeaders(const Request& request) {
  RequestHeaderBlock block;
  std::string authority = request.url.Authority();
  std::vector<std::pair<std::string, std::string>> regular;
  regular.reserve(request.headers.size() + 1);
  for (const HeaderField& field : request.headers) {
    std::string name = absl::AsciiStrToLower(AsAbsl(field.name));
    if (name == "host") {
      // HTTP/2 carries the Host header's meaning in :authority.
      authority = field.value;
      continue;
    }
    // Framing is HTTP/2's own; a caller's Content-Length could disagree with
    // the body we send.
    if (name == "content-length") continue;
    if (IsConnectionSpecific(name, field.value)) continue;
    regular.emplace_back(std::move(name), field.value);
  }
  if (!request.body.empty() || AlwaysSendsContentLength(request.method)) {
    regular.emplace_back("content-length", absl::StrCat(request.body.size()));
  }
  block.fields.reserve(regular.size() + 4);
  block.fields.emplace_back(":method", request.method);
  block.fields.emplace_back(":scheme", request.url.scheme);
  block.fields.emplace_back(":authority", std::move(authority));
  block.fields.emplace_back(":path", request.url.path_and_query);
  for (auto& field : regular) block.fields.push_back(std::move(field));
  block.nva.reserve(block.fields.size());
  for (const auto& [name, value] : block.fields) {
    nghttp2_nv nv;
    nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
    nv.namelen = name.size();
    nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
    nv.valuelen = value.size();
    // Credentials stay out of HPACK's dynamic table, where a compression
    // oracle could probe them.
    nv.flags = (name == "authorization" || name == "proxy-authorization")
                   ? NGHTTP2_NV_FLAG_NO_INDEX
                   : NGHTTP2_NV_FLAG_NONE;
    block.nva.push_back(nv);
  }
  return block;
}

// One exchange's stream: what the nghttp2 callbacks learnt about it, read by
// the Exchange coroutine that owns it. Lives on the connection's loop.
struct Stream {
  explicit Stream(const asio::any_io_executor& executor) : signal(executor) {}

  int32_t id = -1;
  const Request* request = nullptr;
  ExchangeSink* sink = nullptr;
  uint64_t max_body_bytes = 0;
  size_t max_header_count = 0;

  // Wakes the Exchange coroutine: it waits on this timer (expiring at the
  // exchange's deadline) and callbacks cancel() it after changing the state
  // below. Checking the state before each wait is race-free because both
  // run on the one loop thread.
  asio::steady_timer signal;

  // Request side.
  size_t body_offset = 0;        // request body bytes handed to nghttp2
  bool headers_sent = false;     // the HEADERS frame went to the writer
  bool request_written = false;  // ... and so did the frame ending the request
  absl::Time request_written_at = absl::InfinitePast();
  bool not_sent = false;         // nghttp2 dropped the HEADERS unsent
  int not_sent_error = 0;
  // The peer's SETTINGS allow no streams while nghttp2 still holds this
  // stream's HEADERS: it would wait for its deadline.
  bool no_stream_allowed = false;

  // Response side.
  bool got_headers = false;
  absl::Time first_byte_at = absl::InfinitePast();
  int block_status = 0;     // :status of the header block being received
  size_t block_bytes = 0;   // its size as SETTINGS_MAX_HEADER_LIST_SIZE counts
  HeaderList block;         // its regular fields
  bool head_ready = false;  // final (non-1xx) head received
  bool head_delivered = false;
  int status_code = 0;
  HeaderList headers;
  HeaderList trailers;
  std::string body;                // without a sink
  // With a sink: received, not yet delivered. A list, not a deque: an empty
  // std::deque already holds a 512-byte block, and most streams never use it.
  std::list<std::string> chunks;
  uint64_t body_bytes = 0;
  bool body_too_large = false;
  bool response_complete = false;  // END_STREAM received
  // A limit the response broke, found by a callback (the stream is reset).
  absl::Status local_failure;

  // Endings.
  bool closed = false;  // nghttp2 closed the stream (on_stream_close)
  uint32_t close_code = NGHTTP2_NO_ERROR;
  bool peer_reset = false;  // RST_STREAM received
  uint32_t peer_reset_code = NGHTTP2_NO_ERROR;
  bool local_reset = false;  // nghttp2 sent RST_STREAM (response broke rules)
  uint32_t local_reset_code = NGHTTP2_NO_ERROR;
  bool aborted = false;  // CallAbort::Abort()

  void Wake() { signal.cancel(); }
};

}  // namespace

class Http2Connection::Impl {
 public:
  Impl(Http2Connection* owner, const Http2Options& options)
      : owner_(owner),
        options_(options),
        keepalive_timer_(owner->executor()),
        // One stream until the peer's SETTINGS say how many: the pool then
        // opens no more than one connection's worth of streams on a guess,
        // and the calls waiting get streams (or connections of their own)
        // once the limit is known.
        allocation_limit_(1) {}

  ~Impl() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  int allocation_limit() const { return allocation_limit_.load(); }
  bool allocation_limit_known() const { return settings_received_.load(); }
  Health ProbeHealth() const {
    return healthy_.load() ? Health::kHealthy : Health::kPeerClosed;
  }
  StreamCounts stream_counts() const {
    StreamCounts counts;
    counts.started = started_count_.load();
    counts.succeeded = succeeded_count_.load();
    counts.failed = failed_count_.load();
    counts.peer_max_concurrent_streams = peer_max_concurrent_streams_.load();
    const int64_t nanos = last_read_unix_nanos_.load();
    if (nanos != 0) counts.last_frame_received = absl::FromUnixNanos(nanos);
    return counts;
  }

  void Start();
  asio::awaitable<void> Exchange(const Request& request,
                                 const Http1Limits& limits,
                                 uint64_t max_body_bytes, absl::Time deadline,
                                 ExchangeResult* out, ExchangeSink* sink,
                                 CallAbort* abort);
  asio::awaitable<absl::Status> Ping(absl::Duration timeout);
  void Close();

 private:
  // nghttp2 callbacks; user_data is the Impl.
  static int OnBeginHeaders(nghttp2_session* session,
                            const nghttp2_frame* frame, void* user_data);
  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                      const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                         void* user_data);
  static int OnDataChunkRecv(nghttp2_session* session, uint8_t flags,
                             int32_t stream_id, const uint8_t* data,
                             size_t len, void* user_data);
  static int OnStreamClose(nghttp2_session* session, int32_t stream_id,
                           uint32_t error_code, void* user_data);
  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame,
                         void* user_data);
  static int OnInvalidFrameRecv(nghttp2_session* session,
                                const nghttp2_frame* frame, int lib_error_code,
                                void* user_data);
  static int OnFrameNotSend(nghttp2_session* session,
                            const nghttp2_frame* frame, int lib_error_code,
                            void* user_data);
  static ssize_t ReadRequestBody(nghttp2_session* session, int32_t stream_id,
                                 uint8_t* buf, size_t length,
                                 uint32_t* data_flags,
                                 nghttp2_data_source* source, void* user_data);

  Stream* Find(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second;
  }
  bool AboveGoaway(int32_t stream_id) const {
    return goaway_received_ && stream_id > goaway_last_stream_id_;
  }

  asio::awaitable<void> ReadLoop(std::shared_ptr<Http2Connection> self);
  asio::awaitable<void> FlushLoop(std::shared_ptr<Http2Connection> self);
  asio::awaitable<void> KeepAlive(std::shared_ptr<Http2Connection> self);
  // Starts a FlushLoop unless one runs (it drains whatever is pending).
  void ScheduleFlush();
  // Ends the connection once nghttp2 wants neither to read nor to write
  // (GOAWAY received and every stream done, or nghttp2 terminated the
  // session after a protocol error and sent its GOAWAY).
  void CheckSessionOver();

  void OnPeerSettings();
  void OnGoaway(const nghttp2_goaway& goaway);
  void OnPingAck(const uint8_t* opaque);
  // The connection takes no new exchanges; tells the observer once.
  void StopNewExchanges(CloseReason reason, std::string detail);
  // The connection is dead: transport closed, every stream and PING waiter
  // woken to fail, the observer told (unless it already was).
  void MarkDead(CloseReason reason, std::string detail);
  void WakeAll();

  // The pieces of Exchange. They build its results outside the coroutine:
  // g++ 12 gives every local of a coroutine body its own slot in the frame
  // for as long as the exchange runs (an ExchangeResult is 480 bytes), and
  // with thousands of streams in flight frames are much of egressd's memory.
  //
  // Why a new stream cannot start (StopNewExchanges when the stream IDs
  // are used up).
  ExchangeResult RefuseNewStream();
  // Submits `request`'s headers (and body provider) to nghttp2: the stream
  // ID, or a negative nghttp2 error.
  int32_t SubmitRequest(const Request& request);
  // nghttp2 refused to start the stream (`error`).
  ExchangeResult StreamNotStarted(const Request& request, int32_t error);
  ExchangeResult Fail(Stream& stream, absl::Status status);
  ExchangeResult FailClosedStream(Stream& stream);
  // The peer's SETTINGS allow no streams and this one was never sent.
  ExchangeResult FailNoStreamAllowed(Stream& stream);
  // The connection died while the stream was open.
  ExchangeResult FailOnDeadConnection(Stream& stream, const char* during);
  // The whole response arrived: moves it out of the stream.
  ExchangeResult CompleteStream(Stream& stream);
  void FinishStream(Stream& stream);

  Http2Connection* const owner_;
  const Http2Options options_;

  // Loop-confined state.
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, Stream*> streams_;  // exchanges in progress
  bool writing_ = false;                           // a FlushLoop runs
  bool closed_ = false;                            // the transport is closed
  bool dead_ = false;
  CloseReason dead_reason_ = CloseReason::kPeerClosed;
  std::string dead_detail_;
  bool no_new_ = false;
  std::string no_new_detail_;
  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = 0;
  uint32_t goaway_error_code_ = NGHTTP2_NO_ERROR;
  std::string goaway_debug_;  // the origin's GOAWAY debug data, Printable
  // The GOAWAY nghttp2 sent when it ended the session (a protocol error by
  // the origin): its code, and its debug data naming the fault.
  bool goaway_sent_ = false;
  uint32_t goaway_sent_code_ = NGHTTP2_NO_ERROR;
  std::string goaway_sent_debug_;
  // The last invalid frame nghttp2 reported (OnInvalidFrameRecv), e.g.
  // "an invalid WINDOW_UPDATE frame (Flow control error)"; often the only
  // account of the fault when the GOAWAY carries no debug data.
  std::string last_invalid_frame_;
  int refused_streams_ = 0;
  uint64_t ping_sequence_ = 0;  // PINGs sent by Ping()
  uint64_t ping_acked_ = 0;     // the highest one acknowledged
  std::vector<asio::steady_timer*> ping_waiters_;
  asio::steady_timer keepalive_timer_;
  SteadyClock::time_point last_read_at_ = SteadyClock::now();

  // Read from any thread.
  std::atomic<int> allocation_limit_;
  // The peer's first SETTINGS arrived (allocation_limit_ is its).
  std::atomic<bool> settings_received_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> started_count_{0};
  std::atomic<uint64_t> succeeded_count_{0};
  std::atomic<uint64_t> failed_count_{0};
  std::atomic<uint32_t> peer_max_concurrent_streams_{0};
  std::atomic<int64_t> last_read_unix_nanos_{0};
};

// ---------------------------------------------------------------------------
// Start, reader, writer, keep-alive.

void Http2Connection::Impl::Start() {
  if (session_ != nullptr) return;
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks,
                                                          &OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks,
                                                       &OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                            &OnDataChunkRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                         &OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks,
                                                       &OnFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks,
                                                           &OnFrameNotSend);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      callbacks, &OnInvalidFrameRecv);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // We say when received DATA is consumed: at once for buffered responses,
  // after the sink took it for streamed ones (end-to-end backpressure).
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Until the peer's SETTINGS, nghttp2 opens no more streams than we allow.
  nghttp2_option_set_peer_max_concurrent_streams(
      option, static_cast<uint32_t>(allocation_limit_.load()));
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kOwnMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       std::min<uint32_t>(options_.stream_window_bytes,
                          NGHTTP2_MAX_WINDOW_SIZE)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_bytes},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          std::size(settings));
  // The connection window is not a SETTING: raise it with WINDOW_UPDATE.
  const int32_t connection_window = static_cast<int32_t>(std::min<uint32_t>(
      options_.connection_window_bytes, NGHTTP2_MAX_WINDOW_SIZE));
  if (connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          connection_window);
  }

  std::shared_ptr<Http2Connection> self = owner_->shared_from_this();
  last_read_at_ = SteadyClock::now();
  asio::co_spawn(owner_->executor(), ReadLoop(self), asio::detached);
  if (options_.ping_interval > absl::ZeroDuration()) {
    asio::co_spawn(owner_->executor(), KeepAlive(self), asio::detached);
  }
  ScheduleFlush();
}

asio::awaitable<void> Http2Connection::Impl::ReadLoop(
    std::shared_ptr<Http2Connection> self) {
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[kReadChunk]);
  while (!dead_) {
    auto [ec, n] = co_await owner_->transport().ReadSome(
        asio::buffer(buffer.get(), kReadChunk));
    if (dead_) break;
    if (ec) {
      if (ec == asio::error::eof) {
        MarkDead(CloseReason::kPeerClosed, "the origin closed the connection");
      } else {
        MarkDead(CloseReason::kIoError, ec.message());
      }
      break;
    }
    last_read_at_ = SteadyClock::now();
    last_read_unix_nanos_.store(absl::ToUnixNanos(absl::Now()));
    const ssize_t used = nghttp2_session_mem_recv(session_, buffer.get(), n);
    if (used < 0) {
      MarkDead(CloseReason::kProtocolError,
               absl::StrCat(
                   "HTTP/2 session failed: ", nghttp2_strerror(used),
                   used == NGHTTP2_ERR_FLOODED
                       ? " (the origin sent more frames needing an answer, "
                         "such as PING, SETTINGS or RST_STREAM, than "
                         "egressd would queue)"
                       : ""));
      break;
    }
    ScheduleFlush();
    CheckSessionOver();
  }
}

void Http2Connection::Impl::ScheduleFlush() {
  if (writing_ || dead_ || session_ == nullptr) return;
  if (!nghttp2_session_want_write(session_)) return;
  writing_ = true;
  asio::co_spawn(owner_->executor(), FlushLoop(owner_->shared_from_this()),
                 asio::detached);
}

asio::awaitable<void> Http2Connection::Impl::FlushLoop(
    std::shared_ptr<Http2Connection> self) {
  std::string batch;
  while (!dead_) {
    batch.clear();
    while (batch.size() < kMaxWriteBatch) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        writing_ = false;
        MarkDead(CloseReason::kProtocolError,
                 absl::StrCat("HTTP/2 session failed: ", nghttp2_strerror(n)));
        co_return;
      }
      if (n == 0) break;
      batch.append(reinterpret_cast<const char*>(data), n);
    }
    if (batch.empty()) break;
    const std::array<asio::const_buffer, 1> out = {asio::buffer(batch)};
    auto [ec, written] = co_await owner_->transport().Write(out);
    if (dead_) break;
    if (ec) {
      writing_ = false;
      MarkDead(ec == asio::error::eof ? CloseReason::kPeerClosed
                                      : CloseReason::kIoError,
               ec.message());
      co_return;
    }
  }
  writing_ = false;
  CheckSessionOver();
}

void Http2Connection::Impl::CheckSessionOver() {
  if (dead_ || writing_ || session_ == nullptr) return;
  if (nghttp2_session_want_read(session_) ||
      nghttp2_session_want_write(session_)) {
    return;
  }
  if (goaway_received_) {
    MarkDead(CloseReason::kGoaway,
             absl::StrCat("the origin sent GOAWAY (",
                          ErrorCodeName(goaway_error_code_),
                          goaway_debug_.empty() ? "" : ": ", goaway_debug_,
                          ") and every stream ended"));
  } else if (goaway_sent_) {
    std::string fault = last_invalid_frame_;
    if (!goaway_sent_debug_.empty()) {
      absl::StrAppend(&fault, fault.empty() ? "" : ": ", goaway_sent_debug_);
    }
    MarkDead(CloseReason::kProtocolError,
             absl::StrCat("egressd ended the HTTP/2 session with GOAWAY (",
                          ErrorCodeName(goaway_sent_code_),
                          ") after a protocol error by the origin: ",
                          fault.empty() ? "no detail from nghttp2" : fault));
  } else {
    MarkDead(CloseReason::kProtocolError,
             "egressd ended the HTTP/2 session after a protocol error by the "
             "origin");
  }
}

asio::awaitable<void> Http2Connection::Impl::KeepAlive(
    std::shared_ptr<Http2Connection> self) {
  const auto interval = std::chrono::duration_cast<SteadyClock::duration>(
      absl::ToChronoNanoseconds(options_.ping_interval));
  while (!dead_) {
    keepalive_timer_.expires_at(last_read_at_ + interval);
    co_await keepalive_timer_.async_wait(kNoThrow);
    if (dead_) break;
    // The peer spoke since the timer was armed: it is alive.
    if (SteadyClock::now() - last_read_at_ < interval) continue;
    const absl::Status answered = co_await Ping(options_.ping_timeout);
    if (!answered.ok()) break;  // Ping() marked the connection dead
  }
}

// ---------------------------------------------------------------------------
// Connection state changes.

void Http2Connection::Impl::OnPeerSettings() {
  // nghttp2 applied the SETTINGS before calling back; a SETTINGS without
  // MAX_CONCURRENT_STREAMS leaves the value assumed so far.
  const uint32_t peer = nghttp2_session_get_remote_settings(
      session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  peer_max_concurrent_streams_.store(peer);
  const uint32_t cap = options_.max_concurrent_streams;
  const uint32_t limit = cap == 0 ? peer : std::min(cap, peer);
  const int new_limit = static_cast<int>(std::min<uint32_t>(limit, INT_MAX));
  const bool first = !settings_received_.exchange(true);
  if (peer == 0) {
    // A connection that allows no streams takes no new exchanges, and the
    // streams nghttp2 holds unsent fail now (not processed: the caller may
    // move them to another connection) instead of at their deadlines.
    for (auto& [id, stream] : streams_) {
      if (!stream->headers_sent) {
        stream->no_stream_allowed = true;
        stream->Wake();
      }
    }
    StopNewExchanges(CloseReason::kRefusedStream, kNoStreamsAllowed);
  }
  if ((allocation_limit_.exchange(new_limit) != new_limit || first) &&
      owner_->observer() != nullptr) {
    owner_->observer()->OnAllocationLimitChanged(owner_->id());
  }
}

void Http2Connection::Impl::OnGoaway(const nghttp2_goaway& goaway) {
  goaway_received_ = true;
  goaway_last_stream_id_ = goaway.last_stream_id;
  goaway_error_code_ = goaway.error_code;
  goaway_debug_ = Printable(goaway.opaque_data, goaway.opaque_data_len);
  // Streams above last_stream_id are closed by nghttp2 right after this
  // callback (REFUSED_STREAM); they wake then.
  StopNewExchanges(
      CloseReason::kGoaway,
      absl::StrCat("the origin sent GOAWAY (", ErrorCodeName(goaway.error_code),
                   ", last stream ", goaway.last_stream_id,
                   goaway_debug_.empty() ? "" : ": ", goaway_debug_, ")"));
}

void Http2Connection::Impl::OnPingAck(const uint8_t* opaque) {
  uint64_t sequence = 0;
  for (int i = 0; i < 8; ++i) sequence = (sequence << 8) | opaque[i];
  if (sequence > ping_sequence_) return;  // not one of ours
  ping_acked_ = std::max(ping_acked_, sequence);
  for (asio::steady_timer* waiter : ping_waiters_) waiter->cancel();
}

void Http2Connection::Impl::StopNewExchanges(CloseReason reason,
                                             std::string detail) {
  healthy_.store(false);
  if (no_new_) return;
  no_new_ = true;
  no_new_detail_ = std::move(detail);
  // Last: the pool may react by closing the connection.
  if (owner_->observer() != nullptr) {
    owner_->observer()->OnNoNewExchanges(owner_->id(), reason);
  }
}

void Http2Connection::Impl::MarkDead(CloseReason reason, std::string detail) {
  if (dead_) return;
  dead_ = true;
  dead_reason_ = reason;
  dead_detail_ = detail;
  healthy_.store(false);
  if (!closed_) {
    closed_ = true;
    owner_->transport().Close();
  }
  keepalive_timer_.cancel();
  WakeAll();
  StopNewExchanges(reason, std::move(detail));
}

void Http2Connection::Impl::WakeAll() {
  for (auto& [id, stream] : streams_) stream->Wake();
  for (asio::steady_timer* waiter : ping_waiters_) waiter->cancel();
}

void Http2Connection::Impl::Close() {
  if (!dead_) {
    // Closed by its owner, who knows why: the observer is not told (the pool
    // may hold its lock while it closes).
    dead_ = true;
    dead_reason_ = CloseReason::kShutdown;
    dead_detail_ = "egressd closed the connection";
  }
  healthy_.store(false);
  if (!closed_) {
    closed_ = true;
    owner_->transport().Close();
  }
  keepalive_timer_.cancel();
  WakeAll();
}

// ---------------------------------------------------------------------------
// nghttp2 callbacks. They only record what happened and wake the streams;
// the Exchange coroutines act on it.

int Http2Connection::Impl::OnBeginHeaders(nghttp2_session*,
                                          const nghttp2_frame* frame,
                                          void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Impl* impl = static_cast<Impl*>(user_data);
  Stream* stream = impl->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  if (!stream->got_headers) {
    stream->got_headers = true;
    stream->first_byte_at = absl::Now();
  }
  stream->block_status = 0;
  stream->block_bytes = 0;
  stream->block.clear();
  return 0;
}

int Http2Connection::Impl::OnHeader(nghttp2_session*,
                                    const nghttp2_frame* frame,
                                    const uint8_t* name, size_t namelen,
                                    const uint8_t* value, size_t valuelen,
                                    uint8_t, void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Impl* impl = static_cast<Impl*>(user_data);
  Stream* stream = impl->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  // RFC 9113 6.5.2: name + value + 32 per field.
  stream->block_bytes += namelen + valuelen + 32;
  if (stream->block_bytes > impl->options_.max_header_list_bytes) {
    stream->local_failure = absl::ResourceExhaustedError(absl::StrFormat(
        "response header list exceeds %d bytes (max_header_list_bytes)",
        impl->options_.max_header_list_bytes));
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  }
  if (n == ":status") {
    int status = 0;
    // nghttp2 checked it is three digits.
    if (absl::SimpleAtoi(AsAbsl(v), &status)) stream->block_status = status;
    return 0;
  }
  if (!n.empty() && n.front() == ':') return 0;
  if (stream->headers.size() + stream->trailers.size() + stream->block.size() >=
      stream->max_header_count) {
    stream->local_failure = absl::ResourceExhaustedError(
        absl::StrFormat("response has more than %d header fields",
                        stream->max_header_count));
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  stream->block.push_back(HeaderField{std::string(n), std::string(v)});
  return 0;
}

int Http2Connection::Impl::OnFrameRecv(nghttp2_session*,
                                       const nghttp2_frame* frame,
                                       void* user_data) {
  Impl* impl = static_cast<Impl*>(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      Stream* stream = impl->Find(frame->hd.stream_id);
      if (stream == nullptr) break;
      if (stream->block_status != 0) {
        if (stream->block_status / 100 == 1) {
          // Interim (1xx) response: skipped, as the HTTP/1.1 codec does.
        } else if (!stream->head_ready) {
          stream->status_code = stream->block_status;
          stream->headers = std::move(stream->block);
          stream->head_ready = true;
        }
      } else if (stream->head_ready) {
        // HEADERS after the head: trailers.
        for (HeaderField& field : stream->block) {
          stream->trailers.push_back(std::move(field));
        }
      }
      stream->block.clear();
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        stream->response_complete = true;
      }
      stream->Wake();
      break;
    }
    case NGHTTP2_DATA: {
      Stream* stream = impl->Find(frame->hd.stream_id);
      if (stream == nullptr) break;
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        stream->response_complete = true;
        stream->Wake();
      }
      break;
    }
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) impl->OnPeerSettings();
      break;
    case NGHTTP2_GOAWAY:
      impl->OnGoaway(frame->goaway);
      break;
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
        impl->OnPingAck(frame->ping.opaque_data);
      }
      break;
    case NGHTTP2_RST_STREAM: {
      // nghttp2 closes the stream right after this callback. Only the
      // first reset of an open stream counts: a REFUSED_STREAM that follows
      // an INTERNAL_ERROR (or a whole response) for a stream already closed
      // does not prove the request unprocessed, and must not make a POST
      // look safe to send again.
      Stream* stream = impl->Find(frame->hd.stream_id);
      if (stream == nullptr || stream->closed || stream->peer_reset) break;
      stream->peer_reset = true;
      stream->peer_reset_code = frame->rst_stream.error_code;
      break;
    }
    default:
      break;
  }
  return 0;
}

int Http2Connection::Impl::OnDataChunkRecv(nghttp2_session* session, uint8_t,
                                           int32_t stream_id,
                                           const uint8_t* data, size_t len,
                                           void* user_data) {
  Impl* impl = static_cast<Impl*>(user_data);
  Stream* stream = impl->Find(stream_id);
  if (stream == nullptr) {
    // Its exchange ended (the stream is being reset): nobody wants it.
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  stream->body_bytes += len;
  if (stream->sink != nullptr) {
    // The connection window is released at once so that a slow consumer
    // holds back only its own stream; the stream window only after the
    // sink took the chunk (Exchange), which is what slows the origin.
    nghttp2_session_consume_connection(session, len);
    stream->chunks.emplace_back(reinterpret_cast<const char*>(data), len);
  } else {
    nghttp2_session_consume(session, stream_id, len);
    if (stream->body_bytes > stream->max_body_bytes) {
      stream->body_too_large = true;
    } else {
      stream->body.append(reinterpret_cast<const char*>(data), len);
    }
  }
  stream->Wake();
  return 0;
}

int Http2Connection::Impl::OnStreamClose(nghttp2_session*, int32_t stream_id,
                                         uint32_t error_code,
                                         void* user_data) {
  Impl* impl = static_cast<Impl*>(user_data);
  Stream* stream = impl->Find(stream_id);
  // The first close decides how the stream ended.
  if (stream == nullptr || stream->closed) return 0;
  stream->closed = true;
  stream->close_code = error_code;
  // Only a REFUSED_STREAM the origin sent counts: nghttp2 also uses the code
  // for streams above a GOAWAY's last-stream-id and for requests it never
  // sent.
  if (stream->peer_reset && stream->peer_reset_code == NGHTTP2_REFUSED_STREAM &&
      !impl->AboveGoaway(stream_id) && ++impl->refused_streams_ == 2) {
    impl->StopNewExchanges(CloseReason::kRefusedStream,
                           "the origin refused two streams (REFUSED_STREAM)");
  }
  stream->Wake();
  return 0;
}

int Http2Connection::Impl::OnFrameSend(nghttp2_session*,
                                       const nghttp2_frame* frame,
                                       void* user_data) {
  Impl* impl = static_cast<Impl*>(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // We only send GOAWAY when nghttp2 ends the session over the origin's
    // protocol error: its code and debug data say what the origin did.
    impl->goaway_sent_ = true;
    impl->goaway_sent_code_ = frame->goaway.error_code;
    impl->goaway_sent_debug_ = Printable(
        frame->goaway.opaque_data, frame->goaway.opaque_data_len);
    return 0;
  }
  Stream* stream = impl->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      if (frame->hd.type == NGHTTP2_HEADERS) stream->headers_sent = true;
      // The frame ending the request is in the writer's batch: the request
      // counts as written from here (the safe direction for retries: a
      // request possibly sent is never treated as unsent).
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
          !stream->request_written) {
        stream->request_written = true;
        stream->request_written_at = absl::Now();
      }
      break;
    case NGHTTP2_RST_STREAM:
      stream->local_reset = true;
      stream->local_reset_code = frame->rst_stream.error_code;
      break;
    default:
      break;
  }
  return 0;
}

int Http2Connection::Impl::OnInvalidFrameRecv(nghttp2_session*,
                                              const nghttp2_frame* frame,
                                              int lib_error_code,
                                              void* user_data) {
  Impl* impl = static_cast<Impl*>(user_data);
  impl->last_invalid_frame_ = absl::StrCat(
      "an invalid ", FrameTypeName(frame->hd.type), " frame",
      frame->hd.stream_id == 0
          ? std::string()
          : absl::StrCat(" on stream ", frame->hd.stream_id),
      " (", nghttp2_strerror(lib_error_code), ")");
  return 0;
}

int Http2Connection::Impl::OnFrameNotSend(nghttp2_session*,
                                          const nghttp2_frame* frame,
                                          int lib_error_code,
                                          void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Impl* impl = static_cast<Impl*>(user_data);
  Stream* stream = impl->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  // nghttp2 closes the stream next (REFUSED_STREAM); the request never left.
  stream->not_sent = true;
  stream->not_sent_error = lib_error_code;
  stream->Wake();
  return 0;
}

ssize_t Http2Connection::Impl::ReadRequestBody(nghttp2_session*,
                                               int32_t stream_id, uint8_t* buf,
                                               size_t length,
                                               uint32_t* data_flags,
                                               nghttp2_data_source*,
                                               void* user_data) {
  Impl* impl = static_cast<Impl*>(user_data);
  Stream* stream = impl->Find(stream_id);
  // The exchange ended (its Request may be gone) and a reset is queued.
  if (stream == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const std::string& body = stream->request->body;
  const size_t n = std::min(length, body.size() - stream->body_offset);
  std::memcpy(buf, body.data() + stream->body_offset, n);
  stream->body_offset += n;
  if (stream->body_offset == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------------------
// Exchange.

ExchangeResult Http2Connection::Impl::Fail(Stream& stream,
                                           absl::Status status) {
  ExchangeResult r;
  r.response = std::move(status);
  r.request_written = stream.request_written;
  r.request_written_at = stream.request_written_at;
  r.first_byte_at = stream.first_byte_at;
  r.nothing_received = !stream.got_headers;
  if (dead_) r.close_reason = dead_reason_;
  return r;
}

ExchangeResult Http2Connection::Impl::FailClosedStream(Stream& stream) {
  const std::string url = stream.request->url.Redacted();
  const std::string prefix = absl::StrCat(
      "connection to ", owner_->remote_address(), " failed while ",
      stream.request_written ? "reading the response from "
                             : "writing the request to ",
      url, ": ");
  if (!stream.headers_sent) {
    ExchangeResult r = Fail(
        stream,
        absl::UnavailableError(absl::StrCat(
            prefix, "the request was never sent (",
            goaway_received_ ? "the origin sent GOAWAY"
                             : nghttp2_strerror(stream.not_sent_error),
            ")")));
    r.not_processed = true;
    return r;
  }
  if (!stream.peer_reset && stream.close_code == NGHTTP2_REFUSED_STREAM &&
      AboveGoaway(stream.id)) {
    ExchangeResult r = Fail(
        stream, absl::UnavailableError(absl::StrCat(
                    prefix, "the origin sent GOAWAY (",
                    ErrorCodeName(goaway_error_code_), ", last stream ",
                    goaway_last_stream_id_, ") before processing stream ",
                    stream.id, "; it was not processed")));
    r.not_processed = true;
    return r;
  }
  if (stream.peer_reset && stream.peer_reset_code == NGHTTP2_REFUSED_STREAM) {
    // A stream sent before the peer's SETTINGS said 0 is refused for that.
    const bool none_allowed = settings_received_.load() &&
                              peer_max_concurrent_streams_.load() == 0;
    ExchangeResult r = Fail(
        stream, absl::UnavailableError(absl::StrCat(
                    prefix,
                    "the origin refused the stream (REFUSED_STREAM",
                    none_allowed ? absl::StrCat("; ", kNoStreamsAllowed) : "",
                    "); it was not processed")));
    r.not_processed = true;
    r.refused_stream = true;
    return r;
  }
  if (stream.peer_reset) {
    return Fail(stream, absl::UnavailableError(absl::StrCat(
                            prefix, "the origin reset the stream (",
                            ErrorCodeName(stream.peer_reset_code), ")")));
  }
  if (stream.local_reset) {
    return Fail(stream,
                absl::UnavailableError(absl::StrCat(
                    prefix, "malformed response; egressd reset the stream (",
                    ErrorCodeName(stream.local_reset_code), ")")));
  }
  return Fail(stream, absl::UnavailableError(absl::StrCat(
                          prefix, "the stream closed (",
                          ErrorCodeName(stream.close_code),
                          ") before the response was complete")));
}

ExchangeResult Http2Connection::Impl::FailNoStreamAllowed(Stream& stream) {
  ExchangeResult r = Fail(
      stream, absl::UnavailableError(absl::StrCat(
                  "connection to ", owner_->remote_address(),
                  " cannot carry ", stream.request->url.Redacted(), ": ",
                  kNoStreamsAllowed, "; the request was not sent")));
  r.not_processed = true;
  return r;
}

void Http2Connection::Impl::FinishStream(Stream& stream) {
  streams_.erase(stream.id);
  // Still open in nghttp2: the exchange ended early (deadline, abort, an
  // abandoned or oversized response), or the origin answered before the
  // request body was all sent. Either way the peer should stop.
  if (!stream.closed && !dead_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id,
                              NGHTTP2_CANCEL);
    ScheduleFlush();
  }
}

ExchangeResult Http2Connection::Impl::RefuseNewStream() {
  ExchangeResult r;
  r.nothing_received = true;
  r.not_processed = true;
  std::string why;
  if (session_ == nullptr) {
    why = "the connection was not started";
  } else if (dead_) {
    why = dead_detail_;
    r.close_reason = dead_reason_;
  } else if (no_new_) {
    why = no_new_detail_;
  } else {
    why = "its stream IDs are used up";
    StopNewExchanges(CloseReason::kMaxLifetime, why);
  }
  r.response = absl::UnavailableError(absl::StrCat(
      "connection to ", owner_->remote_address(), " takes no new streams: ",
      why));
  return r;
}

int32_t Http2Connection::Impl::SubmitRequest(const Request& request) {
  // nghttp2 copies the header block and the data provider.
  const RequestHeaderBlock block = BuildRequestHeaders(request);
  nghttp2_data_provider body_provider;
  body_provider.source.ptr = nullptr;
  body_provider.read_callback = &ReadRequestBody;
  return nghttp2_submit_request(
      session_, nullptr, block.nva.data(), block.nva.size(),
      request.body.empty() ? nullptr : &body_provider, nullptr);
}

ExchangeResult Http2Connection::Impl::StreamNotStarted(const Request& request,
                                                       int32_t error) {
  ExchangeResult r;
  r.nothing_received = true;
  r.not_processed = true;
  r.response = absl::UnavailableError(absl::StrCat(
      "connection to ", owner_->remote_address(),
      " could not start a stream for ", request.url.Redacted(), ": ",
      nghttp2_strerror(error)));
  failed_count_.fetch_add(1);
  return r;
}

ExchangeResult Http2Connection::Impl::FailOnDeadConnection(Stream& stream,
                                                           const char* during) {
  ExchangeResult r = Fail(
      stream, absl::UnavailableError(absl::StrCat(
                  "connection to ", owner_->remote_address(), " failed while ",
                  during, " ", stream.request->url.Redacted(), ": ",
                  dead_detail_)));
  r.not_processed = !stream.headers_sent;
  return r;
}

ExchangeResult Http2Connection::Impl::CompleteStream(Stream& stream) {
  ExchangeResult r;
  Response& response = r.response.emplace();
  response.status_code = stream.status_code;
  response.headers = std::move(stream.headers);
  response.trailers = std::move(stream.trailers);
  response.body = std::move(stream.body);
  response.protocol = "h2";
  r.completed = true;
  r.request_written = stream.request_written;
  r.request_written_at = stream.request_written_at;
  r.first_byte_at = stream.first_byte_at;
  if (dead_) r.close_reason = dead_reason_;
  return r;
}

asio::awaitable<void> Http2Connection::Impl::Exchange(
    const Request& request, const Http1Limits& limits, uint64_t max_body_bytes,
    absl::Time deadline, ExchangeResult* out, ExchangeSink* sink,
    CallAbort* abort) {
  // Every result is built by a helper and returned at once, never held in a
  // named local (see RefuseNewStream's declaration for why).
  if (abort != nullptr && abort->aborted()) {
    // Cancelled before anything was sent: the connection is untouched.
    *out = ExchangeResult{absl::CancelledError("the call was cancelled")};
    co_return;
  }
  if (session_ == nullptr || dead_ || no_new_ ||
      !nghttp2_session_check_request_allowed(session_)) {
    *out = RefuseNewStream();
    co_return;
  }

  // The connection must outlive its streams' callbacks even if the caller's
  // reference were the last one.
  std::shared_ptr<Http2Connection> self = owner_->shared_from_this();
  auto stream = std::make_shared<Stream>(owner_->executor());
  stream->request = &request;
  stream->sink = sink;
  stream->max_body_bytes = max_body_bytes;
  stream->max_header_count = limits.max_header_count;

  const int32_t id = SubmitRequest(request);
  if (id < 0) {
    *out = StreamNotStarted(request, id);
    co_return;
  }
  stream->id = id;
  streams_.emplace(id, stream.get());
  started_count_.fetch_add(1);
  ScheduleFlush();

  if (abort != nullptr) {
    const bool registered =
        abort->Register([executor = owner_->executor(),
                         weak = std::weak_ptr<Stream>(stream)]() {
          // Runs on any thread; the stream is touched on its loop only.
          asio::post(executor, [weak] {
            if (std::shared_ptr<Stream> s = weak.lock()) {
              s->aborted = true;
              s->Wake();
            }
          });
        });
    if (!registered) stream->aborted = true;
  }
  auto finish = absl::MakeCleanup([&] {
    if (abort != nullptr) abort->Unregister();
    FinishStream(*stream);
  });

  const SteadyClock::time_point steady_deadline = ToSteady(deadline);
  auto during = [&] {
    return stream->request_written ? "reading the response from"
                                   : "writing the request to";
  };
  auto done = [&](ExchangeResult r) {
    (r.response.ok() ? succeeded_count_ : failed_count_).fetch_add(1);
    return r;
  };

  for (;;) {
    Stream& s = *stream;
    if (s.aborted) {
      *out = done(Fail(s, absl::CancelledError(absl::StrCat(
                              "the call was cancelled while ", during(), " ",
                              request.url.Redacted()))));
      co_return;
    }
    // Complete, and (with a sink) everything handed over.
    const bool nothing_left =
        s.response_complete &&
        (sink == nullptr ||
         (s.chunks.empty() && (s.head_delivered || !s.head_ready)));
    if (!nothing_left && SteadyClock::now() >= steady_deadline) {
      *out = done(Fail(s, absl::DeadlineExceededError(
                              absl::StrCat("deadline exceeded while ", during(),
                                           " ", request.url.Redacted()))));
      co_return;
    }
    if (sink != nullptr && s.head_ready && !s.head_delivered) {
      s.head_delivered = true;
      ResponseHead head;
      head.version_minor = 1;
      head.status_code = s.status_code;
      head.headers = s.headers;
      if (!co_await sink->OnHead(head)) {
        *out = done(Fail(s, absl::CancelledError(absl::StrCat(
                                "the consumer abandoned the response of ",
                                request.url.Redacted()))));
        co_return;
      }
      continue;
    }
    if (sink != nullptr && s.head_delivered && !s.chunks.empty()) {
      std::string chunk = std::move(s.chunks.front());
      s.chunks.pop_front();
      const size_t n = chunk.size();
      if (!co_await sink->OnBody(std::move(chunk))) {
        *out = done(Fail(s, absl::CancelledError(absl::StrCat(
                                "the consumer abandoned the response of ",
                                request.url.Redacted()))));
        co_return;
      }
      // The sink took it: let the origin send that much more.
      if (!dead_ && !s.closed) {
        nghttp2_session_consume_stream(session_, s.id, n);
        ScheduleFlush();
      }
      continue;
    }
    if (s.body_too_large) {
      *out = done(Fail(
          s, absl::ResourceExhaustedError(absl::StrCat(
                 "response body of ", request.url.Redacted(), " exceeds ",
                 max_body_bytes,
                 " bytes (max_response_body_bytes); use FetchStream for large "
                 "bodies"))));
      co_return;
    }
    if (nothing_left) {
      *out = done(CompleteStream(s));
      co_return;
    }
    if (!s.local_failure.ok()) {
      *out = done(
          Fail(s, absl::Status(s.local_failure.code(),
                               absl::StrCat("origin ", owner_->remote_address(),
                                            " for ", request.url.Redacted(),
                                            ": ", s.local_failure.message()))));
      co_return;
    }
    if (s.closed) {
      *out = done(FailClosedStream(s));
      co_return;
    }
    if (s.no_stream_allowed && !s.headers_sent) {
      // FinishStream cancels the HEADERS nghttp2 holds.
      *out = done(FailNoStreamAllowed(s));
      co_return;
    }
    if (dead_) {
      *out = done(FailOnDeadConnection(s, during()));
      co_return;
    }
    s.signal.expires_at(steady_deadline);
    co_await s.signal.async_wait(kNoThrow);
  }
}

// ---------------------------------------------------------------------------
// PING.

asio::awaitable<absl::Status> Http2Connection::Impl::Ping(
    absl::Duration timeout) {
  if (session_ == nullptr || dead_) {
    co_return absl::UnavailableError(absl::StrCat(
        "connection to ", owner_->remote_address(),
        " cannot PING: ", session_ == nullptr ? "not started" : dead_detail_));
  }
  const uint64_t sequence = ++ping_sequence_;
  uint8_t opaque[8];
  for (int i = 0; i < 8; ++i) opaque[i] = (sequence >> (56 - 8 * i)) & 0xff;
  const int rv = nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque);
  if (rv != 0) {
    co_return absl::UnavailableError(
        absl::StrCat("connection to ", owner_->remote_address(),
                     " cannot PING: ", nghttp2_strerror(rv)));
  }
  ScheduleFlush();

  std::shared_ptr<Http2Connection> self = owner_->shared_from_this();
  asio::steady_timer waiter(owner_->executor());
  ping_waiters_.push_back(&waiter);
  auto remove = absl::MakeCleanup([&] {
    ping_waiters_.erase(
        std::find(ping_waiters_.begin(), ping_waiters_.end(), &waiter));
  });
  const SteadyClock::time_point deadline = ToSteady(absl::Now() + timeout);
  while (ping_acked_ < sequence && !dead_) {
    waiter.expires_at(deadline);
    auto [ec] = co_await waiter.async_wait(kNoThrow);
    if (!ec) break;  // expired
  }
  if (ping_acked_ >= sequence) co_return absl::OkStatus();
  if (dead_) {
    co_return absl::UnavailableError(
        absl::StrCat("connection to ", owner_->remote_address(),
                     " failed before its PING was answered: ", dead_detail_));
  }
  std::string detail =
      absl::StrCat("no answer to PING within ", absl::FormatDuration(timeout));
  MarkDead(CloseReason::kPingTimeout, detail);
  co_return absl::UnavailableError(
      absl::StrCat("connection to ", owner_->remote_address(), ": ", detail));
}

// ---------------------------------------------------------------------------
// Http2Connection: forwards to Impl.

Http2Connection::Http2Connection(uint64_t id, Address address,
                                 std::unique_ptr<Transport> transport,
                                 const Http2Options &options)
    : Connection(id, std::move(address), std::move(transport),
                 Protocol::kHttp2),
      impl_(std::make_unique<Impl>(this, options)) {}

Http2Connection::~Http2Connection() = default;

bool Http2Connection::allocation_limit_known() const {
  return impl_->allocation_limit_known();
}

int Http2Connection::allocation_limit() const {
  return impl_->allocation_limit();
}

void Http2Connection::Start() { impl_->Start(); }

asio::awaitable<void> Http2Connection::ExchangeInto(
    const Request& request, const Http1Limits& limits, uint64_t max_body_bytes,
    absl::Time deadline, ExchangeResult* result, ExchangeSink* sink,
    CallAbort* abort) {
  return impl_->Exchange(request, limits, max_body_bytes, deadline, result,
                         sink, abort);
}

Connection::Health Http2Connection::ProbeHealth() const {
  return impl_->ProbeHealth();
}

void Http2Connection::Close() { impl_->Close(); }

asio::awaitable<absl::Status> Http2Connection::Ping(absl::Duration timeout) {
  return impl_->Ping(timeout);
}

Http2Connection::StreamCounts Http2Connection::stream_counts() const {
  return impl_->stream_counts();
}

}  // namespace egress
