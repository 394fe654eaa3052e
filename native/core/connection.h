// RAII context over an MsQuic connection. Its callback runs on one MsQuic worker at a time (MsQuic
// serialises a connection and its streams), makes the decisions that cannot wait for JS (adopting
// peer streams, the certificate verdict) and queues everything else as plain records.
#pragma once
#include <msquic.h>

#include <atomic>
#include <memory>
#include <string>

#include "configuration.h"
#include "event.h"
#include "handle.h"

namespace nmq {

class Listener;
class Stream;

struct ConnectionOptions {
  // Received bytes a stream holds for the app before MsQuic's flow control holds the peer back.
  uint32_t stream_receive_budget = 1 << 20;
  // Datagrams handed to MsQuic and not yet sent; beyond it SendDatagram refuses (never grows).
  uint32_t datagram_send_queue = 64;
  // Received datagrams waiting for the app; beyond it new ones are dropped (and counted).
  uint32_t datagram_receive_queue = 1024;
  // Client: the app opted in to 0-RTT (replayable early data). Only with a ticket MsQuic took.
  bool early_data = false;
};


class Connection : public Handle {
 public:
  // JS thread: a client connection, opened but not started.
  static std::shared_ptr<Connection> OpenClient(std::shared_ptr<Runtime> runtime,
                                                const ConnectionOptions& options,
                                                QUIC_STATUS* status);
  // Worker thread, inside the listener's NEW_CONNECTION.
  static std::shared_ptr<Connection> AdoptServer(std::shared_ptr<Listener> listener, HQUIC handle,
                                                 const ConnectionOptions& options, VerifyMode verify);

  // JS thread. `server_name` may be empty (no SNI); `expected_host` is what the certificate must name.
  // `ticket`: a session ticket from an earlier connection to resume (empty: a full handshake).
  // With `early_data` in the options and a ticket MsQuic took, streams send what they are given
  // before the handshake completes as 0-RTT data (see early_data()), and the connection is only
  // prepared: StartDeferred() starts it, so that streams opened before go out in its first flight
  // (MsQuic's pattern for 0-RTT: open and send, then ConnectionStart).
  // The MsQuic calls themselves run on the runtime's blocking-calls thread (they wait on a worker):
  // a failure is reported as kConnectionStartFailed, and the connection then shuts down silently.
  void Start(std::shared_ptr<Configuration> configuration, const QUIC_ADDR& remote,
             const std::string& server_name, const std::string& expected_host,
             const std::string& ticket = std::string());
  // JS thread: starts a connection Start() prepared for early data (no effect otherwise).
  void StartDeferred();
  // Whether streams of this connection may send 0-RTT data (set by Start, before any stream opens).
  bool early_data() const { return early_data_; }
  // JS thread. Graceful (CONNECTION_CLOSE with `code`) unless `silent`. Asynchronous.
  QUIC_STATUS Shutdown(uint64_t code, bool silent);
  // JS thread: changes the peer's stream credit (-1 leaves a count as it is). Raising takes effect
  // soon; lowering withholds future credit. Runs on the blocking-calls thread, in order with other
  // changes (MsQuic runs it on the connection's worker and waits).
  void SetPeerStreamCounts(int32_t bidirectional, int32_t unidirectional);
  // JS thread, server side with deferred admission: lets the handshake start (the listener's
  // configuration) or refuses the connection with `code` before it. False if it is already gone.
  bool Admit(bool accept, uint64_t code);
  // JS thread: the app's verdict on a certificate it was handed (VerifyMode::kCustom).
  QUIC_STATUS CompleteCertificateValidation(bool accept);
  // JS thread: opens and starts a local stream. It waits for the peer's credit inside MsQuic.
  std::shared_ptr<Stream> OpenStream(bool unidirectional, QUIC_STATUS* status);
  // JS thread: opens a stream and starts it with its first bytes in one call (see Stream).
  std::shared_ptr<Stream> OpenStreamWithData(bool unidirectional, const uint8_t* data, size_t length, bool fin,
                                             uint32_t collect_limit, QUIC_STATUS* status);
  // JS thread: from now on the peer's bidirectional streams are requests, collected natively up to
  // `limit` bytes each and reported once complete (0 turns it off for streams that arrive later).
  void ServeRequests(uint32_t limit) { request_limit_.store(limit, std::memory_order_release); }
  // JS thread: MsQuic's statistics. Blocks briefly (it runs on the connection's worker).
  QUIC_STATUS Statistics(QUIC_STATISTICS_V2* out);
  // JS thread: copies and queues one datagram; `*queued` is false (and nothing is sent) when the
  // send queue is full. INVALID_PARAMETER if larger than the peer allows, INVALID_STATE if the peer
  // does not take datagrams.
  QUIC_STATUS SendDatagram(const uint8_t* data, size_t length, bool* queued);
  // JS thread: a received datagram reached the app.
  void DatagramDelivered() { datagrams_waiting_.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t datagrams_dropped() const { return datagrams_dropped_.load(std::memory_order_relaxed); }
  // The largest datagram that can be sent now (0: none); any thread.
  uint32_t datagram_max_size() const { return datagram_max_size_.load(std::memory_order_relaxed); }

  // Readable on the JS thread once the connected event was delivered.
  const std::string& alpn() const { return alpn_; }
  // Server side: the name the client asked for (SNI), empty if none. Set in NEW_CONNECTION, before
  // the connection's first event is queued; read on the JS thread after that.
  const std::string& server_name() const { return server_name_; }
  void set_server_name(std::string name) { server_name_ = std::move(name); }
  // Server side, set in NEW_CONNECTION before the first event is queued and never again: where the
  // client's first packet came from and went to (readable on the JS thread from the first event).
  void set_peer_addresses(const QUIC_ADDR& local, const QUIC_ADDR& remote) {
    initial_local_ = local;
    initial_remote_ = remote;
  }
  const QUIC_ADDR& initial_local_address() const { return initial_local_; }
  const QUIC_ADDR& initial_remote_address() const { return initial_remote_; }
  // Server side, set in NEW_CONNECTION: send a session ticket once the handshake completes.
  void set_send_resumption_ticket(bool send) { send_resumption_ticket_ = send; }
  // Whether the handshake resumed a session (readable once connected).
  bool session_resumed() const { return session_resumed_; }
  const QUIC_ADDR& local_address() const { return local_address_; }
  const QUIC_ADDR& remote_address() const { return remote_address_; }
  bool is_server() const { return is_server_; }
  std::shared_ptr<Listener> listener() const { return listener_; }

  // Each connection has a route of its own, which its streams share.
  explicit Connection(std::shared_ptr<Runtime> runtime)
      : Handle(Kind::kConnection, std::make_shared<Route>(std::move(runtime))) {}

 private:
  static QUIC_STATUS QUIC_API Callback(HQUIC handle, void* context, QUIC_CONNECTION_EVENT* event);
  QUIC_STATUS OnEvent(QUIC_CONNECTION_EVENT* event);
  QUIC_STATUS OnPeerCertificate(QUIC_CONNECTION_EVENT* event);
  void OnDatagramReceived(QUIC_CONNECTION_EVENT* event);
  void OnDatagramSendState(QUIC_CONNECTION_EVENT* event);
  void OnPeerStream(QUIC_CONNECTION_EVENT* event);
  void CloseHandle(HQUIC handle) override;

  ConnectionOptions options_;
  bool is_server_ = false;
  std::shared_ptr<Listener> listener_;  // server side: whose backlog this connection sits in
  VerifyMode verify_ = VerifyMode::kNone;
  std::string expected_host_;
  std::string certificate_error_;       // worker only: why we refused the peer's certificate
  // Worker only, server side: the client's certificate (DER), as it came in the handshake or, on a
  // resumed session, out of the ticket this server issued. It rides in every ticket this
  // connection issues, so that a resumed connection still knows who its peer is: TLS 1.3
  // resumption sends no certificate, and libp2p's peer id is in it.
  std::string peer_certificate_;
  std::atomic<bool> shutdown_begun_{false};
  // Server side: the connection left its listener's handshake count (connected, refused, or gone).
  std::atomic<bool> left_handshakes_{false};
  bool connected_ = false;              // worker only
  std::string alpn_;
  std::string server_name_;
  bool send_resumption_ticket_ = false;
  bool session_resumed_ = false;
  bool early_data_ = false;             // JS thread: Start took a ticket and the app asked for 0-RTT
  // What ConnectionStart needs; kept from Start() until StartDeferred() with early data.
  struct DeferredStart {
    std::shared_ptr<Configuration> configuration;
    QUIC_ADDRESS_FAMILY family;
    std::string server_name;
    uint16_t port;
  };
  void PostStart(std::shared_ptr<DeferredStart> start);
  void StartFailed(QUIC_STATUS status);
  std::shared_ptr<DeferredStart> deferred_start_;  // JS thread
  QUIC_ADDR local_address_ = {};
  QUIC_ADDR remote_address_ = {};
  QUIC_ADDR initial_local_ = {};
  QUIC_ADDR initial_remote_ = {};
  std::atomic<uint32_t> datagrams_unsent_{0};   // handed to MsQuic, not sent yet
  std::atomic<uint32_t> datagrams_waiting_{0};  // received, not yet with the app
  std::atomic<uint64_t> datagrams_dropped_{0};
  std::atomic<uint32_t> datagram_max_size_{0};
  std::atomic<uint32_t> request_limit_{0};      // serve-requests mode (0: off)
  std::atomic<bool> datagram_room_wanted_{false};  // a send found the queue full: say when it is not
};

}  // namespace nmq
