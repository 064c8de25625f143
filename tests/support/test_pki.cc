#include "tests/support/test_pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_free>>;
using ExtensionPtr =
    std::unique_ptr<X509_EXTENSION,
                    OpenSslDeleter<X509_EXTENSION, X509_EXTENSION_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES,
                    OpenSslDeleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using GeneralNamePtr =
    std::unique_ptr<GENERAL_NAME, OpenSslDeleter<GENERAL_NAME, GENERAL_NAME_free>>;
using OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING,
                    OpenSslDeleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
using Ia5StringPtr =
    std::unique_ptr<ASN1_IA5STRING,
                    OpenSslDeleter<ASN1_IA5STRING, ASN1_IA5STRING_free>>;

// kInternal with OpenSSL's error queue (emptied), so a failure says why.
absl::Status OpenSslError(absl::string_view what) {
  std::string reasons;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    absl::StrAppend(&reasons, reasons.empty() ? "" : "; ", buf);
  }
  return absl::InternalError(absl::StrCat(
      "TestPki: ", what, " failed: ",
      reasons.empty() ? "(no OpenSSL error queued)" : reasons));
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslError("PEM_write_bio_X509");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PrivateKey(bio.get(), key, nullptr,
                                                 nullptr, 0, nullptr,
                                                 nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

absl::StatusOr<PkeyPtr> NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("EC P-256 key generation");
  return key;
}

// Adds one extension written in openssl.cnf syntax ("critical,CA:TRUE").
absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid,
                          const char* value) {
  ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::Status AddSubjectAltNames(X509* cert, const LeafOptions& options) {
  if (options.dns_names.empty() && options.ip_addresses.empty()) {
    return absl::OkStatus();
  }
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError("sk_GENERAL_NAME_new_null");
  for (const std::string& dns : options.dns_names) {
    if (dns.empty()) {
      return absl::InvalidArgumentError("TestPki: empty DNS name in dns_names");
    }
    Ia5StringPtr value(ASN1_IA5STRING_new());
    GeneralNamePtr name(GENERAL_NAME_new());
    if (value == nullptr || name == nullptr ||
        ASN1_STRING_set(value.get(), dns.data(), dns.size()) != 1) {
      return OpenSslError("DNS subjectAltName");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, value.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
      return OpenSslError("sk_GENERAL_NAME_push");
    }
    name.release();
  }
  for (const std::string& ip : options.ip_addresses) {
    OctetStringPtr value(a2i_IPADDRESS(ip.c_str()));
    if (value == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("TestPki: '", ip, "' in ip_addresses is not an IP address"));
    }
    GeneralNamePtr name(GENERAL_NAME_new());
    if (name == nullptr) return OpenSslError("GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, value.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
      return OpenSslError("sk_GENERAL_NAME_push");
    }
    name.release();
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), /*crit=*/0,
                        X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("subjectAltName");
  }
  return absl::OkStatus();
}

bool IsPlainFileName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

enum class Kind { kRoot, kIntermediate, kLeaf };

}  // namespace

struct TestPki::Authority {
  PkeyPtr key;
  X509Ptr cert;
};

namespace {

// A certificate for `subject_key` named CN=`common_name`, signed by `issuer`
// (self-signed when null). `leaf` is read only for Kind::kLeaf.
absl::StatusOr<X509Ptr> MakeCertificate(Kind kind,
                                        const std::string& common_name,
                                        EVP_PKEY* subject_key,
                                        absl::Duration not_before,
                                        absl::Duration not_after,
                                        X509* issuer_cert,
                                        EVP_PKEY* issuer_key,
                                        const LeafOptions& leaf) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpenSslError("X509_new");
  X509* x = cert.get();
  if (X509_set_version(x, X509_VERSION_3) != 1) {
    return OpenSslError("X509_set_version");
  }
  // Random serials: a client caching by (issuer, serial) must never see two
  // different certificates under one key across tests.
  BignumPtr serial(BN_new());
  if (serial == nullptr ||
      BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x)) == nullptr) {
    return OpenSslError("serial number");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(x),
                      absl::ToInt64Seconds(not_before)) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x), absl::ToInt64Seconds(not_after)) ==
          nullptr) {
    return OpenSslError("validity");
  }
  X509_NAME* subject = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(
          subject, "O", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>("egress tests"), -1, -1,
          0) != 1 ||
      X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
          0) != 1) {
    return OpenSslError("subject name");
  }
  const bool self_signed = issuer_cert == nullptr;
  if (X509_set_issuer_name(x, self_signed ? subject
                                          : X509_get_subject_name(issuer_cert)) !=
          1 ||
      X509_set_pubkey(x, subject_key) != 1) {
    return OpenSslError("issuer name / public key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, self_signed ? x : issuer_cert, x, nullptr, nullptr, 0);
  std::vector<std::pair<int, const char*>> extensions;
  switch (kind) {
    case Kind::kRoot:
      extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                    {NID_subject_key_identifier, "hash"}};
      break;
    case Kind::kIntermediate:
      extensions = {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                    {NID_subject_key_identifier, "hash"},
                    {NID_authority_key_identifier, "keyid:always"}};
      break;
    case Kind::kLeaf:
      extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                    {NID_key_usage, "critical,digitalSignature"},
                    {NID_ext_key_usage, leaf.client ? "clientAuth" : "serverAuth"},
                    {NID_subject_key_identifier, "hash"},
                    {NID_authority_key_identifier, "keyid:always"}};
      break;
  }
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(x, &ctx, nid, value); !s.ok()) return s;
  }
  if (kind == Kind::kLeaf) {
    if (absl::Status s = AddSubjectAltNames(x, leaf); !s.ok()) return s;
  }
  if (X509_sign(x, self_signed ? subject_key : issuer_key, EVP_sha256()) == 0) {
    return OpenSslError("X509_sign");
  }
  return cert;
}

}  // namespace

TestPki::TestPki() = default;
TestPki::~TestPki() = default;

absl::StatusOr<std::unique_ptr<TestPki>> TestPki::Create(
    const std::string& name) {
  auto pki = std::unique_ptr<TestPki>(new TestPki());
  if (absl::Status s = pki->Init(name); !s.ok()) return s;
  return pki;
}

absl::StatusOr<std::unique_ptr<TestPki>> TestPki::CreateUntrustedCa() {
  return Create("egress untrusted root");
}

absl::Status TestPki::Init(const std::string& name) {
  dir_ = MakeTempDir("pki");
  if (dir_.empty()) return absl::InternalError("TestPki: cannot make a temp dir");
  absl::StatusOr<PkeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert =
      MakeCertificate(Kind::kRoot, name, key->get(), -absl::Hours(24),
                      absl::Hours(24 * 30), nullptr, nullptr, LeafOptions());
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> pem = CertPem(cert->get());
  if (!pem.ok()) return pem.status();
  root_ = std::make_unique<Authority>();
  root_->key = *std::move(key);
  root_->cert = *std::move(cert);
  ca_pem_ = *std::move(pem);
  ca_file_ = dir_ + "/ca.crt";
  return WriteFile(ca_file_, ca_pem_);
}

absl::Status TestPki::EnsureIntermediate() {
  if (intermediate_ != nullptr) return absl::OkStatus();
  absl::StatusOr<PkeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert = MakeCertificate(
      Kind::kIntermediate, "egress test intermediate", key->get(),
      -absl::Hours(24), absl::Hours(24 * 30), root_->cert.get(),
      root_->key.get(), LeafOptions());
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> pem = CertPem(cert->get());
  if (!pem.ok()) return pem.status();
  if (absl::Status s = WriteFile(dir_ + "/intermediate.crt", *pem); !s.ok()) {
    return s;
  }
  intermediate_ = std::make_unique<Authority>();
  intermediate_->key = *std::move(key);
  intermediate_->cert = *std::move(cert);
  intermediate_pem_ = *std::move(pem);
  return absl::OkStatus();
}

absl::StatusOr<IssuedCert> TestPki::IssueLeaf(const std::string& name,
                                              const LeafOptions& options) {
  if (!IsPlainFileName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TestPki: leaf name '", name,
        "' must be a plain file name ([A-Za-z0-9._-], not starting with '.')"));
  }
  if (options.not_after <= options.not_before) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TestPki: not_after (", absl::FormatDuration(options.not_after),
        ") must be later than not_before (",
        absl::FormatDuration(options.not_before), ")"));
  }
  if (options.via_intermediate) {
    if (absl::Status s = EnsureIntermediate(); !s.ok()) return s;
  }
  const Authority& issuer = options.via_intermediate ? *intermediate_ : *root_;
  absl::StatusOr<PkeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509Ptr> cert = MakeCertificate(
      Kind::kLeaf, name, key->get(), options.not_before, options.not_after,
      issuer.cert.get(), issuer.key.get(), options);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = KeyPem(key->get());
  if (!key_pem.ok()) return key_pem.status();

  IssuedCert issued;
  issued.cert_file = absl::StrCat(dir_, "/", name, ".crt");
  issued.key_file = absl::StrCat(dir_, "/", name, ".key");
  issued.chain_file = absl::StrCat(dir_, "/", name, ".chain.pem");
  if (absl::Status s = WriteFile(issued.cert_file, *cert_pem); !s.ok()) return s;
  if (absl::Status s = WriteFile(issued.key_file, *key_pem); !s.ok()) return s;
  chmod(issued.key_file.c_str(), 0600);
  const std::string chain =
      options.via_intermediate ? *cert_pem + intermediate_pem_ : *cert_pem;
  if (absl::Status s = WriteFile(issued.chain_file, chain); !s.ok()) return s;
  return issued;
}

}  // namespace egress::testing
