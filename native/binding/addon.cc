// Module entry: one EnvState per environment, the four wrap classes, and two helpers.
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "configuration_wrap.h"
#include "connection_wrap.h"
#include "env_state.h"
#include "listener_wrap.h"
#include "status.h"
#include "stream_wrap.h"
#include "stream.h"
#include "tls.h"

namespace nmq {
namespace {

// createSelfSignedCertificate(hosts: string[], days: number) -> { cert, key } (PEM)
Napi::Value CreateSelfSigned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "createSelfSignedCertificate(hosts, days)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::string> hosts;
  Napi::Array list = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) hosts.push_back(list.Get(i).ToString().Utf8Value());
  std::string cert, key;
  std::string error = CreateSelfSignedCertificate(hosts, info[1].As<Napi::Number>().Uint32Value(), &cert, &key);
  if (!error.empty()) {
    Napi::Error::New(env, "createSelfSignedCertificate: " + error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("cert", cert);
  result.Set("key", key);
  return result;
}

// statusName(status) -> "QUIC_STATUS_…", for statuses that arrive in events.
Napi::Value JsStatusName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), StatusName(info[0].As<Napi::Number>().Int32Value()));
}

// The numbers both layers must agree on, read by the TS layer at load (never mirrored by hand).
Napi::Object Constants(Napi::Env env) {
  Napi::Object events = Napi::Object::New(env);
#define NMQ_EVENT_EXPORT(name, number) events.Set(#name, Napi::Number::New(env, number));
  NMQ_EVENT_TYPES(NMQ_EVENT_EXPORT)
#undef NMQ_EVENT_EXPORT
  Napi::Object shutdown = Napi::Object::New(env);
  shutdown.Set("HandshakeCompleted", Napi::Number::New(env, kHandshakeCompleted));
  shutdown.Set("PeerAcknowledged", Napi::Number::New(env, kPeerAcknowledged));
  shutdown.Set("ClosedRemotely", Napi::Number::New(env, kConnectionClosedRemotely));
  shutdown.Set("ConnectionShutdown", Napi::Number::New(env, kConnectionShutdown));
  shutdown.Set("SendAcknowledged", Napi::Number::New(env, kSendAcknowledged));
  Napi::Object peerStream = Napi::Object::New(env);
  peerStream.Set("Unidirectional", Napi::Number::New(env, kPeerStreamUnidirectional));
  peerStream.Set("Request", Napi::Number::New(env, kPeerStreamRequest));
  Napi::Object streamShutdown = Napi::Object::New(env);
  streamShutdown.Set("Graceful", Napi::Number::New(env, QUIC_STREAM_SHUTDOWN_FLAG_GRACEFUL));
  streamShutdown.Set("AbortSend", Napi::Number::New(env, QUIC_STREAM_SHUTDOWN_FLAG_ABORT_SEND));
  streamShutdown.Set("AbortReceive", Napi::Number::New(env, QUIC_STREAM_SHUTDOWN_FLAG_ABORT_RECEIVE));
  streamShutdown.Set("Abort", Napi::Number::New(env, QUIC_STREAM_SHUTDOWN_FLAG_ABORT));
  streamShutdown.Set("Immediate", Napi::Number::New(env, QUIC_STREAM_SHUTDOWN_FLAG_IMMEDIATE));
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("events", events);
  constants.Set("shutdownFlags", shutdown);
  constants.Set("peerStream", peerStream);
  constants.Set("streamShutdown", streamShutdown);
  constants.Set("messageTooLargeCode", Napi::Number::New(env, static_cast<double>(kMessageTooLargeCode)));
  constants.Set("batchStride", Napi::Number::New(env, kBatchStride));
  return constants;
}

// trimMemory() -> whether the allocator gave memory back. glibc keeps freed memory in per-thread
// arenas (MsQuic's workers and Node's worker threads each get one) and returns the top of the heap
// only; malloc_trim also releases the free pages inside every arena. Cheap when little is free.
Napi::Value JsTrimMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new EnvState();
  env.SetInstanceData(state);
  exports.Set("Configuration", ConfigurationWrap::Init(env));
  Napi::Function listener = ListenerWrap::Init(env);
  Napi::Function connection = ConnectionWrap::Init(env);
  Napi::Function stream = StreamWrap::Init(env);
  state->connection_constructor = Napi::Persistent(connection);
  state->stream_constructor = Napi::Persistent(stream);
  exports.Set("Listener", listener);
  exports.Set("Connection", connection);
  exports.Set("Stream", stream);
  exports.Set("init", Napi::Function::New<EnvState::JsInit>(env, "init"));
  exports.Set("transferConnection", Napi::Function::New<EnvState::JsTransferConnection>(env, "transferConnection"));
  exports.Set("adoptConnection", Napi::Function::New<EnvState::JsAdoptConnection>(env, "adoptConnection"));
  exports.Set("keepStream", Napi::Function::New<EnvState::JsKeepStream>(env, "keepStream"));
  exports.Set("transferStream", Napi::Function::New<EnvState::JsTransferStream>(env, "transferStream"));
  exports.Set("adoptStream", Napi::Function::New<EnvState::JsAdoptStream>(env, "adoptStream"));
  exports.Set("createSelfSignedCertificate", Napi::Function::New<CreateSelfSigned>(env, "createSelfSignedCertificate"));
  exports.Set("statusName", Napi::Function::New<JsStatusName>(env, "statusName"));
  exports.Set("constants", Constants(env));
  exports.Set("nativeCalls", Napi::Function::New<EnvState::JsNativeCalls>(env, "nativeCalls"));
  exports.Set("trimMemory", Napi::Function::New<JsTrimMemory>(env, "trimMemory"));
  return exports;
}

}  // namespace
}  // namespace nmq

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return nmq::Init(env, exports);
}

NODE_API_MODULE(node_msquic, InitModule)
