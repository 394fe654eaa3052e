// The runtime's thread for MsQuic calls that wait on a worker. MsQuic runs SetParam (and GetParam)
// on a connection from any thread but the connection's worker as an operation on that worker, and
// blocks the caller until it has run. On the JS thread that stalls everything behind whatever the
// worker is busy with: with 32 handshakes at once, 89% of the JS thread's busy time went to the
// SetParam before each connection's start. Such calls run here instead, in the order they were
// posted; what they report goes through the handle's route, as a worker's events do.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace nmq {

class BlockingCalls {
 public:
  BlockingCalls() = default;
  ~BlockingCalls() { Stop(); }
  BlockingCalls(const BlockingCalls&) = delete;
  BlockingCalls& operator=(const BlockingCalls&) = delete;

  // Any thread: runs `call` on this thread, after every call posted before it. The thread starts
  // with the first call. Dropped (never run) once Stop() has begun.
  void Post(std::function<void()> call);
  // Teardown, on the JS thread: drops what has not started and waits for the call running now.
  // Idempotent.
  void Stop();

 private:
  void Run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> calls_;
  std::thread thread_;
  bool stopping_ = false;
};

}  // namespace nmq
