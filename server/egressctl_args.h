// Command-line parsing for egressctl, the command-line client of egressd.
//
// Kept apart from egressctl.cc and free of gRPC so that every accepted and
// rejected command line can be unit-tested without a server.
//
// Grammar (global flags may appear anywhere before a "--"; after "--" every
// argument is positional):
//   egressctl [--target=HOST:PORT] [--admin=HOST:PORT] [--timeout=SECONDS]
//             [--admin_token_file=PATH] [--json] COMMAND ...
//   fetch URL [-X METHOD] [-H 'Name: value']... [-d BODY | -d @FILE] [-i]
//   pool
//   conns [--address=SCHEME://HOST:PORT]
//   leaks
//   evict [SCHEME://HOST:PORT]
//   drain
//   watch [--address=SCHEME://HOST:PORT]
//   help | --help | -h
// Long flags take "--flag=value" or "--flag value"; -X, -H and -d take
// "-X VALUE" or "-XVALUE".
#ifndef EGRESS_SERVER_EGRESSCTL_ARGS_H_
#define EGRESS_SERVER_EGRESSCTL_ARGS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress {

enum class EgressctlCommand {
  kHelp,
  kFetch,
  // The PoolAdmin commands (on --admin).
  kPool,   // GetPoolStats
  kConns,  // ListConnections, every page
  kLeaks,  // ListLeaks
  kEvict,  // EvictIdle
  kDrain,  // Drain
  kWatch,  // WatchPoolEvents, until interrupted
};

// The command's name as typed ("fetch", "conns", ...).
const char* EgressctlCommandName(EgressctlCommand command);

// Where the body of a fetch comes from (-d).
enum class BodySource {
  kNone,    // no -d
  kInline,  // -d BODY
  kFile,    // -d @FILE ("-d @-" reads stdin)
};

struct EgressctlArgs {
  static constexpr char kDefaultTarget[] = "127.0.0.1:7070";
  static constexpr char kDefaultAdmin[] = "127.0.0.1:9901";

  // gRPC target of the Fetcher service.
  std::string target = kDefaultTarget;
  // gRPC target of the PoolAdmin service.
  std::string admin = kDefaultAdmin;
  // Deadline of every RPC; always positive and finite.
  absl::Duration timeout = absl::Seconds(30);
  // Print the response message as JSON instead of the human format.
  bool json = false;
  // --admin_token_file: a file holding PoolAdmin's bearer token (empty: send
  // none). Recorded only; LoadAdminToken() reads it.
  std::string admin_token_file;

  EgressctlCommand command = EgressctlCommand::kHelp;

  // fetch only. The URL is passed through unchecked: egressd validates it
  // and answers INVALID_ARGUMENT with a precise message.
  std::string url;
  // -X, or "POST" when -d is given, else "GET". Never upper-cased: methods
  // are case-sensitive (RFC 9110 9.1).
  std::string method;
  // -H, in command-line order; names as spelled, values without the
  // surrounding whitespace.
  std::vector<std::pair<std::string, std::string>> headers;
  BodySource body_source = BodySource::kNone;
  // kInline: the body. kFile: the file name after '@' ("-" for stdin).
  std::string body;
  // -i: print the status line and the headers before the body.
  bool include_headers = false;

  // conns and watch: --address; evict: the ADDRESS operand. Empty: every
  // address.
  // Passed through unchecked: egressd answers INVALID_ARGUMENT for a
  // malformed one.
  std::string address;
};

// Parses argv (argv[0] is the program name and ignored). Reads no files:
// "-d @FILE" is recorded, LoadRequestBody() reads it.
// Returns InvalidArgument with a message fit to show the user as is (without
// the usage hint) for: no or unknown command, unknown options, a missing
// option value, a bad --timeout, a missing or extra URL, an -X that is not an
// HTTP token, an -H without "Name:" or with CR/LF in its value, -d given
// twice, an empty --admin_token_file or --address, --address with a command
// other than conns or watch, more than one ADDRESS for evict, and operands
// for pool, conns, leaks, drain or watch. "help", "--help" and "-h" yield command kHelp.
absl::StatusOr<EgressctlArgs> ParseEgressctlArgs(int argc, char** argv);

// The request body for args: empty for kNone, the -d text for kInline, the
// file's bytes for kFile (stdin for "-"). Fails with the file name and the
// system's reason when the file cannot be read.
absl::StatusOr<std::string> LoadRequestBody(const EgressctlArgs& args);

// The PoolAdmin bearer token from args.admin_token_file, without the
// whitespace around it (a mounted Secret usually ends in a newline); empty if
// no file was given. Fails (never quoting the token) when the file cannot be
// read, is empty, or holds characters a gRPC metadata value cannot carry
// (outside printable ASCII).
absl::StatusOr<std::string> LoadAdminToken(const EgressctlArgs& args);

// The usage text printed by "egressctl help"; ends with a newline.
const char* EgressctlUsage();

}  // namespace egress

#endif  // EGRESS_SERVER_EGRESSCTL_ARGS_H_
