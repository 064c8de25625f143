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
                 [--json] COMMAND ...

Commands:
  fetch URL [-X METHOD] [-H 'Name: value']... [-d BODY | -d @FILE] [-i]
      Run one HTTP request through egressd (Fetcher.Fetch on --target) and
      print the response body to stdout.
        -X METHOD          HTTP method (default GET, or POST when -d is given)
        -H 'Name: value'   add a request header; may repeat
        -d BODY            request body; -d @FILE reads it from FILE (@- stdin)
        -i                 print the status line and the response headers
                           before the body
  pool
      Show egressd's connection pool (PoolAdmin.GetPoolStats on --admin).
  help
      Show this text.

Options:
  --target=HOST:PORT  egressd's Fetcher endpoint (default 127.0.0.1:7070)
  --admin=HOST:PORT   egressd's PoolAdmin endpoint (default 127.0.0.1:9901)
  --timeout=SECONDS   deadline of each call, e.g. 30 or 0.5 (default 30)
  --json              print the response message as JSON

Exit status: 0 on success (whatever the HTTP status), 1 when the call fails,
2 on bad usage.
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

absl::Status ParseCommandName(absl::string_view name,
                              EgressctlCommand* command) {
  if (name == "fetch") {
    *command = EgressctlCommand::kFetch;
  } else if (name == "pool") {
    *command = EgressctlCommand::kPool;
  } else if (name == "help") {
    *command = EgressctlCommand::kHelp;
  } else {
    return Usage(absl::StrCat("unknown command '", name,
                              "' (commands: fetch, pool, help)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EgressctlArgs> ParseEgressctlArgs(int argc, char** argv) {
  EgressctlArgs args;
  bool have_command = false;
  // Operands after the command, e.g. fetch's URL.
  std::vector<std::string> operands;
  bool method_given = false;
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
      if (name != "--target" && name != "--admin" && name != "--timeout") {
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
              ? absl::StrCat("unknown option '", arg, "' for pool")
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
  switch (args.command) {
    case EgressctlCommand::kHelp:
      break;
    case EgressctlCommand::kPool:
      if (!operands.empty()) {
        return Usage(absl::StrCat("pool takes no arguments, got '",
                                  operands.front(), "'"));
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
  char buffer[64 * 1024];
  size_t n;
  errno = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    body.append(buffer, n);
  }
  // fread reports errors (e.g. EISDIR for a directory) only through ferror.
  int read_errno = 0;
  if (std::ferror(file)) read_errno = errno != 0 ? errno : EIO;
  if (!is_stdin) std::fclose(file);
  if (read_errno != 0) {
    return absl::ErrnoToStatus(read_errno, absl::StrCat("-d @", args.body));
  }
  return body;
}

const char* EgressctlUsage() { return kUsage; }

}  // namespace egress
