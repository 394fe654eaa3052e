// Module entry: one EnvState per environment, the four wrap classes, and two helpers.
#include <napi.h>

#include "configuration_wrap.h"
#include "connection_wrap.h"
#include "env_state.h"
#include "listener_wrap.h"
#include "status.h"
#include "stream_wrap.h"
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
  exports.Set("transferStream", Napi::Function::New<EnvState::JsTransferStream>(env, "transferStream"));
  exports.Set("adoptStream", Napi::Function::New<EnvState::JsAdoptStream>(env, "adoptStream"));
  exports.Set("createSelfSignedCertificate", Napi::Function::New<CreateSelfSigned>(env, "createSelfSignedCertificate"));
  exports.Set("statusName", Napi::Function::New<JsStatusName>(env, "statusName"));
  return exports;
}

}  // namespace
}  // namespace nmq

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return nmq::Init(env, exports);
}

NODE_API_MODULE(node_msquic, InitModule)
