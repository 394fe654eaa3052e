// JS class Listener: one MsQuic listener, opened and started in its constructor. JS thread only.
#pragma once
#include <napi.h>

#include <memory>

#include "listener.h"

namespace nmq {

class ListenerWrap : public Napi::ObjectWrap<ListenerWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ListenerWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value JS_Address(const Napi::CallbackInfo& info);
  Napi::Value JS_Stop(const Napi::CallbackInfo& info);
  Napi::Value JS_Stats(const Napi::CallbackInfo& info);
  Napi::Value JS_ServeRequests(const Napi::CallbackInfo& info);
  std::shared_ptr<Listener> listener_;
};

}  // namespace nmq
