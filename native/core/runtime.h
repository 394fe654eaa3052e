// Per-Node-environment native state: the MsQuic registration, the event queue, and teardown.
// Each environment (the main thread, each worker thread) has its own, so one environment's exit
// never touches another's handles.
#pragma once
#include <msquic.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "event_queue.h"

namespace nmq {

class Handle;
class Configuration;
class Listener;

class Runtime {
 public:
  // JS thread. `workers` sizes MsQuic's worker pool if this opens MsQuic for the process.
  static std::shared_ptr<Runtime> Open(const char* app_name, uint32_t workers,
                                       std::function<void()> doorbell, QUIC_STATUS* status);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  HQUIC registration() const { return registration_; }
  EventQueue& queue() { return queue_; }
  bool closing() const { return closing_.load(std::memory_order_acquire); }

  // Keeps a handle whose close waits for the app (see Handle); false once teardown began.
  bool Defer(std::shared_ptr<Handle> handle);
  void ForgetDeferred(Handle* handle);
  // Handles whose close still waits for the app (the stress test checks none are left).
  size_t DeferredCount();
  // JS thread: teardown must reach these even if their wrappers are never collected.
  void Track(const std::shared_ptr<Configuration>& configuration);
  void Track(const std::shared_ptr<Listener>& listener);

  // Shuts everything down silently and waits until MsQuic has closed every handle. Runs on the
  // JS thread from the environment's cleanup hook, or from the process's exit handler. Idempotent.
  void Shutdown();

 private:
  Runtime(std::function<void()> doorbell) : queue_(std::move(doorbell)) {}

  HQUIC registration_ = nullptr;
  EventQueue queue_;
  std::atomic<bool> closing_{false};
  std::mutex mutex_;
  std::unordered_map<Handle*, std::shared_ptr<Handle>> deferred_;
  std::vector<std::weak_ptr<Configuration>> configurations_;
  std::vector<std::weak_ptr<Listener>> listeners_;
  bool shut_down_ = false;
  bool api_held_ = false;
};

}  // namespace nmq
