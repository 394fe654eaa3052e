// `quic_harness stress`: seeded random sequences of API calls on a listener, connections and
// streams, checking after each seed that
//   - every stream a client completed was received by the server exactly once, with all its bytes;
//   - every handle reached its final event (SHUTDOWN_COMPLETE / STOP_COMPLETE);
//   - no handle is left waiting to close.
// Server streams also move at random points (Route::Divert to a route of their own, held, then
// adopted back some steps later, as stream.transfer() and adopt() do across threads), while
// MsQuic's workers keep reporting on them: nothing may be lost, doubled or reordered.
// A failing or hanging seed is printed; `--seed N --seeds 1` replays it.
#include "stress.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "peers.h"
#include "route.h"
#include "stream.h"
#include "transfer.h"

namespace nmq::harness {

namespace {
using Ms = std::chrono::milliseconds;

// splitmix64: small, fast, and the same sequence everywhere for a seed.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(Next() % n); }
  bool Chance(uint32_t percent) { return Below(100) < percent; }
};

// Payload of stream `id`: its id and length (12 bytes), then a pattern only that id produces.
std::vector<uint8_t> Payload(uint64_t id, uint32_t length) {
  std::vector<uint8_t> data(12 + length);
  for (int i = 0; i < 8; ++i) data[i] = static_cast<uint8_t>(id >> (8 * i));
  for (int i = 0; i < 4; ++i) data[8 + i] = static_cast<uint8_t>(length >> (8 * i));
  for (uint32_t i = 0; i < length; ++i) data[12 + i] = static_cast<uint8_t>(id * 131 + i);
  return data;
}

// The id of a payload, or UINT64_MAX if the bytes are not exactly a payload.
uint64_t PayloadId(const std::vector<uint8_t>& data) {
  if (data.size() < 12) return UINT64_MAX;
  uint64_t id = 0;
  uint32_t length = 0;
  for (int i = 0; i < 8; ++i) id |= uint64_t(data[i]) << (8 * i);
  for (int i = 0; i < 4; ++i) length |= uint32_t(data[8 + i]) << (8 * i);
  return data == Payload(id, length) ? id : UINT64_MAX;
}

struct Counts {
  int opened = 0;
  int finished = 0;
};

class Run;

class ServerStream : public Handler {
 public:
  ServerStream(Run& run, std::shared_ptr<Stream> stream);
  void OnEvent(Event& event) override;
  std::shared_ptr<Stream> stream;

 private:
  Run& run_;
  std::vector<uint8_t> received_;
};

class ServerConnection : public Handler {
 public:
  ServerConnection(Run& run, std::shared_ptr<Connection> connection) : connection(std::move(connection)), run_(run) {}
  void OnEvent(Event& event) override;
  std::shared_ptr<Connection> connection;

 private:
  Run& run_;
};

class ClientStream : public Handler {
 public:
  ClientStream(Run& run, std::shared_ptr<Stream> stream, uint64_t id, std::vector<uint8_t> payload, bool abort_midway);
  void OnEvent(Event& event) override;
  uint64_t id;
  bool complete = false;  // the echo came back whole

 private:
  Run& run_;
  std::shared_ptr<Stream> stream_;
  std::vector<uint8_t> payload_, received_;
};

class ClientConnection : public Handler {
 public:
  ClientConnection(Run& run, std::shared_ptr<Connection> connection) : connection(std::move(connection)), run_(run) {}
  void OnEvent(Event& event) override;
  std::shared_ptr<Connection> connection;
  bool connected = false;
  bool closing = false;
  bool closed = false;

 private:
  Run& run_;
};

class Run : public Handler {
 public:
  Run(Loop& loop, const TestCredentials& credentials, uint64_t seed) : loop_(loop), rng_{seed} {
    // A short idle timeout: a silently closed peer is noticed within a second.
    server_config_ = ServerConfiguration(loop.runtime(), credentials, 16, 1000);
    client_config_ = ClientConfiguration(loop.runtime(), credentials, 1000);
    ListenerOptions options;
    options.backlog = 64;
    QUIC_STATUS status = QUIC_STATUS_SUCCESS;
    listener_ = Listener::Open(loop.runtime_ptr(), server_config_, options, &status);
    if (!listener_ || QUIC_FAILED(listener_->Start(Loopback(0)))) throw std::runtime_error("listen failed");
    listener_->wrapper = this;
    QUIC_ADDR address;
    listener_->LocalAddress(&address);
    port_ = QuicAddrGetPort(&address);
  }

  // Returns an empty string when every invariant held, else what broke.
  std::string Execute(int steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      Act();
      AdoptDueMoves(false);
      loop_.RunUntil([] { return false; }, Ms(rng_.Below(3)));
    }
    // Wind down: finish what is pending, then close everything.
    winding_down_ = true;
    AdoptDueMoves(true);
    for (auto& stream : untaken_) stream->Taken();
    untaken_.clear();
    loop_.RunUntil([&] { return streams_.finished == streams_.opened; }, Ms(20000));
    for (auto& client : clients_) {
      if (!client->closing) {
        client->closing = true;
        client->connection->Shutdown(0, false);
      }
    }
    listener_->Stop();
    const bool settled = loop_.RunUntil([&] {
      return listener_stopped_ && clients_finished_ == int(clients_.size()) &&
             server_connections_.finished == server_connections_.opened &&
             server_streams_.finished == server_streams_.opened && streams_.finished == streams_.opened;
    }, Ms(30000));
    listener_->wrapper = nullptr;
    if (!settled) return "not every handle reached its final event";
    for (uint64_t id : completed_) {
      auto it = received_.find(id);
      if (it == received_.end()) return "stream " + std::to_string(id) + " completed but the server never received it";
      if (it->second != 1) return "stream " + std::to_string(id) + " received " + std::to_string(it->second) + " times";
    }
    if (!corrupt_.empty()) return corrupt_;
    if (loop_.runtime().DeferredCount() != 0) {
      return std::to_string(loop_.runtime().DeferredCount()) + " handles left waiting to close";
    }
    std::printf("  streams %d (completed %zu), server connections %d, server streams %d (moves %d)\n", streams_.opened,
                completed_.size(), server_connections_.opened, server_streams_.opened, moved_);
    return std::string();
  }

  void OnEvent(Event& event) override {
    if (event.type == EventType::kListenerConnection) {
      auto connection = std::static_pointer_cast<Connection>(event.child);
      connection->wrapper = new ServerConnection(*this, connection);
      server_connections_.opened++;
    } else if (event.type == EventType::kListenerStopped) {
      listener_stopped_ = true;
    }
  }

  // Called by the pieces above.
  void OnPeerStream(std::shared_ptr<Stream> stream) {
    stream->wrapper = new ServerStream(*this, stream);
    server_streams_.opened++;
    // Accept now, or later: a late accept holds the peer's credit meanwhile.
    if (!winding_down_ && rng_.Chance(30)) untaken_.push_back(stream);
    else stream->Taken();
  }
  void OnServerReceived(const std::vector<uint8_t>& data) {
    uint64_t id = PayloadId(data);
    if (id == UINT64_MAX) corrupt_ = "the server received bytes that are not a whole payload";
    else received_[id]++;
  }
  void OnServerStreamFinished(ServerStream* stream) {
    server_streams_.finished++;
    live_server_streams_.erase(stream);
  }
  void OnServerStreamOpened(ServerStream* stream) { live_server_streams_.insert(stream); }
  void OnServerConnectionFinished() { server_connections_.finished++; }
  void OnClientStreamFinished(ClientStream& stream) {
    streams_.finished++;
    if (stream.complete) completed_.insert(stream.id);
  }
  void OnClientConnectionFinished() { clients_finished_++; }
  void Corrupt(const std::string& what) { corrupt_ = what; }

 private:
  void Act() {
    std::vector<ClientConnection*> live;
    for (auto& client : clients_) {
      if (client->connected && !client->closing) live.push_back(client.get());
    }
    const uint32_t action = rng_.Below(100);
    if (live.empty() || (action < 10 && clients_.size() < 12)) {
      QUIC_STATUS status = QUIC_STATUS_SUCCESS;
      auto connection = Connection::OpenClient(loop_.runtime_ptr(), ConnectionOptions{}, &status);
      if (!connection) throw std::runtime_error("open connection failed");
      auto client = std::make_unique<ClientConnection>(*this, connection);
      connection->wrapper = client.get();
      connection->Start(client_config_, Loopback(port_), "", "127.0.0.1");
      clients_.push_back(std::move(client));
      return;
    }
    ClientConnection* client = live[rng_.Below(static_cast<uint32_t>(live.size()))];
    if (action < 80) {
      OpenStream(*client, action >= 72);
    } else if (action < 86) {
      // Close a connection mid-stream: its streams end abruptly and do not count as completed.
      client->closing = true;
      client->connection->Shutdown(rng_.Below(5), rng_.Chance(20));
    } else if (action < 92 && !live_server_streams_.empty()) {
      MoveStream();
    } else if (action < 96 && !untaken_.empty()) {
      untaken_.front()->Taken();
      untaken_.erase(untaken_.begin());
    } else {
      // A burst of streams, more than the peer's credit: some wait for it.
      for (int i = 0; i < 20; ++i) OpenStream(*client, false);
    }
  }

  // A server stream moves: the first move splits it off its connection's route onto one of its
  // own, later moves hold that route again. Its events wait (held) until adopted back.
  void MoveStream() {
    auto it = live_server_streams_.begin();
    std::advance(it, rng_.Below(static_cast<uint32_t>(live_server_streams_.size())));
    const std::shared_ptr<Stream>& stream = (*it)->stream;
    for (const auto& move : moves_) {
      if (move.stream == stream) return;  // already away
    }
    if (!stream->moved_route()) loop_.runtime().Track(stream);
    std::shared_ptr<Route> route = SplitOffRoute(stream, loop_.runtime_ptr(), true);
    moves_.push_back(Move{stream, std::move(route), step_ + 1 + static_cast<int>(rng_.Below(20))});
    moved_++;
  }

  // Adopts the held routes whose time came (all of them when winding down), in this loop.
  void AdoptDueMoves(bool all) {
    for (auto it = moves_.begin(); it != moves_.end();) {
      if (all || it->due <= step_) {
        it->route->Adopt(loop_.runtime_ptr(), {});
        it = moves_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void OpenStream(ClientConnection& client, bool abort_midway) {
    QUIC_STATUS status = QUIC_STATUS_SUCCESS;
    auto stream = client.connection->OpenStream(false, &status);
    if (!stream) return;  // the connection is shutting down
    const uint64_t id = next_id_++;
    const uint32_t length = rng_.Chance(10) ? rng_.Below(200000) : rng_.Below(2000);
    new ClientStream(*this, stream, id, Payload(id, length), abort_midway);
    streams_.opened++;
  }

  Loop& loop_;
  Rng rng_;
  std::shared_ptr<Configuration> server_config_, client_config_;
  std::shared_ptr<Listener> listener_;
  uint16_t port_ = 0;
  bool listener_stopped_ = false;
  bool winding_down_ = false;
  std::vector<std::unique_ptr<ClientConnection>> clients_;
  int clients_finished_ = 0;
  std::vector<std::shared_ptr<Stream>> untaken_;
  Counts streams_, server_streams_, server_connections_;
  uint64_t next_id_ = 1;
  std::set<uint64_t> completed_;
  std::map<uint64_t, int> received_;
  std::string corrupt_;
  int step_ = 0;
  std::set<ServerStream*> live_server_streams_;
  struct Move {
    std::shared_ptr<Stream> stream;
    std::shared_ptr<Route> route;
    int due;  // the step at which it is adopted back
  };
  std::vector<Move> moves_;

 public:
  int moved_ = 0;
};

ServerStream::ServerStream(Run& run, std::shared_ptr<Stream> stream) : stream(std::move(stream)), run_(run) {
  run_.OnServerStreamOpened(this);
}

void ServerStream::OnEvent(Event& event) {
  switch (event.type) {
    case EventType::kStreamData:
      received_.insert(received_.end(), event.data.get(), event.data.get() + event.data_length);
      stream->Consumed(event.data_length);
      break;
    case EventType::kStreamPeerSendShutdown:
      run_.OnServerReceived(received_);
      stream->Send(received_.data(), received_.size(), true);
      break;
    case EventType::kStreamPeerSendAborted:
      stream->Shutdown(QUIC_STREAM_SHUTDOWN_FLAG_ABORT, 0);
      break;
    case EventType::kStreamShutdownComplete:
      stream->wrapper = nullptr;
      run_.OnServerStreamFinished(this);
      delete this;
      return;
    default:
      break;
  }
}

void ServerConnection::OnEvent(Event& event) {
  switch (event.type) {
    case EventType::kConnectionConnected:
      connection->listener()->Taken();
      break;
    case EventType::kConnectionPeerStream:
      run_.OnPeerStream(std::static_pointer_cast<Stream>(event.child));
      break;
    case EventType::kConnectionShutdownComplete:
      connection->wrapper = nullptr;
      run_.OnServerConnectionFinished();
      delete this;
      return;
    default:
      break;
  }
}

ClientStream::ClientStream(Run& run, std::shared_ptr<Stream> stream, uint64_t id, std::vector<uint8_t> payload, bool abort_midway)
    : id(id), run_(run), stream_(std::move(stream)), payload_(std::move(payload)) {
  stream_->wrapper = this;
  if (abort_midway) {
    stream_->Send(payload_.data(), payload_.size() / 2, false);
    stream_->Shutdown(QUIC_STREAM_SHUTDOWN_FLAG_ABORT, 7);
  } else {
    stream_->Send(payload_.data(), payload_.size(), true);
  }
}

void ClientStream::OnEvent(Event& event) {
  switch (event.type) {
    case EventType::kStreamData:
      received_.insert(received_.end(), event.data.get(), event.data.get() + event.data_length);
      stream_->Consumed(event.data_length);
      break;
    case EventType::kStreamPeerSendShutdown:
      if (received_ == payload_) complete = true;
      else run_.Corrupt("stream " + std::to_string(id) + ": the echo differs from what was sent");
      break;
    case EventType::kStreamShutdownComplete:
      stream_->wrapper = nullptr;
      run_.OnClientStreamFinished(*this);
      delete this;
      return;
    default:
      break;
  }
}

void ClientConnection::OnEvent(Event& event) {
  if (event.type == EventType::kConnectionConnected) {
    connected = true;
  } else if (event.type == EventType::kConnectionShutdownComplete) {
    closed = true;
    connection->wrapper = nullptr;
    run_.OnClientConnectionFinished();
  }
}

// Aborts the process, naming the seed, if a seed runs longer than allowed.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { Watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_one();
    thread_.join();
  }
  void Arm(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mutex_);
    seed_ = seed;
    deadline_ = std::chrono::steady_clock::now() + limit_;
    changed_.notify_one();
  }

 private:
  void Watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      if (changed_.wait_until(lock, deadline_, [this] { return stop_; })) return;
      if (std::chrono::steady_clock::now() >= deadline_ && seed_ != 0) {
        std::fprintf(stderr, "stress: seed %llu hung (watchdog); replay with --seed %llu --seeds 1\n",
                     (unsigned long long)seed_, (unsigned long long)seed_);
        std::_Exit(3);
      }
    }
  }
  std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  uint64_t seed_ = 0;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::now() + std::chrono::hours(24);
  std::thread thread_;
};
}  // namespace

bool RunStress(const StressOptions& options) {
  Loop loop(options.workers);
  TestCredentials credentials;
  Watchdog watchdog(std::chrono::seconds(120));
  const auto begin = std::chrono::steady_clock::now();
  uint64_t ran = 0;
  for (uint64_t seed = options.seed; seed < options.seed + options.seeds; ++seed) {
    if (options.seconds > 0 && Seconds(begin) > options.seconds) break;
    watchdog.Arm(seed);
    std::printf("stress: seed %llu\n", (unsigned long long)seed);
    std::fflush(stdout);
    std::string failure;
    {
      Run run(loop, credentials, seed);
      failure = run.Execute(300);
    }
    if (!failure.empty()) {
      std::printf("stress: seed %llu FAILED: %s; replay with --seed %llu --seeds 1\n", (unsigned long long)seed,
                  failure.c_str(), (unsigned long long)seed);
      return false;
    }
    ++ran;
  }
  std::printf("stress: %llu seeds passed in %.1f s\n", (unsigned long long)ran, Seconds(begin));
  return true;
}

}  // namespace nmq::harness
