#include "runtime.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "api.h"
#include "configuration.h"
#include "connection.h"
#include "handle.h"
#include "listener.h"
#include "stream.h"

namespace nmq {

namespace {
// `process.exit()` on the main thread skips environment cleanup hooks, yet MsQuic's threads would
// still be running while exit() runs OpenSSL's atexit cleanup. This handler, registered after MsQuic
// first opened (so it runs before OpenSSL's), shuts every live runtime down first.
std::mutex live_mutex;
std::set<Runtime*>* live_runtimes = new std::set<Runtime*>();  // never freed: used during exit
bool exit_hook_registered = false;

void ShutdownAllAtExit() {
  std::vector<Runtime*> runtimes;
  {
    std::lock_guard<std::mutex> lock(live_mutex);
    runtimes.assign(live_runtimes->begin(), live_runtimes->end());
  }
  for (Runtime* runtime : runtimes) runtime->Shutdown();
}
}  // namespace

std::shared_ptr<Runtime> Runtime::Open(uint32_t workers, std::function<void()> doorbell, QUIC_STATUS* status) {
  std::shared_ptr<Runtime> runtime(new Runtime(std::move(doorbell)));
  *status = ApiAcquire(workers);
  if (QUIC_FAILED(*status)) return nullptr;
  runtime->api_held_ = true;
  std::lock_guard<std::mutex> lock(live_mutex);
  live_runtimes->insert(runtime.get());
  if (!exit_hook_registered) {
    exit_hook_registered = true;
    std::atexit(ShutdownAllAtExit);
  }
  return runtime;
}

Runtime::~Runtime() {
  Shutdown();
}

HQUIC Runtime::registration() const {
  return Registration();
}

void Runtime::Track(const std::shared_ptr<Connection>& connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.emplace(connection.get(), connection);
}

void Runtime::ConnectionClosed(Connection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.erase(connection);
  connections_closed_.notify_all();
}

void Runtime::TakeOver(Runtime& from, const std::shared_ptr<Connection>& connection) {
  std::vector<std::shared_ptr<Handle>> deferred;
  {
    std::lock_guard<std::mutex> lock(from.mutex_);
    from.connections_.erase(connection.get());
    for (auto it = from.deferred_.begin(); it != from.deferred_.end();) {
      if (it->second->route() == connection->route()) {
        deferred.push_back(std::move(it->second));
        it = from.deferred_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.emplace(connection.get(), connection);
  for (auto& handle : deferred) deferred_.emplace(handle.get(), std::move(handle));
}

void Runtime::Track(const std::shared_ptr<Stream>& stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = streams_.begin(); it != streams_.end();) {
    it = it->second.expired() ? streams_.erase(it) : std::next(it);
  }
  streams_.emplace(stream.get(), stream);
}

void Runtime::Untrack(Stream* stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  streams_.erase(stream);
}

bool Runtime::Defer(std::shared_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closing()) return false;
  Handle* key = handle.get();
  deferred_.emplace(key, std::move(handle));
  return true;
}

void Runtime::ForgetDeferred(Handle* handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  deferred_.erase(handle);
}

size_t Runtime::DeferredCount() {
  std::lock_guard<std::mutex> lock(mutex_);
  return deferred_.size();
}

void Runtime::Track(const std::shared_ptr<Configuration>& configuration) {
  std::lock_guard<std::mutex> lock(mutex_);
  configurations_.erase(std::remove_if(configurations_.begin(), configurations_.end(),
                                       [](const auto& w) { return w.expired(); }),
                        configurations_.end());
  configurations_.push_back(configuration);
}

void Runtime::Track(const std::shared_ptr<Listener>& listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [](const auto& w) { return w.expired(); }),
                   listeners_.end());
  listeners_.push_back(listener);
}

void Runtime::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(live_mutex);
    if (shut_down_) return;
    shut_down_ = true;
    live_runtimes->erase(this);
  }
  queue_.Close();
  // Calls not started yet are dropped: a connection whose start is among them was never started,
  // and the shutdown below closes it silently.
  blocking_calls_.Stop();

  std::unordered_map<Handle*, std::shared_ptr<Handle>> deferred;
  std::vector<std::weak_ptr<Listener>> listeners;
  std::vector<std::weak_ptr<Configuration>> configurations;
  std::unordered_map<Stream*, std::weak_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_.store(true, std::memory_order_release);
    deferred.swap(deferred_);
    listeners.swap(listeners_);
    configurations.swap(configurations_);
    streams.swap(streams_);
  }
  // Streams that moved here alone end for the peer too; their connections live on elsewhere, and
  // their final events close them natively (nothing here waits for JS any more).
  for (auto& entry : streams) {
    if (auto stream = entry.second.lock()) {
      stream->Shutdown(QUIC_STREAM_SHUTDOWN_FLAG_ABORT | QUIC_STREAM_SHUTDOWN_FLAG_IMMEDIATE, 0);
    }
  }
  // Locks are not held from here on: the calls below can block until MsQuic's workers run
  // final events, and those take handle locks.
  for (auto& entry : deferred) entry.second->ForceClose();
  for (auto& weak : listeners) {
    if (auto listener = weak.lock()) listener->ForceClose();  // blocks until STOP_COMPLETE
  }
  // Every connection this environment owns gets SHUTDOWN_COMPLETE and closes itself natively
  // (closing() is set, so no close waits for JS); wait until they all have.
  std::vector<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& entry : connections_) {
      if (auto connection = entry.second.lock()) connections.push_back(std::move(connection));
    }
  }
  // Each peer hears a CONNECTION_CLOSE (code 0) rather than waiting for its idle timeout: a
  // worker's teardown ends its connections, not the peers' view of them.
  for (auto& connection : connections) connection->Shutdown(0, false);
  connections.clear();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // A connection counts as done once MsQuic has closed it (an entry can outlive that briefly
    // when the connection moved here while closing).
    connections_closed_.wait_for(lock, std::chrono::seconds(10), [this] {
      for (auto& entry : connections_) {
        auto connection = entry.second.lock();
        if (connection && !connection->closed()) return false;
      }
      return true;
    });
  }
  for (auto& weak : configurations) {
    if (auto configuration = weak.lock()) configuration->Close();
  }
  if (api_held_) {
    api_held_ = false;
    ApiRelease();
  }
}

}  // namespace nmq
