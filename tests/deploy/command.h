// Helpers for the deploy tests: run a command to completion, find a program
// on PATH, read a file.
#ifndef EGRESS_TESTS_DEPLOY_COMMAND_H_
#define EGRESS_TESTS_DEPLOY_COMMAND_H_

#include <string>
#include <vector>

namespace egress::testing {

struct CommandResult {
  // The exit status (0..255), or -1 if the command could not be started or
  // was killed by a signal.
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `argv` and waits for it to exit; stdout and
// stderr are collected through files under $TEST_TMPDIR.
CommandResult RunCommand(const std::vector<std::string>& argv);

// The absolute path of `program` found on PATH, or "" if it is not there.
std::string FindOnPath(const std::string& program);

// The whole content of `path`, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_DEPLOY_COMMAND_H_
