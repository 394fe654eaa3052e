// What every MsQuic handle context shares: who may close the handle, and when.
//
// MsQuic handles are closed natively, on the worker, inside their final event (SHUTDOWN_COMPLETE or
// STOP_COMPLETE): the protocol decides lifetime, never the GC. A JS-thread call that uses the handle
// holds a "use" (Acquire/Release) so the worker never closes it underneath that call; if the final
// event arrives during a use, the last Release closes it instead. A peer stream is also held for
// the app until accepted (see Stream), so the peer's stream credit comes back only then. The context itself is shared: the
// handle (while open), the JS wrapper and every queued event each hold a reference, so it outlives
// both the handle and the wrapper.
#pragma once
#include <msquic.h>

#include <memory>
#include <mutex>

#include "event.h"
#include "route.h"

namespace nmq {

class Runtime;

class Handle : public std::enable_shared_from_this<Handle> {
 public:
  enum class Kind { kListener, kConnection, kStream };

  Handle(Kind kind, std::shared_ptr<Route> route) : kind_(kind), route_(std::move(route)) {}
  virtual ~Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  Kind kind() const { return kind_; }
  // The environment that owns the handle now (it changes when a connection moves). Not for a
  // stream that moved on its own: see MovedTo.
  std::shared_ptr<Runtime> runtime() const { return route_->owner(); }
  const std::shared_ptr<Route>& route() const { return route_; }
  // JS thread, when a stream moves on its own: from now on its owner (whose teardown and deferred
  // closes decide when it closes) is `route`'s, not its connection's.
  void MovedTo(std::shared_ptr<Route> route);
  // The route a stream that moved on its own has now (see Route), or null.
  std::shared_ptr<Route> moved_route() const;

  // JS thread: take a use of the open handle; false once its final event has closed it.
  bool Acquire();
  // JS thread: end a use. Closes the handle if its final event came meanwhile and this was the last use.
  void Release();
  // JS thread: the app took the handle; it may close once its final event has come.
  void ReleaseHold();
  // Teardown only: close now unless already closed (no use can be outstanding then).
  void ForceClose();
  bool closed() const;
  // MsQuic freed the handle itself (a refused connection): forget it without closing.
  void Abandon();

  // JS thread only: the binding's strong reference to the wrapper (opaque here).
  void* wrapper = nullptr;

 protected:
  // The handle is open and owned by this context from now on: keep the context alive until it closes.
  void Adopt(HQUIC handle);
  // Worker thread, inside the final event: close now, or leave it to the last use (or the app).
  // `already_closing` is MsQuic's AppCloseInProgress (Close was called and is running right now);
  // `drop_hold` ends the hold for the app (nothing is gained by keeping the handle any longer).
  void OnFinalEvent(bool already_closing, bool drop_hold = false);
  // Worker thread: queues an event about this handle (no payload beyond the numbers).
  void Push(EventType type, int32_t status = 0, uint64_t value = 0, uint64_t code = 0);
  // Worker thread: queues a prepared event.
  void Push(Event&& event) { route_->Push(std::move(event)); }
  // Calls MsQuic's Close for this handle type. Runs at most once.
  virtual void CloseHandle(HQUIC handle) = 0;

  HQUIC handle_ = nullptr;
  // Set before Adopt for handles the app must take first (peer streams).
  bool hold_ = false;

 private:
  void CloseIfDoneLocked(std::unique_lock<std::mutex>& lock);
  std::shared_ptr<Runtime> OwnerLocked() const { return (moved_ ? moved_ : route_)->owner(); }
  void CloseLocked(std::unique_lock<std::mutex>& lock);

  const Kind kind_;
  std::shared_ptr<Route> route_;
  std::shared_ptr<Route> moved_;  // under mutex_
  mutable std::mutex mutex_;
  int uses_ = 0;
  bool final_event_ = false;
  bool closed_ = false;
  std::shared_ptr<Handle> self_;
};

// RAII for a use taken with Acquire.
class HandleUse {
 public:
  explicit HandleUse(Handle& handle) : handle_(handle), ok_(handle.Acquire()) {}
  ~HandleUse() {
    if (ok_) handle_.Release();
  }
  explicit operator bool() const { return ok_; }

 private:
  Handle& handle_;
  bool ok_;
};

}  // namespace nmq
