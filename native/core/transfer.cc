#include "transfer.h"

#include <mutex>
#include <unordered_map>

namespace nmq {

namespace {
std::mutex slots_mutex;
uint64_t next_id = 1;
std::unordered_map<uint64_t, std::unique_ptr<TransferSlot>>* slots =
    new std::unordered_map<uint64_t, std::unique_ptr<TransferSlot>>();  // never freed: used at exit
}  // namespace

uint64_t ParkTransfer(TransferSlot slot) {
  std::lock_guard<std::mutex> lock(slots_mutex);
  uint64_t id = next_id++;
  slots->emplace(id, std::make_unique<TransferSlot>(std::move(slot)));
  return id;
}

std::shared_ptr<Route> SplitOffRoute(const std::shared_ptr<Handle>& stream, const std::shared_ptr<Runtime>& owner,
                                     bool hold) {
  std::shared_ptr<Route> route = stream->moved_route();
  if (route) {
    if (hold) route->Hold();
    return route;
  }
  route = std::make_shared<Route>(owner);
  if (hold) route->Hold();
  stream->route()->Divert(stream, route);
  stream->MovedTo(route);
  return route;
}

std::unique_ptr<TransferSlot> ClaimTransfer(uint64_t id, Handle::Kind kind) {
  std::lock_guard<std::mutex> lock(slots_mutex);
  auto it = slots->find(id);
  if (it == slots->end() || it->second->handle->kind() != kind) return nullptr;
  auto slot = std::move(it->second);
  slots->erase(it);
  return slot;
}

}  // namespace nmq
