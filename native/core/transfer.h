// Moving a connection (with its streams) from one environment to another: the old owner's JS
// thread parks it in a process-wide slot; the new owner's JS thread adopts it by the slot's id.
// Between the two, its events are held on its route, in order.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "connection.h"
#include "event.h"

namespace nmq {

struct TransferSlot {
  std::shared_ptr<Connection> connection;
  std::shared_ptr<Runtime> from;
  std::vector<Event> earlier;  // received by the old owner before the move, not handled by its app
};

// Old owner's JS thread, after the route was held and `earlier` collected. Returns the slot's id.
uint64_t ParkTransfer(TransferSlot slot);
// New owner's JS thread: the slot, or null if the id is unknown or already adopted.
std::unique_ptr<TransferSlot> ClaimTransfer(uint64_t id);

}  // namespace nmq
