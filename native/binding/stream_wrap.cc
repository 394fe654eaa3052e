#include "stream_wrap.h"

#include "env_state.h"
#include "js_util.h"

namespace nmq {

Napi::Function StreamWrap::Init(Napi::Env env) {
  return DefineClass(env, "Stream",
                     {InstanceMethod<&StreamWrap::JS_Send>("send"),
                      InstanceMethod<&StreamWrap::JS_Shutdown>("shutdown"),
                      InstanceMethod<&StreamWrap::JS_Consumed>("consumed"),
                      InstanceMethod<&StreamWrap::JS_Taken>("taken"),
                      InstanceMethod<&StreamWrap::JS_Id>("id"),
                      InstanceMethod<&StreamWrap::JS_Unidirectional>("unidirectional"),
                      InstanceMethod<&StreamWrap::JS_ReportAcknowledged>("reportAcknowledged")});
}

StreamWrap::StreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamWrap>(info) {
  Napi::Env env = info.Env();
  Tag(env, info.This(), kStreamTag);
  if (!info[0].IsExternal()) {
    Napi::TypeError::New(env, "streams are made by connections").ThrowAsJavaScriptException();
    return;
  }
  auto* handle = info[0].As<Napi::External<std::shared_ptr<Handle>>>().Data();
  stream_ = std::static_pointer_cast<Stream>(*handle);
}

// send(bytes: Uint8Array | undefined, fin: boolean, taken?: boolean) -> 0: sent; 1: sent, and the send window is
// full (a 'send ready' event follows once there is room); 2: refused, the send direction has
// ended (the events saying why are on their way). Copies the bytes. With `taken`, also Taken().
Napi::Value StreamWrap::JS_Send(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (info[0].IsTypedArray()) {
    auto array = info[0].As<Napi::Uint8Array>();
    data = array.Data();
    length = array.ByteLength();
  } else if (!info[0].IsUndefined()) {
    Napi::TypeError::New(env, "send() takes a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool full = false;
  QUIC_STATUS status = stream_->Send(data, length, info[1].ToBoolean().Value(), &full);
  // `taken`: the app is done holding this peer stream (an answered request), in the same call.
  if (info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value()) stream_->Taken();
  if (status == QUIC_STATUS_INVALID_STATE || status == QUIC_STATUS_ABORTED) return Napi::Number::New(env, 2);
  if (QUIC_FAILED(status)) {
    EnvState::Get(env)->ThrowStatus(env, status, "could not send");
    return env.Undefined();
  }
  return Napi::Number::New(env, full ? 1 : 0);
}

// shutdown(flags, code): flags are MsQuic's QUIC_STREAM_SHUTDOWN_FLAGs.
Napi::Value StreamWrap::JS_Shutdown(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  Napi::Env env = info.Env();
  uint64_t code = 0;
  if (!ToU64(info[1], &code) || code >= (uint64_t{1} << 62)) {
    Napi::RangeError::New(env, "the error code must be an integer from 0 to 2^62-1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto flags = static_cast<QUIC_STREAM_SHUTDOWN_FLAGS>(info[0].As<Napi::Number>().Uint32Value());
  QUIC_STATUS status = stream_->Shutdown(flags, code);
  return Napi::Boolean::New(env, QUIC_SUCCEEDED(status));
}

Napi::Value StreamWrap::JS_Consumed(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  stream_->Consumed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value StreamWrap::JS_Taken(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  stream_->Taken();
  return info.Env().Undefined();
}

Napi::Value StreamWrap::JS_Id(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  uint64_t id = stream_->id();
  if (id == UINT64_MAX) return info.Env().Null();
  return Napi::Number::New(info.Env(), static_cast<double>(id));
}

Napi::Value StreamWrap::JS_Unidirectional(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  return Napi::Boolean::New(info.Env(), stream_->unidirectional());
}

// reportAcknowledged() -> true if the peer already acknowledged everything sent; else the
// acknowledgement is reported as its own event when it comes.
Napi::Value StreamWrap::JS_ReportAcknowledged(const Napi::CallbackInfo& info) {
  EnvState::Get(info.Env())->CountCall();
  return Napi::Boolean::New(info.Env(), stream_->ReportAcknowledged());
}

}  // namespace nmq
