#include "event_queue.h"

namespace nmq {

void EventQueue::Push(Event&& event) {
  bool ring = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    events_.push_back(std::move(event));
    ring = !scheduled_;
    scheduled_ = true;
  }
  if (ring) doorbell_();
}

void EventQueue::Drain(std::vector<Event>* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  out->swap(events_);
  events_.clear();
  // Cleared under the same lock as the swap, so a push that lands after it rings again.
  scheduled_ = false;
}

void EventQueue::Close() {
  std::vector<Event> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    dropped.swap(events_);
  }
}

}  // namespace nmq
