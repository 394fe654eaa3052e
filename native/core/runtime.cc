#include "runtime.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "api.h"
#include "configuration.h"
#include "handle.h"
#include "listener.h"

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

std::shared_ptr<Runtime> Runtime::Open(const char* app_name, uint32_t workers,
                                       std::function<void()> doorbell, QUIC_STATUS* status) {
  std::shared_ptr<Runtime> runtime(new Runtime(std::move(doorbell)));
  *status = ApiAcquire(workers);
  if (QUIC_FAILED(*status)) return nullptr;
  runtime->api_held_ = true;
  QUIC_REGISTRATION_CONFIG config = {app_name, QUIC_EXECUTION_PROFILE_LOW_LATENCY};
  *status = MsQuic->RegistrationOpen(&config, &runtime->registration_);
  if (QUIC_FAILED(*status)) return nullptr;
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

  std::unordered_map<Handle*, std::shared_ptr<Handle>> deferred;
  std::vector<std::weak_ptr<Listener>> listeners;
  std::vector<std::weak_ptr<Configuration>> configurations;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_.store(true, std::memory_order_release);
    deferred.swap(deferred_);
    listeners.swap(listeners_);
    configurations.swap(configurations_);
  }
  // Locks are not held from here on: the calls below can block until MsQuic's workers run
  // final events, and those take handle locks.
  for (auto& entry : deferred) entry.second->ForceClose();
  for (auto& weak : listeners) {
    if (auto listener = weak.lock()) listener->ForceClose();  // blocks until STOP_COMPLETE
  }
  if (registration_ != nullptr) {
    // Every connection gets SHUTDOWN_COMPLETE and closes itself natively (closing() is set, so
    // no close waits for JS); RegistrationClose returns once they all have.
    MsQuic->RegistrationShutdown(registration_, QUIC_CONNECTION_SHUTDOWN_FLAG_SILENT, 0);
    for (auto& weak : configurations) {
      if (auto configuration = weak.lock()) configuration->Close();
    }
    MsQuic->RegistrationClose(registration_);
    registration_ = nullptr;
  }
  if (api_held_) {
    api_held_ = false;
    ApiRelease();
  }
}

}  // namespace nmq
