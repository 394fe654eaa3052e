// RAII context over an MsQuic listener. NEW_CONNECTION runs on MsQuic workers, possibly several at
// once: it decides accept/refuse from the backlog, adopts the connection natively and returns.
#pragma once
#include <msquic.h>

#include <atomic>
#include <memory>

#include "configuration.h"
#include "connection.h"
#include "handle.h"

namespace nmq {

struct ListenerOptions {
  // Connections received but not yet taken by the app (handshaking included). Beyond it new
  // connections are refused (CONNECTION_REFUSED on the wire) and counted.
  uint32_t backlog = 512;
  ConnectionOptions connection;
};

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
  // The app took one connection out of the backlog.
  void Taken() { pending_.fetch_sub(1, std::memory_order_relaxed); }
  // A connection left the backlog without being taken (its handshake failed).
  void Dropped() { pending_.fetch_sub(1, std::memory_order_relaxed); }
  uint32_t pending() const { return pending_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
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
  void CloseHandle(HQUIC handle) override;

  std::shared_ptr<Configuration> configuration_;
  ListenerOptions options_;
  std::atomic<uint32_t> pending_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint32_t> request_limit_{0};
  std::atomic<uint16_t> request_concurrency_{0};
};

}  // namespace nmq
