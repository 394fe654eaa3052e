// The process-wide MsQuic API table and registration. MsQuicOpenVersion/MsQuicClose are not
// thread-safe under static linking, so every environment (main thread, each worker) goes through
// ApiAcquire/ApiRelease. All environments share one registration: MsQuic cannot move a connection
// between registrations, and connections must be able to move between environments.
#pragma once
#include <msquic.h>
#include <cstdint>

namespace nmq {

// Valid while at least one acquisition is held.
extern const QUIC_API_TABLE* MsQuic;

// Opens MsQuic and the registration on first use. `workers` sizes MsQuic's worker pool on that
// first open (0 keeps MsQuic's default of one per online host CPU, which ignores the process's CPU
// affinity). Any thread; serialised by a process-wide mutex.
QUIC_STATUS ApiAcquire(uint32_t workers);
// The last release closes the registration (which waits until every connection in it has been
// closed) and MsQuic. Never from an MsQuic callback.
void ApiRelease();

// The shared registration; valid while an acquisition is held.
HQUIC Registration();

}  // namespace nmq
