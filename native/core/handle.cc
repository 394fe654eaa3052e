#include "handle.h"

#include "runtime.h"

namespace nmq {

void Handle::Push(EventType type, int32_t status, uint64_t value, uint64_t code) {
  Event record;
  record.target = shared_from_this();
  record.type = type;
  record.status = status;
  record.value = value;
  record.code = code;
  route_->Push(std::move(record));
}

void Handle::Adopt(HQUIC handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  handle_ = handle;
  self_ = shared_from_this();
}

void Handle::MovedTo(std::shared_ptr<Route> route) {
  std::lock_guard<std::mutex> lock(mutex_);
  moved_ = std::move(route);
}

std::shared_ptr<Route> Handle::moved_route() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return moved_;
}

bool Handle::Acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || handle_ == nullptr) return false;
  ++uses_;
  return true;
}

void Handle::Release() {
  std::unique_lock<std::mutex> lock(mutex_);
  --uses_;
  CloseIfDoneLocked(lock);
}

void Handle::ReleaseHold() {
  std::unique_lock<std::mutex> lock(mutex_);
  hold_ = false;
  CloseIfDoneLocked(lock);
}

void Handle::CloseIfDoneLocked(std::unique_lock<std::mutex>& lock) {
  if (final_event_ && !closed_ && uses_ == 0 && !hold_) {
    OwnerLocked()->ForgetDeferred(this);
    CloseLocked(lock);
  }
}

bool Handle::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

void Handle::ForceClose() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!closed_ && handle_ != nullptr) CloseLocked(lock);
}

void Handle::Abandon() {
  std::unique_lock<std::mutex> lock(mutex_);
  closed_ = true;
  handle_ = nullptr;
  auto keep = std::move(self_);
  lock.unlock();
}

void Handle::OnFinalEvent(bool already_closing, bool drop_hold) {
  std::unique_lock<std::mutex> lock(mutex_);
  final_event_ = true;
  if (closed_) return;
  if (already_closing) {
    // ForceClose is running Close on another thread right now and owns the handle.
    return;
  }
  if (drop_hold) hold_ = false;
  // During teardown nobody is left to end a use, so close regardless.
  auto owner = OwnerLocked();
  if ((uses_ == 0 && !hold_) || owner->closing()) {
    CloseLocked(lock);
  } else if (!owner->Defer(shared_from_this())) {
    CloseLocked(lock);  // teardown began between the two checks
  }
}

void Handle::CloseLocked(std::unique_lock<std::mutex>& lock) {
  closed_ = true;
  HQUIC handle = handle_;
  auto keep = std::move(self_);  // the context may not die inside its own Close
  // Close without the lock: MsQuic may deliver a nested final event while closing.
  lock.unlock();
  CloseHandle(handle);
}

}  // namespace nmq
