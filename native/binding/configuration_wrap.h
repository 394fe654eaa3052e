// JS class Configuration: one MsQuic configuration (ALPN, settings, credentials). JS thread only.
#pragma once
#include <napi.h>

#include <memory>

#include "configuration.h"

namespace nmq {

class ConfigurationWrap : public Napi::ObjectWrap<ConfigurationWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ConfigurationWrap(const Napi::CallbackInfo& info);
  std::shared_ptr<Configuration> configuration() const { return configuration_; }
  // The Configuration passed as argument `value`, or null with a TypeError thrown.
  static std::shared_ptr<Configuration> From(Napi::Env env, Napi::Value value);

 private:
  std::shared_ptr<Configuration> configuration_;
};

}  // namespace nmq
