// check_config FILE: loads an egressd configuration file the way egressd
// does. On success prints the effective configuration (secrets redacted) on
// stdout, each warning on stderr, and exits 0; otherwise prints the error,
// which names the file, line and field, and exits 1.
//
// `egressd --check_config FILE` does the same inside egressd; this binary
// exists so tests and CI can check configuration without linking gRPC.
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "server/config/config.h"

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: check_config FILE\n");
    return 2;
  }
  absl::StatusOr<egress::EgressdConfig> config =
      egress::LoadConfigFile(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "check_config: %s\n",
                 std::string(config.status().message()).c_str());
    return 1;
  }
  // As egressd would bind them: a name is judged on what it resolves to.
  if (absl::Status s = egress::CheckListenersResolve(*config); !s.ok()) {
    std::fprintf(stderr, "check_config: %s: %s\n", argv[1],
                 std::string(s.message()).c_str());
    return 1;
  }
  for (const std::string& warning : egress::ConfigWarnings(*config)) {
    std::fprintf(stderr, "check_config: warning: %s\n", warning.c_str());
  }
  std::fputs(egress::RenderEffectiveConfig(*config).c_str(), stdout);
  return 0;
}
