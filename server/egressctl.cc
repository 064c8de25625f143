// egressctl: the command-line client of egressd. "fetch" runs one HTTP
// request through Fetcher.Fetch, "pool" shows PoolAdmin.GetPoolStats; see
// EgressctlUsage() for the full syntax.
//
// Exit status: 0 on success (an HTTP error status is still a success: it is
// a response), 1 when an RPC fails or the output cannot be written, 2 on bad
// usage (including an unreadable -d @FILE).

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "server/egressctl_args.h"
#include "server/pool_table.h"

namespace egress {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Fetch responses carry whole HTTP bodies; gRPC's default limit (4 MiB)
// would turn a large but legitimate response into RESOURCE_EXHAUSTED.
constexpr int kMaxReceiveMessageBytes = 64 << 20;

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  // egressd's ports are plaintext: the Fetcher on a trusted network, the
  // admin service on localhost.
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   channel_args);
}

void SetDeadline(const EgressctlArgs& args, grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + args.timeout));
}

// Prints "egressctl: <command> failed: <CODE>: <message>" and returns
// kExitFailed.
int ReportRpcError(absl::string_view command, const grpc::Status& status,
                   const std::string& target, grpc::Channel& channel) {
  std::string code = absl::StatusCodeToString(
      static_cast<absl::StatusCode>(status.error_code()));
  if (code.empty()) code = absl::StrCat("code ", status.error_code());
  std::cerr << "egressctl: " << command << " failed: " << code;
  if (!status.error_message().empty()) {
    std::cerr << ": " << status.error_message();
  }
  std::cerr << "\n";
  // egressd itself answers UNAVAILABLE when it cannot reach the origin; the
  // hint is only right when the channel to egressd never became ready.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      channel.GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
    std::cerr << "egressctl: is egressd running and listening on " << target
              << "?\n";
  }
  return kExitFailed;
}

bool WriteStdout(absl::string_view data) {
  return std::fwrite(data.data(), 1, data.size(), stdout) == data.size();
}

// Flushes stdout and turns a failed write (full disk, closed pipe) into an
// exit status instead of silently truncated output.
int FinishOutput(bool written) {
  if (!written || std::fflush(stdout) != 0) {
    std::cerr << "egressctl: writing to stdout failed\n";
    return kExitFailed;
  }
  return kExitOk;
}

int PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  // Zero counts and empty strings too: scripts should not have to treat a
  // missing field as 0.
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    std::cerr << "egressctl: cannot convert the response to JSON: "
              << status.ToString() << "\n";
    return kExitFailed;
  }
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  return FinishOutput(WriteStdout(json));
}

int RunFetch(const EgressctlArgs& args) {
  absl::StatusOr<std::string> body = LoadRequestBody(args);
  if (!body.ok()) {
    std::cerr << "egressctl: " << body.status().message() << "\n";
    return kExitUsage;
  }
  v1::FetchRequest request;
  request.set_method(args.method);
  request.set_url(args.url);
  for (const auto& [name, value] : args.headers) {
    v1::Header* header = request.add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  request.set_body(*std::move(body));

  std::shared_ptr<grpc::Channel> channel = MakeChannel(args.target);
  std::unique_ptr<v1::Fetcher::Stub> stub = v1::Fetcher::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(args, &context);
  v1::FetchResponse response;
  const grpc::Status status = stub->Fetch(&context, request, &response);
  if (!status.ok()) {
    return ReportRpcError("fetch", status, args.target, *channel);
  }

  if (args.json) return PrintJson(response);
  std::string head;
  if (args.include_headers) {
    absl::StrAppend(&head, "HTTP ", response.status_code());
    if (!response.reason().empty()) {
      absl::StrAppend(&head, " ", response.reason());
    }
    absl::StrAppend(&head, "  (", response.protocol(), ", connection #",
                    response.connection().id(), ", ",
                    response.connection().reused() ? "reused" : "new", ")\n");
    for (const v1::Header& header : response.headers()) {
      absl::StrAppend(&head, header.name(), ": ", header.value(), "\n");
    }
    absl::StrAppend(&head, "\n");
  }
  // The body is written as is: it may be binary and need not end in '\n'.
  return FinishOutput(WriteStdout(head) && WriteStdout(response.body()));
}

int RunPool(const EgressctlArgs& args) {
  std::shared_ptr<grpc::Channel> channel = MakeChannel(args.admin);
  std::unique_ptr<v1::PoolAdmin::Stub> stub = v1::PoolAdmin::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(args, &context);
  v1::PoolStats stats;
  const grpc::Status status =
      stub->GetPoolStats(&context, v1::GetPoolStatsRequest(), &stats);
  if (!status.ok()) {
    return ReportRpcError("pool", status, args.admin, *channel);
  }
  if (args.json) return PrintJson(stats);
  return FinishOutput(WriteStdout(FormatPoolStats(stats)));
}

int Main(int argc, char** argv) {
  absl::StatusOr<EgressctlArgs> args = ParseEgressctlArgs(argc, argv);
  if (!args.ok()) {
    std::cerr << "egressctl: " << args.status().message() << "\n"
              << "Run 'egressctl --help' for usage.\n";
    return kExitUsage;
  }
  switch (args->command) {
    case EgressctlCommand::kHelp:
      return FinishOutput(WriteStdout(EgressctlUsage()));
    case EgressctlCommand::kFetch:
      return RunFetch(*args);
    case EgressctlCommand::kPool:
      return RunPool(*args);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace egress

int main(int argc, char** argv) { return egress::Main(argc, argv); }
