// Certificate helpers on the TLS library MsQuic bundles (statically linked, symbols kept local).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nmq {

// A self-signed ECDSA P-256 certificate naming `hosts` (DNS names or IP literals) in its subject
// alternative names; PEM out. Returns an error message, empty on success. Any thread.
std::string CreateSelfSignedCertificate(const std::vector<std::string>& hosts, uint32_t days,
                                        std::string* certificate_pem, std::string* key_pem);

// Whether the DER certificate names `host`: an IP literal against its IP addresses, anything else
// against its DNS names (wildcards as RFC 6125 allows). Any thread.
bool CertificateNamesHost(const uint8_t* der, size_t length, const std::string& host);

}  // namespace nmq
