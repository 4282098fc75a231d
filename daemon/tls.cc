#include "daemon/tls.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace xenctl::daemon {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;
using UniqueX509 = std::unique_ptr<X509, X509Free>;

std::string setting(std::string_view key, const std::string& path) {
  return absl::StrCat("[daemon.tls] ", av(key), " ", path);
}

Result<std::string> readPem(std::string_view key, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return annotate(errnoStatus(errno, setting(key, path)), "reading TLS files");
  std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  if (f.bad()) return annotate(errnoStatus(errno, setting(key, path)), "reading TLS files");
  return text;
}

UniqueBio memBio(const std::string& pem) { return UniqueBio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// The certificates in `pem`, in order; none when it holds no PEM certificate.
std::vector<UniqueX509> certificates(const std::string& pem) {
  std::vector<UniqueX509> out;
  UniqueBio bio = memBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  return out;
}

// "subject CN=xenctld,O=example, valid until Dec  7 01:30:00 2027 GMT".
std::string describe(X509* x) {
  UniqueBio subject(BIO_new(BIO_s_mem())), until(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(subject.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  ASN1_TIME_print(until.get(), X509_get0_notAfter(x));
  auto text = [](BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<size_t>(n));
  };
  return absl::StrCat("subject ", text(subject.get()), ", valid until ", text(until.get()));
}

}  // namespace

Result<TlsMaterial> loadTlsMaterial(const TlsConfig& config) {
  TlsMaterial m;
  XENCTL_ASSIGN_OR_RETURN(m.cert_chain, readPem("cert", config.cert));
  XENCTL_ASSIGN_OR_RETURN(m.key, readPem("key", config.key));
  XENCTL_ASSIGN_OR_RETURN(m.client_ca, readPem("client_ca", config.client_ca));

  std::vector<UniqueX509> chain = certificates(m.cert_chain);
  if (chain.empty())
    return absl::InvalidArgumentError(
        absl::StrCat(setting("cert", config.cert), " holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
  UniqueBio key_bio = memBio(m.key);
  std::unique_ptr<EVP_PKEY, KeyFree> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key)
    return absl::InvalidArgumentError(absl::StrCat(setting("key", config.key),
                                                   " holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)"));
  if (X509_check_private_key(chain.front().get(), key.get()) != 1)
    return absl::InvalidArgumentError(absl::StrCat(setting("key", config.key), " does not match ",
                                                   setting("cert", config.cert), "; give the key the certificate was made for"));
  if (certificates(m.client_ca).empty())
    return absl::InvalidArgumentError(absl::StrCat(setting("client_ca", config.client_ca),
                                                   " holds no PEM certificate: it must be the CA that signs client certificates"));
  m.summary = describe(chain.front().get());
  if (X509_cmp_current_time(X509_get0_notAfter(chain.front().get())) < 0)
    m.warnings.push_back(absl::StrCat(setting("cert", config.cert),
                                      " has expired: clients refuse it; put a new one there and send SIGHUP"));
  struct stat st;
  if (::stat(config.key.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    m.warnings.push_back(absl::StrFormat("%s is open to other users (mode %04o); whoever reads it can pose as "
                                         "xenctld: chmod 600 it",
                                         setting("key", config.key), st.st_mode & 07777));
  return m;
}

std::shared_ptr<grpc::ServerCredentials> mutualTlsCredentials(const TlsMaterial& material) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material.client_ca;
  options.pem_key_cert_pairs.push_back({material.key, material.cert_chain});
  return grpc::SslServerCredentials(options);
}

}  // namespace xenctl::daemon
