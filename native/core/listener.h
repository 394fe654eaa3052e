// RAII context over an MsQuic listener. NEW_CONNECTION runs on MsQuic workers, possibly several at
// once: it decides accept/refuse from two bounds (connections still handshaking, and connections
// established but not yet taken by the app), asks for Retry when handshakes pile up, adopts the
// connection natively and returns.
#pragma once
#include <msquic.h>

#include <atomic>
#include <mutex>
#include <memory>

#include "configuration.h"
#include "connection.h"
#include "handle.h"

namespace nmq {

struct ListenerOptions {
  // Connections established but not yet taken by the app. While it is full, new connections are
  // refused (CONNECTION_REFUSED on the wire) and counted: the app is not keeping up.
  uint32_t backlog = 512;
  // Connections still handshaking. Beyond it new ones are refused and counted; a flood of
  // handshakes that never complete can fill only this, never the backlog above.
  uint32_t max_handshakes = 1024;
  // From this many handshakes on, every new client must pass stateless address validation (Retry)
  // until they fall to half of it (0: always; kNeverRetry: never).
  uint32_t retry_above = 128;
  // The app decides on each new connection before its handshake starts (see Connection::Admit).
  bool defer_admission = false;
  ConnectionOptions connection;
};

constexpr uint32_t kNeverRetry = UINT32_MAX;

// Why a new connection was refused (counted per reason).
enum class Refusal { kHandshakes, kBacklog, kAdmission };

class Listener : public Handle {
 public:
  // JS thread.
  static std::shared_ptr<Listener> Open(std::shared_ptr<Runtime> runtime,
                                        std::shared_ptr<Configuration> configuration,
                                        const ListenerOptions& options, QUIC_STATUS* status);
  QUIC_STATUS Start(const QUIC_ADDR& address);
  bool LocalAddress(QUIC_ADDR* address);
  // Asynchronous: kListenerStopped follows, and the handle closes natively.
  void Stop();
  // Worker: a connection of this listener completed its handshake (it moves to the backlog).
  void Connected();
  // JS thread: the app took one connection out of the backlog.
  void Taken() { established_.fetch_sub(1, std::memory_order_relaxed); }
  // Worker: a connection closed before its handshake completed.
  void Dropped();
  // Any thread: the app refused a connection before its handshake (counted like the others).
  void Refused(Refusal reason) { refused_[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed); }
  uint32_t handshaking() const { return handshaking_.load(std::memory_order_relaxed); }
  uint32_t established() const { return established_.load(std::memory_order_relaxed); }
  uint64_t refused(Refusal reason) const {
    return refused_[static_cast<int>(reason)].load(std::memory_order_relaxed);
  }
  bool retrying() const { return retrying_.load(std::memory_order_relaxed); }
  std::shared_ptr<Configuration> configuration() const { return configuration_; }
  // JS thread: new connections serve requests (see Connection::ServeRequests), each granting the
  // peer `concurrency` bidirectional streams from its handshake on; a limit of 0 turns it off.
  void ServeRequests(uint32_t limit, uint16_t concurrency) {
    request_concurrency_.store(concurrency, std::memory_order_relaxed);
    request_limit_.store(limit, std::memory_order_release);
  }
  // MsQuic's own listener figures (read inline; never blocks).
  bool Statistics(QUIC_LISTENER_STATISTICS* out);

  explicit Listener(std::shared_ptr<Runtime> runtime)
      : Handle(Kind::kListener, std::make_shared<Route>(std::move(runtime))) {}

 private:
  static QUIC_STATUS QUIC_API Callback(HQUIC handle, void* context, QUIC_LISTENER_EVENT* event);
  QUIC_STATUS OnNewConnection(QUIC_LISTENER_EVENT* event);
  QUIC_STATUS Refuse(Refusal reason);
  // Any thread, after `handshaking_` changed: asks for Retry, or stops asking.
  void UpdateRetry();
  void StopRetry();
  void CloseHandle(HQUIC handle) override;

  std::shared_ptr<Configuration> configuration_;
  ListenerOptions options_;
  std::atomic<uint32_t> handshaking_{0};
  std::atomic<uint32_t> established_{0};  // established, not yet taken
  std::atomic<uint64_t> refused_[3] = {};
  std::atomic<bool> retrying_{false};     // this listener's demand on the RetryGate
  std::mutex retry_mutex_;                 // orders this listener's demands and releases
  std::atomic<uint32_t> request_limit_{0};
  std::atomic<uint16_t> request_concurrency_{0};
  uint64_t dropped_baseline_ = 0;  // see Start: the binding's drop counter when this listener began
};

}  // namespace nmq
