#include "connection.h"

#include <cstdlib>
#include <cstring>

#include "api.h"
#include "listener.h"
#include "runtime.h"
#include "status.h"
#include "stream.h"
#include "tls.h"

namespace nmq {

std::shared_ptr<Connection> Connection::OpenClient(std::shared_ptr<Runtime> runtime,
                                                   const ConnectionOptions& options,
                                                   QUIC_STATUS* status) {
  auto connection = std::make_shared<Connection>(runtime);
  connection->options_ = options;
  HQUIC handle = nullptr;
  *status = MsQuic->ConnectionOpen(runtime->registration(), Callback, connection.get(), &handle);
  if (QUIC_FAILED(*status)) return nullptr;
  connection->Adopt(handle);
  runtime->Track(connection);
  return connection;
}

std::shared_ptr<Connection> Connection::AdoptServer(std::shared_ptr<Listener> listener,
                                                    HQUIC handle, const ConnectionOptions& options,
                                                    VerifyMode verify) {
  auto connection = std::make_shared<Connection>(listener->runtime());
  connection->options_ = options;
  connection->is_server_ = true;
  connection->verify_ = verify;
  connection->listener_ = std::move(listener);
  // MsQuic aborts the process if NEW_CONNECTION accepts without a handler: set it first.
  MsQuic->SetCallbackHandler(handle, reinterpret_cast<void*>(Callback), connection.get());
  connection->Adopt(handle);
  connection->runtime()->Track(connection);
  return connection;
}

void Connection::Start(std::shared_ptr<Configuration> configuration, const QUIC_ADDR& remote,
                       const std::string& server_name, const std::string& expected_host,
                       const std::string& ticket) {
  // Read on the worker during the handshake; set before the start is posted (the post's lock
  // orders them before it).
  verify_ = configuration->verify();
  expected_host_ = expected_host;
  // Streams send 0-RTT data when the app asked for it with a ticket. If MsQuic cannot use the
  // ticket (corrupt, from another MsQuic version) a full handshake follows and the data goes after
  // it, as when the server declines the ticket or the early data (MsQuic then sends it again,
  // QuicLossDetectionOnZeroRttRejected).
  early_data_ = !ticket.empty() && options_.early_data;
  auto start = std::make_shared<DeferredStart>(
      DeferredStart{std::move(configuration), QuicAddrGetFamily(&remote), server_name, QuicAddrGetPort(&remote)});
  auto self = std::static_pointer_cast<Connection>(shared_from_this());
  const QUIC_ADDR address = remote;
  runtime()->blocking_calls().Post([self, address, ticket] {
    HandleUse use(*self);
    if (!use || self->shutdown_begun_.load()) return;
    // Setting the address ourselves lets an IP literal go without SNI (MsQuic 2.5 would send the IP).
    QUIC_ADDR copy = address;
    QUIC_STATUS status = MsQuic->SetParam(self->handle_, QUIC_PARAM_CONN_REMOTE_ADDRESS, sizeof(copy), &copy);
    if (QUIC_FAILED(status)) {
      self->StartFailed(status);
      return;
    }
    if (!ticket.empty()) {
      MsQuic->SetParam(self->handle_, QUIC_PARAM_CONN_RESUMPTION_TICKET, static_cast<uint32_t>(ticket.size()),
                       ticket.data());
    }
  });
  // With early data the app's first streams are opened before the start (StartDeferred).
  if (early_data_) {
    deferred_start_ = std::move(start);
    return;
  }
  PostStart(std::move(start));
}

void Connection::StartDeferred() {
  if (deferred_start_) PostStart(std::move(deferred_start_));
}

// JS thread: the start runs after what was posted before it (the address, the ticket).
void Connection::PostStart(std::shared_ptr<DeferredStart> start) {
  auto self = std::static_pointer_cast<Connection>(shared_from_this());
  runtime()->blocking_calls().Post([self, start] {
    HandleUse use(*self);
    if (!use || self->shutdown_begun_.load()) return;
    QUIC_STATUS status = MsQuic->ConnectionStart(self->handle_, start->configuration->handle(), start->family,
                                                 start->server_name.empty() ? nullptr : start->server_name.c_str(),
                                                 start->port);
    // PENDING is the usual answer: the start is queued on the worker.
    if (QUIC_FAILED(status) && !self->shutdown_begun_.load()) self->StartFailed(status);
  });
}

// The blocking-calls thread: the start failed. The app hears why, then the silent shutdown gives
// the connection its final event (MsQuic completes it even for one that never started).
void Connection::StartFailed(QUIC_STATUS status) {
  if (shutdown_begun_.exchange(true)) return;
  Push(EventType::kConnectionStartFailed, static_cast<int32_t>(status));
  MsQuic->ConnectionShutdown(handle_, QUIC_CONNECTION_SHUTDOWN_FLAG_SILENT, 0);
}

QUIC_STATUS Connection::Shutdown(uint64_t code, bool silent) {
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  shutdown_begun_.store(true);
  MsQuic->ConnectionShutdown(handle_,
                             silent ? QUIC_CONNECTION_SHUTDOWN_FLAG_SILENT
                                    : QUIC_CONNECTION_SHUTDOWN_FLAG_NONE,
                             code);
  return QUIC_STATUS_SUCCESS;
}

void Connection::SetPeerStreamCounts(int32_t bidirectional, int32_t unidirectional) {
  QUIC_SETTINGS settings = {};
  if (bidirectional >= 0) {
    settings.IsSet.PeerBidiStreamCount = 1;
    settings.PeerBidiStreamCount = static_cast<uint16_t>(bidirectional);
  }
  if (unidirectional >= 0) {
    settings.IsSet.PeerUnidiStreamCount = 1;
    settings.PeerUnidiStreamCount = static_cast<uint16_t>(unidirectional);
  }
  auto self = std::static_pointer_cast<Connection>(shared_from_this());
  // In order with every other change: raising a count and setting it back grants exactly the difference.
  runtime()->blocking_calls().Post([self, settings] {
    HandleUse use(*self);
    if (!use) return;
    QUIC_SETTINGS copy = settings;
    MsQuic->SetParam(self->handle_, QUIC_PARAM_CONN_SETTINGS, sizeof(copy), &copy);
  });
}

bool Connection::Admit(bool accept, uint64_t code) {
  HandleUse use(*this);
  if (!use || !is_server_ || shutdown_begun_.load()) return false;
  if (accept) {
    // Queued on the connection's worker (never blocks); the handshake goes on from the Initial
    // MsQuic kept. A failure here leaves the connection to its handshake timeout: shut it now.
    auto configuration = listener_->configuration();
    if (QUIC_SUCCEEDED(MsQuic->ConnectionSetConfiguration(handle_, configuration->handle()))) return true;
  } else {
    listener_->Refused(Refusal::kAdmission);
    // Refused now: it stops counting as a handshake at once, not after its close has drained.
    if (!left_handshakes_.exchange(true)) listener_->Dropped();
  }
  shutdown_begun_.store(true);
  MsQuic->ConnectionShutdown(handle_, QUIC_CONNECTION_SHUTDOWN_FLAG_NONE, code);
  return accept ? false : true;
}

QUIC_STATUS Connection::CompleteCertificateValidation(bool accept) {
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  // MsQuic before 2.6.0 can crash when a validation completes after shutdown began (msquic#6138).
  if (shutdown_begun_.load()) return QUIC_STATUS_INVALID_STATE;
  return MsQuic->ConnectionCertificateValidationComplete(
      handle_, accept ? TRUE : FALSE,
      accept ? QUIC_TLS_ALERT_CODE_SUCCESS : QUIC_TLS_ALERT_CODE_BAD_CERTIFICATE);
}

std::shared_ptr<Stream> Connection::OpenStream(bool unidirectional, QUIC_STATUS* status) {
  HandleUse use(*this);
  // MsQuic lets a stream open on a connection that is shutting down, and then never reports on it
  // (msquic#4311): refuse instead.
  if (!use || shutdown_begun_.load()) {
    *status = QUIC_STATUS_INVALID_STATE;
    return nullptr;
  }
  return Stream::OpenLocal(std::static_pointer_cast<Connection>(shared_from_this()), handle_,
                           unidirectional, options_.stream_receive_budget, status);
}

std::shared_ptr<Stream> Connection::OpenStreamWithData(bool unidirectional, const uint8_t* data, size_t length,
                                                       bool fin, uint32_t collect_limit, QUIC_STATUS* status) {
  HandleUse use(*this);
  if (!use || shutdown_begun_.load()) {  // msquic#4311, as in OpenStream
    *status = QUIC_STATUS_INVALID_STATE;
    return nullptr;
  }
  return Stream::OpenWithData(std::static_pointer_cast<Connection>(shared_from_this()), handle_, unidirectional,
                              options_.stream_receive_budget, data, length, fin, collect_limit, status);
}

QUIC_STATUS Connection::Statistics(QUIC_STATISTICS_V2* out) {
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  uint32_t length = sizeof(*out);
  return MsQuic->GetParam(handle_, QUIC_PARAM_CONN_STATISTICS_V2, &length, out);
}

namespace {
// One allocation per datagram: MsQuic's buffer descriptor, whether it left the send queue, the bytes.
struct DatagramBlock {
  QUIC_BUFFER buffer;
  bool sent;
};
}  // namespace

QUIC_STATUS Connection::SendDatagram(const uint8_t* data, size_t length, bool* queued) {
  *queued = false;
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  if (datagrams_unsent_.load(std::memory_order_seq_cst) >= options_.datagram_send_queue) {
    // Full: reported, not grown, and kConnectionDatagramDrain follows once there is room. The
    // flag is set before the queue is read again, and the worker reads the flag after it shrank
    // the queue, so one of the two sees the other: no wake-up is lost.
    datagram_room_wanted_.store(true, std::memory_order_seq_cst);
    if (datagrams_unsent_.load(std::memory_order_seq_cst) >= options_.datagram_send_queue) return QUIC_STATUS_SUCCESS;
  }
  auto* block = static_cast<DatagramBlock*>(std::malloc(sizeof(DatagramBlock) + length));
  if (block == nullptr) return QUIC_STATUS_OUT_OF_MEMORY;
  block->buffer.Length = static_cast<uint32_t>(length);
  block->buffer.Buffer = reinterpret_cast<uint8_t*>(block + 1);
  block->sent = false;
  std::memcpy(block->buffer.Buffer, data, length);
  datagrams_unsent_.fetch_add(1, std::memory_order_seq_cst);
  QUIC_STATUS status = MsQuic->DatagramSend(handle_, &block->buffer, 1, QUIC_SEND_FLAG_NONE, block);
  if (QUIC_FAILED(status)) {
    datagrams_unsent_.fetch_sub(1, std::memory_order_relaxed);
    std::free(block);
    return status;
  }
  *queued = true;
  return status;
}

// Worker. MsQuic reports every step of a datagram's life; the block is freed at the last one.
void Connection::OnDatagramSendState(QUIC_CONNECTION_EVENT* event) {
  auto* block = static_cast<DatagramBlock*>(event->DATAGRAM_SEND_STATE_CHANGED.ClientContext);
  const QUIC_DATAGRAM_SEND_STATE state = event->DATAGRAM_SEND_STATE_CHANGED.State;
  const bool final = QUIC_DATAGRAM_SEND_STATE_IS_FINAL(state);
  if (block == nullptr) return;
  if (!block->sent && (state == QUIC_DATAGRAM_SEND_SENT || final)) {
    block->sent = true;
    const uint32_t unsent = datagrams_unsent_.fetch_sub(1, std::memory_order_seq_cst) - 1;
    if (unsent < options_.datagram_send_queue && datagram_room_wanted_.load(std::memory_order_seq_cst) &&
        datagram_room_wanted_.exchange(false, std::memory_order_seq_cst)) {
      Push(EventType::kConnectionDatagramDrain);
    }
  }
  if (final) std::free(block);
}

// Worker. Datagrams have no flow control: copy now, and drop when the app is far behind.
void Connection::OnDatagramReceived(QUIC_CONNECTION_EVENT* event) {
  const QUIC_BUFFER* buffer = event->DATAGRAM_RECEIVED.Buffer;
  if (datagrams_waiting_.load(std::memory_order_relaxed) >= options_.datagram_receive_queue) {
    datagrams_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Event record;
  record.target = shared_from_this();
  record.type = EventType::kConnectionDatagram;
  record.data.reset(static_cast<uint8_t*>(std::malloc(buffer->Length > 0 ? buffer->Length : 1)));
  if (!record.data) return;
  std::memcpy(record.data.get(), buffer->Buffer, buffer->Length);
  record.data_length = buffer->Length;
  datagrams_waiting_.fetch_add(1, std::memory_order_relaxed);
  Push(std::move(record));
}

void Connection::CloseHandle(HQUIC handle) {
  MsQuic->ConnectionClose(handle);
  runtime()->ConnectionClosed(this);
}

// MsQuic worker thread. Must not block, and never calls into JS.
QUIC_STATUS QUIC_API Connection::Callback(HQUIC, void* context, QUIC_CONNECTION_EVENT* event) {
  return static_cast<Connection*>(context)->OnEvent(event);
}

QUIC_STATUS Connection::OnEvent(QUIC_CONNECTION_EVENT* event) {
  switch (event->Type) {
    case QUIC_CONNECTION_EVENT_CONNECTED: {
      connected_ = true;
      alpn_.assign(reinterpret_cast<const char*>(event->CONNECTED.NegotiatedAlpn),
                   event->CONNECTED.NegotiatedAlpnLength);
      // Connection parameters run inline on the connection's own worker.
      uint32_t length = sizeof(local_address_);
      MsQuic->GetParam(handle_, QUIC_PARAM_CONN_LOCAL_ADDRESS, &length, &local_address_);
      length = sizeof(remote_address_);
      MsQuic->GetParam(handle_, QUIC_PARAM_CONN_REMOTE_ADDRESS, &length, &remote_address_);
      session_resumed_ = event->CONNECTED.SessionResumed;
      // The client's certificate goes into the ticket (encrypted and authenticated with the
      // server's ticket key) when it fits MsQuic's limit for the app's part of a ticket.
      const bool certificate_fits =
          !peer_certificate_.empty() && peer_certificate_.size() <= QUIC_MAX_RESUMPTION_APP_DATA_LENGTH;
      if (is_server_ && send_resumption_ticket_) {
        // Queued on this connection; a failure only means the client gets no ticket.
        MsQuic->ConnectionSendResumptionTicket(
            handle_, QUIC_SEND_RESUMPTION_FLAG_NONE, certificate_fits ? static_cast<uint16_t>(peer_certificate_.size()) : 0,
            certificate_fits ? reinterpret_cast<const uint8_t*>(peer_certificate_.data()) : nullptr);
      }
      if (is_server_ && !left_handshakes_.exchange(true)) listener_->Connected();
      // Server connections are queued for accept() from here, before any of their streams. A
      // resumed one carries its peer's certificate from the ticket (the handshake had none).
      Event record;
      record.target = shared_from_this();
      record.type = EventType::kConnectionConnected;
      record.value = event->CONNECTED.SessionResumed;
      if (is_server_ && session_resumed_ && !peer_certificate_.empty()) {
        record.data.reset(static_cast<uint8_t*>(std::malloc(peer_certificate_.size())));
        if (record.data) {
          std::memcpy(record.data.get(), peer_certificate_.data(), peer_certificate_.size());
          record.data_length = peer_certificate_.size();
        }
      }
      Push(std::move(record));
      break;
    }
    case QUIC_CONNECTION_EVENT_RESUMED:
      // Server, during a resumed handshake: the app's part of the ticket, which this server wrote.
      if (is_server_) {
        peer_certificate_.assign(reinterpret_cast<const char*>(event->RESUMED.ResumptionState),
                                 event->RESUMED.ResumptionStateLength);
      }
      break;
    case QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_TRANSPORT: {
      shutdown_begun_.store(true);
      Event record;
      record.target = shared_from_this();
      record.type = EventType::kConnectionShutdownByTransport;
      record.status = event->SHUTDOWN_INITIATED_BY_TRANSPORT.Status;
      record.code = event->SHUTDOWN_INITIATED_BY_TRANSPORT.ErrorCode;
      record.text = certificate_error_;
      Push(std::move(record));
      break;
    }
    case QUIC_CONNECTION_EVENT_SHUTDOWN_INITIATED_BY_PEER:
      shutdown_begun_.store(true);
      Push(EventType::kConnectionShutdownByPeer, 0, 0, event->SHUTDOWN_INITIATED_BY_PEER.ErrorCode);
      break;
    case QUIC_CONNECTION_EVENT_SHUTDOWN_COMPLETE: {
      shutdown_begun_.store(true);
      uint64_t flags = 0;
      if (event->SHUTDOWN_COMPLETE.HandshakeCompleted) flags |= kHandshakeCompleted;
      if (event->SHUTDOWN_COMPLETE.PeerAcknowledgedShutdown) flags |= kPeerAcknowledged;
      // A server connection that never completed its handshake never reached the app.
      if (is_server_ && !left_handshakes_.exchange(true)) listener_->Dropped();
      Push(EventType::kConnectionShutdownComplete, 0, flags);
      OnFinalEvent(event->SHUTDOWN_COMPLETE.AppCloseInProgress);
      break;
    }
    case QUIC_CONNECTION_EVENT_PEER_STREAM_STARTED:
      OnPeerStream(event);
      break;
    case QUIC_CONNECTION_EVENT_PEER_ADDRESS_CHANGED: {
      // MsQuic validated the new path and moved the connection to it (a NAT rebinding, or the peer
      // migrating). The address travels as plain bytes; the JS side keeps its own copy.
      Event record;
      record.target = shared_from_this();
      record.type = EventType::kConnectionPeerAddressChanged;
      record.data.reset(static_cast<uint8_t*>(std::malloc(sizeof(QUIC_ADDR))));
      if (!record.data) break;
      std::memcpy(record.data.get(), event->PEER_ADDRESS_CHANGED.Address, sizeof(QUIC_ADDR));
      record.data_length = sizeof(QUIC_ADDR);
      Push(std::move(record));
      break;
    }
    case QUIC_CONNECTION_EVENT_STREAMS_AVAILABLE:
      Push(EventType::kConnectionStreamsAvailable, 0, event->STREAMS_AVAILABLE.BidirectionalCount,
           event->STREAMS_AVAILABLE.UnidirectionalCount);
      break;
    case QUIC_CONNECTION_EVENT_PEER_NEEDS_STREAMS:
      Push(EventType::kConnectionPeerNeedsStreams, 0, event->PEER_NEEDS_STREAMS.Bidirectional);
      break;
    case QUIC_CONNECTION_EVENT_PEER_CERTIFICATE_RECEIVED:
      return OnPeerCertificate(event);
    case QUIC_CONNECTION_EVENT_DATAGRAM_STATE_CHANGED: {
      const uint32_t size = event->DATAGRAM_STATE_CHANGED.SendEnabled ? event->DATAGRAM_STATE_CHANGED.MaxSendLength : 0;
      datagram_max_size_.store(size, std::memory_order_relaxed);
      Push(EventType::kConnectionDatagramState, 0, size);
      break;
    }
    case QUIC_CONNECTION_EVENT_DATAGRAM_RECEIVED:
      OnDatagramReceived(event);
      break;
    case QUIC_CONNECTION_EVENT_DATAGRAM_SEND_STATE_CHANGED:
      OnDatagramSendState(event);
      break;
    case QUIC_CONNECTION_EVENT_RESUMPTION_TICKET_RECEIVED: {
      // Borrowed for the callback only: copy.
      const uint32_t length = event->RESUMPTION_TICKET_RECEIVED.ResumptionTicketLength;
      Event record;
      record.target = shared_from_this();
      record.type = EventType::kConnectionResumptionTicket;
      record.data.reset(static_cast<uint8_t*>(std::malloc(length > 0 ? length : 1)));
      if (!record.data) break;
      std::memcpy(record.data.get(), event->RESUMPTION_TICKET_RECEIVED.ResumptionTicket, length);
      record.data_length = length;
      Push(std::move(record));
      break;
    }
    default:
      break;
  }
  return QUIC_STATUS_SUCCESS;
}

void Connection::OnPeerStream(QUIC_CONNECTION_EVENT* event) {
  bool unidirectional =
      (event->PEER_STREAM_STARTED.Flags & QUIC_STREAM_OPEN_FLAG_UNIDIRECTIONAL) != 0;
  const uint32_t request_limit = request_limit_.load(std::memory_order_acquire);
  if (request_limit > 0 && !unidirectional) {
    // Serve-requests mode: collected natively and reported once, at its FIN (see Stream).
    Stream::AdoptPeerRequest(std::static_pointer_cast<Connection>(shared_from_this()),
                             event->PEER_STREAM_STARTED.Stream, request_limit);
    event->PEER_STREAM_STARTED.Flags |= QUIC_STREAM_OPEN_FLAG_DELAY_ID_FC_UPDATES;
    return;
  }
  auto stream = Stream::AdoptPeer(std::static_pointer_cast<Connection>(shared_from_this()),
                                  event->PEER_STREAM_STARTED.Stream, unidirectional,
                                  options_.stream_receive_budget);
  // The peer gets this stream's credit back only when we close it, which waits until the app has
  // taken the stream: the credit bounds the streams waiting for accept.
  event->PEER_STREAM_STARTED.Flags |= QUIC_STREAM_OPEN_FLAG_DELAY_ID_FC_UPDATES;
  Event record;
  record.target = shared_from_this();
  record.child = stream;
  record.type = EventType::kConnectionPeerStream;
  record.value = unidirectional ? kPeerStreamUnidirectional : 0;
  record.code = stream->id();
  Push(std::move(record));
}

QUIC_STATUS Connection::OnPeerCertificate(QUIC_CONNECTION_EVENT* event) {
  const auto* certificate =
      reinterpret_cast<const QUIC_BUFFER*>(event->PEER_CERTIFICATE_RECEIVED.Certificate);
  const bool present = certificate != nullptr && certificate->Length > 0;
  const QUIC_STATUS verdict = event->PEER_CERTIFICATE_RECEIVED.DeferredStatus;
  if (is_server_ && present) {
    peer_certificate_.assign(reinterpret_cast<const char*>(certificate->Buffer), certificate->Length);
  } else if (is_server_ && !peer_certificate_.empty()) {
    // A resumed session (its ticket held the client's certificate, see RESUMED): the client sends
    // none, and the one it sent was checked when the ticket was issued.
    return QUIC_STATUS_SUCCESS;
  }
  switch (verify_) {
    case VerifyMode::kNone:
      return QUIC_STATUS_SUCCESS;
    case VerifyMode::kBuiltin:
      if (!present) {
        certificate_error_ = "the peer sent no certificate";
        return QUIC_STATUS_BAD_CERTIFICATE;
      }
      if (QUIC_FAILED(verdict)) {
        certificate_error_ = std::string("the peer's certificate is not trusted (") +
                             StatusName(verdict) + ")";
        return QUIC_STATUS_BAD_CERTIFICATE;
      }
      if (!is_server_ && !expected_host_.empty() &&
          !CertificateNamesHost(certificate->Buffer, certificate->Length, expected_host_)) {
        certificate_error_ = "the peer's certificate does not name " + expected_host_;
        return QUIC_STATUS_BAD_CERTIFICATE;
      }
      return QUIC_STATUS_SUCCESS;
    case VerifyMode::kCustom: {
      // The app decides asynchronously; CompleteCertificateValidation answers MsQuic.
      Event record;
      record.target = shared_from_this();
      record.type = EventType::kConnectionPeerCertificate;
      record.status = verdict;
      if (present) {
        record.data.reset(static_cast<uint8_t*>(std::malloc(certificate->Length)));
        if (!record.data) return QUIC_STATUS_OUT_OF_MEMORY;
        std::memcpy(record.data.get(), certificate->Buffer, certificate->Length);
        record.data_length = certificate->Length;
      }
      Push(std::move(record));
      return QUIC_STATUS_PENDING;
    }
  }
  return QUIC_STATUS_SUCCESS;
}

}  // namespace nmq
