#include "connection_wrap.h"

#include "configuration_wrap.h"
#include "env_state.h"
#include "js_util.h"
#include "listener.h"
#include "stream.h"

namespace nmq {

Napi::Function ConnectionWrap::Init(Napi::Env env) {
  return DefineClass(env, "Connection",
                     {InstanceMethod<&ConnectionWrap::JS_Shutdown>("shutdown"),
                      InstanceMethod<&ConnectionWrap::JS_OpenStream>("openStream"),
                      InstanceMethod<&ConnectionWrap::JS_SetPeerStreamCounts>("setPeerStreamCounts"),
                      InstanceMethod<&ConnectionWrap::JS_CompleteCertificateValidation>(
                          "completeCertificateValidation"),
                      InstanceMethod<&ConnectionWrap::JS_Taken>("taken"),
                      InstanceMethod<&ConnectionWrap::JS_Admit>("admit"),
                      InstanceMethod<&ConnectionWrap::JS_Peer>("peer"),
                      InstanceMethod<&ConnectionWrap::JS_Info>("info"),
                      InstanceMethod<&ConnectionWrap::JS_Stats>("stats"),
                      InstanceMethod<&ConnectionWrap::JS_SendDatagram>("sendDatagram"),
                      InstanceMethod<&ConnectionWrap::JS_ServeRequests>("serveRequests"),
                      InstanceMethod<&ConnectionWrap::JS_EarlyData>("earlyData"),
                      InstanceMethod<&ConnectionWrap::JS_Start>("start")});
}

// new Connection(external) for server connections (from the drain), or
// new Connection(configuration, ip, port, serverName, expectedHost, streamReceiveBudget, datagramQueue[, ticket[, earlyData]]).
// With earlyData and a ticket MsQuic took, earlyData() is true: streams may send 0-RTT data at once.
ConnectionWrap::ConnectionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ConnectionWrap>(info) {
  Napi::Env env = info.Env();
  Tag(env, info.This(), kConnectionTag);
  if (info[0].IsExternal()) {
    auto* handle = info[0].As<Napi::External<std::shared_ptr<Handle>>>().Data();
    connection_ = std::static_pointer_cast<Connection>(*handle);
    return;
  }
  EnvState* state = EnvState::Get(env);
  auto runtime = state->RequireRuntime(env);
  if (!runtime) return;
  auto configuration = ConfigurationWrap::From(env, info[0]);
  if (!configuration) return;
  QUIC_ADDR remote;
  if (!info[1].IsString() || !info[2].IsNumber() || !info[3].IsString() || !info[4].IsString() ||
      !info[5].IsNumber() || !info[6].IsNumber() ||
      !ParseAddress(info[1].As<Napi::String>().Utf8Value(),
                    static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), &remote)) {
    Napi::TypeError::New(env, "Connection(configuration, ip, port, serverName, expectedHost, budget, datagramQueue)")
        .ThrowAsJavaScriptException();
    return;
  }
  ConnectionOptions options;
  options.stream_receive_budget = info[5].As<Napi::Number>().Uint32Value();
  options.datagram_send_queue = info[6].As<Napi::Number>().Uint32Value();
  options.early_data = info.Length() > 8 && info[8].ToBoolean().Value();
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  connection_ = Connection::OpenClient(runtime, options, &status);
  if (connection_) {
    std::string ticket;
    if (info.Length() > 7 && info[7].IsBuffer()) {
      auto buffer = info[7].As<Napi::Buffer<uint8_t>>();
      ticket.assign(reinterpret_cast<const char*>(buffer.Data()), buffer.Length());
    }
    // Starts on the runtime's blocking-calls thread; a failure arrives as an event, after Pin below.
    connection_->Start(configuration, remote, info[3].As<Napi::String>().Utf8Value(),
                       info[4].As<Napi::String>().Utf8Value(), ticket);
  }
  if (!connection_) {
    state->ThrowStatus(env, status, "could not start the connection");
    return;
  }
  state->Pin(*connection_, info.This().As<Napi::Object>());
}

// earlyData() -> whether streams of this client connection send 0-RTT data before the handshake.
Napi::Value ConnectionWrap::JS_EarlyData(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), connection_->early_data());
}

// start(): starts a connection prepared for early data (its first streams are queued by now).
Napi::Value ConnectionWrap::JS_Start(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  connection_->StartDeferred();
  return info.Env().Undefined();
}

// shutdown(code, silent)
Napi::Value ConnectionWrap::JS_Shutdown(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  uint64_t code = 0;
  if (!ToU64(info[0], &code) || code >= (uint64_t{1} << 62)) {
    Napi::RangeError::New(info.Env(), "the error code must be an integer from 0 to 2^62-1")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  connection_->Shutdown(code, info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

// openStream(unidirectional, data?, fin?, collectLimit?) -> Stream. With `data` (a Uint8Array,
// possibly empty) the stream starts with it in the same call; `collectLimit` > 0 collects the
// reply natively (the request path).
Napi::Value ConnectionWrap::JS_OpenStream(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  EnvState* state = EnvState::Get(env);
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  const bool unidirectional = info[0].ToBoolean().Value();
  std::shared_ptr<Stream> stream;
  if (info[1].IsTypedArray()) {
    auto data = info[1].As<Napi::Uint8Array>();
    uint32_t collect = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
    stream = connection_->OpenStreamWithData(unidirectional, data.Data(), data.ByteLength(),
                                             info[2].ToBoolean().Value(), collect, &status);
  } else {
    stream = connection_->OpenStream(unidirectional, &status);
  }
  if (!stream) {
    state->ThrowStatus(env, status, "could not open a stream");
    return env.Undefined();
  }
  return state->MakeWrapper(env, stream);
}

// setPeerStreamCounts(bidirectional, unidirectional); -1 leaves a count as it is.
Napi::Value ConnectionWrap::JS_SetPeerStreamCounts(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  connection_->SetPeerStreamCounts(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// completeCertificateValidation(accept) -> false when the connection is already going away
Napi::Value ConnectionWrap::JS_CompleteCertificateValidation(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  QUIC_STATUS status = connection_->CompleteCertificateValidation(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), QUIC_SUCCEEDED(status));
}

// taken(): the app took this server connection from its listener's backlog.
Napi::Value ConnectionWrap::JS_Taken(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  if (connection_->is_server()) connection_->listener()->Taken();
  return info.Env().Undefined();
}

// admit(accept, code) -> false when the connection is already gone (deferred admission only).
Napi::Value ConnectionWrap::JS_Admit(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  const bool accept = info[0].ToBoolean().Value();
  bool lossless = true;
  const uint64_t code = info[1].IsBigInt() ? info[1].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
  return Napi::Boolean::New(info.Env(), connection_->Admit(accept, code));
}

// peer() -> { localAddress, remoteAddress, serverName } as the client's first packet had them
// (server connections; valid from the listener's connection event on).
Napi::Value ConnectionWrap::JS_Peer(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("localAddress", AddressObject(env, connection_->initial_local_address()));
  result.Set("remoteAddress", AddressObject(env, connection_->initial_remote_address()));
  if (!connection_->server_name().empty()) result.Set("serverName", connection_->server_name());
  return result;
}

// info() -> { alpn, localAddress, remoteAddress, server, maxDatagramSize }; valid once connected.
Napi::Value ConnectionWrap::JS_Info(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("alpn", connection_->alpn());
  if (!connection_->server_name().empty()) result.Set("serverName", connection_->server_name());
  result.Set("localAddress", AddressObject(env, connection_->local_address()));
  result.Set("remoteAddress", AddressObject(env, connection_->remote_address()));
  result.Set("server", connection_->is_server());
  result.Set("sessionResumed", connection_->session_resumed());
  result.Set("maxDatagramSize", connection_->datagram_max_size());
  return result;
}

// stats() -> MsQuic's figures for this connection. Blocks briefly (runs on the connection's worker).
Napi::Value ConnectionWrap::JS_Stats(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  QUIC_STATISTICS_V2 stats = {};
  QUIC_STATUS status = connection_->Statistics(&stats);
  if (QUIC_FAILED(status)) {
    EnvState::Get(env)->ThrowStatus(env, status, "could not read statistics");
    return env.Undefined();
  }
  auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object result = Napi::Object::New(env);
  result.Set("rttUs", n(stats.Rtt));
  result.Set("minRttUs", n(stats.MinRtt));
  result.Set("maxRttUs", n(stats.MaxRtt));
  result.Set("rttVarianceUs", n(stats.RttVariance));
  result.Set("congestionWindow", n(stats.SendCongestionWindow));
  result.Set("congestionEvents", n(stats.SendCongestionCount));
  result.Set("pathMtu", n(stats.SendPathMtu));
  result.Set("bytesSent", n(stats.SendTotalBytes));
  result.Set("bytesReceived", n(stats.RecvTotalBytes));
  result.Set("streamBytesSent", n(stats.SendTotalStreamBytes));
  result.Set("streamBytesReceived", n(stats.RecvTotalStreamBytes));
  result.Set("packetsSent", n(stats.SendTotalPackets));
  result.Set("packetsReceived", n(stats.RecvTotalPackets));
  // MsQuic counts suspected losses and, separately, those that turned out spurious.
  result.Set("packetsLost", n(stats.SendSuspectedLostPackets - stats.SendSpuriousLostPackets));
  result.Set("packetsReordered", n(stats.RecvReorderedPackets));
  result.Set("handshakeUs", n(stats.TimingHandshakeFlightEnd > stats.TimingStart
                                  ? stats.TimingHandshakeFlightEnd - stats.TimingStart : 0));
  result.Set("datagramsDropped", n(connection_->datagrams_dropped()));
  return result;
}

// serveRequests(limit): the peer's bidirectional streams from now on are requests collected
// natively up to `limit` bytes (0: off).
Napi::Value ConnectionWrap::JS_ServeRequests(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  connection_->ServeRequests(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// sendDatagram(bytes) -> false when the send queue is full (nothing was sent).
Napi::Value ConnectionWrap::JS_SendDatagram(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "sendDatagram() takes a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  bool queued = false;
  QUIC_STATUS status = connection_->SendDatagram(bytes.Data(), bytes.ByteLength(), &queued);
  if (QUIC_FAILED(status)) {
    EnvState::Get(env)->ThrowStatus(env, status, "could not send the datagram");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, queued);
}

}  // namespace nmq
