// h2load_fetch: writes the request body file with which h2load (or any
// HTTP/2 client) replays one egress.v1.Fetcher/Fetch call, e.g.
//
//   h2load_fetch --url=http://127.0.0.1:8080/1k --out=/tmp/fetch.bin
//   h2load -t1 -c16 -m8 -d /tmp/fetch.bin
//       -H 'content-type: application/grpc' -H 'te: trailers'
//       http://127.0.0.1:7070/egress.v1.Fetcher/Fetch
//
// h2load counts a 200 as a success whatever the grpc-status trailer says, so
// check one call with the loadgen (or egressctl) before trusting a figure.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/h2load_fetch/fetch_body.h"
#include "bench/loadgen/loopback.h"

ABSL_FLAG(std::string, url, "", "FetchRequest.url (loopback only).");
ABSL_FLAG(std::string, method, "GET", "FetchRequest.method.");
ABSL_FLAG(std::string, out, "", "File to write the length-prefixed body to.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "h2load_fetch --url=http://127.0.0.1:PORT/PATH --out=FILE");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  const std::string url = absl::GetFlag(FLAGS_url);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (positional.size() > 1 || url.empty() || out.empty()) {
    std::fprintf(stderr, "h2load_fetch: --url and --out are required\n");
    return 2;
  }
  if (!egress::bench::IsLoopbackUrl(url)) {
    std::fprintf(stderr, "h2load_fetch: --url must name a loopback host: %s\n",
                 url.c_str());
    return 2;
  }
  egress::v1::FetchRequest request;
  request.set_method(absl::GetFlag(FLAGS_method));
  request.set_url(url);
  const std::string body = egress::bench::EncodeFetchBody(request);
  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  file.write(body.data(), static_cast<std::streamsize>(body.size()));
  file.close();
  if (!file) {
    std::fprintf(stderr, "h2load_fetch: cannot write %s\n", out.c_str());
    return 1;
  }
  std::printf("%s: %zu bytes (%s %s)\n", out.c_str(), body.size(),
              request.method().c_str(), url.c_str());
  return 0;
}
