#include "retry_gate.h"

#include <msquic.h>

#include <mutex>

#include "api.h"

namespace nmq {

namespace {
std::mutex gate_mutex;
uint32_t demands = 0;      // guarded by gate_mutex
uint16_t saved_limit = 0;  // MsQuic's figure before the first demand; guarded by gate_mutex
}  // namespace

// The lock keeps "count changes" and "MsQuic's figure changes" in one order: without it a release
// on one worker could restore the figure after a demand on another had set it to 0.
void RetryGate::Demand() {
  std::lock_guard<std::mutex> lock(gate_mutex);
  if (demands++ > 0) return;
  uint16_t limit = 0;
  uint32_t length = sizeof(limit);
  if (QUIC_SUCCEEDED(MsQuic->GetParam(nullptr, QUIC_PARAM_GLOBAL_RETRY_MEMORY_PERCENT, &length, &limit))) {
    saved_limit = limit;
  }
  limit = 0;
  MsQuic->SetParam(nullptr, QUIC_PARAM_GLOBAL_RETRY_MEMORY_PERCENT, sizeof(limit), &limit);
}

void RetryGate::Release() {
  std::lock_guard<std::mutex> lock(gate_mutex);
  if (demands == 0 || --demands > 0) return;
  uint16_t limit = saved_limit;
  MsQuic->SetParam(nullptr, QUIC_PARAM_GLOBAL_RETRY_MEMORY_PERCENT, sizeof(limit), &limit);
}

bool RetryGate::active() {
  std::lock_guard<std::mutex> lock(gate_mutex);
  return demands > 0;
}

}  // namespace nmq
