#include "server/log/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"

namespace egress::log {
namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 if there is none
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const unsigned char cc = static_cast<unsigned char>(text[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return 0;
  }
  return n;
}

// "2024-05-01T12:00:00.123456Z", written by hand: it is on every line.
void AppendTimestamp(absl::Time ts, std::string* out) {
  const int64_t micros = absl::ToUnixMicros(ts);
  int64_t seconds = micros / 1000000;
  int64_t frac = micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --seconds;
  }
  const absl::CivilSecond c =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  char buffer[32];
  const int n = std::snprintf(
      buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
      static_cast<int>(c.year()), c.month(), c.day(), c.hour(), c.minute(),
      c.second(), static_cast<int>(frac));
  out->append(buffer, static_cast<size_t>(n));
}

void AppendMillis(absl::Duration value, std::string* out) {
  // Microseconds, printed as milliseconds with three decimals.
  const int64_t us = absl::ToInt64Microseconds(value);
  const int64_t whole = us / 1000;
  const int64_t frac = us < 0 ? -(us % 1000) : us % 1000;
  if (us < 0 && whole == 0) out->push_back('-');
  absl::StrAppend(out, whole, ".");
  out->push_back(static_cast<char>('0' + frac / 100));
  out->push_back(static_cast<char>('0' + frac / 10 % 10));
  out->push_back(static_cast<char>('0' + frac % 10));
}

std::string Quoted(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  AppendJsonEscaped(text, &out);
  out.push_back('"');
  return out;
}

}  // namespace

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}

std::optional<Level> ParseLevel(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warning" || lower == "warn") return Level::kWarning;
  if (lower == "error") return Level::kError;
  return std::nullopt;
}

void AppendJsonEscaped(absl::string_view text, std::string* out) {
  size_t i = 0;
  while (i < text.size()) {
    // Runs of printable ASCII that needs no escape are copied whole.
    size_t run = i;
    while (run < text.size()) {
      const unsigned char c = static_cast<unsigned char>(text[run]);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') break;
      ++run;
    }
    out->append(text.data() + i, run - i);
    i = run;
    if (i == text.size()) break;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c >= 0x80) {
          if (const size_t n = Utf8SequenceLength(text, i); n > 0) {
            out->append(text.data() + i, n);
            i += n;
            continue;
          }
        }
        // A control character, DEL, or a byte that is not UTF-8: kept
        // visible as the byte's value, and the line stays valid JSON.
        absl::StrAppendFormat(out, "\\u%04x", c);
        break;
    }
    ++i;
  }
}

Field::Field(absl::string_view key, absl::string_view value)
    : key_(key), json_(Quoted(value)) {}

Field::Field(absl::string_view key, bool value)
    : key_(key), json_(value ? "true" : "false") {}

Field::Field(absl::string_view key, double value) : key_(key) {
  // JSON has no NaN or infinities.
  json_ = std::isfinite(value) ? absl::StrFormat("%.17g", value) : "null";
}

Field::Field(absl::string_view key, absl::Duration value) : key_(key) {
  AppendMillis(value, &json_);
}

LineBuilder::LineBuilder(absl::Time ts, Level level, absl::string_view msg) {
  line_.reserve(384);
  line_.append("{\"ts\":\"");
  AppendTimestamp(ts, &line_);
  line_.append("\",\"level\":\"");
  const absl::string_view name = LevelName(level);
  line_.append(name.data(), name.size());
  line_.append("\",\"msg\":\"");
  AppendJsonEscaped(msg, &line_);
  line_.push_back('"');
}

void LineBuilder::Key(absl::string_view key) {
  line_.append(",\"");
  AppendJsonEscaped(key, &line_);
  line_.append("\":");
}

LineBuilder& LineBuilder::Add(absl::string_view key, absl::string_view value) {
  Key(key);
  line_.push_back('"');
  AppendJsonEscaped(value, &line_);
  line_.push_back('"');
  return *this;
}

LineBuilder& LineBuilder::Add(absl::string_view key, bool value) {
  Key(key);
  line_.append(value ? "true" : "false");
  return *this;
}

LineBuilder& LineBuilder::AddInt(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&line_, value);
  return *this;
}

LineBuilder& LineBuilder::AddUint(absl::string_view key, uint64_t value) {
  Key(key);
  absl::StrAppend(&line_, value);
  return *this;
}

LineBuilder& LineBuilder::Add(absl::string_view key, absl::Duration value) {
  Key(key);
  AppendMillis(value, &line_);
  return *this;
}

LineBuilder& LineBuilder::AddJson(absl::string_view key,
                                  absl::string_view json) {
  Key(key);
  line_.append(json.data(), json.size());
  return *this;
}

std::string LineBuilder::Finish() && {
  line_.append("}\n");
  return std::move(line_);
}

std::string FormatLine(absl::Time ts, Level level, absl::string_view msg,
                       absl::Span<const Field> fields) {
  LineBuilder line(ts, level, msg);
  for (const Field& field : fields) line.AddJson(field.key(), field.json());
  return std::move(line).Finish();
}

Logger::Logger(int fd) : fd_(fd) {
  writer_ = std::thread([this] { RunWriter(); });
  pthread_setname_np(writer_.native_handle(), "egress-log");
}

Logger::~Logger() {
  Flush();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_writer_.notify_one();
  writer_.join();
}

void Logger::LogFields(Level level, absl::string_view msg,
                       absl::Span<const Field> fields) {
  if (!Enabled(level)) return;
  WriteLine(FormatLine(absl::Now(), level, msg, fields));
}

void Logger::WriteLine(std::string line) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffer_.size() + line.size() > kMaxBuffered) {
      ++dropped_;
      ++dropped_unreported_;
      return;
    }
    first = buffer_.empty();
    if (first) {
      buffer_ = std::move(line);
    } else {
      buffer_.append(line);
    }
    ++queued_;
    // The writer gathers on its own; it needs a wake-up for the first line
    // only, or when enough piled up.
    if (!first && buffer_.size() < kGatherBytes) return;
  }
  wake_writer_.notify_one();
}

void Logger::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = queued_;
  if (written_ >= target) return;
  ++flushing_;
  wake_writer_.notify_one();
  // Bounded: a stderr that stopped draining (a full pipe nobody reads) must
  // not keep egressd from exiting.
  written_cv_.wait_for(lock, std::chrono::seconds(2),
                       [&] { return written_ >= target || stopping_; });
  --flushing_;
}

uint64_t Logger::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

bool Logger::WriteAll(absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;  // stderr is gone; nothing better to tell it
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Logger::RunWriter() {
  // The writer may start before the process blocks its signals for
  // sigwait (egressd's main); it must never be the thread they go to.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::string batch;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // (Not flushing_: a Flush with nothing left to write waits for the
    // batch being written, which notifies it.)
    wake_writer_.wait(lock, [this] {
      return stopping_ || !buffer_.empty() || dropped_unreported_ > 0;
    });
    if (buffer_.empty() && dropped_unreported_ == 0) return;  // stopping
    // Gather: more lines may follow the first within kGather.
    wake_writer_.wait_for(lock, absl::ToChronoNanoseconds(kGather), [this] {
      return stopping_ || flushing_ > 0 || buffer_.size() >= kGatherBytes;
    });
    batch.swap(buffer_);
    buffer_.clear();
    const uint64_t lines = queued_ - written_;
    const uint64_t dropped_now = dropped_unreported_;
    dropped_unreported_ = 0;
    lock.unlock();
    if (dropped_now > 0) {
      const Field count("dropped", dropped_now);
      batch.append(FormatLine(absl::Now(), Level::kWarning,
                              "log lines dropped: stderr could not keep up",
                              absl::Span<const Field>(&count, 1)));
    }
    WriteAll(batch);
    batch.clear();
    if (batch.capacity() > (256 << 10)) batch.shrink_to_fit();
    lock.lock();
    written_ += lines;
    if (flushing_ > 0) written_cv_.notify_all();
  }
}

Logger& Default() {
  static Logger* const logger = new Logger(STDERR_FILENO);
  return *logger;
}

}  // namespace egress::log
