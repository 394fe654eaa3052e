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
                      InstanceMethod<&ConnectionWrap::JS_Info>("info")});
}

// new Connection(external) for server connections (from the drain), or
// new Connection(configuration, ip, port, serverName, expectedHost, streamReceiveBudget).
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
      !info[5].IsNumber() ||
      !ParseAddress(info[1].As<Napi::String>().Utf8Value(),
                    static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), &remote)) {
    Napi::TypeError::New(env, "Connection(configuration, ip, port, serverName, expectedHost, budget)")
        .ThrowAsJavaScriptException();
    return;
  }
  ConnectionOptions options;
  options.stream_receive_budget = info[5].As<Napi::Number>().Uint32Value();
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  connection_ = Connection::OpenClient(runtime, options, &status);
  if (connection_) {
    status = connection_->Start(*configuration, remote, info[3].As<Napi::String>().Utf8Value(),
                                info[4].As<Napi::String>().Utf8Value());
    if (QUIC_FAILED(status)) {
      connection_->ForceClose();  // never started: no SHUTDOWN_COMPLETE will come
      connection_.reset();
    }
  }
  if (!connection_) {
    state->ThrowStatus(env, status, "could not start the connection");
    return;
  }
  state->Pin(*connection_, info.This().As<Napi::Object>());
}

// shutdown(code, silent)
Napi::Value ConnectionWrap::JS_Shutdown(const Napi::CallbackInfo& info) {
  uint64_t code = 0;
  if (!ToU64(info[0], &code) || code >= (uint64_t{1} << 62)) {
    Napi::RangeError::New(info.Env(), "the error code must be an integer from 0 to 2^62-1")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  connection_->Shutdown(code, info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

// openStream(unidirectional) -> Stream
Napi::Value ConnectionWrap::JS_OpenStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = EnvState::Get(env);
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  auto stream = connection_->OpenStream(info[0].ToBoolean().Value(), &status);
  if (!stream) {
    state->ThrowStatus(env, status, "could not open a stream");
    return env.Undefined();
  }
  return state->MakeWrapper(env, stream);
}

// setPeerStreamCounts(bidirectional, unidirectional); -1 leaves a count as it is.
Napi::Value ConnectionWrap::JS_SetPeerStreamCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QUIC_STATUS status = connection_->SetPeerStreamCounts(info[0].As<Napi::Number>().Int32Value(),
                                                        info[1].As<Napi::Number>().Int32Value());
  if (QUIC_FAILED(status)) EnvState::Get(env)->ThrowStatus(env, status, "could not change stream limits");
  return env.Undefined();
}

// completeCertificateValidation(accept) -> false when the connection is already going away
Napi::Value ConnectionWrap::JS_CompleteCertificateValidation(const Napi::CallbackInfo& info) {
  QUIC_STATUS status = connection_->CompleteCertificateValidation(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), QUIC_SUCCEEDED(status));
}

// taken(): the app took this server connection from its listener's backlog.
Napi::Value ConnectionWrap::JS_Taken(const Napi::CallbackInfo& info) {
  if (connection_->is_server()) connection_->listener()->Taken();
  return info.Env().Undefined();
}

// info() -> { alpn, localAddress, remoteAddress }; valid once connected.
Napi::Value ConnectionWrap::JS_Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("alpn", connection_->alpn());
  result.Set("localAddress", AddressObject(env, connection_->local_address()));
  result.Set("remoteAddress", AddressObject(env, connection_->remote_address()));
  return result;
}

}  // namespace nmq
