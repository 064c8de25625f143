#include "client_core/call/redirect.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace egress {
namespace {

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// A URI reference split as RFC 3986 appendix B does; a component that is
// absent is nullopt (an empty one is "").
struct Reference {
  std::optional<std::string> scheme;
  std::optional<std::string> authority;
  std::string path;
  std::optional<std::string> query;
};

Reference Split(std::string_view text) {
  Reference r;
  const size_t fragment = text.find('#');
  if (fragment != std::string_view::npos) text = text.substr(0, fragment);
  const size_t colon = text.find_first_of(":/?");
  if (colon != std::string_view::npos && colon > 0 && text[colon] == ':') {
    r.scheme = std::string(text.substr(0, colon));
    text.remove_prefix(colon + 1);
  }
  if (absl::StartsWith(AsAbsl(text), "//")) {
    text.remove_prefix(2);
    const size_t end = text.find_first_of("/?");
    r.authority = std::string(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end);
  }
  const size_t query = text.find('?');
  r.path = std::string(text.substr(0, query));
  if (query != std::string_view::npos) {
    r.query = std::string(text.substr(query + 1));
  }
  return r;
}

// RFC 3986 section 5.2.4.
std::string RemoveDotSegments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (absl::StartsWith(AsAbsl(in), "../")) {
      in.remove_prefix(3);
    } else if (absl::StartsWith(AsAbsl(in), "./")) {
      in.remove_prefix(2);
    } else if (absl::StartsWith(AsAbsl(in), "/./")) {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (absl::StartsWith(AsAbsl(in), "/../") || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      const size_t last = out.rfind('/');
      out.erase(last == std::string::npos ? 0 : last);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      const size_t next = in.find('/', in.front() == '/' ? 1 : 0);
      out.append(in.substr(0, next));
      in = next == std::string_view::npos ? std::string_view() : in.substr(next);
    }
  }
  return out;
}

// Percent-encodes what a Location should not hold raw but browsers accept:
// space, non-ASCII bytes and "<>\"^`{|}\\". Control characters stay (the
// URL parser refuses them).
std::string EncodeLoose(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const bool encode = c == ' ' || c >= 0x80 || c == '<' || c == '>' ||
                        c == '"' || c == '^' || c == '`' || c == '{' ||
                        c == '|' || c == '}' || c == '\\';
    if (encode) {
      absl::StrAppendFormat(&out, "%%%02X", c);
    } else {
      out += ch;
    }
  }
  return out;
}

// The path of `url` (its target up to '?').
std::string_view PathOf(const Url& url) {
  const std::string_view target = url.path_and_query;
  return target.substr(0, target.find('?'));
}

std::optional<std::string_view> QueryOf(const Url& url) {
  const std::string_view target = url.path_and_query;
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  return target.substr(q + 1);
}

bool IsOneOf(std::string_view name,
             std::initializer_list<absl::string_view> names) {
  for (absl::string_view n : names) {
    if (absl::EqualsIgnoreCase(AsAbsl(name), n)) return true;
  }
  return false;
}

}  // namespace

bool IsFollowedRedirect(int status_code) {
  return status_code == 301 || status_code == 302 || status_code == 303 ||
         status_code == 307 || status_code == 308;
}

bool SameOrigin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

absl::StatusOr<Url> ResolveReference(const Url& base,
                                     std::string_view reference) {
  // Surrounding whitespace is the field value's, not the URI's.
  const absl::string_view trimmed =
      absl::StripAsciiWhitespace(AsAbsl(reference));
  if (trimmed.empty()) return absl::InvalidArgumentError("Location is empty");
  const Reference r =
      Split(EncodeLoose(std::string_view(trimmed.data(), trimmed.size())));

  std::string scheme, authority, path;
  std::optional<std::string> query;
  if (r.scheme.has_value()) {
    scheme = *r.scheme;
    if (!r.authority.has_value()) {
      // "http:foo" is a relative path in a scheme's clothes; RFC 3986's
      // strict parser takes it as absolute, and it has no host.
      return absl::InvalidArgumentError(absl::StrFormat(
          "URL has no authority: expected '//' after '%s:'",
          scheme.size() <= 16 ? scheme : scheme.substr(0, 16) + "..."));
    }
    authority = *r.authority;
    path = RemoveDotSegments(r.path);
    query = r.query;
  } else {
    scheme = base.scheme;
    if (r.authority.has_value()) {
      authority = *r.authority;
      path = RemoveDotSegments(r.path);
      query = r.query;
    } else {
      authority = base.Authority();
      if (r.path.empty()) {
        path = std::string(PathOf(base));
        if (r.query.has_value()) {
          query = r.query;
        } else if (std::optional<std::string_view> q = QueryOf(base)) {
          query = std::string(*q);
        }
      } else {
        if (r.path.front() == '/') {
          path = RemoveDotSegments(r.path);
        } else {
          // Merge (5.2.3): the base path up to its last '/'.
          const std::string_view base_path = PathOf(base);
          const size_t slash = base_path.rfind('/');
          std::string merged =
              slash == std::string_view::npos
                  ? "/" + r.path
                  : absl::StrCat(AsAbsl(base_path.substr(0, slash + 1)),
                                 r.path);
          path = RemoveDotSegments(merged);
        }
        query = r.query;
      }
    }
  }
  std::string target = absl::StrCat(scheme, "://", authority, path);
  if (query.has_value()) absl::StrAppend(&target, "?", *query);
  return ParseUrl(target);
}

absl::StatusOr<Request> RedirectRequest(const Request& request,
                                        int status_code,
                                        std::string_view location) {
  absl::StatusOr<Url> next_url = ResolveReference(request.url, location);
  if (!next_url.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "redirect (", status_code, ") from ", request.url.Redacted(),
        " has an invalid Location: ", next_url.status().message()));
  }
  if (request.url.scheme == "https" && next_url->scheme == "http" &&
      !request.allow_insecure_redirects) {
    return absl::PermissionDeniedError(absl::StrCat(
        "redirect (", status_code, ") from ", request.url.Redacted(), " to ",
        next_url->Redacted(),
        " refused: it leaves TLS (https to http); set "
        "allow_insecure_redirects to follow it"));
  }
  Request next = request;
  const bool cross_origin = !SameOrigin(request.url, *next_url);
  next.url = *std::move(next_url);
  const bool becomes_get =
      (status_code == 301 || status_code == 302 || status_code == 303) &&
      request.method != "HEAD";
  if (becomes_get) {
    next.method = "GET";
    next.body.clear();
  }
  HeaderList headers;
  headers.reserve(request.headers.size());
  for (const HeaderField& field : request.headers) {
    if (becomes_get &&
        IsOneOf(field.name, {"Content-Type", "Content-Encoding",
                             "Content-Language", "Content-Location"})) {
      continue;
    }
    if (cross_origin && IsOneOf(field.name, {"Authorization",
                                             "Proxy-Authorization", "Cookie",
                                             "Cookie2"})) {
      continue;
    }
    headers.push_back(field);
  }
  next.headers = std::move(headers);
  return next;
}

}  // namespace egress
