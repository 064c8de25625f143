#include "server/egressctl_args.h"

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

// Runs the parser on {"egressctl", args...}.
absl::StatusOr<EgressctlArgs> Parse(std::initializer_list<const char*> args) {
  std::vector<std::string> storage = {"egressctl"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return ParseEgressctlArgs(static_cast<int>(storage.size()), argv.data());
}

// Expects a usage error whose message contains `part`.
void ExpectUsageError(std::initializer_list<const char*> args,
                      const std::string& part) {
  absl::StatusOr<EgressctlArgs> parsed = Parse(args);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(part));
}

TEST(EgressctlArgsTest, FetchDefaults) {
  absl::StatusOr<EgressctlArgs> args = Parse({"fetch", "http://example.com/"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, EgressctlCommand::kFetch);
  EXPECT_EQ(args->target, "127.0.0.1:7070");
  EXPECT_EQ(args->admin, "127.0.0.1:9901");
  EXPECT_EQ(args->timeout, absl::Seconds(30));
  EXPECT_FALSE(args->json);
  EXPECT_EQ(args->url, "http://example.com/");
  EXPECT_EQ(args->method, "GET");
  EXPECT_TRUE(args->headers.empty());
  EXPECT_EQ(args->body_source, BodySource::kNone);
  EXPECT_FALSE(args->include_headers);
}

TEST(EgressctlArgsTest, PoolDefaults) {
  absl::StatusOr<EgressctlArgs> args = Parse({"pool"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, EgressctlCommand::kPool);
  EXPECT_EQ(args->admin, "127.0.0.1:9901");
  EXPECT_FALSE(args->json);
}

TEST(EgressctlArgsTest, GlobalFlags) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"--target=10.0.0.1:80", "--admin", "localhost:1", "--timeout=2.5",
             "--json", "pool"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->target, "10.0.0.1:80");
  EXPECT_EQ(args->admin, "localhost:1");
  EXPECT_EQ(args->timeout, absl::Milliseconds(2500));
  EXPECT_TRUE(args->json);
  EXPECT_EQ(args->command, EgressctlCommand::kPool);
}

TEST(EgressctlArgsTest, JsonAfterCommand) {
  absl::StatusOr<EgressctlArgs> args = Parse({"pool", "--json"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->json);
}

TEST(EgressctlArgsTest, MethodHeadersAndInclude) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"fetch", "-X", "PUT", "-H", "Accept: text/plain",
             "-HX-Trace:  a b \t", "-H", "X-Empty:", "-i", "https://a.test/x"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->method, "PUT");
  EXPECT_THAT(args->headers,
              ElementsAre(Pair("Accept", "text/plain"), Pair("X-Trace", "a b"),
                          Pair("X-Empty", "")));
  EXPECT_TRUE(args->include_headers);
  EXPECT_EQ(args->url, "https://a.test/x");
}

TEST(EgressctlArgsTest, MethodIsNotUpperCased) {
  absl::StatusOr<EgressctlArgs> args = Parse({"fetch", "-Xget", "http://a/"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->method, "get");
}

TEST(EgressctlArgsTest, InlineBodyImpliesPost) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"fetch", "http://a/", "-d", "-not-an-option"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->method, "POST");
  EXPECT_EQ(args->body_source, BodySource::kInline);
  EXPECT_EQ(args->body, "-not-an-option");
  absl::StatusOr<std::string> body = LoadRequestBody(*args);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "-not-an-option");
}

TEST(EgressctlArgsTest, ExplicitMethodWinsOverBody) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"fetch", "-d", "x", "-X", "PATCH", "http://a/"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->method, "PATCH");
}

TEST(EgressctlArgsTest, BodyFromFile) {
  const char* tmpdir = std::getenv("TEST_TMPDIR");
  const std::string path =
      std::string(tmpdir != nullptr ? tmpdir : "/tmp") + "/body.bin";
  const std::string contents("line 1\n\0binary", 14);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(contents.data(), 1, contents.size(), f),
            contents.size());
  ASSERT_EQ(std::fclose(f), 0);

  const std::string arg = "@" + path;
  absl::StatusOr<EgressctlArgs> args =
      Parse({"fetch", "http://a/", "-d", arg.c_str()});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->method, "POST");
  EXPECT_EQ(args->body_source, BodySource::kFile);
  EXPECT_EQ(args->body, path);
  absl::StatusOr<std::string> body = LoadRequestBody(*args);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, contents);
}

TEST(EgressctlArgsTest, BodyFromMissingFile) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"fetch", "http://a/", "-d@/nonexistent/egressctl/body"});
  ASSERT_TRUE(args.ok()) << args.status();
  absl::StatusOr<std::string> body = LoadRequestBody(*args);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(body.status().message()),
              HasSubstr("-d @/nonexistent/egressctl/body"));
}

TEST(EgressctlArgsTest, Help) {
  for (const char* flag : {"help", "--help", "-h"}) {
    absl::StatusOr<EgressctlArgs> args = Parse({flag});
    ASSERT_TRUE(args.ok()) << flag << ": " << args.status();
    EXPECT_EQ(args->command, EgressctlCommand::kHelp) << flag;
  }
  absl::StatusOr<EgressctlArgs> args = Parse({"fetch", "--help"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, EgressctlCommand::kHelp);
  EXPECT_THAT(EgressctlUsage(), HasSubstr("fetch URL"));
  for (const char* text : {"conns [--address=SCHEME://HOST:PORT]", "leaks",
                           "evict [SCHEME://HOST:PORT]", "drain",
                           "--admin_token_file=PATH"}) {
    EXPECT_THAT(EgressctlUsage(), HasSubstr(text));
  }
}

TEST(EgressctlArgsTest, DoubleDashEndsOptions) {
  absl::StatusOr<EgressctlArgs> args = Parse({"fetch", "--", "-weird"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->url, "-weird");
}

TEST(EgressctlArgsTest, MissingUrl) {
  ExpectUsageError({"fetch"}, "fetch: missing URL");
  ExpectUsageError({"fetch", "-X", "GET"}, "fetch: missing URL");
}

TEST(EgressctlArgsTest, ExtraOperands) {
  ExpectUsageError({"fetch", "http://a/", "http://b/"},
                   "unexpected argument 'http://b/'");
  ExpectUsageError({"pool", "x"}, "pool takes no arguments");
  ExpectUsageError({"conns", "http://a:80"}, "conns takes no arguments");
  ExpectUsageError({"leaks", "x"}, "leaks takes no arguments");
  ExpectUsageError({"drain", "x"}, "drain takes no arguments");
  ExpectUsageError({"watch", "http://a:80"}, "watch takes no arguments");
  ExpectUsageError({"evict", "http://a:80", "http://b:80"},
                   "unexpected argument 'http://b:80'");
}

TEST(EgressctlArgsTest, AdminCommands) {
  const std::pair<const char*, EgressctlCommand> cases[] = {
      {"conns", EgressctlCommand::kConns}, {"leaks", EgressctlCommand::kLeaks},
      {"evict", EgressctlCommand::kEvict}, {"drain", EgressctlCommand::kDrain},
      {"watch", EgressctlCommand::kWatch},
  };
  for (const auto& [name, command] : cases) {
    absl::StatusOr<EgressctlArgs> args = Parse({"--json", name});
    ASSERT_TRUE(args.ok()) << name << ": " << args.status();
    EXPECT_EQ(args->command, command) << name;
    EXPECT_STREQ(EgressctlCommandName(command), name);
    EXPECT_TRUE(args->json) << name;
    EXPECT_EQ(args->address, "") << name;
    EXPECT_EQ(args->admin_token_file, "") << name;
  }
}

TEST(EgressctlArgsTest, ConnsAddress) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"conns", "--address=http://127.0.0.1:8080"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->address, "http://127.0.0.1:8080");
  args = Parse({"--address", "https://a.test:443", "conns"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->address, "https://a.test:443");
  ExpectUsageError({"conns", "--address="}, "--address: expected");
  ExpectUsageError({"conns", "--address"}, "--address needs a value");
  ExpectUsageError({"pool", "--address=http://a:80"},
                   "--address is an option of conns and watch, not of pool");
  ExpectUsageError({"evict", "--address=http://a:80"},
                   "evict takes the address as its argument");
}

TEST(EgressctlArgsTest, WatchAddress) {
  absl::StatusOr<EgressctlArgs> args =
      Parse({"watch", "--address=http://127.0.0.1:8080", "--json"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, EgressctlCommand::kWatch);
  EXPECT_EQ(args->address, "http://127.0.0.1:8080");
  EXPECT_TRUE(args->json);
  ExpectUsageError({"watch", "--address="}, "--address: expected");
}

TEST(EgressctlArgsTest, EvictAddress) {
  absl::StatusOr<EgressctlArgs> args = Parse({"evict", "http://a.test:80"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, EgressctlCommand::kEvict);
  EXPECT_EQ(args->address, "http://a.test:80");
  ExpectUsageError({"evict", ""}, "evict: expected SCHEME://HOST:PORT");
}

std::string TempPath(const std::string& name) {
  const char* tmpdir = std::getenv("TEST_TMPDIR");
  return std::string(tmpdir != nullptr ? tmpdir : "/tmp") + "/" + name;
}

void WriteTestFile(const std::string& path, const std::string& contents) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(contents.data(), 1, contents.size(), f),
            contents.size());
  ASSERT_EQ(std::fclose(f), 0);
}

TEST(EgressctlArgsTest, AdminTokenFile) {
  const std::string path = TempPath("admin-token");
  WriteTestFile(path, " \tsecret-token-1\r\n");
  const std::string flag = "--admin_token_file=" + path;
  absl::StatusOr<EgressctlArgs> args = Parse({flag.c_str(), "pool"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->admin_token_file, path);
  absl::StatusOr<std::string> token = LoadAdminToken(*args);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "secret-token-1");

  args = Parse({"pool", "--admin_token_file", path.c_str()});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->admin_token_file, path);
  ExpectUsageError({"--admin_token_file=", "pool"},
                   "--admin_token_file: empty path");
  ExpectUsageError({"pool", "--admin_token_file"},
                   "--admin_token_file needs a value");
}

TEST(EgressctlArgsTest, NoAdminTokenFile) {
  absl::StatusOr<EgressctlArgs> args = Parse({"pool"});
  ASSERT_TRUE(args.ok()) << args.status();
  absl::StatusOr<std::string> token = LoadAdminToken(*args);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "");
}

TEST(EgressctlArgsTest, BadAdminTokenFiles) {
  EgressctlArgs args;
  args.admin_token_file = "/nonexistent/egressctl/token";
  absl::StatusOr<std::string> token = LoadAdminToken(args);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("--admin_token_file /nonexistent/egressctl/token"));

  args.admin_token_file = TempPath("");  // a directory
  token = LoadAdminToken(args);
  EXPECT_FALSE(token.ok());

  args.admin_token_file = TempPath("blank-token");
  WriteTestFile(args.admin_token_file, " \n\n");
  token = LoadAdminToken(args);
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("holds no token"));

  args.admin_token_file = TempPath("binary-token");
  WriteTestFile(args.admin_token_file, "abc\ndef-hidden\n");
  token = LoadAdminToken(args);
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("printable ASCII"));
  EXPECT_THAT(std::string(token.status().message()),
              Not(HasSubstr("def-hidden")));
}

TEST(EgressctlArgsTest, NoOrUnknownCommand) {
  ExpectUsageError({}, "no command given");
  ExpectUsageError({"--json"}, "no command given");
  ExpectUsageError({"fecth", "http://a/"}, "unknown command 'fecth'");
  ExpectUsageError({"con"}, "commands: fetch, pool, conns, leaks, evict");
}

TEST(EgressctlArgsTest, UnknownOptions) {
  ExpectUsageError({"--verbose", "pool"}, "unknown option '--verbose'");
  ExpectUsageError({"fetch", "-z", "http://a/"}, "unknown option '-z'");
  ExpectUsageError({"pool", "-i"}, "unknown option '-i' for pool");
  ExpectUsageError({"conns", "-X", "GET"}, "unknown option '-X' for conns");
  ExpectUsageError({"-X", "GET", "fetch", "http://a/"},
                   "fetch options go after 'fetch'");
}

TEST(EgressctlArgsTest, MissingOptionValues) {
  ExpectUsageError({"fetch", "http://a/", "-H"}, "-H needs a value");
  ExpectUsageError({"fetch", "http://a/", "-X"}, "-X needs a value");
  ExpectUsageError({"fetch", "http://a/", "-d"}, "-d needs a value");
  ExpectUsageError({"pool", "--target"}, "--target needs a value");
  ExpectUsageError({"--admin=", "pool"}, "--admin: expected HOST:PORT");
}

TEST(EgressctlArgsTest, BadTimeout) {
  ExpectUsageError({"--timeout=0", "pool"}, "--timeout: expected a positive");
  ExpectUsageError({"--timeout=-1", "pool"}, "--timeout");
  ExpectUsageError({"--timeout=soon", "pool"}, "got 'soon'");
  ExpectUsageError({"--timeout=inf", "pool"}, "--timeout");
  ExpectUsageError({"--timeout=1e300", "pool"}, "out of range");
}

TEST(EgressctlArgsTest, MalformedHeader) {
  ExpectUsageError({"fetch", "http://a/", "-H", "NoColonHere"},
                   "-H 'NoColonHere': expected 'Name: value' (no colon found)");
  ExpectUsageError({"fetch", "http://a/", "-H", ": value"},
                   "header name '' is empty");
  ExpectUsageError({"fetch", "http://a/", "-H", "Bad Name: v"},
                   "header name 'Bad Name'");
  ExpectUsageError({"fetch", "http://a/", "-H", "X: a\r\nInjected: 1"},
                   "CR, LF or NUL");
}

TEST(EgressctlArgsTest, BadMethodAndBody) {
  ExpectUsageError({"fetch", "http://a/", "-X", "GET /"},
                   "not a valid HTTP method token");
  ExpectUsageError({"fetch", "http://a/", "-d", "a", "-d", "b"},
                   "-d given more than once");
  ExpectUsageError({"fetch", "http://a/", "-d", "@"}, "missing file name");
}

}  // namespace
}  // namespace egress
