#include "client_core/proxy/proxy_rules.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "asio/ip/address.hpp"

namespace egress {
namespace {

constexpr absl::string_view kDirect = "direct";

// Quotes text for an error message: capped, with bytes that could forge log
// lines or confuse a terminal escaped. Only for text that holds no secret.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > kMax) out.append("...");
  out.push_back('\'');
  return out;
}

// A byte that may appear in a host name or IP literal we accept.
bool IsHostByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_' || c == ':';
}

bool IsValidHost(absl::string_view host) {
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(), IsHostByte);
}

// A URL host as patterns compare it: brackets dropped, lower case, one
// trailing dot dropped.
std::string NormalizeHost(absl::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  absl::ConsumeSuffix(&host, ".");
  return absl::AsciiStrToLower(host);
}

std::optional<asio::ip::address> IpLiteral(const std::string& host) {
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return ip;
}

IpRange SingleAddress(const asio::ip::address& ip) {
  return IpRange::FromPrefix(ip, ip.is_v4() ? 32 : 128);
}

bool ParsePort(absl::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  if (!std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return false;
  }
  uint32_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value == 0 || value > 65535) {
    return false;
  }
  *port = static_cast<uint16_t>(value);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding of userinfo.
std::optional<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = HexValue(text[i + 1]);
    const int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

std::string_view ProxySchemeName(Proxy::Scheme scheme) {
  switch (scheme) {
    case Proxy::Scheme::kHttp:
      return "http";
    case Proxy::Scheme::kSocks5:
      return "socks5";
  }
  return "unknown";
}

std::string Proxy::Authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

std::string Proxy::Url() const {
  const std::string_view scheme_name = ProxySchemeName(scheme);
  return absl::StrCat(absl::string_view(scheme_name.data(), scheme_name.size()),
                      "://", Authority());
}

std::string Proxy::Describe() const {
  return absl::StrCat("proxy ", Quote(name), " (", Url(), ")");
}

absl::Status Proxy::Validate() const {
  if (name.empty()) return absl::InvalidArgumentError("a proxy has no name");
  if (name == kDirect) {
    return absl::InvalidArgumentError(
        "a proxy cannot be named 'direct' (it means no proxy)");
  }
  const std::string who = absl::StrCat("proxy ", Quote(name));
  if (!IsValidHost(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, " has an invalid host ", Quote(host),
        " (a host name or IP literal, IPv6 without brackets)"));
  }
  if (port == 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, " has no port"));
  }
  if (username.empty() != password.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, username.empty() ? " has a password but no username"
                              : " has a username but no password"));
  }
  if (scheme == Scheme::kHttp && username.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": a Basic username cannot contain ':' (RFC 7617)"));
  }
  if (scheme == Scheme::kSocks5 &&
      (username.size() > 255 || password.size() > 255)) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": SOCKS5 usernames and passwords are at most 255 bytes "
             "(RFC 1929)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Proxy> ParseProxyUrlWithCredentials(absl::string_view text,
                                                   absl::string_view name) {
  const bool has_userinfo = absl::StrContains(text, "@");
  // Never echo a URL that may hold a password.
  const std::string what =
      has_userinfo ? std::string("the proxy URL (not shown: it holds credentials)")
                   : absl::StrCat("proxy URL ", Quote(text));
  Proxy proxy;
  proxy.name = std::string(name);
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  uint16_t default_port = 80;
  if (absl::ConsumePrefix(&rest, "http://")) {
    proxy.scheme = Proxy::Scheme::kHttp;
  } else if (absl::ConsumePrefix(&rest, "socks5://") ||
             absl::ConsumePrefix(&rest, "socks5h://")) {
    proxy.scheme = Proxy::Scheme::kSocks5;
    default_port = 1080;
  } else if (absl::StrContains(rest, "://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has an unsupported scheme (http:// and socks5:// are)"));
  }
  absl::ConsumeSuffix(&rest, "/");
  if (absl::StrContains(rest, "/") || absl::StrContains(rest, "?") ||
      absl::StrContains(rest, "#")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has a path; a proxy URL is scheme://HOST:PORT"));
  }
  if (const size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    const absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    std::optional<std::string> user = PercentDecode(userinfo.substr(0, colon));
    std::optional<std::string> pass =
        colon == absl::string_view::npos
            ? std::optional<std::string>(std::string())
            : PercentDecode(userinfo.substr(colon + 1));
    if (!user.has_value() || !pass.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has a malformed percent-escape in its credentials"));
    }
    proxy.username = *std::move(user);
    proxy.password = *std::move(pass);
  }
  absl::string_view host;
  absl::string_view port_text;
  if (absl::StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has an unterminated '[' in its host"));
    }
    host = rest.substr(1, close - 1);
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!absl::ConsumePrefix(&after, ":")) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has bytes after its IPv6 host"));
      }
      port_text = after;
      if (port_text.empty()) port_text = "-";  // "[::1]:" is an error
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != absl::string_view::npos) {
      if (rest.find(':') != colon) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has an IPv6 host without brackets"));
      }
      host = rest.substr(0, colon);
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) port_text = "-";
    } else {
      host = rest;
    }
  }
  proxy.host = absl::AsciiStrToLower(host);
  if (port_text.empty()) {
    proxy.port = default_port;
  } else if (!ParsePort(port_text, &proxy.port)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has an invalid port (1..65535)"));
  }
  if (!IsValidHost(proxy.host)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has an empty or invalid host"));
  }
  if (absl::Status s = proxy.Validate(); !s.ok()) return s;
  return proxy;
}

HostPattern HostPattern::Any() { return HostPattern(); }

HostPattern HostPattern::ForHost(absl::string_view host) {
  HostPattern p;
  const std::string name = NormalizeHost(host);
  if (std::optional<asio::ip::address> ip = IpLiteral(name); ip.has_value()) {
    p.kind_ = Kind::kCidr;
    p.cidr_ = SingleAddress(*ip);
    return p;
  }
  p.kind_ = Kind::kHost;
  p.name_ = name;
  return p;
}

HostPattern HostPattern::ForSuffix(absl::string_view domain) {
  if (!absl::ConsumePrefix(&domain, "*.")) absl::ConsumePrefix(&domain, ".");
  HostPattern p;
  p.kind_ = Kind::kSuffix;
  p.name_ = NormalizeHost(domain);
  return p;
}

HostPattern HostPattern::ForCidr(const IpRange& range) {
  HostPattern p;
  p.kind_ = Kind::kCidr;
  p.cidr_ = range;
  return p;
}

absl::StatusOr<HostPattern> HostPattern::ParseNoProxyEntry(
    absl::string_view entry) {
  entry = absl::StripAsciiWhitespace(entry);
  if (entry.empty()) {
    return absl::InvalidArgumentError("empty NO_PROXY entry");
  }
  if (entry == "*") return Any();
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("NO_PROXY entry ", Quote(entry), ": ", why));
  };
  if (absl::StrContains(entry, "/")) {
    absl::StatusOr<IpRange> range = IpRange::Parse(entry);
    if (!range.ok()) return bad(range.status().message());
    return ForCidr(*range);
  }
  absl::string_view host = entry;
  if (absl::StartsWith(entry, "[")) {
    const size_t close = entry.find(']');
    if (close == absl::string_view::npos) return bad("unterminated '['");
    host = entry.substr(1, close - 1);
    absl::string_view after = entry.substr(close + 1);
    uint16_t ignored_port = 0;
    if (!after.empty() && (!absl::ConsumePrefix(&after, ":") ||
                           !ParsePort(after, &ignored_port))) {
      return bad("expected ':port' after ']'");
    }
  } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
    const size_t colon = entry.find(':');
    uint16_t ignored_port = 0;
    if (!ParsePort(entry.substr(colon + 1), &ignored_port)) {
      return bad("invalid port");
    }
    host = entry.substr(0, colon);
  }
  const std::string normalized = NormalizeHost(host);
  if (std::optional<asio::ip::address> ip = IpLiteral(normalized);
      ip.has_value()) {
    return ForCidr(SingleAddress(*ip));
  }
  absl::string_view domain = normalized;
  if (!absl::ConsumePrefix(&domain, "*.")) absl::ConsumePrefix(&domain, ".");
  if (domain.empty() || !IsValidHost(domain) ||
      absl::StrContains(domain, ":")) {
    return bad("not a host name, domain suffix, IP address or CIDR range");
  }
  return ForSuffix(domain);
}

absl::StatusOr<std::vector<HostPattern>> HostPattern::ParseNoProxyList(
    absl::string_view list) {
  std::vector<HostPattern> out;
  for (absl::string_view entry :
       absl::StrSplit(list, absl::ByAnyChar(", \t\n"), absl::SkipEmpty())) {
    absl::StatusOr<HostPattern> pattern = ParseNoProxyEntry(entry);
    if (!pattern.ok()) return pattern.status();
    out.push_back(*std::move(pattern));
  }
  return out;
}

bool HostPattern::Matches(absl::string_view host) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kHost:
      return NormalizeHost(host) == name_;
    case Kind::kSuffix: {
      const std::string h = NormalizeHost(host);
      if (h == name_) return true;
      // An IP literal is not under any domain, whatever its digits say.
      if (IpLiteral(h).has_value()) return false;
      return h.size() > name_.size() + 1 && absl::EndsWith(h, name_) &&
             h[h.size() - name_.size() - 1] == '.';
    }
    case Kind::kCidr: {
      std::optional<asio::ip::address> ip = IpLiteral(NormalizeHost(host));
      return ip.has_value() && cidr_->Contains(*ip);
    }
  }
  return false;
}

std::string HostPattern::Describe() const {
  switch (kind_) {
    case Kind::kAny:
      return "any host";
    case Kind::kHost:
      return absl::StrCat("host ", name_);
    case Kind::kSuffix:
      return absl::StrCat("suffix ", name_);
    case Kind::kCidr:
      return absl::StrCat("cidr ", cidr_->ToString());
  }
  return "?";
}

std::string ProxyChoice::Describe() const {
  return proxy == nullptr ? std::string(kDirect) : proxy->Describe();
}

std::string ProxyChoice::Key() const {
  return proxy == nullptr ? std::string(kDirect) : proxy->Url();
}

ProxyDatabase::ProxyDatabase(absl::Duration expiry) : expiry_(expiry) {}

void ProxyDatabase::Failed(const ProxyChoice& choice, absl::Time now) {
  MutexLock lock(&mu_);
  failed_[choice.Key()] = now;
}

void ProxyDatabase::Connected(const ProxyChoice& choice) {
  MutexLock lock(&mu_);
  failed_.erase(choice.Key());
}

bool ProxyDatabase::ShouldPostpone(const ProxyChoice& choice,
                                   absl::Time now) const {
  const std::string key = choice.Key();
  MutexLock lock(&mu_);
  auto it = failed_.find(key);
  return it != failed_.end() && now - it->second < expiry_;
}

size_t ProxyDatabase::size() const {
  MutexLock lock(&mu_);
  return failed_.size();
}

std::map<std::string, std::string> ProcessProxyEnvironment() {
  std::map<std::string, std::string> env;
  for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy",
                           "HTTPS_PROXY", "no_proxy", "NO_PROXY"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      env[name] = value;
    }
  }
  return env;
}

ProxySelector::ProxySelector() : direct_{ProxyChoice::Direct()} {}

absl::StatusOr<ProxySelector> ProxySelector::Create(
    ProxySelectorOptions options) {
  ProxySelector selector;
  absl::flat_hash_map<std::string, std::shared_ptr<const Proxy>> by_name;
  for (Proxy& proxy : options.proxies) {
    if (absl::Status s = proxy.Validate(); !s.ok()) return s;
    auto shared = std::make_shared<const Proxy>(std::move(proxy));
    if (!by_name.emplace(shared->name, shared).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two proxies are named ", Quote(shared->name)));
    }
    selector.proxies_.push_back(std::move(shared));
  }

  // Names -> choices, for a rule's or default_via's list.
  const auto resolve = [&](const std::vector<std::string>& via,
                           absl::string_view what)
      -> absl::StatusOr<std::vector<ProxyChoice>> {
    if (via.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has an empty via list"));
    }
    std::vector<ProxyChoice> out;
    absl::flat_hash_set<std::string> seen;
    for (const std::string& name : via) {
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " names ", Quote(name), " twice"));
      }
      if (name == kDirect) {
        out.push_back(ProxyChoice::Direct());
        continue;
      }
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " names unknown proxy ", Quote(name)));
      }
      out.push_back(ProxyChoice{it->second});
    }
    return out;
  };

  selector.no_proxy_ = std::move(options.no_proxy);
  for (size_t i = 0; i < options.rules.size(); ++i) {
    ProxySelectorRule& rule = options.rules[i];
    absl::StatusOr<std::vector<ProxyChoice>> via = resolve(
        rule.via, absl::StrCat("proxy rule ", i, " (", rule.match.Describe(),
                               ")"));
    if (!via.ok()) return via.status();
    selector.rules_.push_back(
        CompiledRule{std::move(rule.match), *std::move(via)});
  }
  if (!options.default_via.empty()) {
    if (options.use_environment) {
      return absl::InvalidArgumentError(
          "default_via and use_environment cannot be combined (one of them "
          "decides the destinations no rule matches)");
    }
    absl::StatusOr<std::vector<ProxyChoice>> via =
        resolve(options.default_via, "default_via");
    if (!via.ok()) return via.status();
    selector.default_via_ = *std::move(via);
  }

  if (options.use_environment) {
    // The lower-case spelling first, as curl and wget read them.
    const auto lookup = [&](absl::string_view lower, absl::string_view upper)
        -> std::optional<std::pair<std::string, std::string>> {
      for (absl::string_view name : {lower, upper}) {
        auto it = options.environment.find(std::string(name));
        if (it != options.environment.end() &&
            !absl::StripAsciiWhitespace(it->second).empty()) {
          return std::make_pair(std::string(name), it->second);
        }
      }
      return std::nullopt;
    };
    if (auto no_proxy = lookup("no_proxy", "NO_PROXY"); no_proxy) {
      absl::StatusOr<std::vector<HostPattern>> list =
          HostPattern::ParseNoProxyList(no_proxy->second);
      if (!list.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "environment variable ", no_proxy->first, ": ",
            list.status().message()));
      }
      selector.env_no_proxy_ = *std::move(list);
      selector.env_no_proxy_variable_ = no_proxy->first;
    }
    const auto env_proxy =
        [&](absl::string_view lower, absl::string_view upper,
            std::vector<ProxyChoice>* out, std::string* variable)
        -> absl::Status {
      auto found = lookup(lower, upper);
      if (!found) return absl::OkStatus();
      absl::StatusOr<Proxy> proxy = ParseProxyUrlWithCredentials(
          found->second, absl::StrCat("env:", found->first));
      if (!proxy.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("environment variable ", found->first, ": ",
                         proxy.status().message()));
      }
      auto shared = std::make_shared<const Proxy>(*std::move(proxy));
      selector.proxies_.push_back(shared);
      out->push_back(ProxyChoice{std::move(shared)});
      *variable = found->first;
      return absl::OkStatus();
    };
    if (absl::Status s = env_proxy("http_proxy", "HTTP_PROXY",
                                   &selector.env_http_,
                                   &selector.env_http_variable_);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = env_proxy("https_proxy", "HTTPS_PROXY",
                                   &selector.env_https_,
                                   &selector.env_https_variable_);
        !s.ok()) {
      return s;
    }
  }
  return selector;
}

const std::vector<ProxyChoice>& ProxySelector::Decide(
    absl::string_view scheme, absl::string_view host,
    std::string* reason) const {
  for (const HostPattern& pattern : no_proxy_) {
    if (pattern.Matches(host)) {
      if (reason != nullptr) *reason = absl::StrCat("no_proxy ", pattern.Describe());
      return direct_;
    }
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].match.Matches(host)) {
      if (reason != nullptr) {
        *reason = absl::StrCat("rule ", i, " (", rules_[i].match.Describe(), ")");
      }
      return rules_[i].via;
    }
  }
  if (!default_via_.empty()) {
    if (reason != nullptr) *reason = "default_via";
    return default_via_;
  }
  const std::vector<ProxyChoice>& env =
      scheme == "https" ? env_https_ : env_http_;
  if (!env.empty()) {
    for (const HostPattern& pattern : env_no_proxy_) {
      if (pattern.Matches(host)) {
        if (reason != nullptr) {
          *reason = absl::StrCat("environment ", env_no_proxy_variable_, " ",
                                 pattern.Describe());
        }
        return direct_;
      }
    }
    if (reason != nullptr) {
      *reason = absl::StrCat("environment ", scheme == "https"
                                                 ? env_https_variable_
                                                 : env_http_variable_);
    }
    return env;
  }
  if (reason != nullptr) *reason = "no rule: direct";
  return direct_;
}

std::vector<ProxyChoice> ProxySelector::Select(absl::string_view scheme,
                                               absl::string_view host,
                                               const ProxyDatabase* database,
                                               absl::Time now) const {
  std::vector<ProxyChoice> choices = Decide(scheme, host, nullptr);
  if (database != nullptr && choices.size() > 1) {
    std::stable_partition(choices.begin(), choices.end(),
                          [&](const ProxyChoice& choice) {
                            return !database->ShouldPostpone(choice, now);
                          });
  }
  return choices;
}

std::string ProxySelector::Explain(absl::string_view scheme,
                                   absl::string_view host) const {
  std::string reason;
  Decide(scheme, host, &reason);
  return reason;
}

}  // namespace egress
