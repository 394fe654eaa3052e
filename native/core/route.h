// Where a handle's events go: the event queue of the environment that owns it. A connection and
// its streams share one route, so moving the connection to another environment (a worker thread)
// moves all of their events at once, in the order MsQuic produced them: while the route is held,
// events wait here; when the new owner adopts it, they are queued there ahead of anything newer.
//
// A single stream can also move on its own: it then gets a route of its own, and its connection's
// route diverts the stream's events there. MsQuic keeps reporting the stream through the
// connection's route (the handle's route never changes, so workers read it without a lock); the
// diversion is looked up under the route's lock, so an event pushed while the stream splits off
// lands either before the split (and is taken out of the old queue) or after it (on the new route).
#pragma once
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "event.h"

namespace nmq {

class Handle;
class Runtime;

class Route {
 public:
  explicit Route(std::shared_ptr<Runtime> owner) : owner_(std::move(owner)) {}
  Route(const Route&) = delete;
  Route& operator=(const Route&) = delete;

  // Any thread: queue an event for the owner (or hold it during a move).
  void Push(Event&& event);
  // Any thread. The owner changes only on Adopt.
  std::shared_ptr<Runtime> owner() const;

  // Old owner's JS thread: from now on events are held here.
  void Hold();
  // New owner's JS thread: `earlier` (events the old owner had received but not handled), then
  // everything held, go to `owner`'s queue, which receives the route's events from then on.
  void Adopt(std::shared_ptr<Runtime> owner, std::vector<Event> earlier);
  // JS thread: from now on `handle`'s events go to `to` (a route of its own, which never diverts
  // back, so locks are always taken connection route first).
  void Divert(const std::shared_ptr<Handle>& handle, std::shared_ptr<Route> to);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<Runtime> owner_;
  bool holding_ = false;
  std::vector<Event> held_;
  // Streams that moved on their own; an entry ends with the stream's final event. The weak
  // reference tells a stream from a later handle at the same address.
  struct Diversion {
    std::weak_ptr<Handle> handle;
    std::shared_ptr<Route> to;
  };
  std::unordered_map<const Handle*, Diversion> diverted_;
};

}  // namespace nmq
