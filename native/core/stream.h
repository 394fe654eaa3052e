// RAII context over an MsQuic stream.
//
// Receive: each RECEIVE copies what fits in the stream's budget and consumes only that much; a
// partial consume pauses MsQuic's indications, so a reader that stops reading holds the peer back
// through QUIC flow control instead of growing memory. The app reports what it has taken
// (Consumed), which resumes receiving once half the budget is free.
// Collect mode (the request path): the whole message up to the peer's FIN is gathered natively, up
// to a limit, and reported as one kStreamMessage; past the limit the stream is aborted both ways.
// Send: bytes are copied once into a native block that MsQuic owns until SEND_COMPLETE, where the
// worker frees it. The send window is MsQuic's ideal send buffer size: Send says at once whether it
// is full, and only then does a kStreamSendReady event follow, when completions make room.
#pragma once
#include <msquic.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "event.h"
#include "handle.h"

namespace nmq {

class Connection;

class Stream : public Handle {
 public:
  // JS thread: opens and starts a local stream on `connection` (a handle the caller holds a use of).
  static std::shared_ptr<Stream> OpenLocal(std::shared_ptr<Connection> connection, HQUIC connection_handle,
                                           bool unidirectional, uint32_t budget, QUIC_STATUS* status);
  // JS thread: opens a local stream and starts it with its first bytes (and FIN if `fin`) in one
  // MsQuic call. `collect_limit` > 0 collects the reply natively (the request path).
  static std::shared_ptr<Stream> OpenWithData(std::shared_ptr<Connection> connection, HQUIC connection_handle,
                                              bool unidirectional, uint32_t budget, const uint8_t* data,
                                              size_t length, bool fin, uint32_t collect_limit,
                                              QUIC_STATUS* status);
  // Worker thread, inside PEER_STREAM_STARTED. The handle is held for the app until it takes the
  // stream (with DELAY_ID_FC_UPDATES, the peer's credit for it returns only then), or until the
  // connection shuts down.
  static std::shared_ptr<Stream> AdoptPeer(std::shared_ptr<Connection> connection, HQUIC handle,
                                           bool unidirectional, uint32_t budget);
  // Worker thread, inside PEER_STREAM_STARTED: a peer request (serve-requests mode). Nothing is
  // reported until its FIN: then kConnectionPeerStream (on `connection`) and kStreamMessage. One
  // aborted before that is closed natively and never reported.
  static std::shared_ptr<Stream> AdoptPeerRequest(std::shared_ptr<Connection> connection, HQUIC handle,
                                                  uint32_t collect_limit);

  // JS thread. Copies the bytes; `fin` ends the send direction after them. `*full` tells whether
  // the send window is now full: the caller then waits for kStreamSendReady.
  // INVALID_STATE when the send direction has ended (the events that say why are on their way).
  QUIC_STATUS Send(const uint8_t* data, size_t length, bool fin, bool* full = nullptr,
                   QUIC_SEND_FLAGS extra_flags = QUIC_SEND_FLAG_NONE);
  // JS thread. `flags` are QUIC_STREAM_SHUTDOWN_FLAGs.
  QUIC_STATUS Shutdown(QUIC_STREAM_SHUTDOWN_FLAGS flags, uint64_t code);
  // JS thread: the app took `bytes` of received data off the stream's budget.
  void Consumed(uint64_t bytes);
  // JS thread: the app took this peer stream; from now on it closes as soon as it shuts down.
  void Taken() { ReleaseHold(); }
  // JS thread: report the peer's acknowledgement of everything sent (kStreamSendShutdownComplete)
  // as it happens; otherwise only the final event carries it (kSendAcknowledged), sparing an event
  // per stream nobody asks about. True if it has already happened.
  bool ReportAcknowledged() {
    report_acknowledged_.store(true, std::memory_order_seq_cst);
    return send_acknowledged_.load(std::memory_order_seq_cst);
  }

  uint64_t id() const { return id_; }  // valid once started (peer streams: at once)
  bool unidirectional() const { return unidirectional_; }

  // A stream travels with its connection: they share the connection's route.
  explicit Stream(std::shared_ptr<Route> route) : Handle(Kind::kStream, std::move(route)) {}
  ~Stream() override;

 private:
  // JS thread: a local stream, opened (not started) on `connection_handle`.
  static std::shared_ptr<Stream> Open(const std::shared_ptr<Connection>& connection, HQUIC connection_handle,
                                      bool unidirectional, uint32_t budget, uint32_t collect_limit,
                                      QUIC_STATUS* status);
  static QUIC_STATUS QUIC_API Callback(HQUIC handle, void* context, QUIC_STREAM_EVENT* event);
  QUIC_STATUS OnEvent(QUIC_STREAM_EVENT* event);
  QUIC_STATUS OnReceive(QUIC_STREAM_EVENT* event);
  QUIC_STATUS OnCollect(QUIC_STREAM_EVENT* event);
  // Worker thread, at the peer's FIN in collect mode: reports the message.
  void DeliverMessage();
  // Under send_mutex_: whether a waiting sender may go on now (and it is no longer waiting).
  bool SendRoomLocked();
  void CloseHandle(HQUIC handle) override;

  uint64_t id_ = UINT64_MAX;
  bool unidirectional_ = false;
  // A local stream of a connection that sends early data: its sends may go out as 0-RTT (MsQuic
  // uses the flag only while the handshake is not complete). Set at open, JS thread.
  QUIC_SEND_FLAGS early_flag_ = QUIC_SEND_FLAG_NONE;

  // Receive budget, shared by the worker (RECEIVE) and the JS thread (Consumed).
  std::mutex receive_mutex_;
  uint64_t budget_ = 0;
  uint64_t buffered_ = 0;
  bool paused_ = false;

  // Send blocks MsQuic has not completed yet. Normally SEND_COMPLETE frees them all; whatever a
  // send racing the stream's end left behind (msquic#4307) is freed with the context.
  std::mutex send_mutex_;
  std::unordered_set<void*> sends_;
  bool send_closed_ = false;
  uint64_t outstanding_ = 0;         // bytes sent, not completed yet
  uint64_t window_ = 128 * 1024;     // MsQuic's ideal send buffer size (its starting value)
  bool sender_waiting_ = false;      // a Send found the window full

  // Collect mode; worker only once the stream has started (set before its callback can run).
  uint32_t collect_limit_ = 0;        // 0: off
  Bytes collected_;
  size_t collected_length_ = 0;
  size_t collected_capacity_ = 0;
  bool collect_done_ = false;         // delivered, or failed past the limit
  bool collected_early_ = false;      // some of the message came as 0-RTT data
  std::shared_ptr<Handle> request_of_;  // serve-requests mode: the connection to report it to
  bool request_delivered_ = false;      // serve-requests mode: handed to the app (it answers it)
  std::atomic<bool> send_acknowledged_{false};   // SEND_SHUTDOWN_COMPLETE was graceful
  std::atomic<bool> report_acknowledged_{false};  // the app asked to hear of it at once
};

// The application error code a collecting stream is aborted with when its message outgrows the
// limit (both directions): StreamCode.MESSAGE_TOO_LARGE in src/codes.ts, the table of every code on
// the wire (test/native/constants.test.ts checks they agree).
constexpr uint64_t kMessageTooLargeCode = 0x2001;

}  // namespace nmq
