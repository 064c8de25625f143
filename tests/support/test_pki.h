// TestPki: a throwaway certificate authority for TLS tests, made in-process
// with OpenSSL (no openssl CLI, nothing fetched). It writes PEM files that
// servers (nginx, nghttpd) and the client under test load.
//
// Vocabulary:
//   root     the self-signed CA of one TestPki; its PEM is ca_file(), the
//            file a client *trusts*.
//   leaf     an end-entity certificate from IssueLeaf(): a server certificate
//            (extendedKeyUsage serverAuth) or, with LeafOptions::client, a
//            client certificate for mTLS (clientAuth).
//   chain    what a server (or an mTLS client) *presents*: the leaf, then the
//            intermediate when there is one; never the root, which the peer
//            must already trust.
//   untrusted  a leaf from another TestPki whose ca_file() the client was not
//            given (TestPki::CreateUntrustedCa() is a readable name for it).
//            A client verifying it fails with
//            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY.
//
// All keys are EC P-256 (fast to make; every TLS stack accepts them).
// Files live in dir(), a fresh directory under $TEST_TMPDIR; nothing is
// deleted (Bazel cleans TEST_TMPDIR), so a failing test leaves them to read.
//
// Not thread-safe: one test thread creates and uses it. The files, once
// written, can be read from any thread or process.
#ifndef EGRESS_TESTS_SUPPORT_TEST_PKI_H_
#define EGRESS_TESTS_SUPPORT_TEST_PKI_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress::testing {

struct LeafOptions {
  // subjectAltName dNSName entries, e.g. {"a.test", "*.b.test"}. Host names
  // in tests resolve through a static resolver to loopback only.
  std::vector<std::string> dns_names;
  // subjectAltName iPAddress entries, textual: "127.0.0.1", "::1".
  std::vector<std::string> ip_addresses;
  // Validity, as offsets from the moment of issue. The defaults make a
  // certificate valid now (with an hour of slack for clock skew). For an
  // expired certificate use not_after = -absl::Hours(1) (and a not_before
  // before that); for one not yet valid, not_before = +absl::Hours(1).
  absl::Duration not_before = -absl::Hours(1);
  absl::Duration not_after = absl::Hours(24);
  // A client certificate (extendedKeyUsage clientAuth) instead of a server
  // certificate (serverAuth).
  bool client = false;
  // Issue from an intermediate CA (made on first use, signed by this root)
  // instead of from the root: chain_file then holds leaf + intermediate, so
  // a client that trusts only the root must use the presented chain.
  bool via_intermediate = false;
};

// Paths of the files written for one leaf; all PEM.
struct IssuedCert {
  std::string cert_file;   // the leaf certificate alone
  std::string key_file;    // its private key (PKCS#8, unencrypted, mode 0600)
  std::string chain_file;  // leaf, then intermediate if any (see "chain")
};

class TestPki {
 public:
  // Makes a root CA with subject CN=`name` in a fresh directory under
  // $TEST_TMPDIR (or /tmp) and writes ca_file(). The root is valid from a
  // day ago for 30 days.
  static absl::StatusOr<std::unique_ptr<TestPki>> Create(
      const std::string& name = "egress test root");
  // Another, independent root: leaves it issues do not verify against any
  // other TestPki's ca_file(). Same as Create("egress untrusted root").
  static absl::StatusOr<std::unique_ptr<TestPki>> CreateUntrustedCa();

  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;
  ~TestPki();

  // The directory holding every file of this PKI.
  const std::string& dir() const { return dir_; }
  // The root certificate (PEM file): what a client trusts.
  const std::string& ca_file() const { return ca_file_; }
  // The same, as PEM text, for clients that load trust from memory.
  const std::string& ca_pem() const { return ca_pem_; }

  // Issues a leaf with subject CN=`name` and writes <dir>/<name>.crt,
  // <name>.key and <name>.chain.pem (an existing leaf of the same name is
  // overwritten). `name` must be a plain file name ([A-Za-z0-9._-], not
  // starting with '.'). Errors: kInvalidArgument for a bad name, a bad IP
  // address, or not_after <= not_before; kInternal if OpenSSL or the file
  // system fails.
  absl::StatusOr<IssuedCert> IssueLeaf(const std::string& name,
                                       const LeafOptions& options = {});

 private:
  struct Authority;  // a CA's key and certificate (OpenSSL objects)

  TestPki();
  absl::Status Init(const std::string& name);
  absl::Status EnsureIntermediate();

  std::string dir_;
  std::string ca_file_;
  std::string ca_pem_;
  std::unique_ptr<Authority> root_;
  std::unique_ptr<Authority> intermediate_;  // made on first use
  std::string intermediate_pem_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_TEST_PKI_H_
