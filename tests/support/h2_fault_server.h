// H2FaultServer: an HTTP/2 server of our own on 127.0.0.1 (cleartext, prior
// knowledge: h2c without Upgrade; or TLS with ALPN h2 when
// H2FaultServerOptions::tls is set), for what real servers do not do on
// demand: GOAWAY mid-flight, REFUSED_STREAM and other stream resets, PINGs
// left unanswered, SETTINGS that lower the stream limit, 421, a TCP close in
// the middle of streams. Test use only.
//
// Each complete request (END_STREAM received) is handed to the test's
// Script, which returns what to do with it (an H2Reply). The server records
// what it saw (stats()) so a test can tell which connection served what.
//
// Threading: one thread runs an Asio loop with every connection (nghttp2
// server sessions). The Script runs on that thread, one call at a time.
// Every public method is thread-safe.
#ifndef EGRESS_TESTS_SUPPORT_H2_FAULT_SERVER_H_
#define EGRESS_TESTS_SUPPORT_H2_FAULT_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "client_core/http/header.h"

namespace egress::testing {

// A request as the server received it.
struct H2Request {
  int connection = 0;  // 0-based, in accept order
  int32_t stream_id = 0;
  int index_on_connection = 0;  // 0-based, requests completed on it
  int index = 0;                // 0-based, over all connections
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  HeaderList headers;  // regular fields, as received
  std::string body;
};

// What to do with one request. Steps run in this order: SETTINGS, GOAWAY,
// release held streams, then this stream's own fate (close the connection,
// reset, no reply, hold, or respond after `delay`).
struct H2Reply {
  int status = 200;
  HeaderList headers;
  std::string body;
  // Sent as a trailing HEADERS frame after the body.
  HeaderList trailers;
  // Sent as an interim (1xx) response before the final one, e.g. 103.
  std::optional<int> interim_status;
  absl::Duration delay = absl::ZeroDuration();
  // Respond only when a later reply has release_held.
  bool hold = false;
  // Respond now to every held stream (those still open).
  bool release_held = false;
  // Never respond (the client must time out or reset).
  bool no_reply = false;
  // Reset the stream with this HTTP/2 error code instead of responding,
  // e.g. NGHTTP2_REFUSED_STREAM (7), NGHTTP2_INTERNAL_ERROR (2).
  std::optional<uint32_t> reset_code;
  // With reset_code: a second RST_STREAM for the same stream, with this
  // code, in the same write as the first (written raw: nghttp2 would not
  // send one for a stream it has closed).
  std::optional<uint32_t> second_reset_code;
  // First send GOAWAY (NO_ERROR) with this last-stream-id. Streams above it
  // are never answered.
  std::optional<int32_t> goaway_last_stream_id;
  // First send SETTINGS_MAX_CONCURRENT_STREAMS with this value.
  std::optional<uint32_t> max_concurrent_streams;
  // Close the TCP connection instead of responding.
  bool close_connection = false;
  // Bytes written after this reply's frames, in the same write: frames
  // nghttp2 would refuse to send (see H2Frame).
  std::string raw_after;
};

// One HTTP/2 frame as bytes (RFC 9113 4.1), for H2Reply::raw_after.
std::string H2Frame(uint8_t type, uint8_t flags, int32_t stream_id,
                    const std::string& payload);

// A certificate chain and key (PEM files) for TLS with ALPN h2.
struct H2TlsFiles {
  std::string chain_file;
  std::string key_file;
};

struct H2FaultServerOptions {
  // SETTINGS_MAX_CONCURRENT_STREAMS in the server's first SETTINGS.
  uint32_t max_concurrent_streams = 100;
  // Whether PINGs are answered at first (see set_answer_pings).
  bool answer_pings = true;
  // Serve TLS (ALPN selects h2) instead of cleartext h2c.
  std::optional<H2TlsFiles> tls;
};

// What the server saw, over its whole life.
struct H2ServerStats {
  int connections_accepted = 0;
  // Requests completed per connection, by connection index.
  std::vector<int> streams_per_connection;
  int requests = 0;
  int pings_received = 0;  // PINGs without ACK from clients
  // RST_STREAM frames received, and their error codes in order.
  std::vector<uint32_t> rst_stream_codes;
  // DATA payload bytes the server handed to nghttp2 to send (flow control
  // lets them out only as the client's windows allow).
  uint64_t data_bytes_sent = 0;
  // Connections the client closed (EOF or error on read).
  int connections_closed_by_client = 0;
};

class H2FaultServer {
 public:
  using Script = std::function<H2Reply(const H2Request&)>;

  // Starts listening on 127.0.0.1 (a free port) and serving.
  explicit H2FaultServer(Script script,
                         H2FaultServerOptions options = H2FaultServerOptions());
  // Closes every connection and joins the thread.
  ~H2FaultServer();

  H2FaultServer(const H2FaultServer&) = delete;
  H2FaultServer& operator=(const H2FaultServer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:PORT" + path ("https://" with TLS).
  std::string Url(const std::string& path) const;

  // Stop (false) or resume (true) answering PINGs, from now on.
  void set_answer_pings(bool answer) { answer_pings_.store(answer); }

  H2ServerStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until `done(stats)` holds (checked whenever the stats change) or
  // `timeout` passes; returns whether it held.
  bool AwaitStats(const std::function<bool(const H2ServerStats&)>& done,
                  absl::Duration timeout = absl::Seconds(10)) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Loop;        // the acceptor and the connections (.cc)
  class Connection;  // one accepted connection (.cc)

  mutable Mutex mu_;
  H2ServerStats stats_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> answer_pings_;
  int port_ = 0;
  bool tls_ = false;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_H2_FAULT_SERVER_H_
