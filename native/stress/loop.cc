#include "loop.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "handle.h"
#include "tls.h"

namespace nmq::harness {

Loop::Loop(uint32_t workers) {
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  runtime_ = Runtime::Open(workers, [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    rung_ = true;
    ready_.notify_one();
  }, &status);
  if (!runtime_) throw std::runtime_error("MsQuic could not start");
}

Loop::~Loop() {
  runtime_->Shutdown();
}

bool Loop::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!ready_.wait_until(lock, deadline, [this] { return rung_; })) return done();
      rung_ = false;
    }
    batch_.clear();
    runtime_->queue().Drain(&batch_);
    if (batch_.empty()) continue;
    ++wakeups_;
    events_ += batch_.size();
    for (Event& event : batch_) {
      auto* handler = static_cast<Handler*>(event.target->wrapper);
      if (handler != nullptr) handler->OnEvent(event);
    }
    batch_.clear();
  }
  return true;
}

TestCredentials::TestCredentials() {
  char pattern[] = "/tmp/node-msquic-harness-XXXXXX";
  if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir = pattern;
  cert_file = dir + "/cert.pem";
  key_file = dir + "/key.pem";
  std::string cert, key;
  std::string error = CreateSelfSignedCertificate({"localhost", "127.0.0.1"}, 1, &cert, &key);
  if (!error.empty()) throw std::runtime_error(error);
  std::ofstream(cert_file) << cert;
  std::ofstream(key_file) << key;
}

TestCredentials::~TestCredentials() {
  std::remove(cert_file.c_str());
  std::remove(key_file.c_str());
  rmdir(dir.c_str());
}

namespace {
QUIC_SETTINGS Settings(uint16_t streams, uint64_t idle_timeout_ms) {
  QUIC_SETTINGS settings = {};
  settings.IsSet.PeerBidiStreamCount = 1;
  settings.PeerBidiStreamCount = streams;
  settings.IsSet.PeerUnidiStreamCount = 1;
  settings.PeerUnidiStreamCount = streams;
  settings.IsSet.IdleTimeoutMs = 1;
  settings.IdleTimeoutMs = idle_timeout_ms;
  return settings;
}
}  // namespace

std::shared_ptr<Configuration> ServerConfiguration(Runtime& runtime, const TestCredentials& credentials,
                                                   uint16_t streams, uint64_t idle_timeout_ms) {
  CredentialOptions options;
  options.cert_file = credentials.cert_file;
  options.key_file = credentials.key_file;
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  auto configuration = Configuration::Open(runtime, {"bench"}, Settings(streams, idle_timeout_ms), options, &status);
  if (!configuration) throw std::runtime_error("server configuration failed");
  runtime.Track(configuration);
  return configuration;
}

std::shared_ptr<Configuration> ClientConfiguration(Runtime& runtime, const TestCredentials& credentials,
                                                   uint64_t idle_timeout_ms) {
  CredentialOptions options;
  options.client = true;
  options.ca_file = credentials.cert_file;
  options.verify = VerifyMode::kBuiltin;
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  auto configuration = Configuration::Open(runtime, {"bench"}, Settings(100, idle_timeout_ms), options, &status);
  if (!configuration) throw std::runtime_error("client configuration failed");
  runtime.Track(configuration);
  return configuration;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace nmq::harness
