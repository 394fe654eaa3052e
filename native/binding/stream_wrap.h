// JS class Stream: one MsQuic stream. Always made natively (openStream, or the drain for peer
// streams). JS thread only.
#pragma once
#include <napi.h>

#include <memory>

#include "stream.h"

namespace nmq {

class StreamWrap : public Napi::ObjectWrap<StreamWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit StreamWrap(const Napi::CallbackInfo& info);
  // The stream behind a wrapper already checked by type tag.
  static std::shared_ptr<Stream> HandleOf(Napi::Value value) { return Unwrap(value.As<Napi::Object>())->stream_; }

 private:
  Napi::Value JS_Send(const Napi::CallbackInfo& info);
  Napi::Value JS_Shutdown(const Napi::CallbackInfo& info);
  Napi::Value JS_Consumed(const Napi::CallbackInfo& info);
  Napi::Value JS_Taken(const Napi::CallbackInfo& info);
  Napi::Value JS_Id(const Napi::CallbackInfo& info);
  Napi::Value JS_Unidirectional(const Napi::CallbackInfo& info);
  Napi::Value JS_ReportAcknowledged(const Napi::CallbackInfo& info);
  std::shared_ptr<Stream> stream_;
};

}  // namespace nmq
