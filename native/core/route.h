// Where a handle's events go: the event queue of the environment that owns it. A connection and
// its streams share one route, so moving the connection to another environment (a worker thread)
// moves all of their events at once, in the order MsQuic produced them: while the route is held,
// events wait here; when the new owner adopts it, they are queued there ahead of anything newer.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "event.h"

namespace nmq {

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

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<Runtime> owner_;
  bool holding_ = false;
  std::vector<Event> held_;
};

}  // namespace nmq
