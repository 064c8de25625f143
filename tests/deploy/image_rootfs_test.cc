// The runtime image's file tree, as deploy/Dockerfile builds it with
// deploy/make_rootfs.sh, checked without Docker: it holds only the binaries,
// their shared libraries, CA certificates and the user files (no shell), and
// egressd (with the image's configuration file) and egressctl run from it
// under chroot as the image's user 65532.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/deploy/command.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

namespace fs = std::filesystem;

class ImageRootfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(MakeTempDir("image"), "/rootfs");
    CommandResult made = RunCommand(
        {"/bin/sh", RunfilePath("deploy/make_rootfs.sh"), root_,
         RunfilePath("server/egressd"), RunfilePath("server/egressctl")});
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }

  // Why the chroot run cannot happen here, or "" if it can.
  std::string ChrootUnavailable() const {
    if (geteuid() != 0) return "not running as root";
    CommandResult ldd = RunCommand({"/usr/bin/ldd", RunfilePath("server/egressd")});
    // Sanitizer runtimes read /proc, which a bare chroot does not have.
    if (absl::StrContains(ldd.out, "libasan") ||
        absl::StrContains(ldd.out, "libtsan") ||
        absl::StrContains(ldd.out, "libubsan")) {
      return "egressd is built with a sanitizer";
    }
    return "";
  }

  std::string root_;
};

TEST_F(ImageRootfsTest, HoldsOnlyBinariesLibrariesCertificatesAndUsers) {
  for (const char* path :
       {"/usr/local/bin/egressd", "/usr/local/bin/egressctl",
        "/lib64/ld-linux-x86-64.so.2", "/etc/ssl/certs/ca-certificates.crt",
        "/usr/lib/ssl/cert.pem", "/etc/passwd", "/etc/group",
        "/etc/nsswitch.conf"}) {
    EXPECT_TRUE(fs::exists(absl::StrCat(root_, path))) << path;
  }
  // No shell, no coreutils: nothing to exec into but the binaries.
  for (const char* absent : {"/bin/sh", "/bin/bash", "/usr/bin/env", "/bin/ls"}) {
    EXPECT_FALSE(fs::exists(absl::StrCat(root_, absent))) << absent;
  }
  int libraries = 0;
  for (const fs::directory_entry& entry :
       fs::recursive_directory_iterator(root_)) {
    if (entry.is_directory() || entry.is_symlink()) continue;
    const std::string path = entry.path().string().substr(root_.size());
    if (absl::StrContains(path, ".so")) {
      ++libraries;
      continue;
    }
    EXPECT_TRUE(path == "/usr/local/bin/egressd" ||
                path == "/usr/local/bin/egressctl" ||
                path == "/etc/ssl/certs/ca-certificates.crt" ||
                path == "/etc/passwd" || path == "/etc/group" ||
                path == "/etc/nsswitch.conf")
        << "unexpected file in the runtime image: " << path;
  }
  EXPECT_GT(libraries, 5);
  EXPECT_THAT(ReadFileOrEmpty(absl::StrCat(root_, "/etc/passwd")),
              ::testing::HasSubstr("egressd:x:65532:65532:"));
}

TEST_F(ImageRootfsTest, EgressdAndEgressctlRunFromItAsUser65532) {
  const std::string why = ChrootUnavailable();
  if (!why.empty()) {
    std::fprintf(stderr, "SKIP: chroot run of the image tree: %s\n",
                 why.c_str());
    GTEST_SKIP() << why;
  }
  // As the image's user; where a sandbox forbids setgroups (a user
  // namespace), as root in the same tree, which still proves the libraries.
  std::vector<std::string> chroot = {"/usr/sbin/chroot",
                                     "--userspec=65532:65532", root_};
  CommandResult probe = RunCommand({chroot[0], chroot[1], root_,
                                    "/usr/local/bin/egressctl", "--help"});
  if (absl::StrContains(probe.err, "supplemental groups")) {
    std::fprintf(stderr,
                 "NOTE: setgroups is not permitted here; running the image "
                 "tree as root instead of 65532\n");
    chroot = {"/usr/sbin/chroot", root_};
  } else if (absl::StrContains(probe.err, "Operation not permitted")) {
    std::fprintf(stderr, "SKIP: chroot is not permitted here: %s\n",
                 probe.err.c_str());
    GTEST_SKIP() << "chroot not permitted";
  }

  // The image's entrypoint, `egressd --config=/etc/egressd/config.yaml`
  // (deploy/Dockerfile copies the ConfigMap's file there), on test ports.
  fs::create_directories(absl::StrCat(root_, "/etc/egressd"));
  fs::copy_file(RunfilePath("deploy/k8s/base/config.yaml"),
                absl::StrCat(root_, "/etc/egressd/config.yaml"));
  const std::string stderr_path = absl::StrCat(MakeTempDir("egressd"), "/err");
  std::vector<std::string> argv = chroot;
  argv.insert(argv.end(), {"/usr/local/bin/egressd",
                           "--config=/etc/egressd/config.yaml",
                           "--listen=127.0.0.1:0",
                           "--health_listen=127.0.0.1:0",
                           "--metrics_listen=127.0.0.1:0",
                           "--admin_listen=127.0.0.1:0"});
  absl::StatusOr<Subprocess> egressd = Subprocess::Start(argv, stderr_path);
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  absl::StatusOr<std::string> ready =
      egressd->ReadLineMatching("EGRESSD_READY", absl::Seconds(30));
  ASSERT_TRUE(ready.ok()) << ready.status() << "\nstderr:\n"
                          << ReadFileOrEmpty(stderr_path);
  // "EGRESSD_READY listen=127.0.0.1:P metrics_listen=... admin_listen=..."
  const size_t admin = ready->find("admin_listen=");
  ASSERT_NE(admin, std::string::npos) << *ready;
  const std::string admin_address = std::string(absl::StripAsciiWhitespace(
      ready->substr(admin + std::string("admin_listen=").size())));

  // `kubectl exec POD -c egressd -- egressctl pool` runs the same way.
  argv = chroot;
  argv.insert(argv.end(), {"/usr/local/bin/egressctl",
                           absl::StrCat("--admin=", admin_address), "pool"});
  CommandResult pool = RunCommand(argv);
  EXPECT_EQ(pool.exit_code, 0) << pool.out << pool.err;

  absl::StatusOr<int> status = egressd->Stop(SIGTERM, absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << ReadFileOrEmpty(stderr_path);
}

// The configuration the image and the ConfigMap carry passes egressd's own
// check (stricter than the library's: it also refuses fields egressd cannot
// act on yet), as `egressd --check_config` in the container would run it.
// `egressd --check_config=<runfile>`.
CommandResult EgressdCheckConfig(const std::string& runfile) {
  return RunCommand({RunfilePath("server/egressd"),
                     absl::StrCat("--check_config=", RunfilePath(runfile))});
}

TEST(ImageConfigTest, TheShippedConfigurationPassesEgressdCheckConfig) {
  // The sidecar's (the image's default): Fetch on loopback, health for the
  // probes on the Pod IP.
  CommandResult check = EgressdCheckConfig("deploy/k8s/base/config.yaml");
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.out, ::testing::HasSubstr("  listen: \"127.0.0.1:7070\""));
  EXPECT_THAT(check.out,
              ::testing::HasSubstr("health_listen: \"0.0.0.0:7071\""));
  EXPECT_THAT(check.out, ::testing::HasSubstr("shutdown_grace: 20s"));
  EXPECT_THAT(check.err,
              ::testing::HasSubstr("warning: listeners.metrics_listen"));
  // The gateway's: Fetch for the cluster.
  CommandResult gateway =
      EgressdCheckConfig("deploy/k8s/gateway/config/config.yaml");
  EXPECT_EQ(gateway.exit_code, 0) << gateway.err;
  EXPECT_THAT(gateway.out, ::testing::HasSubstr("  listen: \"0.0.0.0:7070\""));
  EXPECT_THAT(gateway.err, ::testing::HasSubstr("warning: listeners.listen"));
}

}  // namespace
}  // namespace egress::testing
