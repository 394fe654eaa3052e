// One multi-producer queue per Node environment. MsQuic worker threads push; the JS thread drains
// everything in one batch. The doorbell runs only when the queue turns non-empty, so one wake-up
// carries every event that arrived before the JS thread got to it.
#pragma once
#include <functional>
#include <mutex>
#include <vector>

#include "event.h"

namespace nmq {

class EventQueue {
 public:
  // `doorbell` must not block (the binding makes a non-blocking threadsafe-function call).
  explicit EventQueue(std::function<void()> doorbell) : doorbell_(std::move(doorbell)) {}
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Any thread. Never blocks beyond a short critical section; never calls into JS.
  void Push(Event&& event);
  // JS thread: everything pushed so far, oldest first.
  void Drain(std::vector<Event>* out);
  // After Close, pushes are dropped (environment teardown).
  void Close();

 private:
  std::mutex mutex_;
  std::vector<Event> events_;
  bool scheduled_ = false;
  bool closed_ = false;
  std::function<void()> doorbell_;
};

}  // namespace nmq
