// Server and client pieces shared by the benchmark and the stress modes. Loop thread only.
#pragma once
#include <arpa/inet.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connection.h"
#include "listener.h"
#include "loop.h"
#include "stream.h"

namespace nmq::harness {

// What the server does with each peer stream.
enum class ServerMode {
  kEcho,    // send back everything received, then FIN
  kSink,    // count and drop the bytes, then FIN
  kSource,  // after the peer's FIN, send `source_bytes`, then FIN
};

// Sends `total` bytes on a stream within the native send window, as the JS layer does: until a
// send finds the window full, then again on kStreamSendReady.
class Sender {
 public:
  Sender(std::shared_ptr<Stream> stream, uint64_t total, uint32_t chunk);
  void Pump();

 private:
  std::shared_ptr<Stream> stream_;
  uint64_t total_, sent_ = 0;
  std::vector<uint8_t> chunk_;
  bool fin_sent_ = false;
};

struct ServerStats {
  uint64_t connections = 0;
  uint64_t streams = 0;
  uint64_t bytes = 0;
};

// A listener on 127.0.0.1 whose connections and streams the harness serves at once.
class Server : public Handler {
 public:
  Server(Loop& loop, std::shared_ptr<Configuration> configuration, ServerMode mode, uint64_t source_bytes = 0);
  ~Server() override;
  uint16_t port() const { return port_; }
  ServerStats& stats() { return stats_; }
  void Stop() { listener_->Stop(); }
  bool stopped() const { return stopped_; }
  void OnEvent(Event& event) override;

  ServerMode mode;
  uint64_t source_bytes;

 private:
  std::shared_ptr<Listener> listener_;
  uint16_t port_ = 0;
  ServerStats stats_;
  bool stopped_ = false;
};

QUIC_ADDR Loopback(uint16_t port);

}  // namespace nmq::harness
