#include "server/egressctl_args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace egress {
namespace {

constexpr char kUsage[] =
    R"(Usage: egressctl [--target=HOST:PORT] [--admin=HOST:PORT] [--timeout=SECONDS]
                 [--admin_token_file=PATH] [--json] COMMAND ...

Commands:
  fetch URL [-X METHOD] [-H 'Name: value']... [-d BODY | -d @FILE] [-i]
      Run one HTTP request through egressd (Fetcher.Fetch on --target) and
      print the response body to stdout.
        -X METHOD          HTTP method (default GET, or POST when -d is given)
        -H 'Name: value'   add a request header; may repeat
        -d BODY            request body; -d @FILE reads it from FILE (@- stdin)
        -i                 print the status line and the response headers
                           before the body

  The commands below call PoolAdmin on --admin.
  pool
      Show the connection pool: totals, per-address counts, close reasons,
      rejections and configuration.
  conns [--address=SCHEME://HOST:PORT]
      List the open connections (all of them, or one address's).
  leaks
      List the leak reports: calls that held a connection without progress.
  evict [SCHEME://HOST:PORT]
      Close the idle connections (all of them, or one address's).
  drain
      Let no open connection take new exchanges: idle ones close now, in-use
      ones when their exchange ends.
  watch [--address=SCHEME://HOST:PORT]
      Follow the pool's connection events live (all, or one address's), one
      line per event (--json: one JSON object per line), until Ctrl-C.
      --timeout bounds only the wait for the stream to start.
  help
      Show this text.

Options:
  --target=HOST:PORT       egressd's Fetcher endpoint (default 127.0.0.1:7070)
  --admin=HOST:PORT        egressd's PoolAdmin endpoint (default 127.0.0.1:9901)
  --timeout=SECONDS        deadline of each call, e.g. 30 or 0.5 (default 30)
  --admin_token_file=PATH  send the token in PATH with every PoolAdmin call
                           (needed when egressd sets listeners.admin_token)
  --json                   print the response message as JSON

Exit status: 0 on success (whatever the HTTP status), 1 when the call fails,
2 on bad usage (including an unreadable -d @FILE or --admin_token_file).
)";

// RFC 9110 5.6.2: tchar, the characters of a token (method, field name).
bool IsTchar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view value) {
  double seconds = 0;
  if (!absl::SimpleAtod(value, &seconds) || !std::isfinite(seconds) ||
      seconds <= 0) {
    return Usage(absl::StrCat(
        "--timeout: expected a positive number of seconds, got '", value,
        "'"));
  }
  absl::Duration timeout = absl::Seconds(seconds);
  // absl saturates durations it cannot represent; a deadline must be real.
  if (timeout == absl::InfiniteDuration() || timeout <= absl::ZeroDuration()) {
    return Usage(absl::StrCat("--timeout: '", value, "' is out of range"));
  }
  return timeout;
}

// "Name: value" -> {Name, value}. The value loses its surrounding spaces and
// tabs (RFC 9110 5.5: they are not part of it).
absl::StatusOr<std::pair<std::string, std::string>> ParseHeader(
    absl::string_view text) {
  const size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return Usage(absl::StrCat("-H '", text,
                              "': expected 'Name: value' (no colon found)"));
  }
  absl::string_view name = text.substr(0, colon);
  if (!IsToken(name)) {
    return Usage(absl::StrCat(
        "-H '", text, "': header name '", name,
        "' is empty or has characters not allowed in a field name"));
  }
  absl::string_view value = text.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return Usage(absl::StrCat("-H '", name,
                                "': value contains CR, LF or NUL"));
    }
  }
  return std::make_pair(std::string(name), std::string(value));
}

constexpr EgressctlCommand kAllCommands[] = {
    EgressctlCommand::kFetch, EgressctlCommand::kPool,
    EgressctlCommand::kConns, EgressctlCommand::kLeaks,
    EgressctlCommand::kEvict, EgressctlCommand::kDrain,
    EgressctlCommand::kWatch, EgressctlCommand::kHelp,
};

absl::Status ParseCommandName(absl::string_view name,
                              EgressctlCommand* command) {
  for (EgressctlCommand c : kAllCommands) {
    if (name == EgressctlCommandName(c)) {
      *command = c;
      return absl::OkStatus();
    }
  }
  return Usage(absl::StrCat(
      "unknown command '", name,
      "' (commands: fetch, pool, conns, leaks, evict, drain, watch, "
      "help)"));
}

// Reads all of `file` (not closed here). Returns the errno of a failed read,
// or 0.
int ReadAll(std::FILE* file, std::string* out) {
  char buffer[64 * 1024];
  size_t n;
  errno = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    out->append(buffer, n);
  }
  // fread reports errors (e.g. EISDIR for a directory) only through ferror.
  if (std::ferror(file)) return errno != 0 ? errno : EIO;
  return 0;
}

}  // namespace

absl::StatusOr<EgressctlArgs> ParseEgressctlArgs(int argc, char** argv) {
  EgressctlArgs args;
  bool have_command = false;
  // Operands after the command, e.g. fetch's URL.
  std::vector<std::string> operands;
  bool method_given = false;
  bool address_flag_given = false;
  bool options_done = false;

  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    // "-" alone is an operand by convention; so is anything after "--".
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (!have_command) {
        if (absl::Status s = ParseCommandName(arg, &args.command); !s.ok()) {
          return s;
        }
        have_command = true;
        // Everything after "help" is ignored: the usage covers it all.
        if (args.command == EgressctlCommand::kHelp) return args;
      } else {
        operands.emplace_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      args.command = EgressctlCommand::kHelp;
      return args;
    }

    if (absl::StartsWith(arg, "--")) {
      absl::string_view name = arg;
      absl::string_view value;
      bool has_value = false;
      if (const size_t eq = arg.find('='); eq != absl::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
      if (name == "--json") {
        if (has_value) return Usage("--json takes no value");
        args.json = true;
        continue;
      }
      if (name != "--target" && name != "--admin" && name != "--timeout" &&
          name != "--admin_token_file" && name != "--address") {
        return Usage(absl::StrCat("unknown option '", name, "'"));
      }
      if (!has_value) {
        if (i + 1 >= argc) {
          return Usage(absl::StrCat(name, " needs a value"));
        }
        value = argv[++i];
      }
      if (name == "--timeout") {
        absl::StatusOr<absl::Duration> timeout = ParseTimeout(value);
        if (!timeout.ok()) return timeout.status();
        args.timeout = *timeout;
        continue;
      }
      if (name == "--admin_token_file") {
        if (value.empty()) return Usage("--admin_token_file: empty path");
        args.admin_token_file = std::string(value);
        continue;
      }
      if (name == "--address") {
        if (value.empty()) {
          return Usage("--address: expected SCHEME://HOST:PORT, got ''");
        }
        args.address = std::string(value);
        address_flag_given = true;
        continue;
      }
      if (value.empty()) {
        return Usage(absl::StrCat(name, ": expected HOST:PORT, got ''"));
      }
      (name == "--target" ? args.target : args.admin) = std::string(value);
      continue;
    }

    // Short options all belong to fetch.
    const absl::string_view option = arg.substr(0, 2);
    if (!have_command || args.command != EgressctlCommand::kFetch) {
      return Usage(
          have_command
              ? absl::StrCat("unknown option '", arg, "' for ",
                             EgressctlCommandName(args.command))
              : absl::StrCat("unknown option '", arg,
                             "' (fetch options go after 'fetch')"));
    }
    if (option == "-i") {
      if (arg.size() != 2) {
        return Usage(absl::StrCat("unknown option '", arg, "' for fetch"));
      }
      args.include_headers = true;
      continue;
    }
    if (option != "-X" && option != "-H" && option != "-d") {
      return Usage(absl::StrCat("unknown option '", arg, "' for fetch"));
    }
    absl::string_view value = arg.substr(2);
    if (value.empty()) {
      if (i + 1 >= argc) {
        return Usage(absl::StrCat(option, " needs a value"));
      }
      value = argv[++i];
    }
    if (option == "-X") {
      if (!IsToken(value)) {
        return Usage(absl::StrCat("-X '", value,
                                  "': not a valid HTTP method token"));
      }
      args.method = std::string(value);
      method_given = true;
    } else if (option == "-H") {
      absl::StatusOr<std::pair<std::string, std::string>> header =
          ParseHeader(value);
      if (!header.ok()) return header.status();
      args.headers.push_back(*std::move(header));
    } else {
      if (args.body_source != BodySource::kNone) {
        return Usage("-d given more than once");
      }
      if (absl::ConsumePrefix(&value, "@")) {
        if (value.empty()) return Usage("-d @FILE: missing file name");
        args.body_source = BodySource::kFile;
      } else {
        args.body_source = BodySource::kInline;
      }
      args.body = std::string(value);
    }
  }

  if (!have_command) return Usage("no command given");
  if (address_flag_given && args.command != EgressctlCommand::kConns &&
      args.command != EgressctlCommand::kWatch) {
    return Usage(absl::StrCat(
        "--address is an option of conns and watch, not of ",
        EgressctlCommandName(args.command),
        args.command == EgressctlCommand::kEvict
            ? " (evict takes the address as its argument)"
            : ""));
  }
  switch (args.command) {
    case EgressctlCommand::kHelp:
      break;
    case EgressctlCommand::kPool:
    case EgressctlCommand::kConns:
    case EgressctlCommand::kLeaks:
    case EgressctlCommand::kDrain:
    case EgressctlCommand::kWatch:
      if (!operands.empty()) {
        return Usage(absl::StrCat(EgressctlCommandName(args.command),
                                  " takes no arguments, got '",
                                  operands.front(), "'"));
      }
      break;
    case EgressctlCommand::kEvict:
      if (operands.size() > 1) {
        return Usage(absl::StrCat("evict: unexpected argument '", operands[1],
                                  "' (evict takes at most one address)"));
      }
      if (!operands.empty()) {
        if (operands.front().empty()) {
          return Usage("evict: expected SCHEME://HOST:PORT, got ''");
        }
        args.address = operands.front();
      }
      break;
    case EgressctlCommand::kFetch:
      if (operands.empty()) return Usage("fetch: missing URL");
      if (operands.size() > 1) {
        return Usage(absl::StrCat("fetch: unexpected argument '", operands[1],
                                  "' (fetch takes one URL)"));
      }
      args.url = operands.front();
      if (!method_given) {
        args.method = args.body_source == BodySource::kNone ? "GET" : "POST";
      }
      break;
  }
  return args;
}

absl::StatusOr<std::string> LoadRequestBody(const EgressctlArgs& args) {
  switch (args.body_source) {
    case BodySource::kNone:
      return std::string();
    case BodySource::kInline:
      return args.body;
    case BodySource::kFile:
      break;
  }
  const bool is_stdin = args.body == "-";
  std::FILE* file = is_stdin ? stdin : std::fopen(args.body.c_str(), "rb");
  if (file == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("-d @", args.body));
  }
  std::string body;
  const int read_errno = ReadAll(file, &body);
  if (!is_stdin) std::fclose(file);
  if (read_errno != 0) {
    return absl::ErrnoToStatus(read_errno, absl::StrCat("-d @", args.body));
  }
  return body;
}

absl::StatusOr<std::string> LoadAdminToken(const EgressctlArgs& args) {
  if (args.admin_token_file.empty()) return std::string();
  const std::string context =
      absl::StrCat("--admin_token_file ", args.admin_token_file);
  std::FILE* file = std::fopen(args.admin_token_file.c_str(), "rb");
  if (file == nullptr) return absl::ErrnoToStatus(errno, context);
  std::string contents;
  const int read_errno = ReadAll(file, &contents);
  std::fclose(file);
  if (read_errno != 0) return absl::ErrnoToStatus(read_errno, context);
  const absl::string_view token = absl::StripAsciiWhitespace(contents);
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": the file holds no token"));
  }
  // gRPC refuses such a metadata value only when the call is made, with a
  // message that would not name the file.
  for (char c : token) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          context,
          ": the token has characters other than printable ASCII"));
    }
  }
  return std::string(token);
}

const char* EgressctlCommandName(EgressctlCommand command) {
  switch (command) {
    case EgressctlCommand::kHelp:
      return "help";
    case EgressctlCommand::kFetch:
      return "fetch";
    case EgressctlCommand::kPool:
      return "pool";
    case EgressctlCommand::kConns:
      return "conns";
    case EgressctlCommand::kLeaks:
      return "leaks";
    case EgressctlCommand::kEvict:
      return "evict";
    case EgressctlCommand::kDrain:
      return "drain";
    case EgressctlCommand::kWatch:
      return "watch";
  }
  return "?";
}

const char* EgressctlUsage() { return kUsage; }

}  // namespace egress
