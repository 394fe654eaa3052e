#include "tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace nmq {

namespace {
template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

bool IsIpLiteral(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 || inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

bool AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}
}  // namespace

std::string CreateSelfSignedCertificate(const std::vector<std::string>& hosts, uint32_t days,
                                        std::string* certificate_pem, std::string* key_pem) {
  PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return "key generation failed";
  Cert cert(X509_new());
  if (!cert) return "out of memory";
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return "no randomness for the serial number";
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  ASN1_INTEGER* asn1_serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  bool ok = asn1_serial != nullptr && X509_set_serialNumber(cert.get(), asn1_serial) == 1;
  ASN1_INTEGER_free(asn1_serial);
  ok = ok && X509_set_version(cert.get(), 2) == 1;
  // Valid from an hour ago, so small clock differences between peers do not matter.
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr;
  ok = ok && X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) != nullptr;
  ok = ok && X509_set_pubkey(cert.get(), key.get()) == 1;
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string common_name = hosts.empty() ? "node-msquic" : hosts[0];
  ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                        reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                        -1, -1, 0) == 1;
  ok = ok && X509_set_issuer_name(cert.get(), name) == 1;
  if (!ok) return "could not fill in the certificate";

  std::string san;
  for (const auto& host : hosts) {
    if (!san.empty()) san += ",";
    san += (IsIpLiteral(host) ? "IP:" : "DNS:") + host;
  }
  if (!san.empty() && !AddExtension(cert.get(), NID_subject_alt_name, san)) {
    return "invalid host name in hosts";
  }
  // A self-signed end-entity (leaf) certificate: the peer trusts it by pinning it as its CA (`ca`).
  // Not a CA: rustls/webpki refuse a CA certificate used as the server's own (CaUsedAsEndEntity);
  // OpenSSL, Go and aioquic accept a self-signed leaf placed in their trust store.
  if (!AddExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
      !AddExtension(cert.get(), NID_subject_key_identifier, "hash")) {
    return "could not add certificate extensions";
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return "signing failed";

  Bio cert_bio(BIO_new(BIO_s_mem()));
  Bio key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return "PEM encoding failed";
  }
  *certificate_pem = BioString(cert_bio.get());
  *key_pem = BioString(key_bio.get());
  return std::string();
}

bool CertificateNamesHost(const uint8_t* der, size_t length, const std::string& host) {
  const unsigned char* cursor = der;
  Cert cert(d2i_X509(nullptr, &cursor, static_cast<long>(length)));
  if (!cert) return false;
  if (IsIpLiteral(host)) return X509_check_ip_asc(cert.get(), host.c_str(), 0) == 1;
  return X509_check_host(cert.get(), host.c_str(), host.size(), 0, nullptr) == 1;
}

}  // namespace nmq
