// Subprocess: a child process started by a test (egressd, nginx, ...), its
// stdout read line by line, stopped by PID when the object goes away.
//
// Not thread-safe; one test thread owns it.
#ifndef EGRESS_TESTS_SUPPORT_SUBPROCESS_H_
#define EGRESS_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with `argv`. stdout is a pipe read by
  // ReadLineMatching; stderr goes to `stderr_path` when given (else inherited,
  // so it lands in the test log).
  static absl::StatusOr<Subprocess> Start(
      const std::vector<std::string>& argv,
      const std::string& stderr_path = "");

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }

  // Reads stdout until a line containing `needle` arrives (returns it) or
  // `timeout` passes or stdout closes (errors). Lines before it are kept in
  // output().
  absl::StatusOr<std::string> ReadLineMatching(const std::string& needle,
                                               absl::Duration timeout);
  const std::string& output() const { return output_; }

  // Sends `signal` and waits up to `timeout` for the exit. Returns the exit
  // status as from waitpid (use WIFEXITED/WEXITSTATUS), or an error on
  // timeout (the child is then killed).
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout);
  // Waits up to `timeout` for the child to exit by itself.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  Subprocess() = default;
  void Kill();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string pending_;  // stdout bytes not yet split into lines
  std::string output_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, then
// released). Good enough for servers that cannot bind port 0 themselves.
int PickFreePort();

// Waits until something accepts TCP connections on 127.0.0.1:`port`.
absl::Status WaitForPort(int port, absl::Duration timeout);

// A fresh directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

// Path of a runfile, e.g. "server/egressd", for a Bazel test.
std::string RunfilePath(const std::string& workspace_relative);

// Writes `contents` to `path`.
absl::Status WriteFile(const std::string& path, const std::string& contents);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_SUBPROCESS_H_
