#include "client_core/route/resolver.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress {
namespace {

bool IsHostNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_';
}

absl::Status EntryError(absl::string_view entry, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("static host entry '", entry, "': ", problem));
}

// One element of an entry's IP list: "1.2.3.4" or "[::1]".
absl::StatusOr<asio::ip::address> ParseEntryIp(absl::string_view entry,
                                               absl::string_view ip) {
  asio::error_code ec;
  if (!ip.empty() && ip.front() == '[') {
    if (ip.back() != ']' || ip.size() < 2) {
      return EntryError(entry, absl::StrCat("'", ip,
                                            "' is missing its closing "
                                            "bracket"));
    }
    const std::string inner(ip.substr(1, ip.size() - 2));
    const asio::ip::address_v6 v6 = asio::ip::make_address_v6(inner, ec);
    if (!ec) return asio::ip::address(v6);
    asio::ip::make_address_v4(inner, ec);
    if (!ec) {
      return EntryError(entry, absl::StrCat("'", ip,
                                            "': only IPv6 addresses go in "
                                            "brackets"));
    }
    return EntryError(entry, absl::StrCat("'", ip, "' is not an IPv6 address"));
  }
  const std::string text(ip);
  if (ip.find(':') != absl::string_view::npos) {
    asio::ip::make_address_v6(text, ec);
    if (!ec) {
      return EntryError(
          entry, absl::StrCat("IPv6 address '", ip, "' must be in brackets: '[",
                              ip, "]'"));
    }
    return EntryError(entry, absl::StrCat("'", ip, "' is not an IP address"));
  }
  const asio::ip::address_v4 v4 = asio::ip::make_address_v4(text, ec);
  if (ec) {
    return EntryError(entry, absl::StrCat("'", ip, "' is not an IP address"));
  }
  return asio::ip::address(v4);
}

}  // namespace

asio::awaitable<absl::StatusOr<Resolution>> Resolver::ResolveWithTtl(
    const std::string& host, absl::Time deadline) {
  absl::StatusOr<std::vector<asio::ip::address>> addresses =
      co_await Resolve(host, deadline);
  if (!addresses.ok()) co_return addresses.status();
  co_return Resolution{*std::move(addresses), absl::ZeroDuration()};
}

std::optional<asio::ip::address> Resolver::IpLiteral(absl::string_view host) {
  // make_address is inet_pton underneath: dotted-quad IPv4 only. Shorthands
  // like "127.1" never get here: the URL parser rejects them.
  if (host.empty()) return std::nullopt;
  asio::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(std::string(host), ec);
  if (ec) return std::nullopt;
  return ip;
}

absl::StatusOr<StaticHostEntry> ParseStaticHostEntry(absl::string_view entry) {
  entry = absl::StripAsciiWhitespace(entry);
  if (entry.empty()) {
    return absl::InvalidArgumentError("static host entry is empty");
  }
  const size_t colon = entry.find(':');
  if (colon == absl::string_view::npos) {
    return EntryError(entry, "not of the form host:IP[,IP...]");
  }
  const absl::string_view host = entry.substr(0, colon);
  const absl::string_view list = entry.substr(colon + 1);
  if (host.empty()) return EntryError(entry, "no host before ':'");
  if (!std::all_of(host.begin(), host.end(), IsHostNameChar) ||
      host.front() == '.' || host.front() == '-') {
    return EntryError(entry, absl::StrCat("'", host,
                                          "' is not a host name (letters, "
                                          "digits, '-', '.', '_')"));
  }
  if (Resolver::IpLiteral(host).has_value()) {
    return EntryError(entry, absl::StrCat("host '", host,
                                          "' is an IP address, which is "
                                          "never resolved"));
  }
  if (list.empty()) return EntryError(entry, "no IP address after ':'");
  // curl's --resolve form, "host:port:IP", is a likely mistake (told apart
  // from an unbracketed IPv6 address, which gets its own message below).
  const absl::string_view first_ip = list.substr(0, list.find(','));
  const size_t colon2 = first_ip.find(':');
  asio::error_code v6_error;
  asio::ip::make_address_v6(std::string(first_ip), v6_error);
  if (colon2 != absl::string_view::npos && colon2 > 0 && v6_error &&
      std::all_of(first_ip.begin(), first_ip.begin() + colon2,
                  [](char c) { return absl::ascii_isdigit(c); })) {
    return EntryError(entry,
                      absl::StrCat("entries have no port (unlike curl's "
                                   "host:port:IP); write '",
                                   host, ":", list.substr(colon2 + 1), "'"));
  }

  StaticHostEntry parsed;
  parsed.host = absl::AsciiStrToLower(host);
  for (absl::string_view ip : absl::StrSplit(list, ',')) {
    ip = absl::StripAsciiWhitespace(ip);
    if (ip.empty()) return EntryError(entry, "empty IP address in the list");
    absl::StatusOr<asio::ip::address> address = ParseEntryIp(entry, ip);
    if (!address.ok()) return address.status();
    if (std::find(parsed.addresses.begin(), parsed.addresses.end(), *address) ==
        parsed.addresses.end()) {
      parsed.addresses.push_back(*address);
    }
  }
  return parsed;
}

absl::StatusOr<StaticHostMap> ParseStaticHosts(
    const std::vector<std::string>& entries) {
  StaticHostMap hosts;
  for (const std::string& entry : entries) {
    absl::StatusOr<StaticHostEntry> parsed = ParseStaticHostEntry(entry);
    if (!parsed.ok()) return parsed.status();
    auto [it, inserted] =
        hosts.try_emplace(parsed->host, std::move(parsed->addresses));
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("static host '", it->first,
                       "' is listed twice; put all its IPs in one entry"));
    }
  }
  return hosts;
}

namespace {

StaticHostMap LowercaseKeys(StaticHostMap hosts) {
  StaticHostMap lowered;
  lowered.reserve(hosts.size());
  for (auto& [host, addresses] : hosts) {
    if (addresses.empty()) continue;
    lowered[absl::AsciiStrToLower(host)] = std::move(addresses);
  }
  return lowered;
}

}  // namespace

StaticResolver::StaticResolver(StaticHostMap hosts,
                               std::shared_ptr<Resolver> fallback)
    : hosts_(LowercaseKeys(std::move(hosts))), fallback_(std::move(fallback)) {}

asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>>
StaticResolver::Resolve(const std::string& host, absl::Time deadline) {
  absl::StatusOr<Resolution> resolved = co_await ResolveWithTtl(host, deadline);
  if (!resolved.ok()) co_return resolved.status();
  co_return std::move(resolved->addresses);
}

asio::awaitable<absl::StatusOr<Resolution>> StaticResolver::ResolveWithTtl(
    const std::string& host, absl::Time deadline) {
  if (std::optional<asio::ip::address> ip = IpLiteral(host)) {
    co_return Resolution{{*ip}, absl::InfiniteDuration()};
  }
  auto it = hosts_.find(absl::AsciiStrToLower(host));
  if (it != hosts_.end()) {
    co_return Resolution{it->second, absl::InfiniteDuration()};
  }
  if (fallback_ != nullptr) {
    absl::StatusOr<Resolution> resolution =
        co_await fallback_->ResolveWithTtl(host, deadline);
    co_return resolution;
  }
  co_return absl::UnavailableError(
      absl::StrCat("no static address for host '", host, "'"));
}

}  // namespace egress
