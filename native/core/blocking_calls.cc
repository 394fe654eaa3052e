#include "blocking_calls.h"

#include <utility>

namespace nmq {

void BlockingCalls::Post(std::function<void()> call) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return;
  calls_.push_back(std::move(call));
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  wake_.notify_one();
}

void BlockingCalls::Stop() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    dropped.swap(calls_);
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  // Dropped outside the lock: a call's captures (a connection, say) may run destructors.
  dropped.clear();
}

// This thread: one call at a time, in order. A call may block on MsQuic's workers; it never calls
// into JS.
void BlockingCalls::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !calls_.empty(); });
    if (stopping_) return;
    std::function<void()> call = std::move(calls_.front());
    calls_.pop_front();
    lock.unlock();
    call();
    call = nullptr;  // its captures go before the lock is taken again
    lock.lock();
  }
}

}  // namespace nmq
