#include "server/config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace egress {
namespace {

constexpr int64_t kMaxCount = 2147483647;
// Secrets and PEM files are small; a bigger file is almost surely the wrong
// one (a directory of certificates, a log), and reading it would only waste
// memory.
constexpr size_t kMaxReferencedFileBytes = 1 << 20;
constexpr size_t kMaxConfigFileBytes = 16 << 20;
constexpr absl::string_view kDirect = "direct";

std::string Quote(absl::string_view text) { return absl::StrCat("'", text, "'"); }

// ---------------------------------------------------------------------------
// Addresses and host matching.

bool IsIpLiteral(absl::string_view host) { return ParseIpAddress(host).ok(); }

// Lower-cases and checks a host name or IP literal as written in the file.
// `what` is "host" or "suffix" for the hints.
absl::StatusOr<std::string> NormalizeHost(absl::string_view text,
                                          absl::string_view what) {
  std::string host = absl::AsciiStrToLower(text);
  if (host.empty()) return absl::InvalidArgumentError("is empty");
  if (absl::StrContains(host, "://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text), " is a URL; give only the host name (e.g. example.com)"));
  }
  if (absl::StrContains(host, "*")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text),
        " has a wildcard; use a suffix entry instead (suffix example.com "
        "matches example.com and every subdomain)"));
  }
  if (!host.empty() && host.front() == '[') {
    absl::StatusOr<IpAddress> ip = ParseIpAddress(host);
    if (!ip.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(text), " is not a valid IPv6 address"));
    }
    return ip->ToString();
  }
  if (absl::StatusOr<IpAddress> ip = ParseIpAddress(host); ip.ok()) {
    if (what == "suffix") {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text), " is an IP address; use a host or cidr entry"));
    }
    return ip->ToString();
  }
  if (absl::StrContains(host, ":")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text), " has a port or is a malformed address; give the ",
        what, " without a port"));
  }
  if (host.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is longer than 253 characters"));
  }
  for (char c : host) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_')) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text), " has a character not allowed in a host name"));
    }
  }
  if (host.front() == '.' || host.back() == '.' ||
      absl::StrContains(host, "..")) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " has an empty label"));
  }
  return host;
}

// A suffix may be written ".example.com" (NO_PROXY habit); the dot is dropped.
absl::StatusOr<std::string> NormalizeSuffix(absl::string_view text) {
  absl::string_view rest = text;
  absl::ConsumePrefix(&rest, ".");
  return NormalizeHost(rest, "suffix");
}

// The host a URL gives, normalised the same way (IP literals canonical).
std::string CanonicalHost(absl::string_view host) {
  if (absl::StatusOr<IpAddress> ip = ParseIpAddress(host); ip.ok()) {
    return ip->ToString();
  }
  return absl::AsciiStrToLower(host);
}

// ---------------------------------------------------------------------------
// Reading referenced files.

absl::StatusOr<std::string> ReadFileCapped(const std::string& path,
                                           size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::string content;
  char buffer[16384];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read ", path, ": ", std::strerror(saved)));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > max_bytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than ", max_bytes,
                       " bytes; is it the right file?"));
    }
  }
  close(fd);
  return content;
}

std::string ResolvePath(absl::string_view base_dir, absl::string_view path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) {
    return std::string(path);
  }
  if (base_dir.back() == '/') return absl::StrCat(base_dir, path);
  return absl::StrCat(base_dir, "/", path);
}

// What a referenced file must hold.
enum class FileKind { kToken, kCertificates, kPrivateKey };

// Reads a `*_file` field's file and checks its shape. The message never holds
// the content.
absl::StatusOr<std::string> ReadReferencedFile(const std::string& path,
                                               FileKind kind) {
  absl::StatusOr<std::string> content =
      ReadFileCapped(path, kMaxReferencedFileBytes);
  if (!content.ok()) return content.status();
  switch (kind) {
    case FileKind::kToken: {
      // Kubernetes Secrets made with `echo` or an editor end in a newline
      // that is not part of the secret.
      absl::string_view value = *content;
      while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
        value.remove_suffix(1);
      }
      if (value.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
      }
      if (absl::StrContains(value, "\n")) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, " holds more than one line; a secret is one line"));
      }
      return std::string(value);
    }
    case FileKind::kCertificates:
      if (!absl::StrContains(*content, "-----BEGIN CERTIFICATE-----")) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, " holds no PEM certificate (-----BEGIN "
                               "CERTIFICATE-----)"));
      }
      return content;
    case FileKind::kPrivateKey:
      if (!absl::StrContains(*content, "-----BEGIN ") ||
          !absl::StrContains(*content, "PRIVATE KEY-----")) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, " holds no PEM private key (-----BEGIN ... PRIVATE "
                  "KEY-----)"));
      }
      return content;
  }
  return content;
}

// ---------------------------------------------------------------------------
// The parser.

// An error about one field: where it is and what is wrong.
struct FieldProblem {
  std::string path;
  std::string problem;
};

absl::string_view KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "nothing";
  }
}

// One field as found in the file: its value node, path and line (1-based; 0
// when unknown).
struct Field {
  YAML::Node value;
  std::string path;
  int line = 0;
};

class ConfigParser {
 public:
  ConfigParser(absl::string_view source, absl::string_view base_dir)
      : source_(source), base_dir_(base_dir) {}

  absl::StatusOr<EgressdConfig> Parse(absl::string_view text);

  // Line of a field path seen while parsing, 0 if none.
  int LineOf(const std::string& path) const {
    auto it = lines_.find(path);
    return it == lines_.end() ? 0 : it->second;
  }

 private:
  using Handler = std::function<absl::Status(const Field&)>;
  using Handlers = std::vector<std::pair<std::string, Handler>>;

  absl::Status Error(const Field& field, absl::string_view problem) const {
    return ErrorAt(field.line, field.path, problem);
  }
  absl::Status ErrorAt(int line, absl::string_view path,
                       absl::string_view problem) const {
    const std::string where =
        line > 0 ? absl::StrCat(source_, ":", line) : source_;
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", problem));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", path, ": ", problem));
  }

  static int LineOfNode(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  }

  // Calls the handler of each key of the mapping `field`; a null value is an
  // empty mapping (all defaults).
  absl::Status ForEachField(const Field& field, const Handlers& handlers) {
    if (field.value.IsNull()) return absl::OkStatus();
    std::vector<std::string> known;
    for (const auto& [name, handler] : handlers) known.push_back(name);
    if (!field.value.IsMap()) {
      return Error(field, absl::StrCat("expected a mapping with fields (",
                                       absl::StrJoin(known, ", "), "), got ",
                                       KindName(field.value)));
    }
    std::set<std::string> seen;
    for (const auto& pair : field.value) {
      const YAML::Node& key = pair.first;
      const int line = LineOfNode(key);
      if (!key.IsScalar()) {
        return ErrorAt(line, field.path, "a key is not a plain name");
      }
      const std::string name = key.Scalar();
      const std::string path =
          field.path.empty() ? name : absl::StrCat(field.path, ".", name);
      if (!seen.insert(name).second) {
        return ErrorAt(line, path, "is given twice");
      }
      auto it = std::find_if(handlers.begin(), handlers.end(),
                             [&](const auto& h) { return h.first == name; });
      if (it == handlers.end()) {
        return ErrorAt(line, path,
                       absl::StrCat("unknown field (known here: ",
                                    absl::StrJoin(known, ", "), ")"));
      }
      lines_[path] = line;
      absl::Status status = it->second(Field{pair.second, path, line});
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  // Calls `each` for every element of the list `field`; null is empty.
  absl::Status ForEachElement(
      const Field& field, const std::function<absl::Status(const Field&)>& each,
      absl::string_view example) {
    if (field.value.IsNull()) return absl::OkStatus();
    if (!field.value.IsSequence()) {
      return Error(field, absl::StrCat("expected a list (e.g. ", example,
                                       "), got ", KindName(field.value)));
    }
    for (size_t i = 0; i < field.value.size(); ++i) {
      const YAML::Node element = field.value[i];
      const int element_line = LineOfNode(element);
      Field element_field{element, absl::StrCat(field.path, "[", i, "]"),
                          element_line > 0 ? element_line : field.line};
      lines_[element_field.path] = element_field.line;
      absl::Status status = each(element_field);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  // The scalar text of `field`. Messages here never quote the value, so
  // secret fields may use it.
  absl::StatusOr<std::string> Scalar(const Field& field,
                                     absl::string_view expected) const {
    if (field.value.IsNull()) {
      return Error(field, absl::StrCat("has no value (expected ", expected,
                                       "; remove the line for the default)"));
    }
    if (!field.value.IsScalar()) {
      return Error(field, absl::StrCat("expected ", expected, ", got ",
                                       KindName(field.value)));
    }
    return field.value.Scalar();
  }

  Handler String(std::string* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "a string");
      if (!text.ok()) return text.status();
      *out = *std::move(text);
      return absl::OkStatus();
    };
  }

  // Sets `out` only when the field is present, so an absent one inherits.
  Handler OptionalString(std::optional<std::string>* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "a string");
      if (!text.ok()) return text.status();
      *out = *std::move(text);
      return absl::OkStatus();
    };
  }

  Handler Bool(bool* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "true or false");
      if (!text.ok()) return text.status();
      if (*text == "true") {
        *out = true;
      } else if (*text == "false") {
        *out = false;
      } else {
        return Error(f, absl::StrCat(Quote(*text),
                                     " is not a boolean (true or false)"));
      }
      return absl::OkStatus();
    };
  }

  template <typename T>
  Handler Int(T* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "an integer");
      if (!text.ok()) return text.status();
      int64_t value = 0;
      if (!absl::SimpleAtoi(*text, &value)) {
        return Error(f, absl::StrCat(Quote(*text), " is not an integer"));
      }
      if (value < std::numeric_limits<T>::min() ||
          value > std::numeric_limits<T>::max()) {
        return Error(f, absl::StrCat(value, " is out of range"));
      }
      *out = static_cast<T>(value);
      return absl::OkStatus();
    };
  }

  Handler Duration(absl::Duration* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "a duration (e.g. 30s)");
      if (!text.ok()) return text.status();
      absl::Duration value;
      if (!absl::ParseDuration(*text, &value) ||
          value == absl::InfiniteDuration() ||
          value == -absl::InfiniteDuration()) {
        return Error(f, absl::StrCat(Quote(*text),
                                     " is not a duration (e.g. 30s, 250ms, "
                                     "5m)"));
      }
      *out = value;
      return absl::OkStatus();
    };
  }

  // Bytes: an integer, or an integer with B, KiB, MiB or GiB (Ki, Mi, Gi as
  // Kubernetes writes them).
  Handler Bytes(uint64_t* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text =
          Scalar(f, "a size in bytes (e.g. 4194304 or 4MiB)");
      if (!text.ok()) return text.status();
      absl::string_view rest = *text;
      uint64_t unit = 1;
      for (const auto& [suffix, multiplier] :
           std::vector<std::pair<absl::string_view, uint64_t>>{
               {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
               {"Ki", 1ull << 10},  {"Mi", 1ull << 20},  {"Gi", 1ull << 30},
               {"B", 1}}) {
        if (absl::ConsumeSuffix(&rest, suffix)) {
          unit = multiplier;
          break;
        }
      }
      uint64_t value = 0;
      if (rest.empty() || !absl::ascii_isdigit(rest.front()) ||
          !absl::SimpleAtoi(rest, &value) ||
          value > std::numeric_limits<uint64_t>::max() / unit) {
        return Error(f, absl::StrCat(
                            Quote(*text),
                            " is not a size (bytes, or with KiB, MiB, GiB: "
                            "e.g. 4MiB; 1000-based units like MB are not "
                            "accepted)"));
      }
      *out = value * unit;
      return absl::OkStatus();
    };
  }

  template <typename E>
  Handler Enum(E* out, std::vector<std::pair<std::string, E>> names) {
    return [this, out, names](const Field& f) -> absl::Status {
      std::vector<std::string> choices;
      for (const auto& [name, value] : names) choices.push_back(name);
      const std::string expected = absl::StrJoin(choices, ", ");
      absl::StatusOr<std::string> text =
          Scalar(f, absl::StrCat("one of ", expected));
      if (!text.ok()) return text.status();
      for (const auto& [name, value] : names) {
        if (*text == name) {
          *out = value;
          return absl::OkStatus();
        }
      }
      return Error(f, absl::StrCat(Quote(*text), " is not one of ", expected));
    };
  }

  // A secret given inline. The value never reaches a message.
  Handler SecretValue(Secret* out, bool* placeholder) {
    return [this, out, placeholder](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "a string");
      if (!text.ok()) return text.status();
      if (*text == kRedacted) {
        // Rendered output pasted back: fine beside the *_file it stands for,
        // refused alone (checked once the section is read).
        *placeholder = true;
        return absl::OkStatus();
      }
      out->value = *std::move(text);
      return absl::OkStatus();
    };
  }

  Handler StringList(std::vector<std::string>* out, absl::string_view example,
                     std::function<absl::StatusOr<std::string>(
                         absl::string_view)> normalize) {
    return [this, out, example, normalize](const Field& f) -> absl::Status {
      out->clear();
      return ForEachElement(
          f,
          [&](const Field& element) -> absl::Status {
            absl::StatusOr<std::string> text = Scalar(element, "a string");
            if (!text.ok()) return text.status();
            absl::StatusOr<std::string> value = normalize(*text);
            if (!value.ok()) return Error(element, value.status().message());
            out->push_back(*std::move(value));
            return absl::OkStatus();
          },
          example);
    };
  }

  Handler CidrList(std::vector<Cidr>* out) {
    return [this, out](const Field& f) -> absl::Status {
      out->clear();
      return ForEachElement(
          f,
          [&](const Field& element) -> absl::Status {
            absl::StatusOr<std::string> text =
                Scalar(element, "a CIDR (e.g. 10.0.0.0/8)");
            if (!text.ok()) return text.status();
            absl::StatusOr<Cidr> cidr = ParseCidr(*text);
            if (!cidr.ok()) return Error(element, cidr.status().message());
            out->push_back(*cidr);
            return absl::OkStatus();
          },
          "[10.0.0.0/8, 192.168.0.0/16]");
    };
  }

  Handler Listen(ListenAddress* out) {
    return [this, out](const Field& f) -> absl::Status {
      absl::StatusOr<std::string> text = Scalar(f, "HOST:PORT");
      if (!text.ok()) return text.status();
      absl::StatusOr<ListenAddress> address = ParseListenAddress(f.path, *text);
      if (!address.ok()) {
        // ParseListenAddress already names the field.
        return ErrorAt(f.line, "", address.status().message());
      }
      *out = *address;
      return absl::OkStatus();
    };
  }

  // Reads the secret's file if one was named; checks the inline/file pair.
  absl::Status FinishSecret(Secret* secret, bool placeholder,
                            const std::string& value_path,
                            const std::string& file_path, FileKind kind) {
    const int value_line = LineOf(value_path);
    const int file_line = LineOf(file_path);
    if (!secret->file.empty() && !secret->value.empty()) {
      return ErrorAt(value_line, value_path,
                     absl::StrCat("set both ", value_path, " and ", file_path,
                                  "; keep one"));
    }
    if (placeholder && secret->file.empty()) {
      return ErrorAt(value_line, value_path,
                     absl::StrCat(Quote(kRedacted),
                                  " is the placeholder --check_config prints; "
                                  "put the secret here or name its file in ",
                                  file_path));
    }
    if (secret->file.empty()) return absl::OkStatus();
    secret->file = ResolvePath(base_dir_, secret->file);
    absl::StatusOr<std::string> content =
        ReadReferencedFile(secret->file, kind);
    if (!content.ok()) {
      return ErrorAt(file_line, file_path, content.status().message());
    }
    secret->value = *std::move(content);
    return absl::OkStatus();
  }

  // Reads a non-secret PEM file (CA bundle, client certificate) into
  // `content`, resolving `path` in place; an empty path clears `content`.
  absl::Status ReadPemFile(std::string* path, std::string* content,
                           const std::string& field_path) {
    if (path->empty()) {
      content->clear();
      return absl::OkStatus();
    }
    *path = ResolvePath(base_dir_, *path);
    absl::StatusOr<std::string> read =
        ReadReferencedFile(*path, FileKind::kCertificates);
    if (!read.ok()) {
      return ErrorAt(LineOf(field_path), field_path, read.status().message());
    }
    *content = *std::move(read);
    return absl::OkStatus();
  }

  absl::Status ParseListeners(const Field& f, ListenersConfig* out);
  absl::Status ParseThreads(const Field& f, ThreadsConfig* out);
  absl::Status ParsePool(const Field& f, PoolConfig* out);
  absl::Status ParseTimeouts(const Field& f, TimeoutsConfig* out);
  absl::Status ParseHttp2(const Field& f, Http2Config* out);
  absl::Status ParseLimits(const Field& f, LimitsConfig* out);
  absl::Status ParseRetries(const Field& f, RetriesConfig* out);
  absl::Status ParseTls(const Field& f, TlsConfig* out);
  absl::Status ParseTlsSettings(const Field& f, TlsSettings* out,
                                HostMatch* match);
  absl::Status ParseProxy(const Field& f, ProxyConfig* out);
  absl::Status ParseProxyServer(const Field& f, ProxyServer* out);
  absl::Status ParseEgress(const Field& f, EgressConfig* out);
  absl::Status ParseLogging(const Field& f, LoggingConfig* out);
  // host / suffix / cidr keys of a list entry; exactly one must be set.
  Handlers MatchHandlers(std::optional<HostMatch>* match,
                         std::string* match_path);
  absl::Status CheckMatch(const Field& f,
                          const std::optional<HostMatch>& match) const {
    if (!match.has_value()) {
      return Error(f, "names no destination (set one of host, suffix, cidr)");
    }
    return absl::OkStatus();
  }

  std::string source_;
  std::string base_dir_;
  std::map<std::string, int> lines_;
};

ConfigParser::Handlers ConfigParser::MatchHandlers(
    std::optional<HostMatch>* match, std::string* match_path) {
  auto make = [this, match, match_path](HostMatch::Kind kind) -> Handler {
    return [this, match, match_path, kind](const Field& f) -> absl::Status {
      if (match->has_value()) {
        return Error(f, absl::StrCat("an entry names one destination; ",
                                     *match_path, " is already set"));
      }
      absl::StatusOr<std::string> text = Scalar(f, "a string");
      if (!text.ok()) return text.status();
      HostMatch m;
      m.kind = kind;
      if (kind == HostMatch::Kind::kCidr) {
        absl::StatusOr<Cidr> cidr = ParseCidr(*text);
        if (!cidr.ok()) return Error(f, cidr.status().message());
        m.cidr = *cidr;
      } else {
        absl::StatusOr<std::string> name = kind == HostMatch::Kind::kHost
                                               ? NormalizeHost(*text, "host")
                                               : NormalizeSuffix(*text);
        if (!name.ok()) return Error(f, name.status().message());
        m.name = *std::move(name);
      }
      *match = m;
      *match_path = f.path;
      return absl::OkStatus();
    };
  };
  return {{"host", make(HostMatch::Kind::kHost)},
          {"suffix", make(HostMatch::Kind::kSuffix)},
          {"cidr", make(HostMatch::Kind::kCidr)}};
}

absl::Status ConfigParser::ParseListeners(const Field& f,
                                          ListenersConfig* out) {
  bool placeholder = false;
  absl::Status status = ForEachField(
      f, {{"listen", Listen(&out->listen)},
          {"health_listen",
           [this, out](const Field& f) -> absl::Status {
             absl::StatusOr<std::string> text = Scalar(f, "HOST:PORT or off");
             if (!text.ok()) return text.status();
             if (*text == "off") {
               out->health_listen.reset();
               return absl::OkStatus();
             }
             out->health_listen.emplace();
             return Listen(&*out->health_listen)(f);
           }},
          {"admin_listen", Listen(&out->admin_listen)},
          {"metrics_listen", Listen(&out->metrics_listen)},
          {"metrics_allowed_hosts",
           StringList(&out->metrics_allowed_hosts, "[egressd.example.com]",
                      [](absl::string_view text) {
                        return NormalizeHost(text, "host");
                      })},
          {"admin_token", SecretValue(&out->admin_token, &placeholder)},
          {"admin_token_file", String(&out->admin_token.file)}});
  if (!status.ok()) return status;
  return FinishSecret(&out->admin_token, placeholder,
                      "listeners.admin_token", "listeners.admin_token_file",
                      FileKind::kToken);
}

absl::Status ConfigParser::ParseThreads(const Field& f, ThreadsConfig* out) {
  return ForEachField(
      f, {{"event_loops", Int(&out->event_loops)},
          {"completion_queues", Int(&out->completion_queues)}});
}

absl::Status ConfigParser::ParsePool(const Field& f, PoolConfig* out) {
  return ForEachField(
      f,
      {{"max_idle_connections", Int(&out->max_idle_connections)},
       {"max_idle_per_address", Int(&out->max_idle_per_address)},
       {"keep_alive", Duration(&out->keep_alive)},
       {"health_check_after_idle", Duration(&out->health_check_after_idle)},
       {"max_connections", Int(&out->max_connections)},
       {"max_connections_per_address", Int(&out->max_connections_per_address)},
       {"max_requests_in_flight", Int(&out->max_requests_in_flight)},
       {"max_requests_in_flight_per_address",
        Int(&out->max_requests_in_flight_per_address)},
       {"max_pending_per_address", Int(&out->max_pending_per_address)},
       {"pending_timeout", Duration(&out->pending_timeout)},
       {"max_connection_lifetime", Duration(&out->max_connection_lifetime)},
       {"leak_threshold", Duration(&out->leak_threshold)},
       {"partition_by_caller", Bool(&out->partition_by_caller)}});
}

absl::Status ConfigParser::ParseHttp2(const Field& f, Http2Config* out) {
  return ForEachField(
      f, {{"max_concurrent_streams", Int(&out->max_concurrent_streams)},
          {"stream_window", Bytes(&out->stream_window)},
          {"connection_window", Bytes(&out->connection_window)},
          {"ping_interval", Duration(&out->ping_interval)},
          {"ping_timeout", Duration(&out->ping_timeout)},
          {"ping_before_reuse_after_idle",
           Duration(&out->ping_before_reuse_after_idle)}});
}

absl::Status ConfigParser::ParseTimeouts(const Field& f, TimeoutsConfig* out) {
  return ForEachField(f, {{"connect", Duration(&out->connect)},
                          {"default_call", Duration(&out->default_call)},
                          {"shutdown_grace", Duration(&out->shutdown_grace)},
                          {"first_byte", Duration(&out->first_byte)},
                          {"idle_read", Duration(&out->idle_read)}});
}

absl::Status ConfigParser::ParseLimits(const Field& f, LimitsConfig* out) {
  return ForEachField(
      f, {{"max_response_body_bytes", Bytes(&out->max_response_body_bytes)},
          {"max_request_body_bytes", Bytes(&out->max_request_body_bytes)},
          {"max_request_url_bytes", Bytes(&out->max_request_url_bytes)},
          {"max_request_header_count", Int(&out->max_request_header_count)},
          {"max_request_header_bytes", Bytes(&out->max_request_header_bytes)},
          {"max_decompression_ratio", Int(&out->max_decompression_ratio)},
          {"max_decompressed_bytes", Bytes(&out->max_decompressed_bytes)},
          {"max_in_flight_per_caller", Int(&out->max_in_flight_per_caller)},
          {"caller_metadata_key", String(&out->caller_metadata_key)}});
}

absl::Status ConfigParser::ParseRetries(const Field& f, RetriesConfig* out) {
  return ForEachField(
      f, {{"budget_percent", Int(&out->budget_percent)},
          {"min_retry_concurrency", Int(&out->min_retry_concurrency)}});
}

// One TlsSettings mapping: tls.default (match == nullptr) or an entry of
// tls.destinations. `out` starts as tls.default, so unset fields inherit.
absl::Status ConfigParser::ParseTlsSettings(const Field& f, TlsSettings* out,
                                            HostMatch* match) {
  std::optional<HostMatch> found;
  std::string match_path;
  // A *_file set here replaces the inherited file; the content is read below.
  std::optional<std::string> ca_file, cert_file, key_file;
  Handlers handlers = {
      {"ca_file", OptionalString(&ca_file)},
      {"client_cert_file", OptionalString(&cert_file)},
      {"client_key_file", OptionalString(&key_file)},
      {"insecure_skip_verify", Bool(&out->insecure_skip_verify)},
      {"allow_cleartext", Bool(&out->allow_cleartext)},
      {"protocol", Enum(&out->protocol, {{"auto", HttpProtocol::kAuto},
                                         {"http1", HttpProtocol::kHttp1},
                                         {"h2", HttpProtocol::kH2},
                                         {"h2c", HttpProtocol::kH2c}})},
      {"policy", Enum(&out->policy, {{"modern", TlsPolicy::kModern},
                                     {"compatible", TlsPolicy::kCompatible}})},
  };
  if (match != nullptr) {
    Handlers match_handlers = MatchHandlers(&found, &match_path);
    handlers.insert(handlers.begin(), match_handlers.begin(),
                    match_handlers.end());
  }
  if (absl::Status s = ForEachField(f, handlers); !s.ok()) return s;
  if (match != nullptr) {
    if (absl::Status s = CheckMatch(f, found); !s.ok()) return s;
    *match = *found;
  }
  const std::string prefix = f.path;
  if (ca_file.has_value()) {
    out->ca_file = *ca_file;
    if (absl::Status s = ReadPemFile(&out->ca_file, &out->ca_pem,
                                     absl::StrCat(prefix, ".ca_file"));
        !s.ok()) {
      return s;
    }
  }
  if (cert_file.has_value()) {
    out->client_cert_file = *cert_file;
    if (absl::Status s =
            ReadPemFile(&out->client_cert_file, &out->client_cert_pem,
                        absl::StrCat(prefix, ".client_cert_file"));
        !s.ok()) {
      return s;
    }
  }
  if (key_file.has_value()) {
    out->client_key = Secret{"", *key_file};
    if (!key_file->empty()) {
      return FinishSecret(&out->client_key, /*placeholder=*/false,
                          absl::StrCat(prefix, ".client_key_file"),
                          absl::StrCat(prefix, ".client_key_file"),
                          FileKind::kPrivateKey);
    }
  }
  return absl::OkStatus();
}

absl::Status ConfigParser::ParseTls(const Field& f, TlsConfig* out) {
  // tls.default must be read before the destinations that inherit from it,
  // wherever it stands in the file.
  std::optional<Field> default_field, destinations_field;
  absl::Status status = ForEachField(
      f, {{"default",
           [&](const Field& field) {
             default_field = field;
             return absl::OkStatus();
           }},
          {"destinations", [&](const Field& field) {
             destinations_field = field;
             return absl::OkStatus();
           }}});
  if (!status.ok()) return status;
  if (default_field.has_value()) {
    status = ParseTlsSettings(*default_field, &out->default_settings, nullptr);
    if (!status.ok()) return status;
  }
  if (!destinations_field.has_value()) return absl::OkStatus();
  out->destinations.clear();
  return ForEachElement(
      *destinations_field,
      [&](const Field& element) -> absl::Status {
        TlsDestination destination;
        destination.settings = out->default_settings;
        if (!element.value.IsMap()) {
          return Error(element, absl::StrCat("expected a mapping (host or "
                                             "suffix, then settings), got ",
                                             KindName(element.value)));
        }
        absl::Status s = ParseTlsSettings(element, &destination.settings,
                                          &destination.match);
        if (!s.ok()) return s;
        out->destinations.push_back(std::move(destination));
        return absl::OkStatus();
      },
      "[{host: api.example.com, ca_file: /etc/egressd/ca.pem}]");
}

// "http://proxy.corp:3128" or "socks5://10.0.0.1:1080". Credentials in the
// URL are refused without echoing the URL (it holds a password).
absl::Status ParseProxyUrl(absl::string_view text, ProxyServer* out) {
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "http://")) {
    out->scheme = ProxyScheme::kHttp;
  } else if (absl::ConsumePrefix(&rest, "socks5://")) {
    out->scheme = ProxyScheme::kSocks5;
  } else {
    if (absl::StrContains(text, "@")) {
      return absl::InvalidArgumentError(
          "is not an http:// or socks5:// URL (value not shown: it may hold "
          "credentials)");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text),
        " is not an http:// or socks5:// URL (e.g. http://proxy.corp:3128)"));
  }
  if (absl::StrContains(rest, "@")) {
    return absl::InvalidArgumentError(
        "holds credentials (value not shown); put them in username and "
        "password_file");
  }
  absl::ConsumeSuffix(&rest, "/");
  if (absl::StrContains(rest, "/") || absl::StrContains(rest, "?")) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text), " has a path; a proxy URL is scheme://HOST:PORT"));
  }
  const size_t colon = rest.rfind(':');
  const size_t bracket = rest.rfind(']');
  if (colon == absl::string_view::npos ||
      (bracket != absl::string_view::npos && colon < bracket)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text), " has no port (e.g. http://proxy.corp:3128)"));
  }
  absl::StatusOr<std::string> host =
      NormalizeHost(rest.substr(0, colon), "host");
  if (!host.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("host ", host.status().message()));
  }
  uint32_t port = 0;
  const absl::string_view port_text = rest.substr(colon + 1);
  if (port_text.empty() || !absl::ascii_isdigit(port_text.front()) ||
      !absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " has an invalid port (1..65535)"));
  }
  out->host = *std::move(host);
  out->port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

absl::Status ConfigParser::ParseProxyServer(const Field& f, ProxyServer* out) {
  if (!f.value.IsMap()) {
    return Error(f, absl::StrCat("expected a mapping (name, url, ...), got ",
                                 KindName(f.value)));
  }
  bool placeholder = false;
  bool has_url = false;
  absl::Status status = ForEachField(
      f, {{"name", String(&out->name)},
          {"url",
           [&](const Field& field) -> absl::Status {
             // Not Scalar(): its messages would quote the value, and a URL
             // here may hold a password.
             if (!field.value.IsScalar()) {
               return Error(field, absl::StrCat("expected a URL, got ",
                                                KindName(field.value)));
             }
             absl::Status s = ParseProxyUrl(field.value.Scalar(), out);
             if (!s.ok()) return Error(field, s.message());
             has_url = true;
             return absl::OkStatus();
           }},
          {"username", String(&out->username)},
          {"password", SecretValue(&out->password, &placeholder)},
          {"password_file", String(&out->password.file)},
          {"preemptive", Bool(&out->preemptive)}});
  if (!status.ok()) return status;
  if (!has_url) return Error(f, "has no url (e.g. http://proxy.corp:3128)");
  return FinishSecret(&out->password, placeholder,
                      absl::StrCat(f.path, ".password"),
                      absl::StrCat(f.path, ".password_file"), FileKind::kToken);
}

absl::Status ConfigParser::ParseProxy(const Field& f, ProxyConfig* out) {
  auto names = [](absl::string_view text) -> absl::StatusOr<std::string> {
    return std::string(text);
  };
  auto no_proxy_entry = [&](const Field& element) -> absl::Status {
    absl::StatusOr<std::string> text = Scalar(element, "a host, suffix or CIDR");
    if (!text.ok()) return text.status();
    HostMatch m;
    if (absl::StrContains(*text, "/")) {
      absl::StatusOr<Cidr> cidr = ParseCidr(*text);
      if (!cidr.ok()) return Error(element, cidr.status().message());
      m.kind = HostMatch::Kind::kCidr;
      m.cidr = *cidr;
    } else if (IsIpLiteral(*text)) {
      m.kind = HostMatch::Kind::kHost;
      m.name = CanonicalHost(*text);
    } else {
      // NO_PROXY semantics: a name matches itself and its subdomains.
      absl::StatusOr<std::string> suffix = NormalizeSuffix(*text);
      if (!suffix.ok()) return Error(element, suffix.status().message());
      m.kind = HostMatch::Kind::kSuffix;
      m.name = *std::move(suffix);
    }
    out->no_proxy.push_back(std::move(m));
    return absl::OkStatus();
  };
  return ForEachField(
      f,
      {{"proxies",
        [&](const Field& field) {
          out->proxies.clear();
          return ForEachElement(
              field,
              [&](const Field& element) -> absl::Status {
                ProxyServer server;
                absl::Status s = ParseProxyServer(element, &server);
                if (!s.ok()) return s;
                out->proxies.push_back(std::move(server));
                return absl::OkStatus();
              },
              "[{name: corp, url: http://proxy.corp:3128}]");
        }},
       {"rules",
        [&](const Field& field) {
          out->rules.clear();
          return ForEachElement(
              field,
              [&](const Field& element) -> absl::Status {
                if (!element.value.IsMap()) {
                  return Error(element,
                               absl::StrCat("expected a mapping (host, suffix "
                                            "or cidr, and via), got ",
                                            KindName(element.value)));
                }
                std::optional<HostMatch> match;
                std::string match_path;
                ProxyRule rule;
                Handlers handlers = MatchHandlers(&match, &match_path);
                handlers.push_back(
                    {"via", StringList(&rule.via, "[corp, direct]", names)});
                absl::Status s = ForEachField(element, handlers);
                if (!s.ok()) return s;
                if (s = CheckMatch(element, match); !s.ok()) return s;
                rule.match = *match;
                out->rules.push_back(std::move(rule));
                return absl::OkStatus();
              },
              "[{suffix: example.com, via: [corp]}]");
        }},
       {"no_proxy",
        [&](const Field& field) {
          out->no_proxy.clear();
          return ForEachElement(field, no_proxy_entry,
                                "[internal.example.com, 10.0.0.0/8]");
        }},
       {"default_via", StringList(&out->default_via, "[corp]", names)},
       {"use_env_proxy", Bool(&out->use_env_proxy)}});
}

absl::Status ConfigParser::ParseEgress(const Field& f, EgressConfig* out) {
  auto host = [](absl::string_view text) { return NormalizeHost(text, "host"); };
  return ForEachField(
      f,
      {{"allow_cidrs", CidrList(&out->allow_cidrs)},
       {"deny_cidrs", CidrList(&out->deny_cidrs)},
       {"allow_hosts", StringList(&out->allow_hosts, "[api.example.com]", host)},
       {"allow_domain_suffixes",
        StringList(&out->allow_domain_suffixes, "[example.com]",
                   NormalizeSuffix)},
       {"allowed_ports",
        [&](const Field& field) {
          out->allowed_ports.clear();
          return ForEachElement(
              field,
              [&](const Field& element) -> absl::Status {
                int64_t port = 0;
                absl::Status s = Int(&port)(element);
                if (!s.ok()) return s;
                if (port < 1 || port > 65535) {
                  return Error(element, absl::StrCat(port,
                                                     " is not a port "
                                                     "(1..65535)"));
                }
                out->allowed_ports.push_back(static_cast<uint16_t>(port));
                return absl::OkStatus();
              },
              "[443, 80]");
        }},
       {"report_only", Bool(&out->report_only)}});
}

absl::Status ConfigParser::ParseLogging(const Field& f, LoggingConfig* out) {
  return ForEachField(
      f, {{"access_log", Bool(&out->access_log)},
          {"level", Enum(&out->level, {{"debug", LogLevel::kDebug},
                                       {"info", LogLevel::kInfo},
                                       {"warning", LogLevel::kWarning},
                                       {"error", LogLevel::kError}})}});
}

std::optional<FieldProblem> Validate(const EgressdConfig& config);
// protocol h2c only where no proxy can be chosen.
std::optional<FieldProblem> CheckH2cDirect(const EgressdConfig& config);

absl::StatusOr<EgressdConfig> ConfigParser::Parse(absl::string_view text) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    return ErrorAt(line, "", absl::StrCat("not valid YAML: ", e.msg));
  }
  if (documents.size() > 1) {
    return ErrorAt(0, "",
                   absl::StrCat("holds ", documents.size(),
                                " YAML documents (separated by ---); egressd "
                                "reads one"));
  }
  EgressdConfig config;
  if (documents.empty()) return config;
  Field root{documents[0], "", 1};
  if (!root.value.IsNull() && !root.value.IsMap()) {
    return ErrorAt(1, "",
                   absl::StrCat("expected a mapping of sections (listeners, "
                                "pool, ...), got ",
                                KindName(root.value)));
  }
  try {
    absl::Status status = ForEachField(
        root,
        {{"listeners",
          [&](const Field& f) { return ParseListeners(f, &config.listeners); }},
         {"threads",
          [&](const Field& f) { return ParseThreads(f, &config.threads); }},
         {"pool", [&](const Field& f) { return ParsePool(f, &config.pool); }},
         {"timeouts",
          [&](const Field& f) { return ParseTimeouts(f, &config.timeouts); }},
         {"http2", [&](const Field& f) { return ParseHttp2(f, &config.http2); }},
         {"limits",
          [&](const Field& f) { return ParseLimits(f, &config.limits); }},
         {"retries",
          [&](const Field& f) { return ParseRetries(f, &config.retries); }},
         {"tls", [&](const Field& f) { return ParseTls(f, &config.tls); }},
         {"proxy", [&](const Field& f) { return ParseProxy(f, &config.proxy); }},
         {"egress",
          [&](const Field& f) { return ParseEgress(f, &config.egress); }},
         {"logging",
          [&](const Field& f) { return ParseLogging(f, &config.logging); }}});
    if (!status.ok()) return status;
  } catch (const YAML::Exception& e) {
    // Node access does not throw on the paths above; this is a safety net so
    // a yaml-cpp surprise is an error, never a crash.
    return ErrorAt(0, "", absl::StrCat("cannot read the YAML: ", e.msg));
  }
  if (std::optional<FieldProblem> problem = Validate(config)) {
    return ErrorAt(LineOf(problem->path), problem->path, problem->problem);
  }
  return config;
}

// ---------------------------------------------------------------------------
// Validation of the whole configuration.

bool IsWildcardHost(absl::string_view host) {
  return host == "0.0.0.0" || host == "[::]" || host == "::";
}

std::optional<FieldProblem> CheckCount(absl::string_view path, int64_t value,
                                       int64_t min, int64_t max) {
  if (value < min) {
    return FieldProblem{std::string(path),
                        absl::StrCat("must be >= ", min, ", got ", value)};
  }
  if (value > max) {
    return FieldProblem{std::string(path),
                        absl::StrCat("must be <= ", max, ", got ", value)};
  }
  return std::nullopt;
}

std::optional<FieldProblem> CheckDuration(absl::string_view path,
                                          absl::Duration value,
                                          bool zero_allowed) {
  if (value < absl::ZeroDuration() ||
      (!zero_allowed && value == absl::ZeroDuration())) {
    return FieldProblem{
        std::string(path),
        absl::StrCat("must be ", zero_allowed ? ">= 0" : "> 0", ", got ",
                     absl::FormatDuration(value))};
  }
  return std::nullopt;
}

std::optional<FieldProblem> CheckClientCert(const std::string& path,
                                            const TlsSettings& settings) {
  // Named at the field that is set (it has a line), saying what is missing.
  if (settings.client_cert_file.empty() != settings.client_key.file.empty()) {
    const bool has_cert = !settings.client_cert_file.empty();
    return FieldProblem{
        absl::StrCat(path, has_cert ? ".client_cert_file" : ".client_key_file"),
        absl::StrCat("is set but ",
                     has_cert ? "client_key_file" : "client_cert_file",
                     " is not; mTLS needs both")};
  }
  return std::nullopt;
}

// First-match lists: an entry that an earlier one covers can never be used,
// which is almost surely a mistake in the order.
template <typename Entry, typename GetMatch>
std::optional<FieldProblem> CheckShadowing(absl::string_view list_path,
                                           const std::vector<Entry>& entries,
                                           GetMatch match_of) {
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const HostMatch& later = match_of(entries[i]);
      const HostMatch& earlier = match_of(entries[j]);
      if (later.ShadowedBy(earlier)) {
        return FieldProblem{
            absl::StrCat(list_path, "[", i, "]"),
            absl::StrCat(later.ToString(), " is already matched by ",
                         list_path, "[", j, "] (", earlier.ToString(),
                         "), so this entry is never used; the first match "
                         "wins: put the more specific entry first")};
      }
    }
  }
  return std::nullopt;
}

// Why listeners.admin_token is required for `l.admin_listen` bound to
// `bound`, or nullopt when it is not (loopback, or a token is set).
std::optional<std::string> AdminTokenProblem(const ListenersConfig& l,
                                             const asio::ip::address& bound) {
  if (IsLoopbackAddress(bound) || !l.admin_token.empty()) return std::nullopt;
  const bool name = !l.admin_listen.Ip().has_value();
  return absl::StrCat(
      "required because listeners.admin_listen (", l.admin_listen.ToString(),
      ")", name ? absl::StrCat(" binds ", bound.to_string(), ", which") : "",
      " is not a loopback address; set admin_token_file to a mounted Secret, "
      "or keep admin_listen on 127.0.0.1");
}

std::optional<FieldProblem> Validate(const EgressdConfig& config) {
  const ListenersConfig& l = config.listeners;
  // An IP is judged here; a name only once resolved
  // (CheckAdminListenBound), which needs the resolver.
  if (std::optional<asio::ip::address> ip = l.admin_listen.Ip()) {
    if (std::optional<std::string> problem = AdminTokenProblem(l, *ip)) {
      return FieldProblem{"listeners.admin_token", *std::move(problem)};
    }
  }
  std::vector<std::pair<const char*, const ListenAddress*>> listeners = {
      {"listeners.listen", &l.listen},
      {"listeners.admin_listen", &l.admin_listen},
      {"listeners.metrics_listen", &l.metrics_listen}};
  if (l.health_listen.has_value()) {
    listeners.emplace_back("listeners.health_listen", &*l.health_listen);
  }
  for (size_t i = 0; i < listeners.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const ListenAddress& a = *listeners[i].second;
      const ListenAddress& b = *listeners[j].second;
      if (a.port != 0 && a.port == b.port &&
          (a.host == b.host || IsWildcardHost(a.host) ||
           IsWildcardHost(b.host))) {
        return FieldProblem{
            listeners[i].first,
            absl::StrCat(a.ToString(), " is the same port as ",
                         listeners[j].first, " (", b.ToString(),
                         "); each listener needs its own")};
      }
    }
  }

  for (const auto& [path, value] : std::vector<std::pair<const char*, int64_t>>{
           {"threads.event_loops", config.threads.event_loops},
           {"threads.completion_queues", config.threads.completion_queues}}) {
    if (auto p = CheckCount(path, value, 0, 1024)) return p;
  }
  const PoolConfig& pool = config.pool;
  for (const auto& [path, value] : std::vector<std::pair<const char*, int64_t>>{
           {"pool.max_idle_connections", pool.max_idle_connections},
           {"pool.max_idle_per_address", pool.max_idle_per_address},
           {"pool.max_connections", pool.max_connections},
           {"pool.max_connections_per_address",
            pool.max_connections_per_address},
           {"pool.max_requests_in_flight", pool.max_requests_in_flight},
           {"pool.max_requests_in_flight_per_address",
            pool.max_requests_in_flight_per_address},
           {"pool.max_pending_per_address", pool.max_pending_per_address}}) {
    if (auto p = CheckCount(path, value, 0, kMaxCount)) return p;
  }
  for (const auto& [path, value, zero_allowed] :
       std::vector<std::tuple<const char*, absl::Duration, bool>>{
           {"pool.keep_alive", pool.keep_alive, false},
           {"pool.health_check_after_idle", pool.health_check_after_idle,
            true},
           {"pool.pending_timeout", pool.pending_timeout, false},
           {"pool.max_connection_lifetime", pool.max_connection_lifetime,
            true},
           {"pool.leak_threshold", pool.leak_threshold, false},
           {"timeouts.connect", config.timeouts.connect, false},
           {"timeouts.default_call", config.timeouts.default_call, false},
           {"timeouts.shutdown_grace", config.timeouts.shutdown_grace, true},
           {"timeouts.first_byte", config.timeouts.first_byte, true},
           {"timeouts.idle_read", config.timeouts.idle_read, true},
           {"http2.ping_interval", config.http2.ping_interval, true},
           {"http2.ping_timeout", config.http2.ping_timeout, false},
           {"http2.ping_before_reuse_after_idle",
            config.http2.ping_before_reuse_after_idle, true}}) {
    if (auto p = CheckDuration(path, value, zero_allowed)) return p;
  }
  if (auto p = CheckCount("http2.max_concurrent_streams",
                          config.http2.max_concurrent_streams, 0, 1 << 20)) {
    return p;
  }
  // RFC 9113 section 6.5.2: windows are 1..2^31-1 (and a stream window below
  // the 64 KiB default would only slow every stream).
  for (const auto& [path, value] : std::vector<std::pair<const char*, uint64_t>>{
           {"http2.stream_window", config.http2.stream_window},
           {"http2.connection_window", config.http2.connection_window}}) {
    if (auto p = CheckCount(path, static_cast<int64_t>(std::min<uint64_t>(
                                      value, uint64_t{1} << 40)),
                            65535, (int64_t{1} << 31) - 1)) {
      return p;
    }
  }
  for (const auto& [path, value] :
       std::vector<std::pair<const char*, uint64_t>>{
           {"limits.max_response_body_bytes",
            config.limits.max_response_body_bytes},
           {"limits.max_request_body_bytes",
            config.limits.max_request_body_bytes}}) {
    if (value == 0) {
      return FieldProblem{path, "must be > 0 (0 would refuse every body)"};
    }
    if (value > static_cast<uint64_t>(kMaxCount)) {
      return FieldProblem{
          path, absl::StrCat("must be <= ", kMaxCount,
                             " (the largest protobuf message), got ", value)};
    }
  }
  const LimitsConfig& limits = config.limits;
  for (const auto& [path, value] :
       std::vector<std::pair<const char*, uint64_t>>{
           {"limits.max_request_url_bytes", limits.max_request_url_bytes},
           {"limits.max_request_header_bytes",
            limits.max_request_header_bytes}}) {
    if (value > static_cast<uint64_t>(kMaxCount)) {
      return FieldProblem{path, absl::StrCat("must be <= ", kMaxCount,
                                             " (0: no limit), got ", value)};
    }
  }
  if (limits.max_decompressed_bytes > (uint64_t{1} << 50)) {
    return FieldProblem{"limits.max_decompressed_bytes",
                        absl::StrCat("must be <= 1PiB (0: no limit), got ",
                                     limits.max_decompressed_bytes)};
  }
  for (const auto& [path, value, max] :
       std::vector<std::tuple<const char*, int64_t, int64_t>>{
           {"limits.max_request_header_count", limits.max_request_header_count,
            kMaxCount},
           {"limits.max_decompression_ratio", limits.max_decompression_ratio,
            1000000},
           {"limits.max_in_flight_per_caller", limits.max_in_flight_per_caller,
            kMaxCount},
           {"retries.budget_percent", config.retries.budget_percent, 100},
           {"retries.min_retry_concurrency",
            config.retries.min_retry_concurrency, kMaxCount}}) {
    if (auto p = CheckCount(path, value, 0, max)) return p;
  }
  if (!limits.caller_metadata_key.empty()) {
    // gRPC metadata keys: lower-case token characters; "grpc-" is
    // reserved, "-bin" marks binary values (not an identity to show).
    const std::string& key = limits.caller_metadata_key;
    const bool valid = std::all_of(key.begin(), key.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
             c == '_' || c == '.';
    });
    if (!valid || absl::StartsWith(key, "grpc-") ||
        absl::EndsWith(key, "-bin") || key == "authorization") {
      return FieldProblem{
          "limits.caller_metadata_key",
          absl::StrCat(Quote(key),
                       " is not a usable gRPC metadata key (lower-case "
                       "letters, digits, '-', '_', '.'; not grpc-*, *-bin or "
                       "authorization), e.g. x-egress-caller")};
    }
  }

  if (auto p = CheckClientCert("tls.default", config.tls.default_settings)) {
    return p;
  }
  for (size_t i = 0; i < config.tls.destinations.size(); ++i) {
    if (auto p = CheckClientCert(absl::StrCat("tls.destinations[", i, "]"),
                                 config.tls.destinations[i].settings)) {
      return p;
    }
  }
  if (auto p = CheckShadowing(
          "tls.destinations", config.tls.destinations,
          [](const TlsDestination& d) -> const HostMatch& { return d.match; })) {
    return p;
  }

  const ProxyConfig& proxy = config.proxy;
  std::set<std::string> proxy_names;
  for (size_t i = 0; i < proxy.proxies.size(); ++i) {
    const ProxyServer& server = proxy.proxies[i];
    const std::string path = absl::StrCat("proxy.proxies[", i, "]");
    if (server.name.empty()) {
      return FieldProblem{absl::StrCat(path, ".name"),
                          "is missing (rules refer to proxies by name)"};
    }
    if (server.name == kDirect) {
      return FieldProblem{absl::StrCat(path, ".name"),
                          "'direct' is reserved (it means no proxy)"};
    }
    if (!proxy_names.insert(server.name).second) {
      return FieldProblem{absl::StrCat(path, ".name"),
                          absl::StrCat(Quote(server.name),
                                       " names two proxies")};
    }
    if (!server.username.empty() && server.password.empty()) {
      return FieldProblem{absl::StrCat(path, ".password"),
                          "username is set but neither password nor "
                          "password_file"};
    }
    if (server.username.empty() && !server.password.empty()) {
      return FieldProblem{absl::StrCat(path, ".username"),
                          "a password is set but no username"};
    }
  }
  auto check_via = [&](const std::string& path,
                       const std::vector<std::string>& via,
                       bool allow_empty) -> std::optional<FieldProblem> {
    if (via.empty() && !allow_empty) {
      return FieldProblem{path,
                          "is empty; list proxy names (or direct) to try in "
                          "order"};
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < via.size(); ++i) {
      const std::string element = absl::StrCat(path, "[", i, "]");
      if (via[i] != kDirect && proxy_names.count(via[i]) == 0) {
        std::vector<std::string> known(proxy_names.begin(), proxy_names.end());
        known.push_back(std::string(kDirect));
        return FieldProblem{
            element, absl::StrCat("no proxy named ", Quote(via[i]),
                                  " (known: ", absl::StrJoin(known, ", "),
                                  ")")};
      }
      if (!seen.insert(via[i]).second) {
        return FieldProblem{element,
                            absl::StrCat(Quote(via[i]), " is listed twice")};
      }
    }
    return std::nullopt;
  };
  for (size_t i = 0; i < proxy.rules.size(); ++i) {
    if (auto p = check_via(absl::StrCat("proxy.rules[", i, "].via"),
                           proxy.rules[i].via, false)) {
      return p;
    }
  }
  if (auto p = CheckShadowing(
          "proxy.rules", proxy.rules,
          [](const ProxyRule& r) -> const HostMatch& { return r.match; })) {
    return p;
  }
  if (auto p = check_via("proxy.default_via", proxy.default_via, true)) {
    return p;
  }
  if (proxy.use_env_proxy && !proxy.default_via.empty()) {
    return FieldProblem{
        "proxy.use_env_proxy",
        "cannot be combined with proxy.default_via: both decide the proxy of "
        "destinations no rule matches; keep one"};
  }
  return CheckH2cDirect(config);
}

std::optional<FieldProblem> CheckH2cDirect(const EgressdConfig& config) {
  // h2c (prior knowledge) needs a TCP connection to the origin itself: an
  // HTTP proxy carries http:// requests as HTTP/1.1, so egressd would speak
  // HTTP/1.1 instead, silently. Refused here rather than ignored.
  const ProxyConfig& proxy = config.proxy;
  const auto uses_proxy = [](const std::vector<std::string>& via) {
    return std::any_of(via.begin(), via.end(),
                       [](const std::string& v) { return v != kDirect; });
  };
  // Some host `match` covers (all hosts when null) may go through a proxy:
  // the name of the setting that sends it there, or "".
  const auto proxied = [&](const HostMatch* match) -> std::string {
    const auto overlaps = [&](const HostMatch& other) {
      return match == nullptr || match->ShadowedBy(other) ||
             other.ShadowedBy(*match);
    };
    const auto covered = [&](const HostMatch& other) {
      return match != nullptr && match->ShadowedBy(other);
    };
    for (const HostMatch& m : proxy.no_proxy) {
      if (covered(m)) return "";
    }
    for (size_t i = 0; i < proxy.rules.size(); ++i) {
      const ProxyRule& rule = proxy.rules[i];
      if (!overlaps(rule.match)) continue;
      if (uses_proxy(rule.via)) return absl::StrCat("proxy.rules[", i, "]");
      if (covered(rule.match)) return "";  // every such host goes direct
    }
    if (uses_proxy(proxy.default_via)) return "proxy.default_via";
    if (proxy.use_env_proxy) return "proxy.use_env_proxy";
    return "";
  };
  const auto problem = [](std::string path, const std::string& via) {
    return FieldProblem{
        std::move(path),
        absl::StrCat("protocol h2c needs a direct connection, but ", via,
                     " may send these destinations through a proxy (which "
                     "would carry them as HTTP/1.1); route them direct "
                     "(no_proxy, or a rule with via: [direct] first) or use "
                     "another protocol")};
  };
  for (size_t i = 0; i < config.tls.destinations.size(); ++i) {
    const TlsDestination& d = config.tls.destinations[i];
    if (d.settings.protocol != HttpProtocol::kH2c) continue;
    if (std::string via = proxied(&d.match); !via.empty()) {
      return problem(absl::StrCat("tls.destinations[", i, "].protocol"), via);
    }
  }
  if (config.tls.default_settings.protocol == HttpProtocol::kH2c) {
    if (std::string via = proxied(nullptr); !via.empty()) {
      return problem("tls.default.protocol", via);
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Rendering.

// A YAML value to print: kept apart from yaml-cpp's Node so that strings are
// always quoted (YAML 1.1 readers take a plain `yes` or `0.1` as non-strings)
// and so that the same tree drives ChangedFromDefaults.
struct Out {
  enum class Kind { kScalar, kMap, kList };
  Kind kind = Kind::kScalar;
  std::string text;
  bool quoted = false;
  std::vector<std::pair<std::string, Out>> fields;
  std::vector<Out> elements;

  static Out Plain(std::string text) {
    Out out;
    out.text = std::move(text);
    return out;
  }
  static Out Str(std::string text) {
    Out out = Plain(std::move(text));
    out.quoted = true;
    return out;
  }
  static Out Map() {
    Out out;
    out.kind = Kind::kMap;
    return out;
  }
  static Out List() {
    Out out;
    out.kind = Kind::kList;
    return out;
  }
  Out& Add(std::string key, Out value) {
    fields.emplace_back(std::move(key), std::move(value));
    return *this;
  }
};

Out Bool(bool value) { return Out::Plain(value ? "true" : "false"); }
Out Num(int64_t value) { return Out::Plain(absl::StrCat(value)); }
Out Dur(absl::Duration value) {
  // FormatDuration writes "0" for zero; "0s" reads as a duration.
  return Out::Plain(value == absl::ZeroDuration() ? "0s"
                                                   : absl::FormatDuration(value));
}
Out SecretOut(const Secret& secret) {
  return Out::Str(secret.empty() ? "" : std::string(kRedacted));
}

void AddMatch(Out& entry, const HostMatch& match) {
  switch (match.kind) {
    case HostMatch::Kind::kHost:
      entry.Add("host", Out::Str(match.name));
      break;
    case HostMatch::Kind::kSuffix:
      entry.Add("suffix", Out::Str(match.name));
      break;
    case HostMatch::Kind::kCidr:
      entry.Add("cidr", Out::Str(match.cidr.ToString()));
      break;
  }
}

Out StrList(const std::vector<std::string>& values) {
  Out list = Out::List();
  for (const std::string& v : values) list.elements.push_back(Out::Str(v));
  return list;
}

Out TlsOut(const TlsSettings& s, const HostMatch* match) {
  Out out = Out::Map();
  if (match != nullptr) AddMatch(out, *match);
  out.Add("ca_file", Out::Str(s.ca_file))
      .Add("client_cert_file", Out::Str(s.client_cert_file))
      .Add("client_key_file", Out::Str(s.client_key.file))
      .Add("insecure_skip_verify", Bool(s.insecure_skip_verify))
      .Add("allow_cleartext", Bool(s.allow_cleartext))
      .Add("protocol", Out::Plain(std::string(HttpProtocolName(s.protocol))))
      .Add("policy", Out::Plain(std::string(TlsPolicyName(s.policy))));
  return out;
}

Out ToOut(const EgressdConfig& c) {
  Out root = Out::Map();
  const ListenersConfig& l = c.listeners;
  root.Add("listeners",
           Out::Map()
               .Add("listen", Out::Str(l.listen.ToString()))
               .Add("health_listen",
                    Out::Str(l.health_listen.has_value()
                                 ? l.health_listen->ToString()
                                 : std::string("off")))
               .Add("admin_listen", Out::Str(l.admin_listen.ToString()))
               .Add("metrics_listen", Out::Str(l.metrics_listen.ToString()))
               .Add("metrics_allowed_hosts", StrList(l.metrics_allowed_hosts))
               .Add("admin_token", SecretOut(l.admin_token))
               .Add("admin_token_file", Out::Str(l.admin_token.file)));
  root.Add("threads",
           Out::Map()
               .Add("event_loops", Num(c.threads.event_loops))
               .Add("completion_queues", Num(c.threads.completion_queues)));
  const PoolConfig& p = c.pool;
  root.Add("pool",
           Out::Map()
               .Add("max_idle_connections", Num(p.max_idle_connections))
               .Add("max_idle_per_address", Num(p.max_idle_per_address))
               .Add("keep_alive", Dur(p.keep_alive))
               .Add("health_check_after_idle", Dur(p.health_check_after_idle))
               .Add("partition_by_caller", Bool(p.partition_by_caller))
               .Add("max_connections", Num(p.max_connections))
               .Add("max_connections_per_address",
                    Num(p.max_connections_per_address))
               .Add("max_requests_in_flight", Num(p.max_requests_in_flight))
               .Add("max_requests_in_flight_per_address",
                    Num(p.max_requests_in_flight_per_address))
               .Add("max_pending_per_address", Num(p.max_pending_per_address))
               .Add("pending_timeout", Dur(p.pending_timeout))
               .Add("max_connection_lifetime", Dur(p.max_connection_lifetime))
               .Add("leak_threshold", Dur(p.leak_threshold)));
  root.Add("http2",
           Out::Map()
               .Add("max_concurrent_streams",
                    Num(c.http2.max_concurrent_streams))
               .Add("stream_window", Num(c.http2.stream_window))
               .Add("connection_window", Num(c.http2.connection_window))
               .Add("ping_interval", Dur(c.http2.ping_interval))
               .Add("ping_timeout", Dur(c.http2.ping_timeout))
               .Add("ping_before_reuse_after_idle",
                    Dur(c.http2.ping_before_reuse_after_idle)));
  root.Add("timeouts",
           Out::Map()
               .Add("connect", Dur(c.timeouts.connect))
               .Add("default_call", Dur(c.timeouts.default_call))
               .Add("shutdown_grace", Dur(c.timeouts.shutdown_grace))
               .Add("first_byte", Dur(c.timeouts.first_byte))
               .Add("idle_read", Dur(c.timeouts.idle_read)));
  root.Add("limits",
           Out::Map()
               .Add("max_response_body_bytes",
                    Num(static_cast<int64_t>(c.limits.max_response_body_bytes)))
               .Add("max_request_body_bytes",
                    Num(static_cast<int64_t>(c.limits.max_request_body_bytes)))
               .Add("max_request_url_bytes",
                    Num(static_cast<int64_t>(c.limits.max_request_url_bytes)))
               .Add("max_request_header_count",
                    Num(c.limits.max_request_header_count))
               .Add("max_request_header_bytes",
                    Num(static_cast<int64_t>(
                        c.limits.max_request_header_bytes)))
               .Add("max_decompression_ratio",
                    Num(c.limits.max_decompression_ratio))
               .Add("max_decompressed_bytes",
                    Num(static_cast<int64_t>(c.limits.max_decompressed_bytes)))
               .Add("max_in_flight_per_caller",
                    Num(c.limits.max_in_flight_per_caller))
               .Add("caller_metadata_key",
                    Out::Str(c.limits.caller_metadata_key)));
  root.Add("retries",
           Out::Map()
               .Add("budget_percent", Num(c.retries.budget_percent))
               .Add("min_retry_concurrency",
                    Num(c.retries.min_retry_concurrency)));
  Out destinations = Out::List();
  for (const TlsDestination& d : c.tls.destinations) {
    destinations.elements.push_back(TlsOut(d.settings, &d.match));
  }
  root.Add("tls", Out::Map()
                      .Add("default", TlsOut(c.tls.default_settings, nullptr))
                      .Add("destinations", std::move(destinations)));
  Out proxies = Out::List();
  for (const ProxyServer& s : c.proxy.proxies) {
    proxies.elements.push_back(
        Out::Map()
            .Add("name", Out::Str(s.name))
            .Add("url", Out::Str(s.Url()))
            .Add("username", Out::Str(s.username))
            .Add("password", SecretOut(s.password))
            .Add("password_file", Out::Str(s.password.file))
            .Add("preemptive", Bool(s.preemptive)));
  }
  Out rules = Out::List();
  for (const ProxyRule& r : c.proxy.rules) {
    Out rule = Out::Map();
    AddMatch(rule, r.match);
    rule.Add("via", StrList(r.via));
    rules.elements.push_back(std::move(rule));
  }
  Out no_proxy = Out::List();
  for (const HostMatch& m : c.proxy.no_proxy) {
    no_proxy.elements.push_back(Out::Str(
        m.kind == HostMatch::Kind::kCidr ? m.cidr.ToString() : m.name));
  }
  root.Add("proxy", Out::Map()
                        .Add("proxies", std::move(proxies))
                        .Add("rules", std::move(rules))
                        .Add("no_proxy", std::move(no_proxy))
                        .Add("default_via", StrList(c.proxy.default_via))
                        .Add("use_env_proxy", Bool(c.proxy.use_env_proxy)));
  auto cidrs = [](const std::vector<Cidr>& values) {
    Out list = Out::List();
    for (const Cidr& v : values) list.elements.push_back(Out::Str(v.ToString()));
    return list;
  };
  Out ports = Out::List();
  for (uint16_t port : c.egress.allowed_ports) ports.elements.push_back(Num(port));
  root.Add("egress",
           Out::Map()
               .Add("allow_cidrs", cidrs(c.egress.allow_cidrs))
               .Add("deny_cidrs", cidrs(c.egress.deny_cidrs))
               .Add("allow_hosts", StrList(c.egress.allow_hosts))
               .Add("allow_domain_suffixes",
                    StrList(c.egress.allow_domain_suffixes))
               .Add("allowed_ports", std::move(ports))
               .Add("report_only", Bool(c.egress.report_only)));
  root.Add("logging",
           Out::Map()
               .Add("access_log", Bool(c.logging.access_log))
               .Add("level",
                    Out::Plain(std::string(LogLevelName(c.logging.level)))));
  return root;
}

void Emit(YAML::Emitter& emitter, const Out& out) {
  switch (out.kind) {
    case Out::Kind::kScalar:
      if (out.quoted) {
        emitter << YAML::DoubleQuoted << out.text;
      } else {
        emitter << out.text;
      }
      return;
    case Out::Kind::kMap:
      emitter << YAML::BeginMap;
      for (const auto& [key, value] : out.fields) {
        emitter << YAML::Key << key << YAML::Value;
        Emit(emitter, value);
      }
      emitter << YAML::EndMap;
      return;
    case Out::Kind::kList:
      // Lists of scalars (CIDRs, names, ports) read best on one line.
      if (std::all_of(out.elements.begin(), out.elements.end(),
                      [](const Out& e) { return e.kind == Out::Kind::kScalar; })) {
        emitter << YAML::Flow;
      }
      emitter << YAML::BeginSeq;
      for (const Out& element : out.elements) Emit(emitter, element);
      emitter << YAML::EndSeq;
      return;
  }
}

// Field path → printed value; a list is one entry (its whole YAML).
void Flatten(const Out& out, const std::string& path,
             std::vector<std::pair<std::string, std::string>>* flat) {
  if (out.kind == Out::Kind::kMap) {
    for (const auto& [key, value] : out.fields) {
      Flatten(value, path.empty() ? key : absl::StrCat(path, ".", key), flat);
    }
    return;
  }
  if (out.kind == Out::Kind::kList) {
    YAML::Emitter emitter;
    emitter << YAML::Flow;
    Emit(emitter, out);
    flat->emplace_back(path, emitter.c_str());
    return;
  }
  flat->emplace_back(path, out.text);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions.

std::string IpAddress::ToString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_ipv6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof(buffer));
  return buffer;
}

absl::StatusOr<IpAddress> ParseIpAddress(absl::string_view text) {
  absl::string_view inner = text;
  const bool bracketed =
      absl::ConsumePrefix(&inner, "[") && absl::ConsumeSuffix(&inner, "]");
  const std::string s(inner);
  IpAddress address;
  if (!bracketed && inet_pton(AF_INET, s.c_str(), address.bytes.data()) == 1) {
    return address;
  }
  if (inet_pton(AF_INET6, s.c_str(), address.bytes.data()) == 1) {
    address.is_ipv6 = true;
    return address;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Quote(text), " is not an IP address"));
}

bool Cidr::Contains(const IpAddress& address) const {
  if (address.is_ipv6 != base.is_ipv6) return false;
  int bits = prefix_length;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask =
        bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((address.bytes[i] & mask) != base.bytes[i]) return false;
  }
  return true;
}

bool Cidr::Covers(const Cidr& other) const {
  return other.base.is_ipv6 == base.is_ipv6 &&
         other.prefix_length >= prefix_length && Contains(other.base);
}

std::string Cidr::ToString() const {
  return absl::StrCat(base.ToString(), "/", prefix_length);
}

absl::StatusOr<Cidr> ParseCidr(absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        Quote(text), " ", why, " (e.g. 10.0.0.0/8, fd00::/8)"));
  };
  const size_t slash = text.find('/');
  absl::StatusOr<IpAddress> base = ParseIpAddress(text.substr(0, slash));
  if (!base.ok()) return bad("is not a CIDR range");
  const int max_length = base->is_ipv6 ? 128 : 32;
  int length = max_length;
  if (slash != absl::string_view::npos) {
    const absl::string_view length_text = text.substr(slash + 1);
    if (length_text.empty() || !absl::ascii_isdigit(length_text.front()) ||
        !absl::SimpleAtoi(length_text, &length) || length > max_length) {
      return bad(absl::StrCat("has an invalid prefix length (0..", max_length,
                              ")"));
    }
  }
  Cidr cidr;
  cidr.base = *base;
  cidr.prefix_length = length;
  // Clear the host bits to see whether any were set.
  Cidr masked = cidr;
  for (int bit = length; bit < max_length; ++bit) {
    masked.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (!(masked.base == cidr.base)) {
    return bad(absl::StrCat("has host bits set; did you mean ",
                            masked.ToString(), "?"));
  }
  return cidr;
}

bool HostHasDomainSuffix(absl::string_view host, absl::string_view suffix) {
  if (suffix.empty() || host.size() < suffix.size()) return false;
  if (!absl::EndsWith(host, suffix)) return false;
  return host.size() == suffix.size() ||
         host[host.size() - suffix.size() - 1] == '.';
}

bool HostMatch::Matches(absl::string_view host) const {
  const std::string canonical = CanonicalHost(host);
  switch (kind) {
    case Kind::kHost:
      return canonical == name;
    case Kind::kSuffix:
      return !IsIpLiteral(canonical) && HostHasDomainSuffix(canonical, name);
    case Kind::kCidr: {
      absl::StatusOr<IpAddress> ip = ParseIpAddress(canonical);
      return ip.ok() && cidr.Contains(*ip);
    }
  }
  return false;
}

bool HostMatch::ShadowedBy(const HostMatch& other) const {
  switch (kind) {
    case Kind::kHost:
      return other.Matches(name);
    case Kind::kSuffix:
      return other.kind == Kind::kSuffix &&
             HostHasDomainSuffix(name, other.name);
    case Kind::kCidr:
      if (other.kind == Kind::kCidr) return other.cidr.Covers(cidr);
      // A host entry covers a CIDR only if the range is that one address.
      return other.kind == Kind::kHost &&
             cidr.prefix_length == (cidr.base.is_ipv6 ? 128 : 32) &&
             other.name == cidr.base.ToString();
  }
  return false;
}

std::string HostMatch::ToString() const {
  switch (kind) {
    case Kind::kHost:
      return absl::StrCat("host ", name);
    case Kind::kSuffix:
      return absl::StrCat("suffix ", name);
    case Kind::kCidr:
      return absl::StrCat("cidr ", cidr.ToString());
  }
  return "";
}

const TlsSettings& TlsConfig::For(absl::string_view host) const {
  for (const TlsDestination& d : destinations) {
    if (d.match.Matches(host)) return d.settings;
  }
  return default_settings;
}

std::string ProxyServer::Url() const {
  const std::string printed_host =
      absl::StrContains(host, ":") ? absl::StrCat("[", host, "]") : host;
  return absl::StrCat(scheme == ProxyScheme::kHttp ? "http" : "socks5", "://",
                      printed_host, ":", port);
}

absl::StatusOr<EgressdConfig> ParseConfigYaml(absl::string_view text,
                                              absl::string_view source,
                                              absl::string_view base_dir) {
  ConfigParser parser(source, base_dir);
  return parser.Parse(text);
}

absl::StatusOr<EgressdConfig> LoadConfigFile(absl::string_view path) {
  const std::string file(path);
  absl::StatusOr<std::string> text = ReadFileCapped(file, kMaxConfigFileBytes);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file: ", text.status().message()));
  }
  const size_t slash = file.rfind('/');
  const std::string base_dir =
      slash == std::string::npos ? "" : file.substr(0, slash + 1);
  return ParseConfigYaml(*text, file, base_dir);
}

absl::Status ValidateConfig(const EgressdConfig& config) {
  if (std::optional<FieldProblem> problem = Validate(config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(problem->path, ": ", problem->problem));
  }
  return absl::OkStatus();
}

absl::Status CheckAdminListenBound(const ListenersConfig& listeners,
                                   const asio::ip::address& bound) {
  if (std::optional<std::string> problem =
          AdminTokenProblem(listeners, bound)) {
    return absl::InvalidArgumentError(
        absl::StrCat("listeners.admin_token: ", *problem));
  }
  return absl::OkStatus();
}

absl::Status CheckListenersResolve(const EgressdConfig& config) {
  const ListenersConfig& l = config.listeners;
  for (const auto& [path, address] :
       std::vector<std::pair<const char*, const ListenAddress*>>{
           {"listeners.listen", &l.listen},
           {"listeners.admin_listen", &l.admin_listen},
           {"listeners.metrics_listen", &l.metrics_listen},
           {"listeners.health_listen",
            l.health_listen.has_value() ? &*l.health_listen : nullptr}}) {
    if (address == nullptr || address->host.empty()) continue;  // off
    absl::StatusOr<asio::ip::tcp::endpoint> bound =
        ResolveListenAddress(*address);
    if (!bound.ok()) {
      return absl::Status(bound.status().code(),
                          absl::StrCat(path, ": ", bound.status().message()));
    }
    if (address == &l.admin_listen) {
      if (absl::Status s = CheckAdminListenBound(l, bound->address());
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> ConfigWarnings(const EgressdConfig& config) {
  std::vector<std::string> warnings;
  const auto insecure = [&](const std::string& where) {
    warnings.push_back(absl::StrCat(
        where,
        ": insecure_skip_verify is on: certificates are NOT verified, so "
        "anyone on the network path can read and change this traffic"));
  };
  if (config.tls.default_settings.insecure_skip_verify) {
    insecure("tls.default (every destination without its own entry)");
  }
  for (size_t i = 0; i < config.tls.destinations.size(); ++i) {
    const TlsDestination& d = config.tls.destinations[i];
    if (d.settings.insecure_skip_verify) {
      insecure(absl::StrCat("tls.destinations[", i, "] (",
                            d.match.ToString(), ")"));
    }
  }
  if (config.listeners.listen.Ip().has_value() &&
      !config.listeners.listen.IsLoopback()) {
    warnings.push_back(absl::StrCat(
        "listeners.listen is ", config.listeners.listen.ToString(),
        " (not loopback): whoever can reach it can send HTTP requests "
        "through egressd; restrict it with a NetworkPolicy"));
  }
  if (config.egress.report_only) {
    warnings.push_back(
        "egress.report_only is on: the egress policy logs what it would deny "
        "and denies nothing");
  }
  return warnings;
}

std::string RenderEffectiveConfig(const EgressdConfig& config) {
  YAML::Emitter emitter;
  emitter.SetIndent(2);
  Emit(emitter, ToOut(config));
  std::string text =
      "# egressd effective configuration: defaults filled in, secrets "
      "redacted.\n";
  for (const std::string& warning : ConfigWarnings(config)) {
    absl::StrAppend(&text, "# WARNING: ", warning, "\n");
  }
  absl::StrAppend(&text, emitter.c_str(), "\n");
  return text;
}

std::vector<std::string> ChangedFromDefaults(const EgressdConfig& config) {
  std::vector<std::pair<std::string, std::string>> actual, defaults;
  Flatten(ToOut(config), "", &actual);
  Flatten(ToOut(EgressdConfig{}), "", &defaults);
  std::map<std::string, std::string> default_map(defaults.begin(),
                                                 defaults.end());
  std::vector<std::string> changed;
  for (const auto& [path, value] : actual) {
    auto it = default_map.find(path);
    if (it == default_map.end() || it->second != value) changed.push_back(path);
  }
  return changed;
}

absl::string_view HttpProtocolName(HttpProtocol protocol) {
  switch (protocol) {
    case HttpProtocol::kAuto:
      return "auto";
    case HttpProtocol::kHttp1:
      return "http1";
    case HttpProtocol::kH2:
      return "h2";
    case HttpProtocol::kH2c:
      return "h2c";
  }
  return "auto";
}

absl::string_view TlsPolicyName(TlsPolicy policy) {
  return policy == TlsPolicy::kModern ? "modern" : "compatible";
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace egress
