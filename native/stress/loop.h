// The harness's event loop: a Runtime whose queue is drained on this program's main thread, the
// way the binding drains it on the JS thread. Handlers sit in each handle's wrapper slot.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "configuration.h"
#include "event.h"
#include "runtime.h"

namespace nmq::harness {

class Handler {
 public:
  virtual ~Handler() = default;
  // Loop thread. `event.child`, when set, is a new server connection or peer stream.
  virtual void OnEvent(Event& event) = 0;
};

class Loop {
 public:
  explicit Loop(uint32_t workers);
  ~Loop();
  Runtime& runtime() { return *runtime_; }
  const std::shared_ptr<Runtime>& runtime_ptr() { return runtime_; }

  // Runs events until `done()` holds; false if `timeout` passed first.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  uint64_t wakeups() const { return wakeups_; }
  uint64_t events() const { return events_; }

 private:
  std::shared_ptr<Runtime> runtime_;
  std::mutex mutex_;
  std::condition_variable ready_;
  bool rung_ = false;
  std::vector<Event> batch_;
  uint64_t wakeups_ = 0;
  uint64_t events_ = 0;
};

// A self-signed certificate for localhost/127.0.0.1 in a temporary directory, removed at exit.
struct TestCredentials {
  TestCredentials();
  ~TestCredentials();
  std::string dir, cert_file, key_file;
};

// Server and client configurations with ALPN "bench" and generous stream credit.
std::shared_ptr<Configuration> ServerConfiguration(Runtime& runtime, const TestCredentials& credentials,
                                                   uint16_t streams, uint64_t idle_timeout_ms = 30000);
std::shared_ptr<Configuration> ClientConfiguration(Runtime& runtime, const TestCredentials& credentials,
                                                   uint64_t idle_timeout_ms = 30000);

double Seconds(std::chrono::steady_clock::time_point since);
// Resident set size of this process, in bytes.
uint64_t ResidentBytes();

}  // namespace nmq::harness
