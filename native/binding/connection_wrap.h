// JS class Connection: one MsQuic connection. Client connections are opened and started in the
// constructor; server connections are made by the event drain when their handshake completes.
// JS thread only.
#pragma once
#include <napi.h>

#include <memory>

#include "connection.h"

namespace nmq {

class ConnectionWrap : public Napi::ObjectWrap<ConnectionWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ConnectionWrap(const Napi::CallbackInfo& info);
  // The connection behind a wrapper already checked by type tag.
  static std::shared_ptr<Connection> HandleOf(Napi::Value value) { return Unwrap(value.As<Napi::Object>())->connection_; }

 private:
  Napi::Value JS_Shutdown(const Napi::CallbackInfo& info);
  Napi::Value JS_OpenStream(const Napi::CallbackInfo& info);
  Napi::Value JS_SetPeerStreamCounts(const Napi::CallbackInfo& info);
  Napi::Value JS_CompleteCertificateValidation(const Napi::CallbackInfo& info);
  Napi::Value JS_Taken(const Napi::CallbackInfo& info);
  Napi::Value JS_Admit(const Napi::CallbackInfo& info);
  Napi::Value JS_Peer(const Napi::CallbackInfo& info);
  Napi::Value JS_Info(const Napi::CallbackInfo& info);
  Napi::Value JS_Stats(const Napi::CallbackInfo& info);
  Napi::Value JS_SendDatagram(const Napi::CallbackInfo& info);
  Napi::Value JS_ServeRequests(const Napi::CallbackInfo& info);
  Napi::Value JS_EarlyData(const Napi::CallbackInfo& info);
  Napi::Value JS_Start(const Napi::CallbackInfo& info);
  std::shared_ptr<Connection> connection_;
};

}  // namespace nmq
