// The plain record every MsQuic callback turns its event into. It carries no Node-API type: it is
// built on an MsQuic worker thread and read once on the JS thread.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace nmq {

class Handle;

// Every event type, with its number and what its fields mean. The addon hands this list to the TS
// layer at load (`constants.events`), so the numbers are written down only here.
#define NMQ_EVENT_TYPES(X)                                                                         \
  X(ListenerStopped, 1)                /* final event of a listener */                             \
  X(ListenerConnection, 2)             /* child = a new server connection, still handshaking */    \
  X(ConnectionConnected, 3)            /* handshake done; addresses and ALPN readable from now */  \
  X(ConnectionShutdownByTransport, 4)  /* status; code = wire error; text = certificate refusal */ \
  X(ConnectionShutdownByPeer, 5)       /* code = application error code */                         \
  X(ConnectionShutdownComplete, 6)     /* value = ShutdownFlags; final event of a connection */    \
  X(ConnectionPeerStream, 7)           /* child = the new stream; value = PeerStreamFlags; code = its id */ \
  X(ConnectionStreamsAvailable, 8)     /* value = bidirectional credit left, code = unidirectional */ \
  X(ConnectionPeerNeedsStreams, 9)     /* value = 1 when bidirectional */                          \
  X(ConnectionPeerCertificate, 10)     /* data = DER leaf (absent if none); status = TLS verdict */ \
  X(StreamStartComplete, 11)           /* status; value = stream id; code = 1 if credit granted */ \
  X(StreamPeerAccepted, 12)            /* the peer granted the credit a blocked stream waited for */ \
  X(StreamData, 13)                    /* data = received bytes (owned); code = 1 if 0-RTT data;       \
                                          value = 1 if they end the stream (the peer's FIN follows) */ \
  X(StreamPeerSendShutdown, 14)        /* the peer's FIN, after all of its data */                 \
  X(StreamPeerSendAborted, 15)         /* code = RESET_STREAM error code */                        \
  X(StreamPeerReceiveAborted, 16)      /* code = STOP_SENDING error code */                        \
  X(StreamSendReady, 17)               /* a send that found the window full may go on */           \
  X(StreamShutdownComplete, 18)        /* value = ShutdownFlags; final event of a stream */        \
  X(ConnectionDatagramState, 19)       /* value = largest datagram that can be sent (0: none) */   \
  X(ConnectionDatagram, 20)            /* data = one received datagram (owned) */                  \
  X(StreamSendShutdownComplete, 21)    /* value = 1 when the peer acknowledged every byte and FIN */ \
  X(StreamMessage, 22)                 /* collect mode: data = the whole message up to the FIN,   \
                                          code = 1 if some of it was 0-RTT data;                   \
                                          status != 0: it grew past its limit (the stream aborted) */ \
  X(ConnectionDatagramDrain, 23)       /* a datagram send refused for a full queue may be retried */ \
  X(ConnectionResumptionTicket, 24)    /* client: data = a session ticket the server sent (owned) */ \
  X(ConnectionPeerAddressChanged, 25)  /* data = the peer's new QUIC_ADDR (the binding reports an address object) */ \
  X(ConnectionStartFailed, 26)         /* status = why the client could not start; its silent shutdown follows */

enum class EventType : uint8_t {
#define NMQ_EVENT_ENUM(name, number) k##name = number,
  NMQ_EVENT_TYPES(NMQ_EVENT_ENUM)
#undef NMQ_EVENT_ENUM
};

// Bits of `value` in the two shutdown-complete events.
enum ShutdownFlags : uint64_t {
  kHandshakeCompleted = 1,
  kPeerAcknowledged = 2,
  kConnectionClosedRemotely = 4,
  kConnectionShutdown = 8,
  kSendAcknowledged = 16,  // streams: the peer acknowledged every byte sent and the FIN
};

// Bits of `value` in kConnectionPeerStream.
enum PeerStreamFlags : uint64_t {
  kPeerStreamUnidirectional = 1,
  kPeerStreamRequest = 2,  // collected natively (serve-requests mode): a kStreamMessage follows at once
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
