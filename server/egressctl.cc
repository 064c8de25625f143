// egressctl: the command-line client of egressd. "fetch" runs one HTTP
// request through Fetcher.Fetch; "pool", "conns", "leaks", "evict", "drain"
// and "watch" call PoolAdmin; see EgressctlUsage() for the full syntax.
//
// Exit status: 0 on success (an HTTP error status is still a success: it is
// a response; "watch" ended by Ctrl-C or by egressd shutting down is one
// too), 1 when an RPC fails or the output cannot be written, 2 on bad usage
// (including an unreadable -d @FILE or --admin_token_file).

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::cerr << "egressctl: egressd's PoolAdmin wants a token: pass the file "
                 "holding it with --admin_token_file\n";
  }
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
    // The origin's exact bytes, as curl -i prints them (common.proto).
    const std::string& reason = response.reason_bytes().empty()
                                    ? response.reason()
                                    : response.reason_bytes();
    if (!reason.empty()) absl::StrAppend(&head, " ", reason);
    absl::StrAppend(&head, "  (", response.protocol(), ", connection #",
                    response.connection().id(), ", ",
                    response.connection().reused() ? "reused" : "new", ")\n");
    for (const v1::Header& header : response.headers()) {
      absl::StrAppend(&head, header.name(), ": ",
                      header.value_bytes().empty() ? header.value()
                                                   : header.value_bytes(),
                      "\n");
    }
    absl::StrAppend(&head, "\n");
  }
  // The body is written as is: it may be binary and need not end in '\n'.
  return FinishOutput(WriteStdout(head) && WriteStdout(response.body()));
}

// A PoolAdmin stub on --admin and what every call to it carries.
class AdminClient {
 public:
  AdminClient(const EgressctlArgs& args, std::string token)
      : args_(args),
        token_(std::move(token)),
        channel_(MakeChannel(args.admin)),
        stub_(v1::PoolAdmin::NewStub(channel_)) {}

  v1::PoolAdmin::Stub& stub() { return *stub_; }

  // Sets the deadline and, with a token, "authorization: Bearer <token>".
  void Prepare(grpc::ClientContext* context) const {
    SetDeadline(args_, context);
    PrepareStream(context);
  }
  // The token only: a watch has no deadline.
  void PrepareStream(grpc::ClientContext* context) const {
    if (!token_.empty()) {
      context->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    }
  }

  int Fail(const grpc::Status& status) {
    return ReportRpcError(EgressctlCommandName(args_.command), status,
                          args_.admin, *channel_);
  }

 private:
  const EgressctlArgs& args_;
  const std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PoolAdmin::Stub> stub_;
};

int RunPool(const EgressctlArgs& args, AdminClient& admin) {
  grpc::ClientContext context;
  admin.Prepare(&context);
  v1::PoolStats stats;
  const grpc::Status status =
      admin.stub().GetPoolStats(&context, v1::GetPoolStatsRequest(), &stats);
  if (!status.ok()) return admin.Fail(status);
  if (args.json) return PrintJson(stats);
  return FinishOutput(WriteStdout(FormatPoolStats(stats)));
}

// Pages through ListConnections until `end` and prints every connection,
// for --json as one ListConnectionsResponse with end set. Connections opened
// or closed while paging may or may not be listed, as with any paged list.
int RunConns(const EgressctlArgs& args, AdminClient& admin) {
  v1::ListConnectionsResponse all;
  v1::ListConnectionsRequest request;
  request.set_address(args.address);
  while (true) {
    grpc::ClientContext context;
    admin.Prepare(&context);
    v1::ListConnectionsResponse page;
    const grpc::Status status =
        admin.stub().ListConnections(&context, request, &page);
    if (!status.ok()) return admin.Fail(status);
    const bool end = page.end();
    if (!end) {
      // Ids ascend, so the next page starts past this one's last id; a page
      // that does not advance would keep egressctl looping forever.
      if (page.connections().empty() ||
          page.connections().rbegin()->id() < request.start_id() ||
          page.connections().rbegin()->id() ==
              std::numeric_limits<uint64_t>::max()) {
        std::cerr << "egressctl: conns failed: egressd sent a page that is "
                     "not the last but does not advance (start_id "
                  << request.start_id() << ")\n";
        return kExitFailed;
      }
      request.set_start_id(page.connections().rbegin()->id() + 1);
    }
    for (v1::ConnectionStats& c : *page.mutable_connections()) {
      *all.add_connections() = std::move(c);
    }
    if (end) break;
  }
  all.set_end(true);
  if (args.json) return PrintJson(all);
  return FinishOutput(WriteStdout(FormatConnections(all, absl::Now())));
}

int RunLeaks(const EgressctlArgs& args, AdminClient& admin) {
  grpc::ClientContext context;
  admin.Prepare(&context);
  v1::ListLeaksResponse leaks;
  const grpc::Status status =
      admin.stub().ListLeaks(&context, v1::ListLeaksRequest(), &leaks);
  if (!status.ok()) return admin.Fail(status);
  if (args.json) return PrintJson(leaks);
  return FinishOutput(WriteStdout(FormatLeaks(leaks)));
}

int RunEvict(const EgressctlArgs& args, AdminClient& admin) {
  grpc::ClientContext context;
  admin.Prepare(&context);
  v1::EvictIdleRequest request;
  request.set_address(args.address);
  v1::EvictIdleResponse response;
  const grpc::Status status =
      admin.stub().EvictIdle(&context, request, &response);
  if (!status.ok()) return admin.Fail(status);
  if (args.json) return PrintJson(response);
  return FinishOutput(WriteStdout(absl::StrCat(
      "evicted ", response.evicted(), " idle connection(s)\n")));
}

int RunDrain(const EgressctlArgs& args, AdminClient& admin) {
  grpc::ClientContext context;
  admin.Prepare(&context);
  v1::DrainResponse response;
  const grpc::Status status =
      admin.stub().Drain(&context, v1::DrainRequest(), &response);
  if (!status.ok()) return admin.Fail(status);
  if (args.json) return PrintJson(response);
  return FinishOutput(WriteStdout(absl::StrCat(
      "marked ", response.marked(),
      " connection(s) to close when idle\n")));
}

// Ends a watch on SIGINT or SIGTERM: egressctl blocks both (Main) and this
// thread takes them with sigwait, so the cancel runs on an ordinary thread,
// not in a signal handler. Stop() ends the thread when the stream ended by
// itself.
class InterruptWatcher {
 public:
  explicit InterruptWatcher(grpc::ClientContext* context)
      : thread_([this, context] {
          sigset_t signals = InterruptSignals();
          int number = 0;
          sigwait(&signals, &number);
          if (!stopping_.load()) {
            interrupted_.store(true);
            context->TryCancel();
          }
        }) {}
  ~InterruptWatcher() { Stop(); }

  static sigset_t InterruptSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    return signals;
  }

  bool interrupted() const { return interrupted_.load(); }

  void Stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true);
    // Directed at the thread, which takes it with sigwait like any other.
    pthread_kill(thread_.native_handle(), SIGINT);
    thread_.join();
  }

 private:
  std::atomic<bool> stopping_{false};
  std::atomic<bool> interrupted_{false};
  std::thread thread_;
};

// Follows WatchPoolEvents: a header line, then one line per event (--json:
// one JSON object per line, no header), flushed at once, until Ctrl-C.
int RunWatch(const EgressctlArgs& args, AdminClient& admin) {
  grpc::ClientContext context;
  admin.PrepareStream(&context);
  v1::WatchPoolEventsRequest request;
  request.set_address(args.address);
  InterruptWatcher interrupt(&context);
  std::unique_ptr<grpc::ClientReader<v1::PoolEvent>> reader =
      admin.stub().WatchPoolEvents(&context, request);
  // egressd sends its metadata once the watch is in place, or the call
  // fails at once (nothing listens: Finish says so). Only the start has a
  // deadline, --timeout: a watch then runs until it is ended.
  bool start_timed_out = false;
  {
    std::mutex mu;
    std::condition_variable cv;
    bool started = false;
    std::thread start_deadline([&] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, absl::ToChronoNanoseconds(args.timeout),
                       [&] { return started; })) {
        start_timed_out = true;
        context.TryCancel();
      }
    });
    reader->WaitForInitialMetadata();
    {
      std::lock_guard<std::mutex> lock(mu);
      started = true;
    }
    cv.notify_all();
    start_deadline.join();
  }
  // A refused watch (a bad token, a bad address) ends without the key.
  const auto& metadata = context.GetServerInitialMetadata();
  const bool started = metadata.find("egress-watch-started") != metadata.end();
  bool written = true;
  if (started && !args.json) {
    written = WriteStdout(FormatPoolEventHeader()) && std::fflush(stdout) == 0;
  }
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.add_whitespace = false;
  json_options.always_print_primitive_fields = true;
  v1::PoolEvent event;
  while (written && reader->Read(&event)) {
    std::string line;
    if (args.json) {
      const auto status = google::protobuf::util::MessageToJsonString(
          event, &line, json_options);
      if (!status.ok()) {
        std::cerr << "egressctl: cannot convert an event to JSON: "
                  << status.ToString() << "\n";
        context.TryCancel();
        break;
      }
      line.push_back('\n');
    } else {
      line = FormatPoolEvent(event);
    }
    written = WriteStdout(line) && std::fflush(stdout) == 0;
  }
  if (!written) context.TryCancel();
  const grpc::Status status = reader->Finish();
  const bool interrupted = interrupt.interrupted();
  interrupt.Stop();
  if (!written) {
    std::cerr << "egressctl: writing to stdout failed\n";
    return kExitFailed;
  }
  if (interrupted) return kExitOk;  // Ctrl-C: the way a watch ends
  if (start_timed_out) {
    std::cerr << "egressctl: watch failed: egressd did not start the watch "
                 "within --timeout="
              << absl::FormatDuration(args.timeout) << "; is egressd running "
              << "and listening on " << args.admin << "?\n";
    return kExitFailed;
  }
  if (status.ok()) {
    std::cerr << "egressctl: egressd ended the watch (it is shutting down)\n";
    return kExitOk;
  }
  return admin.Fail(status);
}

int RunAdmin(const EgressctlArgs& args,
             int (*run)(const EgressctlArgs&, AdminClient&)) {
  // Read before any call so a bad file is a usage error, not an
  // UNAUTHENTICATED from egressd. The token itself is never printed.
  absl::StatusOr<std::string> token = LoadAdminToken(args);
  if (!token.ok()) {
    std::cerr << "egressctl: " << token.status().message() << "\n";
    return kExitUsage;
  }
  AdminClient admin(args, *std::move(token));
  return run(args, admin);
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
      return RunAdmin(*args, RunPool);
    case EgressctlCommand::kConns:
      return RunAdmin(*args, RunConns);
    case EgressctlCommand::kLeaks:
      return RunAdmin(*args, RunLeaks);
    case EgressctlCommand::kEvict:
      return RunAdmin(*args, RunEvict);
    case EgressctlCommand::kDrain:
      return RunAdmin(*args, RunDrain);
    case EgressctlCommand::kWatch: {
      // Before any thread exists, so that every thread inherits the mask
      // and only InterruptWatcher's sigwait takes the signals.
      sigset_t signals = InterruptWatcher::InterruptSignals();
      pthread_sigmask(SIG_BLOCK, &signals, nullptr);
      return RunAdmin(*args, RunWatch);
    }
  }
  return kExitUsage;
}

}  // namespace
}  // namespace egress

int main(int argc, char** argv) { return egress::Main(argc, argv); }
