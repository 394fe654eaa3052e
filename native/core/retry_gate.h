// Stateless address validation (Retry) on demand. MsQuic decides per new Initial from one process-
// wide figure (QUIC_PARAM_GLOBAL_RETRY_MEMORY_PERCENT: Retry once handshake memory passes it). A
// listener whose handshakes pile up asks for Retry; while any listener asks, the figure is 0 (every
// client without a token must echo a Retry token first: spoofed and replayed Initials cost one
// stateless packet, no connection). When none asks, the figure MsQuic had before comes back.
#pragma once
#include <cstdint>

namespace nmq {

class RetryGate {
 public:
  // Any thread (MsQuic workers included). Never waits on JS; takes one short process-wide lock.
  static void Demand();
  static void Release();
  // Whether Retry is being forced now (a snapshot, for stats).
  static bool active();
};

}  // namespace nmq
