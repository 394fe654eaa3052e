// RAII over an MsQuic configuration: ALPN list, settings and TLS credentials, shared by a listener's
// connections or by many client connections. ConfigurationClose only drops a reference (connections
// keep their own), so it never blocks.
#pragma once
#include <msquic.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace nmq {

class Runtime;

// How the peer's certificate is checked.
enum class VerifyMode {
  kNone,     // accept any certificate (rejectUnauthorized: false)
  kBuiltin,  // the TLS library checks the chain; the binding checks the name (see Connection)
  kCustom,   // the app decides, asynchronously, from the DER certificate
};

struct CredentialOptions {
  bool client = false;
  std::string cert_file;  // PEM; required for servers, optional for clients
  std::string key_file;
  std::string ca_file;    // PEM bundle of trusted roots; empty = the TLS library's defaults
  VerifyMode verify = VerifyMode::kBuiltin;
  bool request_client_certificate = false;  // servers: ask for (and require) a client certificate
};

class Configuration {
 public:
  static std::shared_ptr<Configuration> Open(Runtime& runtime, const std::vector<std::string>& alpn,
                                             const QUIC_SETTINGS& settings,
                                             const CredentialOptions& credentials,
                                             QUIC_STATUS* status);
  ~Configuration() { Close(); }
  Configuration(const Configuration&) = delete;
  Configuration& operator=(const Configuration&) = delete;

  HQUIC handle() const { return handle_.load(); }
  VerifyMode verify() const { return verify_; }
  const std::vector<std::string>& alpn() const { return alpn_; }
  // Server: resumption is on (ServerResumptionLevel above NO_RESUME), so connections send tickets.
  bool resumption() const { return resumption_; }
  // Idempotent; any thread.
  void Close();

 private:
  Configuration() = default;
  std::atomic<HQUIC> handle_{nullptr};
  VerifyMode verify_ = VerifyMode::kBuiltin;
  std::vector<std::string> alpn_;
  bool resumption_ = false;
};

// ALPN strings as MsQuic's buffer list; the strings must outlive the result.
std::vector<QUIC_BUFFER> AlpnBuffers(const std::vector<std::string>& alpn);

}  // namespace nmq
