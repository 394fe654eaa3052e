#include "api.h"

#include <sched.h>

#include <mutex>
#include <vector>

namespace nmq {

const QUIC_API_TABLE* MsQuic = nullptr;

namespace {
std::mutex api_mutex;
uint32_t api_refs = 0;
HQUIC registration = nullptr;

// Picks the first `workers` CPUs this process may run on, so the pool follows the affinity mask
// (a container's cpuset) rather than the host's CPU count.
QUIC_STATUS ConfigureWorkers(uint32_t workers) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<uint16_t> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < workers; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(static_cast<uint16_t>(cpu));
    }
  }
  for (uint16_t cpu = 0; cpus.size() < workers; ++cpu) cpus.push_back(cpu);

  std::vector<uint8_t> buffer(QUIC_GLOBAL_EXECUTION_CONFIG_MIN_SIZE + sizeof(uint16_t) * cpus.size());
  auto* config = reinterpret_cast<QUIC_GLOBAL_EXECUTION_CONFIG*>(buffer.data());
  config->Flags = QUIC_GLOBAL_EXECUTION_CONFIG_FLAG_NONE;
  config->PollingIdleTimeoutUs = 0;
  config->ProcessorCount = static_cast<uint32_t>(cpus.size());
  for (size_t i = 0; i < cpus.size(); ++i) config->ProcessorList[i] = cpus[i];
  return MsQuic->SetParam(nullptr, QUIC_PARAM_GLOBAL_EXECUTION_CONFIG,
                          static_cast<uint32_t>(buffer.size()), buffer.data());
}

// MsQuic answers new Initials it will not take state for (Retry, version negotiation, stateless
// resets) from small queues: 16 per worker and 100 per socket in any 100 ms, beyond which it drops
// them silently. Under a flood of spoofed Initials a legitimate client's Initial is then dropped
// too and it waits a full probe timeout (about 1 s) to send it again. A Retry is one small packet
// and no state, so the queues are made deep enough that every client gets its answer at once.
void ConfigureStatelessLimits() {
  QUIC_SETTINGS settings = {};
  settings.IsSet.MaxStatelessOperations = 1;
  settings.MaxStatelessOperations = 1024;
  settings.IsSet.MaxBindingStatelessOperations = 1;
  settings.MaxBindingStatelessOperations = 4096;
  MsQuic->SetParam(nullptr, QUIC_PARAM_GLOBAL_SETTINGS, sizeof(settings), &settings);
}
}  // namespace

QUIC_STATUS ApiAcquire(uint32_t workers) {
  std::lock_guard<std::mutex> lock(api_mutex);
  if (api_refs == 0) {
    QUIC_STATUS status = MsQuicOpen2(&MsQuic);
    if (QUIC_FAILED(status)) {
      MsQuic = nullptr;
      return status;
    }
    // Must precede the first RegistrationOpen, which creates the worker pool.
    if (workers > 0) ConfigureWorkers(workers);
    ConfigureStatelessLimits();
    QUIC_REGISTRATION_CONFIG config = {"node-msquic", QUIC_EXECUTION_PROFILE_LOW_LATENCY};
    status = MsQuic->RegistrationOpen(&config, &registration);
    if (QUIC_FAILED(status)) {
      MsQuicClose(MsQuic);
      MsQuic = nullptr;
      return status;
    }
  }
  ++api_refs;
  return QUIC_STATUS_SUCCESS;
}

HQUIC Registration() {
  return registration;
}

void ApiRelease() {
  std::lock_guard<std::mutex> lock(api_mutex);
  if (api_refs == 0) return;
  if (--api_refs == 0) {
    MsQuic->RegistrationClose(registration);
    registration = nullptr;
    MsQuicClose(MsQuic);
    MsQuic = nullptr;
  }
}

}  // namespace nmq
