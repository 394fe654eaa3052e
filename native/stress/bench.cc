// `quic_harness bench`: the benchmark workloads driven natively, on the same core the addon uses,
// with no JS in the way: the ceiling the Node figures are divided by. Prints one JSON line.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <stdexcept>

#include "bench.h"
#include "peers.h"

namespace nmq::harness {

namespace {
using Clock = std::chrono::steady_clock;

std::shared_ptr<Connection> Dial(Loop& loop, const std::shared_ptr<Configuration>& configuration, uint16_t port) {
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  auto connection = Connection::OpenClient(loop.runtime_ptr(), ConnectionOptions{}, &status);
  if (!connection) throw std::runtime_error("connect failed");
  connection->Start(configuration, Loopback(port), "", "127.0.0.1");
  return connection;
}

// A client connection whose handler only records that it connected and closed.
class ClientConnection : public Handler {
 public:
  explicit ClientConnection(std::shared_ptr<Connection> connection, std::function<void(ClientConnection&)> on_connected = nullptr)
      : connection(std::move(connection)), on_connected_(std::move(on_connected)) {
    this->connection->wrapper = this;
  }
  void OnEvent(Event& event) override {
    if (event.type == EventType::kConnectionConnected) {
      connected = true;
      if (on_connected_) on_connected_(*this);
    } else if (event.type == EventType::kConnectionShutdownComplete) {
      closed = true;
      connection->wrapper = nullptr;
      if (on_closed) on_closed(*this);
    }
  }
  std::shared_ptr<Connection> connection;
  bool connected = false;
  bool closed = false;
  std::function<void(ClientConnection&)> on_closed;

 private:
  std::function<void(ClientConnection&)> on_connected_;
};

// One client stream: sends `send_bytes` then FIN; done when the peer's FIN arrives.
class ClientStream : public Handler {
 public:
  ClientStream(std::shared_ptr<Stream> stream, uint64_t send_bytes, std::function<void(ClientStream&)> on_done)
      : stream_(std::move(stream)), sender_(stream_, send_bytes, 64 * 1024), on_done_(std::move(on_done)) {
    stream_->wrapper = this;
    started = Clock::now();
    sender_.Pump();
  }
  void OnEvent(Event& event) override {
    switch (event.type) {
      case EventType::kStreamData:
        received += event.data_length;
        stream_->Consumed(event.data_length);
        break;
      case EventType::kStreamSendReady:
        sender_.Pump();
        break;
      case EventType::kStreamPeerSendShutdown:
        finished = Clock::now();
        ok = true;
        break;
      case EventType::kStreamShutdownComplete: {
        stream_->wrapper = nullptr;
        auto done = std::move(on_done_);
        done(*this);
        delete this;
        return;
      }
      default:
        break;
    }
  }
  uint64_t received = 0;
  bool ok = false;
  Clock::time_point started, finished;

 private:
  std::shared_ptr<Stream> stream_;
  Sender sender_;
  std::function<void(ClientStream&)> on_done_;
};

std::shared_ptr<Stream> Open(Connection& connection) {
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  auto stream = connection.OpenStream(false, &status);
  if (!stream) throw std::runtime_error("open stream failed");
  return stream;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

void Print(const BenchOptions& o, const std::string& params, const std::string& metrics) {
  std::printf("{\"impl\":\"native\",\"workload\":\"%s\",\"params\":{%s},\"metrics\":{%s}}\n",
              o.workload.c_str(), params.c_str(), metrics.c_str());
  std::fflush(stdout);
}

const auto kTimeout = std::chrono::milliseconds(600000);

// CPU time of the calling (loop) thread, in milliseconds.
double ThreadCpuMs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

void Bulk(Loop& loop, const TestCredentials& credentials, const BenchOptions& o) {
  const bool up = o.direction != "down";
  Server server(loop, ServerConfiguration(loop.runtime(), credentials, 100),
                up ? ServerMode::kSink : ServerMode::kSource, o.bytes);
  auto client_config = ClientConfiguration(loop.runtime(), credentials);
  ClientConnection client(Dial(loop, client_config, server.port()));
  loop.RunUntil([&] { return client.connected; }, kTimeout);
  bool done = false;
  uint64_t received = 0;
  double seconds = 0;
  const uint64_t wakeups = loop.wakeups(), events = loop.events();
  const double cpu = ThreadCpuMs();
  new ClientStream(Open(*client.connection), up ? o.bytes : 1, [&](ClientStream& s) {
    done = true;
    received = up ? server.stats().bytes : s.received;
    seconds = std::chrono::duration<double>(s.finished - s.started).count();
  });
  if (!loop.RunUntil([&] { return done; }, kTimeout)) throw std::runtime_error("bulk timed out");
  if (received != o.bytes) throw std::runtime_error("bulk: wrong byte count");
  const double mib = o.bytes / 1048576.0;
  char params[128], metrics[256];
  std::snprintf(params, sizeof(params), "\"bytes\":%llu,\"direction\":\"%s\"", (unsigned long long)o.bytes, up ? "up" : "down");
  std::snprintf(metrics, sizeof(metrics),
                "\"mibPerSecond\":%.1f,\"seconds\":%.3f,\"mainThreadCpuMsPerMiB\":%.3f,\"eventsPerWakeup\":%.1f",
                mib / seconds, seconds, (ThreadCpuMs() - cpu) / mib,
                double(loop.events() - events) / std::max<uint64_t>(1, loop.wakeups() - wakeups));
  Print(o, params, metrics);
  client.connection->Shutdown(0, false);
  server.Stop();
  loop.RunUntil([&] { return client.closed && server.stopped(); }, kTimeout);
}

void Echo(Loop& loop, const TestCredentials& credentials, const BenchOptions& o) {
  Server server(loop, ServerConfiguration(loop.runtime(), credentials, 1000), ServerMode::kEcho);
  auto client_config = ClientConfiguration(loop.runtime(), credentials);
  ClientConnection client(Dial(loop, client_config, server.port()));
  loop.RunUntil([&] { return client.connected; }, kTimeout);
  uint32_t started = 0, completed = 0, errors = 0;
  std::vector<double> latencies;
  latencies.reserve(o.streams);
  std::function<void()> start_one;
  auto on_done = [&](ClientStream& s) {
    ++completed;
    if (!s.ok || s.received != o.size) {
      ++errors;
    } else {
      latencies.push_back(std::chrono::duration<double, std::micro>(s.finished - s.started).count());
    }
    if (started < o.streams) start_one();
  };
  start_one = [&] {
    ++started;
    new ClientStream(Open(*client.connection), o.size, on_done);
  };
  const auto begin = Clock::now();
  for (uint32_t i = 0; i < o.concurrency && started < o.streams; ++i) start_one();
  const bool finished = loop.RunUntil([&] { return completed == o.streams; }, std::chrono::milliseconds(o.timeout_ms));
  const double seconds = Seconds(begin);
  char params[160], metrics[256];
  std::snprintf(params, sizeof(params), "\"streams\":%u,\"concurrency\":%u,\"size\":%u", o.streams, o.concurrency, o.size);
  std::snprintf(metrics, sizeof(metrics),
                "\"streamsPerSecond\":%.0f,\"p50Us\":%.0f,\"p99Us\":%.0f,\"completed\":%u,\"errors\":%u,\"hung\":%s",
                completed / seconds, Percentile(latencies, 0.5), Percentile(latencies, 0.99), completed, errors,
                finished ? "false" : "true");
  Print(o, params, metrics);
  client.connection->Shutdown(0, false);
  server.Stop();
  loop.RunUntil([&] { return client.closed && server.stopped(); }, kTimeout);
}

void Handshakes(Loop& loop, const TestCredentials& credentials, const BenchOptions& o) {
  Server server(loop, ServerConfiguration(loop.runtime(), credentials, 100), ServerMode::kEcho);
  auto client_config = ClientConfiguration(loop.runtime(), credentials);
  uint32_t started = 0, completed = 0;
  std::deque<std::unique_ptr<ClientConnection>> live;
  std::function<void()> start_one = [&] {
    ++started;
    auto c = std::make_unique<ClientConnection>(Dial(loop, client_config, server.port()),
                                                [](ClientConnection& self) { self.connection->Shutdown(0, false); });
    c->on_closed = [&](ClientConnection& self) {
      if (self.connected) ++completed;
      if (started < o.connections) start_one();
    };
    live.push_back(std::move(c));
  };
  const auto begin = Clock::now();
  for (uint32_t i = 0; i < o.concurrency && started < o.connections; ++i) start_one();
  loop.RunUntil([&] { return completed == o.connections; }, kTimeout);
  const double seconds = Seconds(begin);
  char params[128], metrics[128];
  std::snprintf(params, sizeof(params), "\"connections\":%u,\"concurrency\":%u", o.connections, o.concurrency);
  std::snprintf(metrics, sizeof(metrics), "\"connectionsPerSecond\":%.0f,\"completed\":%u", completed / seconds, completed);
  Print(o, params, metrics);
  server.Stop();
  loop.RunUntil([&] { return server.stopped(); }, kTimeout);
}

void Idle(Loop& loop, const TestCredentials& credentials, const BenchOptions& o) {
  Server server(loop, ServerConfiguration(loop.runtime(), credentials, 100), ServerMode::kEcho);
  auto client_config = ClientConfiguration(loop.runtime(), credentials);
  // Warm up allocators with one connection before measuring.
  std::vector<std::unique_ptr<ClientConnection>> clients;
  clients.push_back(std::make_unique<ClientConnection>(Dial(loop, client_config, server.port())));
  loop.RunUntil([&] { return server.stats().connections == 1; }, kTimeout);
  const uint64_t before = ResidentBytes();
  for (uint32_t i = 0; i < o.connections; ++i) {
    clients.push_back(std::make_unique<ClientConnection>(Dial(loop, client_config, server.port())));
  }
  loop.RunUntil([&] { return server.stats().connections == o.connections + 1; }, kTimeout);
  const uint64_t after = ResidentBytes();
  char params[64], metrics[128];
  std::snprintf(params, sizeof(params), "\"connections\":%u", o.connections);
  std::snprintf(metrics, sizeof(metrics), "\"bytesPerConnection\":%.0f,\"connected\":%llu",
                double(after - before) / o.connections, (unsigned long long)server.stats().connections - 1);
  Print(o, params, metrics);
  for (auto& c : clients) c->connection->Shutdown(0, false);
  loop.RunUntil([&] { return std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->closed; }); }, kTimeout);
  server.Stop();
  loop.RunUntil([&] { return server.stopped(); }, kTimeout);
}
}  // namespace

void RunBench(const BenchOptions& options) {
  Loop loop(options.workers);
  TestCredentials credentials;
  if (options.workload == "bulk") Bulk(loop, credentials, options);
  else if (options.workload == "echo") Echo(loop, credentials, options);
  else if (options.workload == "handshakes") Handshakes(loop, credentials, options);
  else if (options.workload == "idle") Idle(loop, credentials, options);
  else throw std::runtime_error("unknown workload " + options.workload);
}

}  // namespace nmq::harness
