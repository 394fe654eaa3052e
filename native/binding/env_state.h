// Per-environment binding state (main thread and each worker thread): the native Runtime, the
// threadsafe function that drains its event queue on the JS thread, constructors, and teardown.
// Everything here except Ring() runs on the environment's JS thread.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "event.h"
#include "handle.h"
#include "runtime.h"
#include "transfer.h"

namespace nmq {

// Flat layout of one event in the batch handed to the TS dispatcher: target, type, status, value,
// code, extra (exported to TS as constants.batchStride).
constexpr uint32_t kBatchStride = 6;

class EnvState;
// Throws a JS error with a stable `code` for a misuse of the binding.
void ThrowMisuse(Napi::Env env, const char* code, const std::string& message);
void DrainQueue(Napi::Env env, Napi::Function, EnvState* state, std::nullptr_t*);
using Doorbell = Napi::TypedThreadSafeFunction<EnvState, std::nullptr_t, DrainQueue>;

class EnvState {
 public:
  static EnvState* Get(Napi::Env env) { return env.GetInstanceData<EnvState>(); }
  // init(dispatch, makeError, workers): opens the Runtime. Called once, lazily, by the TS layer.
  static Napi::Value JsInit(const Napi::CallbackInfo& info);

  // The runtime, or a thrown JS error (returns null) if init() has not run.
  std::shared_ptr<Runtime> RequireRuntime(Napi::Env env);

  // A QuicError built by the TS layer from the status's name.
  Napi::Value StatusError(Napi::Env env, int32_t status, const std::string& message);
  void ThrowStatus(Napi::Env env, int32_t status, const std::string& message);

  // A wrapper is pinned (strongly referenced) while its handle can still report events.
  void Pin(Handle& handle, Napi::Object wrapper);
  void Unpin(Handle& handle);
  static Napi::Value WrapperOf(Napi::Env env, Handle& handle);
  // The JS wrapper (Connection or Stream) for a handle made natively, pinned.
  Napi::Object MakeWrapper(Napi::Env env, std::shared_ptr<Handle> handle);

  // transferConnection(connection, streams[]) -> id: parks the connection, with its unaccepted
  // peer `streams`, for another environment.
  static Napi::Value JsTransferConnection(const Napi::CallbackInfo& info);
  // keepStream(stream): splits a stream off its connection's route so it stays here when the
  // connection moves.
  static Napi::Value JsKeepStream(const Napi::CallbackInfo& info);
  // adoptConnection(id) -> [Connection, ...Stream]: takes over a parked connection and the
  // unaccepted streams that travelled with it.
  static Napi::Value JsAdoptConnection(const Napi::CallbackInfo& info);
  // transferStream(stream) -> id: parks one stream for another environment; its connection stays.
  // (What its app had received but not read travels in JS, with the handle.)
  static Napi::Value JsTransferStream(const Napi::CallbackInfo& info);
  // adoptStream(id) -> Stream: takes over a parked stream.
  static Napi::Value JsAdoptStream(const Napi::CallbackInfo& info);
  // Calls from JS into Stream and Connection methods (getDeliveryStats().nativeCalls, for profiles).
  void CountCall() { ++native_calls_; }
  static Napi::Value JsNativeCalls(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Get(info.Env())->native_calls_));
  }
  // Whether a batch is being handed to JS right now.
  bool dispatching() const { return dispatching_; }

  Napi::FunctionReference connection_constructor;
  Napi::FunctionReference stream_constructor;

 private:
  friend void DrainQueue(Napi::Env env, Napi::Function, EnvState* state, std::nullptr_t*);
  static void Cleanup(EnvState* state);
  void Drain(Napi::Env env);
  Napi::Value Child(Napi::Env env, const Event& event);
  void UpdateLoopRef(Napi::Env env);
  // While moving: takes this environment's undelivered events that `moves` picks (from the queue
  // and from what an earlier move carried over), oldest first, into `out`; the rest stay due here.
  template <typename Pick>
  void TakeQueued(Pick moves, std::vector<Event>* out);
  std::unique_ptr<TransferSlot> Claim(const Napi::CallbackInfo& info, Handle::Kind kind, const char* what);
  // False (with a JS error thrown) while a batch is being handed to JS.
  bool CheckNotDispatching(Napi::Env env, const char* what);

  std::shared_ptr<Runtime> runtime_;
  Doorbell doorbell_;
  bool loop_referenced_ = false;
  Napi::FunctionReference dispatch_;
  Napi::FunctionReference make_error_;
  std::unordered_set<Handle*> pinned_;
  std::vector<Event> batch_;
  // Events drained early (while moving a connection) that belong to handles staying here.
  std::vector<Event> carry_;
  bool dispatching_ = false;
  uint64_t native_calls_ = 0;
};

}  // namespace nmq
