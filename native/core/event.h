// The plain record every MsQuic callback turns its event into. It carries no Node-API type: it is
// built on an MsQuic worker thread and read once on the JS thread.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace nmq {

class Handle;

enum class EventType : uint8_t {
  kListenerStopped = 1,
  kListenerConnection,           // child = a new server connection, still handshaking
  kConnectionConnected,          // handshake done; addresses and ALPN are readable from now on
  kConnectionShutdownByTransport,// status; code = wire error code; text = why we refused a certificate
  kConnectionShutdownByPeer,     // code = application error code
  kConnectionShutdownComplete,   // value = ShutdownFlags; final event of a connection
  kConnectionPeerStream,         // child = the new stream; value = 1 when unidirectional
  kConnectionStreamsAvailable,   // value = bidirectional credit left, code = unidirectional
  kConnectionPeerNeedsStreams,   // value = 1 when bidirectional
  kConnectionPeerCertificate,    // data = DER leaf certificate (absent when the peer sent none); status = TLS verdict
  kStreamStartComplete,          // status; value = stream id; code = 1 when the peer has granted credit
  kStreamPeerAccepted,           // the peer granted the credit a blocked stream waited for
  kStreamData,                   // data = received bytes (owned)
  kStreamPeerSendShutdown,       // the peer's FIN, after all of its data
  kStreamPeerSendAborted,        // code = RESET_STREAM error code
  kStreamPeerReceiveAborted,     // code = STOP_SENDING error code
  kStreamSendReady,              // a send that found the window full may go on (see Stream::Send)
  kStreamShutdownComplete,       // value = ShutdownFlags; final event of a stream
  kConnectionDatagramState,      // value = largest datagram that can be sent now (0: not allowed)
  kConnectionDatagram,           // data = one received datagram (owned)
  kConnectionResumptionTicket,   // client: data = a session ticket the server sent (owned)
};

// Bits of `value` in the two shutdown-complete events.
enum ShutdownFlags : uint64_t {
  kHandshakeCompleted = 1,
  kPeerAcknowledged = 2,
  kConnectionClosedRemotely = 4,
  kConnectionShutdown = 8,
};

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Bytes = std::unique_ptr<uint8_t, FreeDeleter>;

struct Event {
  std::shared_ptr<Handle> target;
  std::shared_ptr<Handle> child;
  EventType type;
  int32_t status = 0;
  uint64_t value = 0;
  uint64_t code = 0;
  Bytes data;          // malloc'd, so the binding can hand it to JS without a copy
  size_t data_length = 0;
  std::string text;
};

}  // namespace nmq
