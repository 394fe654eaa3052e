// Moving a connection (with its streams), or a single stream, from one environment to another: the
// old owner's JS thread parks it in a process-wide slot; the new owner's JS thread adopts it by the
// slot's id. Between the two, its events are held on its route, in order.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "event.h"
#include "handle.h"
#include "route.h"

namespace nmq {

struct TransferSlot {
  std::shared_ptr<Handle> handle;  // a Connection or a Stream
  std::shared_ptr<Route> route;    // the route that moves: the connection's, or the stream's own
  std::shared_ptr<Runtime> from;
  std::vector<Event> earlier;  // queued for the old owner before the move, not delivered to its JS
  // A connection's peer streams that its old owner's app had not accepted: they travel with it.
  std::vector<std::shared_ptr<Handle>> streams;
};

// Old owner's JS thread, after the route was held and `earlier` collected. Returns the slot's id.
uint64_t ParkTransfer(TransferSlot slot);
// New owner's JS thread: the slot, or null if the id is unknown, already adopted, or parks
// another kind of handle.
std::unique_ptr<TransferSlot> ClaimTransfer(uint64_t id, Handle::Kind kind);

// The owner's JS thread: the route a stream has of its own, made on the first call (owned by
// `owner`) by splitting the stream off its connection's route; with `hold`, its events wait from
// now on (held before the split, so none slips past). Later calls return the same route.
std::shared_ptr<Route> SplitOffRoute(const std::shared_ptr<Handle>& stream, const std::shared_ptr<Runtime>& owner,
                                     bool hold);

}  // namespace nmq
