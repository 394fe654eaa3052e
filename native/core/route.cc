#include "route.h"

#include "runtime.h"

namespace nmq {

void Route::Push(Event&& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!diverted_.empty()) {
    auto it = diverted_.find(event.target.get());
    if (it != diverted_.end() && it->second.handle.lock() == event.target) {
      std::shared_ptr<Route> to = it->second.to;
      if (event.type == EventType::kStreamShutdownComplete) diverted_.erase(it);  // its last event
      // Still under this lock: the diverted events keep their order relative to the split.
      to->Push(std::move(event));
      return;
    }
  }
  if (holding_) {
    held_.push_back(std::move(event));
  } else {
    // Under the route's lock, so a Hold or Adopt never sees an event half way.
    owner_->queue().Push(std::move(event));
  }
}

std::shared_ptr<Runtime> Route::owner() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return owner_;
}

void Route::Hold() {
  std::lock_guard<std::mutex> lock(mutex_);
  holding_ = true;
}

void Route::Adopt(std::shared_ptr<Runtime> owner, std::vector<Event> earlier) {
  std::lock_guard<std::mutex> lock(mutex_);
  owner_ = std::move(owner);
  for (Event& event : earlier) owner_->queue().Push(std::move(event));
  for (Event& event : held_) owner_->queue().Push(std::move(event));
  held_.clear();
  holding_ = false;
}

void Route::Divert(const std::shared_ptr<Handle>& handle, std::shared_ptr<Route> to) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Streams that ended while their final event was already on its way here left entries behind.
  for (auto it = diverted_.begin(); it != diverted_.end();) {
    it = it->second.handle.expired() ? diverted_.erase(it) : std::next(it);
  }
  diverted_[handle.get()] = Diversion{handle, std::move(to)};
}

}  // namespace nmq
