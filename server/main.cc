// egressd: the egress sidecar. Serves Fetcher (with gRPC health and server
// reflection) on --listen and PoolAdmin on --admin_listen, both backed by one
// process-wide HttpClient and its connection pool.
//
// Start-up prints one line a script can parse, after both ports are bound:
//   EGRESSD_READY listen=127.0.0.1:7070 admin_listen=127.0.0.1:9901
// SIGTERM or SIGINT: health turns NOT_SERVING, the Fetcher stops taking calls
// and in-flight ones get --shutdown_grace to finish, then the pool closes
// and egressd exits 0.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client_core/call/http_client.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/fetch_service.h"
#include "server/listen_address.h"
#include "server/pool_admin_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "HOST:PORT for the Fetcher service (with gRPC health and "
          "reflection). Port 0 picks a free port.");
ABSL_FLAG(std::string, admin_listen, "127.0.0.1:9901",
          "HOST:PORT for the PoolAdmin service. Keep it on localhost.");
ABSL_FLAG(int, event_loops, 0,
          "Event-loop threads for HTTP I/O; 0 = one per CPU core.");
ABSL_FLAG(int, completion_queues, 0,
          "gRPC completion queues (one thread each) for Fetch; 0 = one per "
          "CPU core.");
ABSL_FLAG(int, max_idle_connections, 256,
          "Most idle pooled connections over all addresses (0 = close each "
          "connection when it goes idle).");
ABSL_FLAG(int, max_idle_per_address, 64,
          "Most idle pooled connections for one address.");
ABSL_FLAG(absl::Duration, keep_alive, absl::Seconds(30),
          "Idle connections are closed after this long.");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(10),
          "Bound on one TCP connect attempt.");
ABSL_FLAG(absl::Duration, default_call_timeout, absl::Seconds(60),
          "Call timeout when the caller sets no gRPC deadline and no "
          "FetchRequest.timeout.");
ABSL_FLAG(int64_t, max_response_body_bytes, 4 * 1024 * 1024,
          "Largest response body a Fetch returns (RESOURCE_EXHAUSTED past "
          "it).");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(20),
          "On SIGTERM, how long in-flight Fetches may take to finish.");

namespace egress {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "egressd: %s\n", message.c_str());
  return 1;
}

absl::Status CheckNonNegative(const char* flag, int64_t value) {
  if (value < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be >= 0, got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckPositive(const char* flag, absl::Duration value) {
  if (value <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " must be positive, got ", absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

// Reads and checks every flag; the first bad one is the error.
absl::StatusOr<HttpClientOptions> ClientOptionsFromFlags() {
  HttpClientOptions options;
  for (auto [name, value] : std::vector<std::pair<const char*, int64_t>>{
           {"event_loops", absl::GetFlag(FLAGS_event_loops)},
           {"completion_queues", absl::GetFlag(FLAGS_completion_queues)},
           {"max_idle_connections", absl::GetFlag(FLAGS_max_idle_connections)},
           {"max_idle_per_address", absl::GetFlag(FLAGS_max_idle_per_address)},
           {"max_response_body_bytes",
            absl::GetFlag(FLAGS_max_response_body_bytes)}}) {
    if (absl::Status s = CheckNonNegative(name, value); !s.ok()) return s;
  }
  for (auto [name, value] : std::vector<std::pair<const char*, absl::Duration>>{
           {"keep_alive", absl::GetFlag(FLAGS_keep_alive)},
           {"connect_timeout", absl::GetFlag(FLAGS_connect_timeout)},
           {"default_call_timeout", absl::GetFlag(FLAGS_default_call_timeout)}}) {
    if (absl::Status s = CheckPositive(name, value); !s.ok()) return s;
  }
  if (absl::GetFlag(FLAGS_shutdown_grace) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--shutdown_grace must be >= 0");
  }
  options.event_loops = absl::GetFlag(FLAGS_event_loops);
  options.pool.max_idle_connections = absl::GetFlag(FLAGS_max_idle_connections);
  options.pool.max_idle_per_address = absl::GetFlag(FLAGS_max_idle_per_address);
  options.pool.keep_alive = absl::GetFlag(FLAGS_keep_alive);
  options.connect.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  options.max_response_body_bytes =
      absl::GetFlag(FLAGS_max_response_body_bytes);
  return options;
}

// Builds a server listening on `address`, without SO_REUSEPORT so that a port
// already in use is an error instead of a silently shared port.
std::unique_ptr<grpc::Server> BuildServer(grpc::ServerBuilder& builder,
                                          const ListenAddress& address,
                                          int* bound_port) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address.ToString(),
                           grpc::InsecureServerCredentials(), bound_port);
  return builder.BuildAndStart();
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "egressd: gRPC HTTP egress sidecar with a shared connection pool.\n"
      "Usage: egressd [--listen=HOST:PORT] [--admin_listen=HOST:PORT] ...");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    return Fail(absl::StrCat("unexpected argument '", positional[1],
                             "' (egressd takes only --flags; see --help)"));
  }
  absl::StatusOr<ListenAddress> listen =
      ParseListenAddress("--listen", absl::GetFlag(FLAGS_listen));
  if (!listen.ok()) return Fail(std::string(listen.status().message()));
  absl::StatusOr<ListenAddress> admin_listen =
      ParseListenAddress("--admin_listen", absl::GetFlag(FLAGS_admin_listen));
  if (!admin_listen.ok()) {
    return Fail(std::string(admin_listen.status().message()));
  }
  absl::StatusOr<HttpClientOptions> client_options = ClientOptionsFromFlags();
  if (!client_options.ok()) {
    return Fail(std::string(client_options.status().message()));
  }

  // Signals are taken by sigwait below; every thread created from here on
  // inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  HttpClient client(*client_options);

  FetchServiceOptions fetch_options;
  fetch_options.completion_queues = absl::GetFlag(FLAGS_completion_queues);
  fetch_options.default_call_timeout = absl::GetFlag(FLAGS_default_call_timeout);
  FetchService fetch_service(fetch_options, &client);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder fetch_builder;
  fetch_service.Register(fetch_builder);
  int fetch_port = 0;
  std::unique_ptr<grpc::Server> fetch_server =
      BuildServer(fetch_builder, *listen, &fetch_port);
  if (fetch_server == nullptr || fetch_port == 0) {
    return Fail(absl::StrCat("cannot listen on ", listen->ToString(),
                             " (--listen): address in use or not local"));
  }

  PoolAdminService admin_service(&client);
  grpc::ServerBuilder admin_builder;
  admin_builder.RegisterService(&admin_service);
  int admin_port = 0;
  std::unique_ptr<grpc::Server> admin_server =
      BuildServer(admin_builder, *admin_listen, &admin_port);
  if (admin_server == nullptr || admin_port == 0) {
    fetch_server->Shutdown();
    fetch_service.Shutdown();
    return Fail(absl::StrCat("cannot listen on ", admin_listen->ToString(),
                             " (--admin_listen): address in use or not local"));
  }
  fetch_service.Start();
  grpc::HealthCheckServiceInterface* health =
      fetch_server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus("egress.v1.Fetcher", true);

  ListenAddress bound_listen = *listen;
  bound_listen.port = static_cast<uint16_t>(fetch_port);
  ListenAddress bound_admin = *admin_listen;
  bound_admin.port = static_cast<uint16_t>(admin_port);
  std::printf("EGRESSD_READY listen=%s admin_listen=%s\n",
              bound_listen.ToString().c_str(), bound_admin.ToString().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::fprintf(stderr, "egressd: %s received, shutting down\n",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT");

  health->SetServingStatus(false);
  health->SetServingStatus("egress.v1.Fetcher", false);
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_shutdown_grace);
  // Stops accepting calls; waits for in-flight Fetches until give_up, then
  // cancels what is left.
  fetch_server->Shutdown(absl::ToChronoTime(give_up));
  client.Shutdown(absl::ZeroDuration());
  fetch_service.Shutdown();
  admin_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  std::fprintf(stderr, "egressd: stopped\n");
  return 0;
}

}  // namespace
}  // namespace egress

int main(int argc, char** argv) { return egress::Run(argc, argv); }
