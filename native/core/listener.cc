#include "listener.h"

#include "api.h"
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
      self->Push(EventType::kListenerStopped);
      self->OnFinalEvent(event->STOP_COMPLETE.AppCloseInProgress);
      break;
    default:
      break;
  }
  return QUIC_STATUS_SUCCESS;
}

QUIC_STATUS Listener::OnNewConnection(QUIC_LISTENER_EVENT* event) {
  if (pending_.fetch_add(1, std::memory_order_relaxed) >= options_.backlog) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    refused_.fetch_add(1, std::memory_order_relaxed);
    // Returning a failure makes MsQuic refuse the connection on the wire and free it.
    return QUIC_STATUS_CONNECTION_REFUSED;
  }
  HQUIC handle = event->NEW_CONNECTION.Connection;
  auto connection = Connection::AdoptServer(
      std::static_pointer_cast<Listener>(shared_from_this()), handle, options_.connection,
      configuration_->verify());
  const QUIC_NEW_CONNECTION_INFO* info = event->NEW_CONNECTION.Info;
  if (info->ServerName != nullptr && info->ServerNameLength > 0) {
    connection->set_server_name(std::string(info->ServerName, info->ServerNameLength));
  }
  connection->set_send_resumption_ticket(configuration_->resumption());
  // Before the handshake, so no peer stream arrives ahead of the mode. The stream credit is set on
  // the connection first: SetConfiguration keeps settings the connection already has, so the
  // peer's initial credit is the concurrency (inline here: this is the connection's worker).
  const uint32_t request_limit = request_limit_.load(std::memory_order_acquire);
  if (request_limit > 0) {
    connection->ServeRequests(request_limit);
    connection->SetPeerStreamCounts(request_concurrency_.load(std::memory_order_relaxed), -1);
  }
  QUIC_STATUS status = MsQuic->ConnectionSetConfiguration(handle, configuration_->handle());
  if (QUIC_FAILED(status)) {
    // MsQuic frees a refused connection itself (never close it too). Unhook the handler first: it
    // checks only that pointer before indicating an event, and the context goes away here.
    MsQuic->SetCallbackHandler(handle, nullptr, nullptr);
    connection->Abandon();
    runtime()->ConnectionClosed(connection.get());
    pending_.fetch_sub(1, std::memory_order_relaxed);
    return status;
  }
  // The app's wrapper exists from the start (a certificate check may need it during the
  // handshake); the connection is queued for accept() when its handshake completes. This callback
  // runs on the connection's own worker, so none of its events can be queued before this one.
  Event record;
  record.target = shared_from_this();
  record.child = connection;
  record.type = EventType::kListenerConnection;
  Push(std::move(record));
  return QUIC_STATUS_SUCCESS;
}

}  // namespace nmq
