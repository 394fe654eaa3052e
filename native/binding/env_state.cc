#include "env_state.h"

#include <cstdlib>
#include <cstring>

#include "connection.h"
#include "connection_wrap.h"
#include "js_util.h"
#include "listener.h"
#include "status.h"
#include "stream.h"
#include "stream_wrap.h"
#include "transfer.h"

namespace nmq {

// A misuse error with a stable `code` (Node's ERR_INVALID_ARG_* / ERR_INVALID_STATE).
void ThrowMisuse(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = std::string(code) == "ERR_INVALID_ARG_TYPE" ? Napi::TypeError::New(env, message)
                                                                  : Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
}

namespace {
// Received chunks at least this large are handed to JS without a copy.
constexpr size_t kExternalBufferMinimum = 16 * 1024;

Napi::Value U64(Napi::Env env, uint64_t value) {
  if (value <= (uint64_t{1} << 53)) return Napi::Number::New(env, static_cast<double>(value));
  return Napi::BigInt::New(env, value);
}

// A stream that moved on its own: its events no longer follow its connection's route.
bool IsMovedStream(const Handle& handle) {
  return handle.kind() == Handle::Kind::kStream && handle.moved_route() != nullptr;
}

bool IsFinal(EventType type) {
  return type == EventType::kListenerStopped || type == EventType::kConnectionShutdownComplete ||
         type == EventType::kStreamShutdownComplete;
}
}  // namespace

Napi::Value EnvState::JsInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = Get(env);
  if (state->runtime_) return env.Undefined();
  if (!info[0].IsFunction() || !info[1].IsFunction() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "init(dispatch, makeError, workers)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  state->dispatch_ = Napi::Persistent(info[0].As<Napi::Function>());
  state->make_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  uint32_t workers = info[2].As<Napi::Number>().Uint32Value();

  state->doorbell_ = Doorbell::New(env, "node-msquic events", 0, 1, state);
  state->doorbell_.Unref(env);
  Doorbell* doorbell = &state->doorbell_;
  QUIC_STATUS status = QUIC_STATUS_SUCCESS;
  // The doorbell runs on MsQuic workers: a non-blocking call, never a wait on JS.
  state->runtime_ = Runtime::Open(workers, [doorbell] { doorbell->NonBlockingCall(nullptr); }, &status);
  if (!state->runtime_) {
    state->doorbell_.Release();
    state->ThrowStatus(env, status, "MsQuic could not start");
    return env.Undefined();
  }
  // Registered after the threadsafe function, so it runs before that function's own cleanup.
  env.AddCleanupHook(Cleanup, state);
  return env.Undefined();
}

std::shared_ptr<Runtime> EnvState::RequireRuntime(Napi::Env env) {
  if (!runtime_) {
    Napi::Error::New(env, "node-msquic: init() has not run").ThrowAsJavaScriptException();
  }
  return runtime_;
}

Napi::Value EnvState::StatusError(Napi::Env env, int32_t status, const std::string& message) {
  if (make_error_.IsEmpty()) return Napi::Error::New(env, message).Value();
  return make_error_.Call({Napi::String::New(env, StatusName(status)), Napi::Number::New(env, status),
                           Napi::String::New(env, message)});
}

void EnvState::ThrowStatus(Napi::Env env, int32_t status, const std::string& message) {
  Napi::Value error = StatusError(env, status, message);
  if (!env.IsExceptionPending()) Napi::Error(env, error).ThrowAsJavaScriptException();
}

void EnvState::Pin(Handle& handle, Napi::Object wrapper) {
  if (handle.wrapper != nullptr) return;
  auto* reference = new Napi::ObjectReference(Napi::Persistent(wrapper));
  handle.wrapper = reference;
  pinned_.insert(&handle);
  UpdateLoopRef(wrapper.Env());
}

void EnvState::Unpin(Handle& handle) {
  auto* reference = static_cast<Napi::ObjectReference*>(handle.wrapper);
  if (reference == nullptr) return;
  Napi::Env env = reference->Env();
  handle.wrapper = nullptr;
  pinned_.erase(&handle);
  delete reference;
  UpdateLoopRef(env);
}

Napi::Value EnvState::WrapperOf(Napi::Env env, Handle& handle) {
  auto* reference = static_cast<Napi::ObjectReference*>(handle.wrapper);
  return reference == nullptr ? env.Undefined() : reference->Value();
}

// Keeps the event loop alive exactly while some handle can still report events, as a socket does.
void EnvState::UpdateLoopRef(Napi::Env env) {
  bool want = !pinned_.empty();
  if (want == loop_referenced_) return;
  loop_referenced_ = want;
  if (want) {
    doorbell_.Ref(env);
  } else {
    doorbell_.Unref(env);
  }
}

void DrainQueue(Napi::Env env, Napi::Function, EnvState* state, std::nullptr_t*) {
  if (env == nullptr) return;  // teardown: the queue is closed and dropped its records
  state->Drain(env);
}

// JS thread: one wake-up hands every queued event to the TS dispatcher in a single call.
void EnvState::Drain(Napi::Env env) {
  Napi::HandleScope scope(env);
  batch_.clear();
  batch_.swap(carry_);
  std::vector<Event> fresh;
  runtime_->queue().Drain(&fresh);
  for (Event& event : fresh) batch_.push_back(std::move(event));
  if (batch_.empty()) return;
  Napi::Array array = Napi::Array::New(env, batch_.size() * kBatchStride);
  uint32_t n = 0;
  std::vector<Handle*> finished;
  for (Event& event : batch_) {
    if (event.type == EventType::kConnectionDatagram) {
      static_cast<Connection&>(*event.target).DatagramDelivered();
    }
    Napi::Value target = WrapperOf(env, *event.target);
    Napi::Value extra = env.Undefined();
    if (event.child) {
      extra = Child(env, event);
      if (target.IsUndefined()) continue;
    } else if (target.IsUndefined()) {
      continue;  // nobody left to tell (the wrapper already saw its final event)
    }
    if (event.type == EventType::kConnectionPeerAddressChanged && event.data) {
      QUIC_ADDR address;
      std::memcpy(&address, event.data.get(), sizeof(address));
      extra = AddressObject(env, address);
    } else if (event.data) {
      size_t length = event.data_length;
      if (length < kExternalBufferMinimum) {
        // A small copy costs less than the finalizer an external buffer brings to every GC.
        extra = Napi::Buffer<uint8_t>::Copy(env, event.data.get(), length);
      } else {
        // Ownership of the malloc'd bytes moves to the Buffer: no second copy.
        extra = Napi::Buffer<uint8_t>::NewOrCopy(env, event.data.release(), length,
                                                   [](Napi::Env, uint8_t* p) { std::free(p); });
      }
    } else if (!event.text.empty()) {
      extra = Napi::String::New(env, event.text);
    }
    array.Set(n++, target);
    array.Set(n++, Napi::Number::New(env, static_cast<uint32_t>(event.type)));
    array.Set(n++, Napi::Number::New(env, event.status));
    array.Set(n++, U64(env, event.value));
    array.Set(n++, U64(env, event.code));
    array.Set(n++, extra);
    if (IsFinal(event.type)) finished.push_back(event.target.get());
  }
  if (n > 0) {
    array.Set("length", Napi::Number::New(env, n));
    // The dispatcher catches what user code throws. Anything still pending when this returns is
    // reported by Node as an uncaught exception, unless the environment is being torn down.
    dispatching_ = true;
    dispatch_.Call({array});
    dispatching_ = false;
  }
  // After their final event nothing more can come: let the wrappers be collected.
  for (Handle* handle : finished) Unpin(*handle);
  batch_.clear();  // the events' references kept the finished handles alive until here
}

// A new server connection or peer stream: its wrapper is made now, before any of its own events.
Napi::Value EnvState::Child(Napi::Env env, const Event& event) {
  Handle& child = *event.child;
  if (child.wrapper != nullptr) return WrapperOf(env, child);
  if (event.target->wrapper == nullptr) {
    // Its parent is gone, so nobody can ever take it: end it rather than leave it waiting.
    if (child.kind() == Handle::Kind::kConnection) {
      static_cast<Connection&>(child).Shutdown(0, false);
    } else {
      auto& stream = static_cast<Stream&>(child);
      stream.Shutdown(QUIC_STREAM_SHUTDOWN_FLAG_ABORT, 0);
      stream.Taken();
    }
    return env.Undefined();
  }
  return MakeWrapper(env, event.child);
}

Napi::Object EnvState::MakeWrapper(Napi::Env env, std::shared_ptr<Handle> handle) {
  Handle& ref = *handle;
  // The constructor takes its own copy of the shared pointer from the External.
  auto* holder = new std::shared_ptr<Handle>(std::move(handle));
  auto external = Napi::External<std::shared_ptr<Handle>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<Handle>* p) { delete p; });
  Napi::FunctionReference& constructor =
      ref.kind() == Handle::Kind::kConnection ? connection_constructor : stream_constructor;
  Napi::Object wrapper = constructor.New({external});
  Pin(ref, wrapper);
  return wrapper;
}


template <typename Pick>
void EnvState::TakeQueued(Pick moves, std::vector<Event>* out) {
  // What was carried over from an earlier move is older than what is still queued; both may hold
  // the moving handles' events (handles moved one after another in the same tick).
  std::vector<Event> pending;
  pending.swap(carry_);
  std::vector<Event> queued;
  runtime_->queue().Drain(&queued);
  for (Event& event : queued) pending.push_back(std::move(event));
  for (Event& event : pending) {
    if (moves(event)) out->push_back(std::move(event));
    else carry_.push_back(std::move(event));
  }
  if (!carry_.empty()) doorbell_.NonBlockingCall(nullptr);  // the rest is still due here
}

bool EnvState::CheckNotDispatching(Napi::Env env, const char* what) {
  if (!dispatching_) return true;
  ThrowMisuse(env, "ERR_INVALID_STATE", std::string(what) + " cannot move while its events are being delivered");
  return false;
}

// transferConnection(connection, streams[]): `streams` are the peer streams this thread's app has
// not accepted; they travel (their undelivered bytes travel in JS). Streams the app holds were split
// off first (keepStream) and stay.
Napi::Value EnvState::JsTransferConnection(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = Get(env);
  auto connection = HasTag(env, info[0], kConnectionTag) ? ConnectionWrap::HandleOf(info[0]) : nullptr;
  if (!connection || !info[1].IsArray()) {
    ThrowMisuse(env, "ERR_INVALID_ARG_TYPE", "transferConnection(connection, streams)");
    return env.Undefined();
  }
  if (!state->CheckNotDispatching(env, "a connection")) return env.Undefined();
  const auto& route = connection->route();
  TransferSlot slot;
  Napi::Array streams = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < streams.Length(); ++i) {
    Napi::Value value = streams.Get(i);
    auto stream = HasTag(env, value, kStreamTag) ? StreamWrap::HandleOf(value) : nullptr;
    if (!stream || stream->route() != route || IsMovedStream(*stream)) {
      ThrowMisuse(env, "ERR_INVALID_ARG_VALUE", "transferConnection: a stream that is not the connection's");
      return env.Undefined();
    }
    slot.streams.push_back(stream);
  }
  // From here on the route's new events wait; what is already queued here is taken out, in order.
  route->Hold();
  slot.handle = connection;
  slot.route = route;
  slot.from = state->runtime_;
  // A stream that was split off (moved, or kept here) has a route of its own and stays where it is.
  state->TakeQueued([&](const Event& event) { return event.target->route() == route && !IsMovedStream(*event.target); },
                    &slot.earlier);
  // The wrappers here let go; the new owner makes its own.
  std::vector<Handle*> moving;
  for (Handle* handle : state->pinned_) {
    if (handle->route() == route && !IsMovedStream(*handle)) moving.push_back(handle);
  }
  for (Handle* handle : moving) state->Unpin(*handle);
  return Napi::Number::New(env, static_cast<double>(ParkTransfer(std::move(slot))));
}

namespace {
// info[0] as a native stream, or null with ERR_INVALID_ARG_TYPE thrown (naming `call`).
std::shared_ptr<Stream> StreamArgument(const Napi::CallbackInfo& info, const char* call) {
  Napi::Env env = info.Env();
  auto stream = HasTag(env, info[0], kStreamTag) ? StreamWrap::HandleOf(info[0]) : nullptr;
  if (!stream) ThrowMisuse(env, "ERR_INVALID_ARG_TYPE", call);
  return stream;
}
}  // namespace

// keepStream(stream): before its connection moves away, a stream the app holds is split off onto a
// route of its own, owned here, so it stays usable on this thread (as a stream moved here would be).
Napi::Value EnvState::JsKeepStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = Get(env);
  auto stream = StreamArgument(info, "keepStream(stream)");
  if (!stream) return env.Undefined();
  if (IsMovedStream(*stream)) return env.Undefined();  // already on a route of its own
  SplitOffRoute(stream, state->runtime_, false);
  state->runtime_->Track(stream);
  return env.Undefined();
}

// The slot parked under info[0]'s id, for a handle of `kind`; null, with a JS error thrown, if none.
std::unique_ptr<TransferSlot> EnvState::Claim(const Napi::CallbackInfo& info, Handle::Kind kind, const char* what) {
  Napi::Env env = info.Env();
  if (!RequireRuntime(env)) return nullptr;
  uint64_t id = 0;
  std::unique_ptr<TransferSlot> slot = ToU64(info[0], &id) ? ClaimTransfer(id, kind) : nullptr;
  if (!slot) {
    ThrowMisuse(env, "ERR_INVALID_ARG_VALUE",
                std::string("no ") + what + " is waiting under this handle (it was adopted already, or never transferred)");
  }
  return slot;
}

Napi::Value EnvState::JsAdoptConnection(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = Get(env);
  auto slot = state->Claim(info, Handle::Kind::kConnection, "connection");
  if (!slot) return env.Undefined();
  auto connection = std::static_pointer_cast<Connection>(slot->handle);
  state->runtime_->TakeOver(*slot->from, connection);
  // [connection, ...the unaccepted streams that travelled], wrapped before any of their events.
  Napi::Array result = Napi::Array::New(env, 1 + slot->streams.size());
  result.Set(uint32_t{0}, state->MakeWrapper(env, connection));
  for (size_t i = 0; i < slot->streams.size(); ++i) {
    result.Set(static_cast<uint32_t>(i + 1), state->MakeWrapper(env, slot->streams[i]));
  }
  // Earlier events, then the held ones, then new ones: all here, in order.
  slot->route->Adopt(state->runtime_, std::move(slot->earlier));
  return result;
}

Napi::Value EnvState::JsTransferStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = Get(env);
  auto stream = StreamArgument(info, "transferStream(stream)");
  if (!stream) return env.Undefined();
  if (!state->CheckNotDispatching(env, "a stream")) return env.Undefined();
  // The first move splits the stream off its connection's route onto one of its own, held from the
  // start; later moves hold that route, as a connection's move holds the connection's.
  TransferSlot slot;
  slot.handle = stream;
  slot.route = SplitOffRoute(stream, state->runtime_, true);
  slot.from = state->runtime_;
  // Events pushed before the split or the hold wait in this environment's queue: they go first.
  state->TakeQueued([&](const Event& event) { return event.target == stream; }, &slot.earlier);
  state->runtime_->Untrack(stream.get());
  state->Unpin(*stream);
  return Napi::Number::New(env, static_cast<double>(ParkTransfer(std::move(slot))));
}

Napi::Value EnvState::JsAdoptStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* state = Get(env);
  auto slot = state->Claim(info, Handle::Kind::kStream, "stream");
  if (!slot) return env.Undefined();
  auto stream = std::static_pointer_cast<Stream>(slot->handle);
  state->runtime_->Track(stream);
  Napi::Object wrapper = state->MakeWrapper(env, stream);
  slot->route->Adopt(state->runtime_, std::move(slot->earlier));
  return wrapper;
}

void EnvState::Cleanup(EnvState* state) {
  // Blocks until MsQuic has closed every handle of this environment; no JS runs meanwhile.
  if (state->runtime_) state->runtime_->Shutdown();
  for (Handle* handle : state->pinned_) {
    delete static_cast<Napi::ObjectReference*>(handle->wrapper);
    handle->wrapper = nullptr;
  }
  state->pinned_.clear();
  if (state->runtime_) state->doorbell_.Release();
}

}  // namespace nmq
