// Proxy selection: Proxy, HostPattern (NO_PROXY semantics), ProxySelector
// (rules, no_proxy, default_via, the environment), ProxyDatabase (a failed
// proxy is tried last), and the absolute-form request head. Pure logic: no
// sockets, no sleeps (time is injected).
#include "client_core/proxy/proxy_rules.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "client_core/http1/request_writer.h"
#include "client_core/proxy/http_tunnel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

Proxy MakeProxy(const std::string& name, const std::string& host,
                uint16_t port, Proxy::Scheme scheme = Proxy::Scheme::kHttp) {
  Proxy p;
  p.name = name;
  p.scheme = scheme;
  p.host = host;
  p.port = port;
  return p;
}

// The choices as names: "direct" or the proxy's name.
std::vector<std::string> Names(const std::vector<ProxyChoice>& choices) {
  std::vector<std::string> out;
  for (const ProxyChoice& c : choices) {
    out.push_back(c.is_direct() ? "direct" : c.proxy->name);
  }
  return out;
}

// --- Proxy ---

TEST(ProxyTest, UrlAndDescribeNeverHoldCredentials) {
  Proxy p = MakeProxy("corp", "proxy.corp", 3128);
  p.username = "alice";
  p.password = "hunter2-secret";
  EXPECT_EQ(p.Url(), "http://proxy.corp:3128");
  EXPECT_EQ(p.Describe(), "proxy 'corp' (http://proxy.corp:3128)");
  EXPECT_THAT(p.Describe(), Not(HasSubstr("alice")));
  EXPECT_THAT(p.Describe(), Not(HasSubstr("hunter2")));
  Proxy v6 = MakeProxy("s", "::1", 1080, Proxy::Scheme::kSocks5);
  EXPECT_EQ(v6.Url(), "socks5://[::1]:1080");
  EXPECT_EQ(v6.Authority(), "[::1]:1080");
}

TEST(ProxyTest, ValidateNamesTheProblemNotThePassword) {
  Proxy p = MakeProxy("corp", "proxy.corp", 3128);
  EXPECT_TRUE(p.Validate().ok());

  Proxy direct = MakeProxy("direct", "p", 1);
  EXPECT_EQ(direct.Validate().code(), absl::StatusCode::kInvalidArgument);
  Proxy no_port = MakeProxy("x", "p", 0);
  EXPECT_THAT(std::string(no_port.Validate().message()), HasSubstr("no port"));
  Proxy bad_host = MakeProxy("x", "p q", 1);
  EXPECT_THAT(std::string(bad_host.Validate().message()), HasSubstr("invalid host"));
  Proxy bracketed = MakeProxy("x", "[::1]", 1);
  EXPECT_FALSE(bracketed.Validate().ok());

  Proxy half = p;
  half.password = "only-a-password";
  EXPECT_THAT(std::string(half.Validate().message()), HasSubstr("no username"));
  EXPECT_THAT(std::string(half.Validate().message()), Not(HasSubstr("only-a-password")));
  Proxy colon = p;
  colon.username = "a:b";
  colon.password = "pw-secret";
  EXPECT_THAT(std::string(colon.Validate().message()), HasSubstr("cannot contain ':'"));
  EXPECT_THAT(std::string(colon.Validate().message()), Not(HasSubstr("pw-secret")));

  Proxy socks = MakeProxy("s", "p", 1080, Proxy::Scheme::kSocks5);
  socks.username = "u";
  socks.password = std::string(256, 'x');
  EXPECT_THAT(std::string(socks.Validate().message()), HasSubstr("255 bytes"));
}

TEST(ProxyTest, EqualityCoversCredentials) {
  Proxy a = MakeProxy("corp", "p", 1);
  a.username = "u";
  a.password = "one";
  Proxy b = a;
  EXPECT_EQ(a, b);
  b.password = "two";
  EXPECT_NE(a, b);
  EXPECT_NE(ProxyChoice{std::make_shared<Proxy>(a)},
            ProxyChoice{std::make_shared<Proxy>(b)});
  EXPECT_EQ(ProxyChoice::Direct(), ProxyChoice::Direct());
  EXPECT_NE(ProxyChoice::Direct(), ProxyChoice{std::make_shared<Proxy>(a)});
  // Equal values in different objects are the same choice.
  EXPECT_EQ(ProxyChoice{std::make_shared<Proxy>(a)},
            ProxyChoice{std::make_shared<Proxy>(a)});
}

TEST(ProxyUrlTest, Parses) {
  struct Case {
    const char* text;
    Proxy::Scheme scheme;
    const char* host;
    uint16_t port;
    const char* user;
    const char* password;
  };
  const Case cases[] = {
      {"http://proxy.corp:3128", Proxy::Scheme::kHttp, "proxy.corp", 3128, "",
       ""},
      {"http://proxy.corp:3128/", Proxy::Scheme::kHttp, "proxy.corp", 3128,
       "", ""},
      {"proxy.corp:8080", Proxy::Scheme::kHttp, "proxy.corp", 8080, "", ""},
      {"http://Proxy.Corp", Proxy::Scheme::kHttp, "proxy.corp", 80, "", ""},
      {"socks5://10.0.0.1:1080", Proxy::Scheme::kSocks5, "10.0.0.1", 1080, "",
       ""},
      {"socks5h://s.corp", Proxy::Scheme::kSocks5, "s.corp", 1080, "", ""},
      {"http://[::1]:3128", Proxy::Scheme::kHttp, "::1", 3128, "", ""},
      {"http://al%40ce:p%3Ass@proxy:1", Proxy::Scheme::kHttp, "proxy", 1,
       "al@ce", "p:ss"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<Proxy> p = ParseProxyUrlWithCredentials(c.text, "env");
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->name, "env");
    EXPECT_EQ(p->scheme, c.scheme);
    EXPECT_EQ(p->host, c.host);
    EXPECT_EQ(p->port, c.port);
    EXPECT_EQ(p->username, c.user);
    EXPECT_EQ(p->password, c.password);
  }
}

TEST(ProxyUrlTest, ErrorsNeverQuoteCredentials) {
  for (const char* text :
       {"https://u:topsecret@p:1", "http://u:topsecret@p:99999",
        "http://u:topsecret@p:1/path", "http://u:top%zzsecret@p:1",
        "http://u:topsecret@:1", "http://u@p:1"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<Proxy> p = ParseProxyUrlWithCredentials(text, "env");
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr("topsecret")));
    EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr("top%zz")));
  }
  // Without credentials the text is quoted, to help.
  absl::StatusOr<Proxy> p = ParseProxyUrlWithCredentials("ftp://p:1", "env");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("'ftp://p:1'"));
  EXPECT_FALSE(ParseProxyUrlWithCredentials("http://::1:3128", "e").ok());
  EXPECT_FALSE(ParseProxyUrlWithCredentials("http://p:", "e").ok());
  EXPECT_FALSE(ParseProxyUrlWithCredentials("", "e").ok());
}

// --- HostPattern ---

TEST(HostPatternTest, NoProxyEntries) {
  struct Case {
    const char* entry;
    const char* host;
    bool matches;
  };
  const Case cases[] = {
      {"*", "anything.example", true},
      {"*", "10.1.2.3", true},
      // A name covers itself and its subdomains, with or without a dot.
      {"example.com", "example.com", true},
      {"example.com", "a.b.example.com", true},
      {"example.com", "badexample.com", false},
      {"example.com", "example.com.evil", false},
      {".example.com", "example.com", true},
      {".example.com", "www.example.com", true},
      {"*.example.com", "www.example.com", true},
      {"EXAMPLE.com", "www.Example.COM", true},
      {"example.com", "example.com.", true},
      {"example.com:8080", "www.example.com", true},
      // IP literals and ranges: by value, never by name.
      {"10.0.0.0/8", "10.200.0.1", true},
      {"10.0.0.0/8", "11.0.0.1", false},
      {"10.0.0.0/8", "ten.example", false},
      {"192.168.1.5", "192.168.1.5", true},
      {"192.168.1.5", "192.168.1.50", false},
      {"::1", "::1", true},
      {"::1", "0:0:0:0:0:0:0:1", true},
      {"[::1]", "::1", true},
      {"[::1]:443", "[::1]", true},
      {"fd00::/8", "fd12::5", true},
      {"fd00::/8", "fe80::1", false},
      // A suffix never matches an IP literal's digits.
      {"0.1", "10.0.0.1", false},
      {"localhost", "localhost", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.entry, " vs ", c.host));
    absl::StatusOr<HostPattern> pattern = HostPattern::ParseNoProxyEntry(c.entry);
    ASSERT_TRUE(pattern.ok()) << pattern.status();
    EXPECT_EQ(pattern->Matches(c.host), c.matches);
  }
}

TEST(HostPatternTest, MalformedEntriesAreErrors) {
  for (const char* entry :
       {"", "10.0.0.1/8", "10.0.0.0/33", "a b", "host:notaport", "[::1",
        "*.", "exa$mple.com"}) {
    SCOPED_TRACE(entry);
    absl::StatusOr<HostPattern> pattern = HostPattern::ParseNoProxyEntry(entry);
    EXPECT_EQ(pattern.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(HostPatternTest, ParsesAList) {
  absl::StatusOr<std::vector<HostPattern>> list = HostPattern::ParseNoProxyList(
      " localhost,127.0.0.1, .svc ,,.cluster.local 10.96.0.0/12 ");
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> described;
  for (const HostPattern& p : *list) described.push_back(p.Describe());
  EXPECT_THAT(described,
              ElementsAre("suffix localhost", "cidr 127.0.0.1/32",
                          "suffix svc", "suffix cluster.local",
                          "cidr 10.96.0.0/12"));
}

TEST(HostPatternTest, ExactHostAndSuffixAndCidrConstructors) {
  EXPECT_TRUE(HostPattern::ForHost("a.example.com").Matches("A.example.com"));
  EXPECT_FALSE(HostPattern::ForHost("a.example.com").Matches("b.a.example.com"));
  EXPECT_TRUE(HostPattern::ForHost("[::1]").Matches("::1"));
  EXPECT_EQ(HostPattern::ForHost("10.0.0.1").kind(), HostPattern::Kind::kCidr);
  EXPECT_TRUE(HostPattern::ForSuffix(".example.com").Matches("example.com"));
  EXPECT_TRUE(HostPattern::ForCidr(*IpRange::Parse("10.0.0.0/8"))
                  .Matches("10.1.1.1"));
  EXPECT_EQ(HostPattern::Any().Describe(), "any host");
}

// --- ProxySelector ---

class ProxySelectorTest : public ::testing::Test {
 protected:
  // corp and backup are HTTP proxies, socks a SOCKS5 one.
  ProxySelectorOptions Options() {
    ProxySelectorOptions o;
    o.proxies = {MakeProxy("corp", "corp.proxy", 3128),
                 MakeProxy("backup", "backup.proxy", 3128),
                 MakeProxy("socks", "socks.proxy", 1080,
                           Proxy::Scheme::kSocks5)};
    o.rules = {
        {HostPattern::ForHost("a.example.com"), {"socks"}},
        {HostPattern::ForSuffix("internal.example.com"), {"direct"}},
        {HostPattern::ForCidr(*IpRange::Parse("10.0.0.0/8")),
         {"socks", "direct"}},
        // Shadowed by the first rule for a.example.com: first match wins.
        {HostPattern::ForSuffix("example.com"), {"backup", "corp"}},
    };
    o.no_proxy = {HostPattern::ForSuffix("local.test"),
                  HostPattern::ForCidr(*IpRange::Parse("192.168.0.0/16"))};
    o.default_via = {"corp", "backup"};
    return o;
  }
};

TEST_F(ProxySelectorTest, SelectionTable) {
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(Options());
  ASSERT_TRUE(selector.ok()) << selector.status();
  struct Case {
    const char* scheme;
    const char* host;
    std::vector<std::string> want;
    const char* why;
  };
  const Case cases[] = {
      {"https", "a.example.com", {"socks"}, "rule 0 (host a.example.com)"},
      {"http", "A.Example.Com", {"socks"}, "rule 0 (host a.example.com)"},
      {"https", "db.internal.example.com", {"direct"},
       "rule 1 (suffix internal.example.com)"},
      {"https", "10.1.2.3", {"socks", "direct"}, "rule 2 (cidr 10.0.0.0/8)"},
      {"https", "www.example.com", {"backup", "corp"},
       "rule 3 (suffix example.com)"},
      {"https", "example.org", {"corp", "backup"}, "default_via"},
      {"http", "11.0.0.1", {"corp", "backup"}, "default_via"},
      // no_proxy comes before every rule.
      {"https", "x.local.test", {"direct"}, "no_proxy suffix local.test"},
      {"http", "192.168.7.7", {"direct"}, "no_proxy cidr 192.168.0.0/16"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.scheme, "://", c.host));
    EXPECT_EQ(Names(selector->Select(c.scheme, c.host)), c.want);
    EXPECT_EQ(selector->Explain(c.scheme, c.host), c.why);
  }
}

TEST_F(ProxySelectorTest, DefaultIsDirect) {
  ProxySelector selector;
  EXPECT_EQ(Names(selector.Select("https", "example.com")),
            std::vector<std::string>{"direct"});
  absl::StatusOr<ProxySelector> empty = ProxySelector::Create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(Names(empty->Select("http", "example.com")),
            std::vector<std::string>{"direct"});
  EXPECT_EQ(empty->Explain("http", "example.com"), "no rule: direct");
}

TEST_F(ProxySelectorTest, ChoicesShareTheConfiguredProxy) {
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(Options());
  ASSERT_TRUE(selector.ok());
  const std::vector<ProxyChoice> a = selector->Select("https", "example.org");
  const std::vector<ProxyChoice> b = selector->Select("http", "example.net");
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a[0].proxy.get(), b[0].proxy.get());
  EXPECT_EQ(a[0].Describe(), "proxy 'corp' (http://corp.proxy:3128)");
  EXPECT_EQ(a[0].Key(), "http://corp.proxy:3128");
  EXPECT_EQ(ProxyChoice::Direct().Key(), "direct");
}

TEST_F(ProxySelectorTest, CreateRejectsBadConfigurations) {
  struct Case {
    std::function<void(ProxySelectorOptions&)> change;
    const char* message;
  };
  const Case cases[] = {
      {[](ProxySelectorOptions& o) { o.rules[0].via = {"nope"}; },
       "names unknown proxy 'nope'"},
      {[](ProxySelectorOptions& o) { o.rules[1].via = {}; },
       "empty via list"},
      {[](ProxySelectorOptions& o) { o.default_via = {"corp", "corp"}; },
       "names 'corp' twice"},
      {[](ProxySelectorOptions& o) {
         o.proxies.push_back(MakeProxy("corp", "other", 1));
       },
       "two proxies are named 'corp'"},
      {[](ProxySelectorOptions& o) { o.use_environment = true; },
       "cannot be combined"},
      {[](ProxySelectorOptions& o) { o.proxies[0].port = 0; }, "no port"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    ProxySelectorOptions o = Options();
    c.change(o);
    absl::StatusOr<ProxySelector> selector = ProxySelector::Create(o);
    ASSERT_FALSE(selector.ok());
    EXPECT_EQ(selector.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(selector.status().message()), HasSubstr(c.message));
  }
}

// --- The environment ---

ProxySelectorOptions EnvOptions(std::map<std::string, std::string> env) {
  ProxySelectorOptions o;
  o.use_environment = true;
  o.environment = std::move(env);
  return o;
}

TEST(ProxySelectorEnvTest, OffByDefault) {
  ProxySelectorOptions o;
  o.environment = {{"HTTPS_PROXY", "http://p:1"}, {"HTTP_PROXY", "http://p:1"}};
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(o);
  ASSERT_TRUE(selector.ok());
  EXPECT_TRUE(selector->Select("https", "example.com")[0].is_direct());
  EXPECT_TRUE(selector->proxies().empty());
}

TEST(ProxySelectorEnvTest, SchemeSpecificVariables) {
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(
      EnvOptions({{"HTTP_PROXY", "http://plain.proxy:3128"},
                  {"HTTPS_PROXY", "socks5://secure.proxy"},
                  {"NO_PROXY", "localhost,.svc,10.0.0.0/8"}}));
  ASSERT_TRUE(selector.ok()) << selector.status();
  std::vector<ProxyChoice> http = selector->Select("http", "example.com");
  ASSERT_EQ(http.size(), 1u);
  EXPECT_EQ(http[0].proxy->Url(), "http://plain.proxy:3128");
  EXPECT_EQ(http[0].proxy->name, "env:HTTP_PROXY");
  std::vector<ProxyChoice> https = selector->Select("https", "example.com");
  ASSERT_EQ(https.size(), 1u);
  EXPECT_EQ(https[0].proxy->Url(), "socks5://secure.proxy:1080");
  EXPECT_EQ(selector->Explain("https", "example.com"), "environment HTTPS_PROXY");
  for (const char* host : {"localhost", "api.ns.svc", "10.3.3.3"}) {
    SCOPED_TRACE(host);
    EXPECT_TRUE(selector->Select("https", host)[0].is_direct());
  }
  EXPECT_EQ(selector->Explain("http", "a.svc"),
            "environment NO_PROXY suffix svc");
}

TEST(ProxySelectorEnvTest, LowerCaseWinsAndEmptyMeansUnset) {
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(
      EnvOptions({{"http_proxy", "http://lower:1"},
                  {"HTTP_PROXY", "http://upper:1"},
                  {"https_proxy", ""},
                  {"HTTPS_PROXY", "http://upper-tls:1"},
                  {"no_proxy", " "},
                  {"NO_PROXY", "*"}}));
  ASSERT_TRUE(selector.ok()) << selector.status();
  // NO_PROXY "*" applies (no_proxy is blank), so everything is direct.
  EXPECT_TRUE(selector->Select("http", "example.com")[0].is_direct());

  absl::StatusOr<ProxySelector> no_star = ProxySelector::Create(
      EnvOptions({{"http_proxy", "http://lower:1"},
                  {"HTTP_PROXY", "http://upper:1"},
                  {"https_proxy", ""},
                  {"HTTPS_PROXY", "http://upper-tls:1"}}));
  ASSERT_TRUE(no_star.ok());
  EXPECT_EQ(no_star->Select("http", "example.com")[0].proxy->host, "lower");
  EXPECT_EQ(no_star->Select("https", "example.com")[0].proxy->host,
            "upper-tls");
}

TEST(ProxySelectorEnvTest, OnlyHttpProxySetLeavesHttpsDirect) {
  absl::StatusOr<ProxySelector> selector =
      ProxySelector::Create(EnvOptions({{"http_proxy", "p:8080"}}));
  ASSERT_TRUE(selector.ok());
  EXPECT_FALSE(selector->Select("http", "example.com")[0].is_direct());
  EXPECT_TRUE(selector->Select("https", "example.com")[0].is_direct());
}

TEST(ProxySelectorEnvTest, ConfigurationComesFirst) {
  ProxySelectorOptions o = EnvOptions({{"https_proxy", "http://env:1"}});
  o.proxies = {MakeProxy("corp", "corp.proxy", 3128)};
  o.rules = {{HostPattern::ForSuffix("example.com"), {"corp"}}};
  o.no_proxy = {HostPattern::ForHost("skip.test")};
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(o);
  ASSERT_TRUE(selector.ok());
  EXPECT_EQ(Names(selector->Select("https", "www.example.com")),
            std::vector<std::string>{"corp"});
  EXPECT_TRUE(selector->Select("https", "skip.test")[0].is_direct());
  EXPECT_EQ(Names(selector->Select("https", "other.test")),
            std::vector<std::string>{"env:https_proxy"});
}

TEST(ProxySelectorEnvTest, CredentialsInTheEnvironment) {
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(
      EnvOptions({{"HTTPS_PROXY", "http://bob:s3cr%21t@p.corp:3128"}}));
  ASSERT_TRUE(selector.ok());
  const ProxyChoice choice = selector->Select("https", "x.test")[0];
  EXPECT_EQ(choice.proxy->username, "bob");
  EXPECT_EQ(choice.proxy->password, "s3cr!t");
  EXPECT_THAT(choice.Describe(), Not(HasSubstr("s3cr")));
  EXPECT_THAT(selector->Explain("https", "x.test"), Not(HasSubstr("s3cr")));
}

TEST(ProxySelectorEnvTest, BadVariablesAreNamedWithoutTheirSecrets) {
  absl::StatusOr<ProxySelector> bad_url = ProxySelector::Create(
      EnvOptions({{"HTTPS_PROXY", "http://bob:topsecret@p.corp:notaport"}}));
  ASSERT_FALSE(bad_url.ok());
  EXPECT_THAT(std::string(bad_url.status().message()),
              HasSubstr("environment variable HTTPS_PROXY"));
  EXPECT_THAT(std::string(bad_url.status().message()), Not(HasSubstr("topsecret")));
  absl::StatusOr<ProxySelector> bad_no_proxy = ProxySelector::Create(
      EnvOptions({{"no_proxy", "ok.test,10.0.0.1/8"}}));
  ASSERT_FALSE(bad_no_proxy.ok());
  EXPECT_THAT(std::string(bad_no_proxy.status().message()),
              HasSubstr("environment variable no_proxy"));
}

// --- ProxyDatabase ---

TEST(ProxyDatabaseTest, FailedProxyIsTriedLastUntilItRecoversOrExpires) {
  ProxySelectorOptions o;
  o.proxies = {MakeProxy("first", "first.proxy", 1),
               MakeProxy("second", "second.proxy", 1),
               MakeProxy("third", "third.proxy", 1)};
  o.default_via = {"first", "second", "direct", "third"};
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(o);
  ASSERT_TRUE(selector.ok());
  ProxyDatabase db(absl::Minutes(5));
  const std::vector<ProxyChoice> initial =
      selector->Select("https", "x.test", &db, kT0);
  EXPECT_EQ(Names(initial),
            (std::vector<std::string>{"first", "second", "direct", "third"}));

  db.Failed(initial[0], kT0);
  EXPECT_EQ(Names(selector->Select("https", "x.test", &db, kT0)),
            (std::vector<std::string>{"second", "direct", "third", "first"}));
  // Two failed: both last, in their configured order.
  db.Failed(initial[1], kT0);
  EXPECT_EQ(Names(selector->Select("https", "x.test", &db, kT0)),
            (std::vector<std::string>{"direct", "third", "first", "second"}));
  // "direct" can fail too.
  db.Failed(initial[2], kT0);
  EXPECT_EQ(Names(selector->Select("https", "x.test", &db, kT0)),
            (std::vector<std::string>{"third", "first", "second", "direct"}));

  db.Connected(initial[0]);
  EXPECT_EQ(Names(selector->Select("https", "x.test", &db, kT0)),
            (std::vector<std::string>{"first", "third", "second", "direct"}));
  // Failures expire.
  EXPECT_EQ(Names(selector->Select("https", "x.test", &db,
                                   kT0 + absl::Minutes(5))),
            (std::vector<std::string>{"first", "second", "direct", "third"}));
  EXPECT_TRUE(db.ShouldPostpone(initial[1], kT0 + absl::Minutes(4)));
  EXPECT_FALSE(db.ShouldPostpone(initial[1], kT0 + absl::Minutes(5)));
}

TEST(ProxyDatabaseTest, KeyedByServerNotByName) {
  ProxyDatabase db;
  Proxy a = MakeProxy("a", "same.proxy", 3128);
  Proxy b = MakeProxy("b", "same.proxy", 3128);
  b.username = "u";
  b.password = "p";
  db.Failed(ProxyChoice{std::make_shared<Proxy>(a)}, kT0);
  EXPECT_TRUE(db.ShouldPostpone(ProxyChoice{std::make_shared<Proxy>(b)}, kT0));
  EXPECT_FALSE(db.ShouldPostpone(ProxyChoice::Direct(), kT0));
  EXPECT_EQ(db.size(), 1u);
  EXPECT_EQ(db.expiry(), absl::Minutes(5));
}

TEST(ProxyDatabaseTest, ConcurrentSelectAndFailures) {
  ProxySelectorOptions o;
  o.proxies = {MakeProxy("first", "first.proxy", 1),
               MakeProxy("second", "second.proxy", 1)};
  o.default_via = {"first", "second"};
  absl::StatusOr<ProxySelector> selector = ProxySelector::Create(o);
  ASSERT_TRUE(selector.ok());
  ProxyDatabase db;
  const std::vector<ProxyChoice> choices = selector->Select("https", "x.test");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        std::vector<ProxyChoice> got = selector->Select("https", "x.test", &db);
        EXPECT_EQ(got.size(), 2u);
        if (t % 2 == 0) {
          db.Failed(choices[i % 2]);
        } else {
          db.Connected(choices[i % 2]);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(db.size(), 2u);
}

// --- The absolute-form request head ---

TEST(ProxiedRequestHeadTest, AbsoluteFormAndProxyAuthorization) {
  Request request;
  request.method = "GET";
  request.url = *ParseUrl("http://a.test:8080/x?y=1");
  request.headers = {{"Accept", "*/*"}};
  ASSERT_TRUE(ValidateRequest(request).ok());
  Proxy proxy = MakeProxy("corp", "p", 3128);
  proxy.username = "alice";
  proxy.password = "s3cret";
  EXPECT_EQ(SerializeProxiedRequestHead(request, proxy),
            "GET http://a.test:8080/x?y=1 HTTP/1.1\r\n"
            "Host: a.test:8080\r\n"
            "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n"
            "Accept: */*\r\n"
            "\r\n");
  EXPECT_EQ(SerializeProxiedRequestHead(request, proxy,
                                        /*with_credentials=*/false),
            "GET http://a.test:8080/x?y=1 HTTP/1.1\r\n"
            "Host: a.test:8080\r\n"
            "Accept: */*\r\n"
            "\r\n");

  Request post;
  post.method = "POST";
  post.url = *ParseUrl("http://[::1]/submit");
  post.body = "abc";
  EXPECT_EQ(SerializeProxiedRequestHead(post, MakeProxy("p", "p", 1)),
            "POST http://[::1]/submit HTTP/1.1\r\n"
            "Host: [::1]\r\n"
            "Content-Length: 3\r\n"
            "\r\n");
  EXPECT_EQ(ProxyAuthorizationValue(MakeProxy("p", "p", 1)), "");
  EXPECT_EQ(ProxyAuthorizationValue(proxy), "Basic YWxpY2U6czNjcmV0");
}

TEST(ProxiedRequestHeadTest, TunnelAuthority) {
  EXPECT_EQ(TunnelAuthority("a.test", 443), "a.test:443");
  EXPECT_EQ(TunnelAuthority("::1", 8443), "[::1]:8443");
}

}  // namespace
}  // namespace egress
