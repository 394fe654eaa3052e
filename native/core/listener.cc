#include "listener.h"

#include "api.h"
#include "retry_gate.h"
#include "runtime.h"

namespace nmq {

std::shared_ptr<Listener> Listener::Open(std::shared_ptr<Runtime> runtime,
                                         std::shared_ptr<Configuration> configuration,
                                         const ListenerOptions& options, QUIC_STATUS* status) {
  auto listener = std::make_shared<Listener>(runtime);
  listener->configuration_ = std::move(configuration);
  listener->options_ = options;
  HQUIC handle = nullptr;
  *status = MsQuic->ListenerOpen(runtime->registration(), Callback, listener.get(), &handle);
  if (QUIC_FAILED(*status)) return nullptr;
  listener->Adopt(handle);
  runtime->Track(listener);
  return listener;
}

QUIC_STATUS Listener::Start(const QUIC_ADDR& address) {
  HandleUse use(*this);
  if (!use) return QUIC_STATUS_INVALID_STATE;
  auto alpn = AlpnBuffers(configuration_->alpn());
  QUIC_STATUS status = MsQuic->ListenerStart(handle_, alpn.data(), static_cast<uint32_t>(alpn.size()), &address);
  // MsQuic 2.5 never initialises its binding's drop counter (QuicBindingInitialize allocates the
  // binding without zeroing Stats): whatever it holds now is the zero point.
  QUIC_LISTENER_STATISTICS stats = {};
  uint32_t length = sizeof(stats);
  if (QUIC_SUCCEEDED(status) && QUIC_SUCCEEDED(MsQuic->GetParam(handle_, QUIC_PARAM_LISTENER_STATS, &length, &stats))) {
    dropped_baseline_ = stats.BindingRecvDroppedPackets;
  }
  if (QUIC_SUCCEEDED(status)) UpdateRetry();  // retry_above 0: Retry from the first client on
  return status;
}

bool Listener::LocalAddress(QUIC_ADDR* address) {
  HandleUse use(*this);
  if (!use) return false;
  uint32_t length = sizeof(*address);
  // Listener parameters are read inline on the calling thread; this never blocks.
  return QUIC_SUCCEEDED(
      MsQuic->GetParam(handle_, QUIC_PARAM_LISTENER_LOCAL_ADDRESS, &length, address));
}

bool Listener::Statistics(QUIC_LISTENER_STATISTICS* out) {
  HandleUse use(*this);
  if (!use) return false;
  uint32_t length = sizeof(*out);
  if (QUIC_FAILED(MsQuic->GetParam(handle_, QUIC_PARAM_LISTENER_STATS, &length, out))) return false;
  out->BindingRecvDroppedPackets -= dropped_baseline_;  // packets dropped since this listener started
  return true;
}

void Listener::Stop() {
  HandleUse use(*this);
  if (use) MsQuic->ListenerStop(handle_);
}

void Listener::CloseHandle(HQUIC handle) {
  MsQuic->ListenerClose(handle);
}

// MsQuic worker thread; may run concurrently for one listener. Must not block.
QUIC_STATUS QUIC_API Listener::Callback(HQUIC, void* context, QUIC_LISTENER_EVENT* event) {
  auto* self = static_cast<Listener*>(context);
  switch (event->Type) {
    case QUIC_LISTENER_EVENT_NEW_CONNECTION:
      return self->OnNewConnection(event);
    case QUIC_LISTENER_EVENT_STOP_COMPLETE:
      self->StopRetry();
      self->Push(EventType::kListenerStopped);
      self->OnFinalEvent(event->STOP_COMPLETE.AppCloseInProgress);
      break;
    default:
      break;
  }
  return QUIC_STATUS_SUCCESS;
}

QUIC_STATUS Listener::Refuse(Refusal reason) {
  Refused(reason);
  // Returning a failure makes MsQuic refuse the connection on the wire and free it.
  return QUIC_STATUS_CONNECTION_REFUSED;
}

void Listener::Connected() {
  established_.fetch_add(1, std::memory_order_relaxed);
  handshaking_.fetch_sub(1, std::memory_order_seq_cst);
  UpdateRetry();
}

void Listener::Dropped() {
  handshaking_.fetch_sub(1, std::memory_order_seq_cst);
  UpdateRetry();
}

// Any thread. The fast path reads the count, then the flag; a decision under the lock sets the
// flag, then reads the count again (all sequentially consistent), so a change that raced a decision
// is seen by one of the two and the flag never stays on once the handshakes are gone.
void Listener::UpdateRetry() {
  const uint32_t above = options_.retry_above;
  if (above == kNeverRetry) return;
  auto wanted = [&](uint32_t now, bool on) { return on ? now > above / 2 || above == 0 : now >= above; };
  for (;;) {
    const uint32_t now = handshaking_.load(std::memory_order_seq_cst);
    const bool on = retrying_.load(std::memory_order_seq_cst);
    if (wanted(now, on) == on) return;
    std::lock_guard<std::mutex> lock(retry_mutex_);
    const bool still = retrying_.load(std::memory_order_seq_cst);
    const bool want = wanted(handshaking_.load(std::memory_order_seq_cst), still);
    if (want == still) continue;
    retrying_.store(want, std::memory_order_seq_cst);
    if (want) {
      RetryGate::Demand();
    } else {
      RetryGate::Release();
    }
  }
}

void Listener::StopRetry() {
  std::lock_guard<std::mutex> lock(retry_mutex_);
  if (retrying_.exchange(false, std::memory_order_seq_cst)) RetryGate::Release();
}

QUIC_STATUS Listener::OnNewConnection(QUIC_LISTENER_EVENT* event) {
  // Established connections the app has not taken: it is not keeping up, so refuse outright.
  if (established_.load(std::memory_order_relaxed) >= options_.backlog) return Refuse(Refusal::kBacklog);
  if (handshaking_.fetch_add(1, std::memory_order_seq_cst) >= options_.max_handshakes) {
    handshaking_.fetch_sub(1, std::memory_order_seq_cst);
    return Refuse(Refusal::kHandshakes);
  }
  UpdateRetry();
  HQUIC handle = event->NEW_CONNECTION.Connection;
  auto connection = Connection::AdoptServer(
      std::static_pointer_cast<Listener>(shared_from_this()), handle, options_.connection,
      configuration_->verify());
  const QUIC_NEW_CONNECTION_INFO* info = event->NEW_CONNECTION.Info;
  if (info->ServerName != nullptr && info->ServerNameLength > 0) {
    connection->set_server_name(std::string(info->ServerName, info->ServerNameLength));
  }
  connection->set_send_resumption_ticket(configuration_->resumption());
  connection->set_peer_addresses(*info->LocalAddress, *info->RemoteAddress);
  // Before the handshake, so no peer stream arrives ahead of the mode. The stream credit is set on
  // the connection first: SetConfiguration keeps settings the connection already has, so the
  // peer's initial credit is the concurrency (inline here: this is the connection's worker).
  const uint32_t request_limit = request_limit_.load(std::memory_order_acquire);
  if (request_limit > 0) {
    connection->ServeRequests(request_limit);
    connection->SetPeerStreamCounts(request_concurrency_.load(std::memory_order_relaxed), -1);
  }
  // Deferred admission: the handshake waits (MsQuic holds the Initial) until the app's verdict
  // (Connection::Admit); a refused peer costs no certificate signature.
  QUIC_STATUS status = options_.defer_admission
                           ? QUIC_STATUS_SUCCESS
                           : MsQuic->ConnectionSetConfiguration(handle, configuration_->handle());
  if (QUIC_FAILED(status)) {
    // MsQuic frees a refused connection itself (never close it too). Unhook the handler first: it
    // checks only that pointer before indicating an event, and the context goes away here.
    MsQuic->SetCallbackHandler(handle, nullptr, nullptr);
    connection->Abandon();
    runtime()->ConnectionClosed(connection.get());
    Dropped();
    return status;
  }
  // The app's wrapper exists from the start (a certificate check may need it during the
  // handshake); the connection is queued for accept() when its handshake completes. This callback
  // runs on the connection's own worker, so none of its events can be queued before this one.
  Event record;
  record.target = shared_from_this();
  record.child = connection;
  record.type = EventType::kListenerConnection;
  record.value = options_.defer_admission ? 1 : 0;
  Push(std::move(record));
  return QUIC_STATUS_SUCCESS;
}

}  // namespace nmq
