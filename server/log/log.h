// egressd's log: structured JSON lines with levels, on stderr.
//
// One line per entry, one JSON object per line:
//   {"ts":"2024-05-01T12:00:00.123456Z","level":"info","msg":"egressd started",
//    "listen":"127.0.0.1:7070"}
// `ts` is RFC 3339 in UTC with microseconds; `level` one of "debug", "info",
// "warning", "error"; `msg` a fixed text (what happened); the fields after
// it say to what. Values are JSON strings, numbers or booleans. What a field
// holds is the caller's to keep clean: never a header value, a credential
// or a query string (see access_log.h for URLs).
//
// Writing: Log() formats the line on the calling thread and appends it to a
// buffer; one writer thread writes what has accumulated with one write(2).
// Woken by the first line into an empty buffer, the writer lets kGather
// pass (or kGatherBytes pile up) before it writes, so under load lines cost
// their formatting and a short lock, not a wake-up or a syscall each; a
// line reaches stderr at most about kGather after it was logged. When
// stderr cannot keep up and the buffer holds kMaxBuffered bytes, further
// lines are dropped and counted; a line saying how many is written once the
// writer catches up. Flush() waits until everything logged before it is
// written.
//
// Thread-safe.
#ifndef EGRESS_SERVER_LOG_LOG_H_
#define EGRESS_SERVER_LOG_LOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace egress::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// "debug", "info", "warning", "error".
absl::string_view LevelName(Level level);
// The names above, case-insensitive ("warn" too); nullopt otherwise.
std::optional<Level> ParseLevel(absl::string_view text);

// One key and value of a line. The value is rendered (as JSON) when the
// Field is made; the key is referred to, so it must outlive the Field (keys
// are literals).
class Field {
 public:
  Field(absl::string_view key, absl::string_view value);
  Field(absl::string_view key, const char* value)
      : Field(key, absl::string_view(value)) {}
  Field(absl::string_view key, const std::string& value)
      : Field(key, absl::string_view(value)) {}
  Field(absl::string_view key, bool value);
  // Any integer type but bool.
  template <typename Int,
            std::enable_if_t<std::is_integral_v<Int> &&
                                 !std::is_same_v<Int, bool>,
                             int> = 0>
  Field(absl::string_view key, Int value)
      : key_(key), json_(std::to_string(value)) {}
  Field(absl::string_view key, double value);
  // A duration as milliseconds, a number with up to 3 decimals (1.234).
  Field(absl::string_view key, absl::Duration value);

  absl::string_view key() const { return key_; }
  // The value as JSON text.
  const std::string& json() const { return json_; }

 private:
  absl::string_view key_;
  std::string json_;
};

// Appends `text` to `out` as the body of a JSON string (no quotes):
// '"', '\' and control characters escaped, valid UTF-8 kept, any other byte
// as \u00XX.
void AppendJsonEscaped(absl::string_view text, std::string* out);

// The JSON line, '\n' included, for one entry. Keys repeated in `fields`
// are written as given (callers do not repeat ts, level or msg).
std::string FormatLine(absl::Time ts, Level level, absl::string_view msg,
                       absl::Span<const Field> fields);

// Builds one line field by field into a single string: the form for lines
// written per call (the access log), where a Field's own string per value
// would cost an allocation each. Values are rendered as Field renders them.
class LineBuilder {
 public:
  LineBuilder(absl::Time ts, Level level, absl::string_view msg);

  LineBuilder& Add(absl::string_view key, absl::string_view value);
  LineBuilder& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  LineBuilder& Add(absl::string_view key, const std::string& value) {
    return Add(key, absl::string_view(value));
  }
  LineBuilder& Add(absl::string_view key, bool value);
  template <typename Int,
            std::enable_if_t<std::is_integral_v<Int> &&
                                 !std::is_same_v<Int, bool>,
                             int> = 0>
  LineBuilder& Add(absl::string_view key, Int value) {
    if constexpr (std::is_signed_v<Int>) {
      return AddInt(key, static_cast<int64_t>(value));
    } else {
      return AddUint(key, static_cast<uint64_t>(value));
    }
  }
  // Milliseconds, as Field.
  LineBuilder& Add(absl::string_view key, absl::Duration value);
  // `json` written as the value as is.
  LineBuilder& AddJson(absl::string_view key, absl::string_view json);

  // The line, '\n' included.
  std::string Finish() &&;

 private:
  LineBuilder& AddInt(absl::string_view key, int64_t value);
  LineBuilder& AddUint(absl::string_view key, uint64_t value);
  void Key(absl::string_view key);

  std::string line_;
};

class Logger {
 public:
  // Bytes of lines waiting for the writer past which lines are dropped.
  static constexpr size_t kMaxBuffered = 4 << 20;
  // How long the writer gathers lines after the first one, and how many
  // bytes make it write at once.
  static constexpr absl::Duration kGather = absl::Milliseconds(2);
  static constexpr size_t kGatherBytes = 64 << 10;

  // Writes to file descriptor `fd` (not owned; 2 for stderr).
  explicit Logger(int fd);
  // Flushes, then stops the writer.
  ~Logger();

  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Entries below `level` are not written. Default kInfo.
  void set_level(Level level) {
    level_.store(static_cast<int>(level), std::memory_order_relaxed);
  }
  Level level() const {
    return static_cast<Level>(level_.load(std::memory_order_relaxed));
  }
  bool Enabled(Level level) const {
    return static_cast<int>(level) >= level_.load(std::memory_order_relaxed);
  }

  // Logs one entry if its level is enabled.
  void Log(Level level, absl::string_view msg,
           std::initializer_list<Field> fields = {}) {
    if (Enabled(level)) {
      LogFields(level, msg,
                absl::Span<const Field>(fields.begin(), fields.size()));
    }
  }
  // The same with the fields in an array.
  void LogFields(Level level, absl::string_view msg,
                 absl::Span<const Field> fields);
  // Queues a formatted line (ending in '\n') whatever the level.
  void WriteLine(std::string line);

  // Blocks until every line queued before the call is written (or failed
  // to be: stderr closed), at most 2 s (a stderr nobody drains must not
  // hold egressd's exit).
  void Flush();

  // Lines dropped because the buffer was full, since start.
  uint64_t dropped() const;

 private:
  void RunWriter();
  // write(2) of all of `data`, retrying short writes; false on an error.
  bool WriteAll(absl::string_view data);

  const int fd_;
  std::atomic<int> level_{static_cast<int>(Level::kInfo)};

  // A plain mutex and condition variables rather than egress::Mutex, whose
  // Await wakes waiters at every unlock: here a line must not cost a
  // wake-up. Everything below is guarded by mu_.
  mutable std::mutex mu_;
  // The writer waits on it for lines (or a flush, or the end).
  std::condition_variable wake_writer_;
  // Flush() waits on it for written_.
  std::condition_variable written_cv_;
  std::string buffer_;
  // Lines queued and lines written (or given up on), for Flush.
  uint64_t queued_ = 0;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  // Dropped lines not yet reported by a line of their own.
  uint64_t dropped_unreported_ = 0;
  // Flush() calls waiting: the writer writes at once.
  int flushing_ = 0;
  bool stopping_ = false;

  std::thread writer_;
};

// The process's logger, on stderr. Created on first use and never destroyed
// (flush it before the process exits).
Logger& Default();

inline void Debug(absl::string_view msg,
                  std::initializer_list<Field> fields = {}) {
  Default().Log(Level::kDebug, msg, fields);
}
inline void Info(absl::string_view msg,
                 std::initializer_list<Field> fields = {}) {
  Default().Log(Level::kInfo, msg, fields);
}
inline void Warning(absl::string_view msg,
                    std::initializer_list<Field> fields = {}) {
  Default().Log(Level::kWarning, msg, fields);
}
inline void Error(absl::string_view msg,
                  std::initializer_list<Field> fields = {}) {
  Default().Log(Level::kError, msg, fields);
}

}  // namespace egress::log

#endif  // EGRESS_SERVER_LOG_LOG_H_
