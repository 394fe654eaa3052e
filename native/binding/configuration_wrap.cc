#include "configuration_wrap.h"

#include "env_state.h"
#include "js_util.h"

namespace nmq {

namespace {
std::string StringProperty(Napi::Object object, const char* name) {
  Napi::Value value = object.Get(name);
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string();
}

// Each present numeric property becomes a QUIC_SETTINGS field with its IsSet bit.
void ReadSettings(Napi::Object object, QUIC_SETTINGS* settings) {
#define NMQ_SETTING(js, field)                                                        \
  {                                                                                   \
    Napi::Value value = object.Get(js);                                               \
    if (value.IsNumber()) {                                                           \
      settings->IsSet.field = 1;                                                      \
      settings->field = static_cast<decltype(settings->field)>(value.As<Napi::Number>().Int64Value()); \
    }                                                                                 \
  }
  NMQ_SETTING("idleTimeoutMs", IdleTimeoutMs)
  NMQ_SETTING("handshakeIdleTimeoutMs", HandshakeIdleTimeoutMs)
  NMQ_SETTING("keepAliveIntervalMs", KeepAliveIntervalMs)
  NMQ_SETTING("peerBidiStreamCount", PeerBidiStreamCount)
  NMQ_SETTING("peerUnidiStreamCount", PeerUnidiStreamCount)
  NMQ_SETTING("streamReceiveWindow", StreamRecvWindowDefault)
  NMQ_SETTING("connectionReceiveWindow", ConnFlowControlWindow)
  NMQ_SETTING("disconnectTimeoutMs", DisconnectTimeoutMs)
  NMQ_SETTING("datagramReceiveEnabled", DatagramReceiveEnabled)
  NMQ_SETTING("congestionControlAlgorithm", CongestionControlAlgorithm)
  NMQ_SETTING("serverResumptionLevel", ServerResumptionLevel)
#undef NMQ_SETTING
}
}  // namespace

Napi::Function ConfigurationWrap::Init(Napi::Env env) {
  // No methods: listeners and connections keep it alive natively, teardown closes it.
  return DefineClass(env, "Configuration", {});
}

// new Configuration({ client, alpn[], certFile, keyFile, caFile, verify, requestClientCertificate, settings })
ConfigurationWrap::ConfigurationWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ConfigurationWrap>(info) {
  Napi::Env env = info.Env();
  Tag(env, info.This(), kConfigurationTag);
  EnvState* state = EnvState::Get(env);
  auto runtime = state->RequireRuntime(env);
  if (!runtime) return;
  if (!info[0].IsObject()) {
    Napi::TypeError::New(env, "Configuration options must be an object").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object options = info[0].As<Napi::Object>();
  std::vector<std::string> alpn;
  Napi::Value alpn_value = options.Get("alpn");
  if (alpn_value.IsArray()) {
    Napi::Array list = alpn_value.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) alpn.push_back(list.Get(i).ToString().Utf8Value());
  }
  CredentialOptions credentials;
  credentials.client = options.Get("client").ToBoolean().Value();
  credentials.cert_file = StringProperty(options, "certFile");
  credentials.key_file = StringProperty(options, "keyFile");
  credentials.ca_file = StringProperty(options, "caFile");
  credentials.request_client_certificate = options.Get("requestClientCertificate").ToBoolean().Value();
  std::string verify = StringProperty(options, "verify");
  credentials.verify = verify == "none"     ? VerifyMode::kNone
                       : verify == "custom" ? VerifyMode::kCustom
                                            : VerifyMode::kBuiltin;
  QUIC_SETTINGS settings = {};
  Napi::Value settings_value = options.Get("settings");
  if (settings_value.IsObject()) ReadSettings(settings_value.As<Napi::Object>(), &settings);

  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  configuration_ = Configuration::Open(*runtime, alpn, settings, credentials, &status);
  if (!configuration_) {
    state->ThrowStatus(env, status, "could not load the TLS configuration");
    return;
  }
  runtime->Track(configuration_);
}

std::shared_ptr<Configuration> ConfigurationWrap::From(Napi::Env env, Napi::Value value) {
  // The type tag proves the object is one of ours, so no foreign object is ever unwrapped.
  if (HasTag(env, value, kConfigurationTag)) {
    auto* wrap = Unwrap(value.As<Napi::Object>());
    if (wrap != nullptr && wrap->configuration_) return wrap->configuration_;
  }
  Napi::TypeError::New(env, "expected a Configuration").ThrowAsJavaScriptException();
  return nullptr;
}

}  // namespace nmq
