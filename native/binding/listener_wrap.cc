#include "listener_wrap.h"

#include "configuration_wrap.h"
#include "env_state.h"
#include "js_util.h"

namespace nmq {

Napi::Function ListenerWrap::Init(Napi::Env env) {
  return DefineClass(env, "Listener",
                     {InstanceMethod<&ListenerWrap::JS_Address>("address"),
                      InstanceMethod<&ListenerWrap::JS_Stop>("stop"),
                      InstanceMethod<&ListenerWrap::JS_Stats>("stats"),
                      InstanceMethod<&ListenerWrap::JS_ServeRequests>("serveRequests")});
}

// new Listener(configuration, ip, port, backlog, streamReceiveBudget, datagramQueue, maxHandshakes,
// retryAbove (-1: never), deferAdmission): listening on return.
ListenerWrap::ListenerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ListenerWrap>(info) {
  Napi::Env env = info.Env();
  Tag(env, info.This(), kListenerTag);
  EnvState* state = EnvState::Get(env);
  auto runtime = state->RequireRuntime(env);
  if (!runtime) return;
  auto configuration = ConfigurationWrap::From(env, info[0]);
  if (!configuration) return;
  QUIC_ADDR address;
  if (!info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber() ||
      !info[5].IsNumber() || !info[6].IsNumber() || !info[7].IsNumber() || !info[8].IsBoolean() ||
      !ParseAddress(info[1].As<Napi::String>().Utf8Value(),
                    static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), &address)) {
    Napi::TypeError::New(env, "Listener(configuration, ip, port, backlog, budget, datagramQueue, maxHandshakes, retryAbove, deferAdmission)")
        .ThrowAsJavaScriptException();
    return;
  }
  ListenerOptions options;
  options.backlog = info[3].As<Napi::Number>().Uint32Value();
  options.connection.stream_receive_budget = info[4].As<Napi::Number>().Uint32Value();
  options.connection.datagram_send_queue = info[5].As<Napi::Number>().Uint32Value();
  options.max_handshakes = info[6].As<Napi::Number>().Uint32Value();
  const double retry_above = info[7].As<Napi::Number>().DoubleValue();
  options.retry_above = retry_above < 0 ? kNeverRetry : static_cast<uint32_t>(retry_above);
  options.defer_admission = info[8].As<Napi::Boolean>().Value();
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  listener_ = Listener::Open(runtime, configuration, options, &status);
  if (listener_) {
    status = listener_->Start(address);
    if (QUIC_FAILED(status)) {
      listener_->ForceClose();  // never started: no STOP_COMPLETE will come
      listener_.reset();
    }
  }
  if (!listener_) {
    state->ThrowStatus(env, status, "could not listen");
    return;
  }
  state->Pin(*listener_, info.This().As<Napi::Object>());
}

Napi::Value ListenerWrap::JS_Address(const Napi::CallbackInfo& info) {
  QUIC_ADDR address;
  if (!listener_ || !listener_->LocalAddress(&address)) return info.Env().Null();
  return AddressObject(info.Env(), address);
}

Napi::Value ListenerWrap::JS_Stop(const Napi::CallbackInfo& info) {
  if (listener_) listener_->Stop();
  return info.Env().Undefined();
}

Napi::Value ListenerWrap::JS_Stats(const Napi::CallbackInfo& info) {
  Napi::Object stats = Napi::Object::New(info.Env());
  auto refused = [&](Refusal reason) { return static_cast<double>(listener_ ? listener_->refused(reason) : 0); };
  stats.Set("handshaking", listener_ ? listener_->handshaking() : 0);
  stats.Set("established", listener_ ? listener_->established() : 0);
  stats.Set("refusedHandshakes", refused(Refusal::kHandshakes));
  stats.Set("refusedBacklog", refused(Refusal::kBacklog));
  stats.Set("refusedAdmission", refused(Refusal::kAdmission));
  stats.Set("retrying", listener_ ? listener_->retrying() : false);
  QUIC_LISTENER_STATISTICS msquic = {};
  if (listener_ && listener_->Statistics(&msquic)) {
    stats.Set("accepted", static_cast<double>(msquic.TotalAcceptedConnections));
    stats.Set("rejected", static_cast<double>(msquic.TotalRejectedConnections));
    stats.Set("droppedPackets", static_cast<double>(msquic.BindingRecvDroppedPackets));
  }
  return stats;
}

// serveRequests(limit, concurrency): connections that arrive from now on serve requests (see Connection).
Napi::Value ListenerWrap::JS_ServeRequests(const Napi::CallbackInfo& info) {
  listener_->ServeRequests(info[0].As<Napi::Number>().Uint32Value(),
                           static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()));
  return info.Env().Undefined();
}

}  // namespace nmq
