#include "peers.h"

#include <stdexcept>

namespace nmq::harness {

QUIC_ADDR Loopback(uint16_t port) {
  QUIC_ADDR address;
  std::memset(&address, 0, sizeof(address));
  QuicAddrSetFamily(&address, QUIC_ADDRESS_FAMILY_INET);
  inet_pton(AF_INET, "127.0.0.1", &address.Ipv4.sin_addr);
  QuicAddrSetPort(&address, port);
  return address;
}

Sender::Sender(std::shared_ptr<Stream> stream, uint64_t total, uint32_t chunk)
    : stream_(std::move(stream)), total_(total), chunk_(chunk, 0x5a) {}

void Sender::Pump() {
  bool full = false;
  while (sent_ < total_ && !full) {
    uint64_t n = std::min<uint64_t>(chunk_.size(), total_ - sent_);
    if (QUIC_FAILED(stream_->Send(chunk_.data(), n, false, &full))) return;
    sent_ += n;
  }
  if (sent_ == total_ && !fin_sent_) {
    fin_sent_ = true;
    stream_->Send(nullptr, 0, true);
  }
}

namespace {

class ServerStream : public Handler {
 public:
  ServerStream(Server& server, std::shared_ptr<Stream> stream) : server_(server), stream_(std::move(stream)) {}
  void OnEvent(Event& event) override {
    switch (event.type) {
      case EventType::kStreamData:
        server_.stats().bytes += event.data_length;
        if (server_.mode == ServerMode::kEcho) {
          received_.insert(received_.end(), event.data.get(), event.data.get() + event.data_length);
        }
        stream_->Consumed(event.data_length);
        break;
      case EventType::kStreamPeerSendShutdown:
        if (stream_->unidirectional()) break;
        if (server_.mode == ServerMode::kSource) {
          sender_ = std::make_unique<Sender>(stream_, server_.source_bytes, 64 * 1024);
          sender_->Pump();
        } else {
          stream_->Send(received_.data(), received_.size(), true);
        }
        break;
      case EventType::kStreamSendReady:
        if (sender_) sender_->Pump();
        break;
      case EventType::kStreamShutdownComplete:
        stream_->wrapper = nullptr;
        delete this;
        return;
      default:
        break;
    }
  }

 private:
  Server& server_;
  std::shared_ptr<Stream> stream_;
  std::vector<uint8_t> received_;
  std::unique_ptr<Sender> sender_;
};

class ServerConnection : public Handler {
 public:
  ServerConnection(Server& server, std::shared_ptr<Connection> connection)
      : server_(server), connection_(std::move(connection)) {}
  void OnEvent(Event& event) override {
    switch (event.type) {
      case EventType::kConnectionConnected:
        server_.stats().connections++;
        connection_->listener()->Taken();
        break;
      case EventType::kConnectionPeerStream: {
        auto stream = std::static_pointer_cast<Stream>(event.child);
        stream->wrapper = new ServerStream(server_, stream);
        stream->Taken();
        server_.stats().streams++;
        break;
      }
      case EventType::kConnectionShutdownComplete:
        connection_->wrapper = nullptr;
        delete this;
        return;
      default:
        break;
    }
  }

 private:
  Server& server_;
  std::shared_ptr<Connection> connection_;
};

}  // namespace

Server::Server(Loop& loop, std::shared_ptr<Configuration> configuration, ServerMode mode, uint64_t source_bytes)
    : mode(mode), source_bytes(source_bytes) {
  ListenerOptions options;
  options.backlog = 100000;
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  listener_ = Listener::Open(loop.runtime_ptr(), std::move(configuration), options, &status);
  if (!listener_ || QUIC_FAILED(listener_->Start(Loopback(0)))) throw std::runtime_error("listen failed");
  listener_->wrapper = this;
  QUIC_ADDR address;
  listener_->LocalAddress(&address);
  port_ = QuicAddrGetPort(&address);
}

Server::~Server() {
  listener_->wrapper = nullptr;
}

void Server::OnEvent(Event& event) {
  if (event.type == EventType::kListenerConnection) {
    auto connection = std::static_pointer_cast<Connection>(event.child);
    connection->wrapper = new ServerConnection(*this, connection);
  } else if (event.type == EventType::kListenerStopped) {
    stopped_ = true;
  }
}

}  // namespace nmq::harness
