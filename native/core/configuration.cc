#include "configuration.h"

#include "api.h"
#include "runtime.h"

namespace nmq {

std::vector<QUIC_BUFFER> AlpnBuffers(const std::vector<std::string>& alpn) {
  std::vector<QUIC_BUFFER> buffers;
  buffers.reserve(alpn.size());
  for (const auto& a : alpn) {
    buffers.push_back({static_cast<uint32_t>(a.size()),
                       reinterpret_cast<uint8_t*>(const_cast<char*>(a.data()))});
  }
  return buffers;
}

std::shared_ptr<Configuration> Configuration::Open(Runtime& runtime,
                                                   const std::vector<std::string>& alpn,
                                                   const QUIC_SETTINGS& settings,
                                                   const CredentialOptions& credentials,
                                                   QUIC_STATUS* status) {
  std::shared_ptr<Configuration> configuration(new Configuration());
  configuration->alpn_ = alpn;
  configuration->verify_ = credentials.verify;
  configuration->resumption_ = settings.IsSet.ServerResumptionLevel && settings.ServerResumptionLevel != QUIC_SERVER_NO_RESUME;
  auto buffers = AlpnBuffers(configuration->alpn_);
  HQUIC handle = nullptr;
  *status = MsQuic->ConfigurationOpen(runtime.registration(), buffers.data(),
                                      static_cast<uint32_t>(buffers.size()), &settings,
                                      sizeof(settings), nullptr, &handle);
  if (QUIC_FAILED(*status)) return nullptr;
  configuration->handle_ = handle;

  QUIC_CREDENTIAL_CONFIG config = {};
  QUIC_CERTIFICATE_FILE files = {};
  if (!credentials.cert_file.empty()) {
    files.CertificateFile = credentials.cert_file.c_str();
    files.PrivateKeyFile = credentials.key_file.c_str();
    config.Type = QUIC_CREDENTIAL_TYPE_CERTIFICATE_FILE;
    config.CertificateFile = &files;
  } else {
    config.Type = QUIC_CREDENTIAL_TYPE_NONE;
  }
  QUIC_CREDENTIAL_FLAGS flags = QUIC_CREDENTIAL_FLAG_NONE;
  if (credentials.client) flags |= QUIC_CREDENTIAL_FLAG_CLIENT;
  if (!credentials.ca_file.empty()) {
    flags |= QUIC_CREDENTIAL_FLAG_SET_CA_CERTIFICATE_FILE;
    config.CaCertificateFile = credentials.ca_file.c_str();
  }
  const bool checks_peer = credentials.client || credentials.request_client_certificate;
  if (credentials.request_client_certificate) flags |= QUIC_CREDENTIAL_FLAG_REQUIRE_CLIENT_AUTHENTICATION;
  if (checks_peer) {
    switch (credentials.verify) {
      case VerifyMode::kNone:
        flags |= QUIC_CREDENTIAL_FLAG_NO_CERTIFICATE_VALIDATION;
        break;
      case VerifyMode::kBuiltin:
        // The TLS library checks the chain and reports its verdict in the certificate event,
        // where the binding also checks the name (MsQuic 2.5 on OpenSSL does not).
        flags |= QUIC_CREDENTIAL_FLAG_INDICATE_CERTIFICATE_RECEIVED |
                 QUIC_CREDENTIAL_FLAG_DEFER_CERTIFICATE_VALIDATION |
                 QUIC_CREDENTIAL_FLAG_USE_PORTABLE_CERTIFICATES;
        break;
      case VerifyMode::kCustom:
        flags |= QUIC_CREDENTIAL_FLAG_INDICATE_CERTIFICATE_RECEIVED |
                 QUIC_CREDENTIAL_FLAG_NO_CERTIFICATE_VALIDATION |
                 QUIC_CREDENTIAL_FLAG_USE_PORTABLE_CERTIFICATES;
        break;
    }
  }
  config.Flags = flags;
  *status = MsQuic->ConfigurationLoadCredential(handle, &config);
  if (QUIC_FAILED(*status)) return nullptr;
  return configuration;
}

void Configuration::Close() {
  HQUIC handle = handle_.exchange(nullptr);
  if (handle != nullptr) MsQuic->ConfigurationClose(handle);
}

}  // namespace nmq
