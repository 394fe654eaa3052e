#include "stream.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "api.h"
#include "connection.h"
#include "runtime.h"

namespace nmq {

namespace {
// One allocation per send: MsQuic's buffer descriptor followed by the copied bytes.
struct SendBlock {
  QUIC_BUFFER buffer;
  uint64_t length;
};
}  // namespace

std::shared_ptr<Stream> Stream::Open(const std::shared_ptr<Connection>& connection, HQUIC connection_handle,
                                     bool unidirectional, uint32_t budget, uint32_t collect_limit,
                                     QUIC_STATUS* status) {
  auto stream = std::make_shared<Stream>(connection->route());
  stream->unidirectional_ = unidirectional;
  stream->budget_ = budget;
  stream->collect_limit_ = collect_limit;
  if (connection->early_data()) stream->early_flag_ = QUIC_SEND_FLAG_ALLOW_0_RTT;
  HQUIC handle = nullptr;
  *status = MsQuic->StreamOpen(connection_handle,
                               unidirectional ? QUIC_STREAM_OPEN_FLAG_UNIDIRECTIONAL
                                              : QUIC_STREAM_OPEN_FLAG_NONE,
                               Callback, stream.get(), &handle);
  if (QUIC_FAILED(*status)) return nullptr;
  stream->Adopt(handle);
  return stream;
}

std::shared_ptr<Stream> Stream::OpenLocal(std::shared_ptr<Connection> connection, HQUIC connection_handle,
                                          bool unidirectional, uint32_t budget, QUIC_STATUS* status) {
  auto stream = Open(connection, connection_handle, unidirectional, budget, 0, status);
  if (!stream) return nullptr;
  // SHUTDOWN_ON_FAIL: every started stream ends in SHUTDOWN_COMPLETE, where it closes.
  // INDICATE_PEER_ACCEPT: a stream blocked on the peer's credit is told when it gets it.
  *status = MsQuic->StreamStart(stream->handle_, QUIC_STREAM_START_FLAG_IMMEDIATE |
                                                     QUIC_STREAM_START_FLAG_SHUTDOWN_ON_FAIL |
                                                     QUIC_STREAM_START_FLAG_INDICATE_PEER_ACCEPT);
  if (QUIC_FAILED(*status)) {
    stream->ForceClose();  // never started, so no event will ever close it
    return nullptr;
  }
  return stream;
}

std::shared_ptr<Stream> Stream::OpenWithData(std::shared_ptr<Connection> connection, HQUIC connection_handle,
                                             bool unidirectional, uint32_t budget, const uint8_t* data,
                                             size_t length, bool fin, uint32_t collect_limit,
                                             QUIC_STATUS* status) {
  auto stream = Open(connection, connection_handle, unidirectional, budget, collect_limit, status);
  if (!stream) return nullptr;
  // SEND_FLAG_START starts it IMMEDIATE | SHUTDOWN_ON_FAIL (as OpenLocal does), waiting for the
  // peer's credit inside MsQuic if need be: one call, one worker operation.
  *status = stream->Send(data, length, fin, nullptr, QUIC_SEND_FLAG_START);
  if (QUIC_FAILED(*status)) {
    stream->ForceClose();  // never started, so no event will ever close it
    return nullptr;
  }
  return stream;
}

std::shared_ptr<Stream> Stream::AdoptPeerRequest(std::shared_ptr<Connection> connection, HQUIC handle,
                                                 uint32_t collect_limit) {
  auto stream = std::make_shared<Stream>(connection->route());
  stream->collect_limit_ = collect_limit;
  stream->request_of_ = connection;
  stream->hold_ = true;  // until the app answers it (Taken), or natively if it never reaches the app
  MsQuic->SetCallbackHandler(handle, reinterpret_cast<void*>(Callback), stream.get());
  stream->Adopt(handle);
  uint32_t length = sizeof(stream->id_);
  MsQuic->GetParam(handle, QUIC_PARAM_STREAM_ID, &length, &stream->id_);  // inline on this worker
  return stream;
}

std::shared_ptr<Stream> Stream::AdoptPeer(std::shared_ptr<Connection> connection, HQUIC handle,
                                          bool unidirectional, uint32_t budget) {
  auto stream = std::make_shared<Stream>(connection->route());
  stream->unidirectional_ = unidirectional;
  stream->budget_ = budget;
  stream->hold_ = true;  // ended by Taken(), or by the connection's shutdown
  // Peer streams are already started; RECEIVE may follow as soon as the handler is set.
  MsQuic->SetCallbackHandler(handle, reinterpret_cast<void*>(Callback), stream.get());
  stream->Adopt(handle);
  uint32_t length = sizeof(stream->id_);
  MsQuic->GetParam(handle, QUIC_PARAM_STREAM_ID, &length, &stream->id_);  // inline on this worker
  return stream;
}

Stream::~Stream() {
  for (void* block : sends_) std::free(block);
}

QUIC_STATUS Stream::Send(const uint8_t* data, size_t length, bool fin, bool* full, QUIC_SEND_FLAGS extra_flags) {
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  auto* block = static_cast<SendBlock*>(std::malloc(sizeof(SendBlock) + length));
  if (block == nullptr) return QUIC_STATUS_OUT_OF_MEMORY;
  block->buffer.Length = static_cast<uint32_t>(length);
  block->buffer.Buffer = reinterpret_cast<uint8_t*>(block + 1);
  block->length = length;
  if (length > 0) std::memcpy(block->buffer.Buffer, data, length);
  {
    std::lock_guard<std::mutex> lock(send_mutex_);
    // A send after the send side ended might never complete (msquic#4307): refuse it.
    if (send_closed_) {
      std::free(block);
      return QUIC_STATUS_INVALID_STATE;
    }
    if (fin) send_closed_ = true;
    sends_.insert(block);
    outstanding_ += length;
    if (outstanding_ >= window_) sender_waiting_ = true;
    if (full != nullptr) *full = sender_waiting_;
  }
  QUIC_STATUS status = MsQuic->StreamSend(handle_, &block->buffer, length > 0 ? 1 : 0,
                                          (fin ? QUIC_SEND_FLAG_FIN : QUIC_SEND_FLAG_NONE) | extra_flags | early_flag_,
                                          block);
  if (QUIC_FAILED(status)) {
    std::lock_guard<std::mutex> lock(send_mutex_);
    sends_.erase(block);
    outstanding_ -= length;
    if (outstanding_ < window_) sender_waiting_ = false;
    if (full != nullptr) *full = false;
    std::free(block);
  }
  return status;
}

bool Stream::SendRoomLocked() {
  if (!sender_waiting_ || outstanding_ >= window_) return false;
  sender_waiting_ = false;
  return true;
}

QUIC_STATUS Stream::Shutdown(QUIC_STREAM_SHUTDOWN_FLAGS flags, uint64_t code) {
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  if (flags & (QUIC_STREAM_SHUTDOWN_FLAG_GRACEFUL | QUIC_STREAM_SHUTDOWN_FLAG_ABORT_SEND)) {
    std::lock_guard<std::mutex> lock(send_mutex_);
    send_closed_ = true;
  }
  return MsQuic->StreamShutdown(handle_, flags, code);
}

void Stream::Consumed(uint64_t bytes) {
  bool resume = false;
  {
    std::lock_guard<std::mutex> lock(receive_mutex_);
    buffered_ -= std::min(bytes, buffered_);
    // Decided under the same lock RECEIVE pauses under, so a pause is never missed.
    if (paused_ && buffered_ <= budget_ / 2) {
      paused_ = false;
      resume = true;
    }
  }
  if (resume) {
    HandleUse use(*this);
    if (use) MsQuic->StreamReceiveSetEnabled(handle_, TRUE);
  }
}

void Stream::CloseHandle(HQUIC handle) {
  MsQuic->StreamClose(handle);
}

// MsQuic worker thread. Must not block, and never calls into JS.
QUIC_STATUS QUIC_API Stream::Callback(HQUIC, void* context, QUIC_STREAM_EVENT* event) {
  return static_cast<Stream*>(context)->OnEvent(event);
}

QUIC_STATUS Stream::OnEvent(QUIC_STREAM_EVENT* event) {
  switch (event->Type) {
    case QUIC_STREAM_EVENT_START_COMPLETE:
      id_ = event->START_COMPLETE.ID;
      // A request only hears of a failed start (its reply, or its end, says the rest).
      if (collect_limit_ > 0 && QUIC_SUCCEEDED(event->START_COMPLETE.Status)) break;
      Push(EventType::kStreamStartComplete, event->START_COMPLETE.Status, event->START_COMPLETE.ID,
           event->START_COMPLETE.PeerAccepted ? 1 : 0);
      break;
    case QUIC_STREAM_EVENT_PEER_ACCEPTED:
      Push(EventType::kStreamPeerAccepted);
      break;
    case QUIC_STREAM_EVENT_RECEIVE:
      return OnReceive(event);
    case QUIC_STREAM_EVENT_SEND_COMPLETE: {
      auto* block = static_cast<SendBlock*>(event->SEND_COMPLETE.ClientContext);
      bool ready = false;
      {
        std::lock_guard<std::mutex> lock(send_mutex_);
        if (sends_.erase(block) == 0) {
          block = nullptr;
        } else {
          outstanding_ -= block->length;
          ready = SendRoomLocked();
        }
      }
      std::free(block);
      // Only a sender that is waiting hears of completions.
      if (ready) Push(EventType::kStreamSendReady);
      break;
    }
    case QUIC_STREAM_EVENT_PEER_SEND_SHUTDOWN:
      if (collect_limit_ > 0) {
        DeliverMessage();
      } else {
        Push(EventType::kStreamPeerSendShutdown);
      }
      break;
    case QUIC_STREAM_EVENT_PEER_SEND_ABORTED:
      if (request_of_ && !collect_done_) {
        // A request the peer gave up before its FIN never reaches the app: end our side too.
        collect_done_ = true;
        MsQuic->StreamShutdown(handle_, QUIC_STREAM_SHUTDOWN_FLAG_ABORT, event->PEER_SEND_ABORTED.ErrorCode);
        break;
      }
      Push(EventType::kStreamPeerSendAborted, 0, 0, event->PEER_SEND_ABORTED.ErrorCode);
      break;
    case QUIC_STREAM_EVENT_PEER_RECEIVE_ABORTED: {
      std::lock_guard<std::mutex> lock(send_mutex_);
      send_closed_ = true;
    }
      Push(EventType::kStreamPeerReceiveAborted, 0, 0, event->PEER_RECEIVE_ABORTED.ErrorCode);
      break;
    case QUIC_STREAM_EVENT_SEND_SHUTDOWN_COMPLETE: {
      {
        std::lock_guard<std::mutex> lock(send_mutex_);
        send_closed_ = true;
      }
      // Graceful: the peer acknowledged every byte and the FIN (the app's "acknowledged"). Unless
      // the app asked to hear of it at once, only the final event says so (kSendAcknowledged).
      // Stored before the flag is read: ReportAcknowledged then sees one or the other.
      send_acknowledged_.store(event->SEND_SHUTDOWN_COMPLETE.Graceful, std::memory_order_seq_cst);
      if (event->SEND_SHUTDOWN_COMPLETE.Graceful && report_acknowledged_.load(std::memory_order_seq_cst)) {
        Push(EventType::kStreamSendShutdownComplete, 0, 1);
      }
      break;
    }
    case QUIC_STREAM_EVENT_IDEAL_SEND_BUFFER_SIZE: {
      bool ready = false;
      {
        std::lock_guard<std::mutex> lock(send_mutex_);
        window_ = std::max<uint64_t>(event->IDEAL_SEND_BUFFER_SIZE.ByteCount, 64 * 1024);
        ready = SendRoomLocked();
      }
      if (ready) Push(EventType::kStreamSendReady);
      break;
    }
    case QUIC_STREAM_EVENT_SHUTDOWN_COMPLETE: {
      uint64_t flags = 0;
      if (event->SHUTDOWN_COMPLETE.ConnectionShutdown) flags |= kConnectionShutdown;
      if (event->SHUTDOWN_COMPLETE.ConnectionClosedRemotely) flags |= kConnectionClosedRemotely;
      if (send_acknowledged_.load(std::memory_order_relaxed)) flags |= kSendAcknowledged;
      {
        std::lock_guard<std::mutex> lock(send_mutex_);
        send_closed_ = true;
      }
      // A request that never reached the app has no wrapper to tell, and nobody will take it.
      const bool unreported = request_of_ && !collect_done_;
      const bool abandoned = request_of_ && !request_delivered_;
      request_of_.reset();
      if (!unreported) Push(EventType::kStreamShutdownComplete, 0, flags, event->SHUTDOWN_COMPLETE.ConnectionErrorCode);
      // Once the connection is gone the credit no longer matters: an unaccepted stream closes now
      // (its received bytes are already with the app).
      OnFinalEvent(event->SHUTDOWN_COMPLETE.AppCloseInProgress,
                   event->SHUTDOWN_COMPLETE.ConnectionShutdown || abandoned);
      break;
    }
    default:
      break;
  }
  return QUIC_STATUS_SUCCESS;
}

QUIC_STATUS Stream::OnReceive(QUIC_STREAM_EVENT* event) {
  if (collect_limit_ > 0) return OnCollect(event);
  const uint64_t offered = event->RECEIVE.TotalBufferLength;
  uint64_t take = 0;
  {
    std::lock_guard<std::mutex> lock(receive_mutex_);
    take = std::min(offered, budget_ > buffered_ ? budget_ - buffered_ : 0);
    buffered_ += take;
    // Consuming less than offered makes MsQuic stop indicating until Consumed() re-enables it.
    if (take < offered) paused_ = true;
  }
  if (take > 0) {
    Event record;
    record.target = shared_from_this();
    record.type = EventType::kStreamData;
    // 0-RTT data (sent before the handshake completed, replayable): the app may want to know.
    record.code = (event->RECEIVE.Flags & QUIC_RECEIVE_FLAG_0_RTT) != 0 ? 1 : 0;
    // The last bytes say so: the JS thread learns of the FIN with them, not from PEER_SEND_SHUTDOWN,
    // which MsQuic indicates a moment later and may reach another batch. A handler that answers and
    // then checks whether the peer is done (kad-dht does) must not find the stream still readable.
    record.value = take == offered && (event->RECEIVE.Flags & QUIC_RECEIVE_FLAG_FIN) != 0 ? 1 : 0;
    record.data.reset(static_cast<uint8_t*>(std::malloc(take)));
    if (!record.data) {
      std::lock_guard<std::mutex> lock(receive_mutex_);
      buffered_ -= take;
      paused_ = true;
      take = 0;
    } else {
      // The descriptors and the bytes are valid only during this callback: copy now.
      uint64_t copied = 0;
      for (uint32_t i = 0; i < event->RECEIVE.BufferCount && copied < take; ++i) {
        const QUIC_BUFFER& buffer = event->RECEIVE.Buffers[i];
        uint64_t n = std::min<uint64_t>(buffer.Length, take - copied);
        std::memcpy(record.data.get() + copied, buffer.Buffer, n);
        copied += n;
      }
      record.data_length = take;
      Push(std::move(record));
    }
  }
  event->RECEIVE.TotalBufferLength = take;
  return QUIC_STATUS_SUCCESS;
}

// Worker thread. Everything offered is consumed: the limit, not flow control, bounds the memory.
QUIC_STATUS Stream::OnCollect(QUIC_STREAM_EVENT* event) {
  const uint64_t offered = event->RECEIVE.TotalBufferLength;
  if ((event->RECEIVE.Flags & QUIC_RECEIVE_FLAG_0_RTT) != 0) collected_early_ = true;
  if (collect_done_) return QUIC_STATUS_SUCCESS;  // past the limit: discarded while the abort goes out
  if (collected_length_ + offered > collect_limit_) {
    collect_done_ = true;
    collected_.reset();
    MsQuic->StreamShutdown(handle_, QUIC_STREAM_SHUTDOWN_FLAG_ABORT, kMessageTooLargeCode);
    if (!request_of_) Push(EventType::kStreamMessage, QUIC_STATUS_BUFFER_TOO_SMALL, collected_length_ + offered);
    return QUIC_STATUS_SUCCESS;
  }
  if (collected_length_ + offered > collected_capacity_) {
    size_t capacity = std::max<size_t>(collected_length_ + offered, std::max<size_t>(collected_capacity_ * 2, 256));
    capacity = std::min<size_t>(capacity, collect_limit_);
    auto* grown = static_cast<uint8_t*>(std::realloc(collected_.get(), capacity));
    if (grown == nullptr) {
      collect_done_ = true;
      MsQuic->StreamShutdown(handle_, QUIC_STREAM_SHUTDOWN_FLAG_ABORT, kMessageTooLargeCode);
      if (!request_of_) Push(EventType::kStreamMessage, QUIC_STATUS_OUT_OF_MEMORY);
      return QUIC_STATUS_SUCCESS;
    }
    collected_.release();
    collected_.reset(grown);
    collected_capacity_ = capacity;
  }
  for (uint32_t i = 0; i < event->RECEIVE.BufferCount; ++i) {
    const QUIC_BUFFER& buffer = event->RECEIVE.Buffers[i];
    std::memcpy(collected_.get() + collected_length_, buffer.Buffer, buffer.Length);
    collected_length_ += buffer.Length;
  }
  return QUIC_STATUS_SUCCESS;
}

void Stream::DeliverMessage() {
  if (collect_done_) return;
  collect_done_ = true;
  if (request_of_) {
    // Its wrapper is made from this event, before the message that follows it.
    request_delivered_ = true;
    Event arrival;
    arrival.target = request_of_;
    arrival.child = shared_from_this();
    arrival.type = EventType::kConnectionPeerStream;
    arrival.value = kPeerStreamRequest;
    arrival.code = id_;
    Push(std::move(arrival));
  }
  Event message;
  message.target = shared_from_this();
  message.type = EventType::kStreamMessage;
  message.value = collected_length_;
  message.code = collected_early_ ? 1 : 0;  // some of it came as 0-RTT data
  // An empty message still needs a buffer to tell it from "no data".
  if (!collected_) collected_.reset(static_cast<uint8_t*>(std::malloc(1)));
  message.data = std::move(collected_);
  message.data_length = collected_length_;
  collected_length_ = collected_capacity_ = 0;
  Push(std::move(message));
}

}  // namespace nmq
