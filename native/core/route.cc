#include "route.h"

#include "runtime.h"

namespace nmq {

void Route::Push(Event&& event) {
  std::lock_guard<std::mutex> lock(mutex_);
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

}  // namespace nmq
