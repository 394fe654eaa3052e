// Per-Node-environment native state: the event queue, the handles the environment owns, and
// teardown. Each environment (the main thread, each worker thread) has its own, so one
// environment's exit closes its own handles and never another's (they share MsQuic's registration).
#pragma once
#include <msquic.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "blocking_calls.h"
#include "event_queue.h"

namespace nmq {

class Handle;
class Configuration;
class Connection;
class Listener;
class Stream;

class Runtime {
 public:
  // JS thread. `workers` sizes MsQuic's worker pool if this opens MsQuic for the process.
  static std::shared_ptr<Runtime> Open(uint32_t workers, std::function<void()> doorbell, QUIC_STATUS* status);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  HQUIC registration() const;
  EventQueue& queue() { return queue_; }
  // Where MsQuic calls that wait on a worker run (see BlockingCalls): never on the JS thread.
  BlockingCalls& blocking_calls() { return blocking_calls_; }
  bool closing() const { return closing_.load(std::memory_order_acquire); }

  // Keeps a handle whose close waits for the app (see Handle); false once teardown began.
  bool Defer(std::shared_ptr<Handle> handle);
  void ForgetDeferred(Handle* handle);
  // Handles whose close still waits for the app (the stress test checks none are left).
  size_t DeferredCount();
  // JS thread: teardown must reach these even if their wrappers are never collected.
  void Track(const std::shared_ptr<Configuration>& configuration);
  void Track(const std::shared_ptr<Listener>& listener);
  // Any thread: a connection this environment owns, from its open until MsQuic has closed it.
  void Track(const std::shared_ptr<Connection>& connection);
  void ConnectionClosed(Connection* connection);
  // JS threads, when a connection moves here from `from`: its tracking, and the closes of its
  // route's handles that wait for the app, move along.
  void TakeOver(Runtime& from, const std::shared_ptr<Connection>& connection);
  // JS threads: a stream that moved here on its own (its connection lives elsewhere). Teardown
  // aborts it, since closing this environment's connections would not reach it.
  void Track(const std::shared_ptr<Stream>& stream);
  void Untrack(Stream* stream);

  // Shuts this environment's connections down silently and waits until MsQuic has closed every
  // handle it owns. Runs on the JS thread from the environment's cleanup hook, or from the
  // process's exit handler. Idempotent.
  void Shutdown();

 private:
  Runtime(std::function<void()> doorbell) : queue_(std::move(doorbell)) {}

  EventQueue queue_;
  BlockingCalls blocking_calls_;
  std::atomic<bool> closing_{false};
  std::mutex mutex_;
  std::unordered_map<Handle*, std::shared_ptr<Handle>> deferred_;
  std::vector<std::weak_ptr<Configuration>> configurations_;
  std::vector<std::weak_ptr<Listener>> listeners_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  std::unordered_map<Stream*, std::weak_ptr<Stream>> streams_;
  std::condition_variable connections_closed_;
  bool shut_down_ = false;
  bool api_held_ = false;
};

}  // namespace nmq
