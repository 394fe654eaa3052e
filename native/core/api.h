// The process-wide MsQuic API table. MsQuicOpenVersion/MsQuicClose are not thread-safe under static
// linking, so every environment (main thread, each worker) goes through ApiAcquire/ApiRelease.
#pragma once
#include <msquic.h>
#include <cstdint>

namespace nmq {

// Valid while at least one acquisition is held.
extern const QUIC_API_TABLE* MsQuic;

// Opens MsQuic on first use. `workers` sizes MsQuic's worker pool on that first open (0 keeps
// MsQuic's default of one per online host CPU, which ignores the process's CPU affinity).
// Any thread; serialised by a process-wide mutex.
QUIC_STATUS ApiAcquire(uint32_t workers);
void ApiRelease();

// The worker count MsQuic was opened with (0 when it used its default).
uint32_t ApiWorkerCount();

}  // namespace nmq
