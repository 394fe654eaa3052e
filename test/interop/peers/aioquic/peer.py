#!/usr/bin/env python3
"""An interop peer for node-msquic's tests, on aioquic. The protocol and the command line are
described in test/interop/peers/README.md; results are JSON lines on stdout."""
import argparse
import asyncio
import ipaddress
import json
import os
import socket
import sys
import time

from aioquic import tls
from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def pattern(n, seed):
    """byte i is (i + seed) % 251"""
    cycle = bytes((i + seed) % 251 for i in range(251))
    return (cycle * (n // 251 + 1))[:n]


# aioquic does not keep the server name a client asked for; read it from the ClientHello.
_server_handle_hello = tls.Context._server_handle_hello


def _remember_server_name(self, input_buf, initial_buf, handshake_buf):
    at = input_buf.tell()
    try:
        self.peer_server_name = tls.pull_client_hello(input_buf).server_name
    except Exception:
        self.peer_server_name = None
    input_buf.seek(at)
    return _server_handle_hello(self, input_buf, initial_buf, handshake_buf)


tls.Context._server_handle_hello = _remember_server_name


class StreamState:
    def __init__(self):
        self.header = None
        self.buffer = bytearray()
        self.waiting_reset = False
        self.ended = False


class ServerProtocol(QuicConnectionProtocol):
    """Serves the protocol on every stream, event by event."""

    options = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # aioquic has no setting for the peer's stream credit, and never raises it by itself: start
        # it at --max-streams and grant one more stream each time a peer stream ends (credit()).
        for limit in (self._quic._local_max_streams_bidi, self._quic._local_max_streams_uni):
            limit.value = limit.sent = self.options.max_streams
        self.streams = {}
        self.resets = []
        self.close_code = None
        self.alpn = None
        self.resumed = None
        self.used0rtt = None
        self.held = None if self.options.accept_delay <= 0 else []

    def quic_event_received(self, event):
        if isinstance(event, events.HandshakeCompleted):
            self.alpn = event.alpn_protocol
            self.resumed = event.session_resumed
            self.used0rtt = event.early_data_accepted
            if self.held is not None:
                asyncio.get_event_loop().call_later(self.options.accept_delay / 1000, self.release)
            return
        if isinstance(event, events.ConnectionTerminated):
            self.report(event)
            return
        if self.held is not None and isinstance(event, (events.StreamDataReceived, events.StreamReset)):
            self.held.append(event)
            return
        self.handle(event)

    def release(self):
        held, self.held = self.held, None
        for event in held:
            self.handle(event)
        self.transmit()

    def report(self, event):
        out = {"event": "connection", "alpn": self.alpn, "sni": getattr(self._quic.tls, "peer_server_name", None),
               "resumed": self.resumed, "used0rtt": self.used0rtt, "streamResets": self.resets}
        if self.close_code is not None:
            out.update(closedBy="local", closeCode=self.close_code)
        elif event.frame_type is None:
            out.update(closedBy="peer", closeCode=event.error_code)
        else:
            out.update(closedBy="transport", error=f"{event.error_code}: {event.reason_phrase}")
        emit(out)

    def credit(self, sid):
        state = self.streams.setdefault(sid, StreamState())
        if not state.ended:
            state.ended = True
            limit = self._quic._local_max_streams_uni if sid & 2 else self._quic._local_max_streams_bidi
            limit.value += 1

    def handle(self, event):
        quic = self._quic
        if isinstance(event, (events.StreamReset, events.StreamDataReceived)) and (
                isinstance(event, events.StreamReset) or event.end_stream):
            self.credit(event.stream_id)
        if isinstance(event, events.DatagramFrameReceived):
            quic.send_datagram_frame(event.data)
        elif isinstance(event, events.StreamReset):
            state = self.streams.get(event.stream_id)
            self.resets.append(event.error_code)
            if state is not None and state.waiting_reset:
                quic.send_stream_data(event.stream_id, f"reset {event.error_code}\n".encode(), True)
        elif isinstance(event, events.StreamDataReceived):
            self.data(event.stream_id, event.data, event.end_stream)

    def data(self, sid, data, end):
        quic = self._quic
        state = self.streams.setdefault(sid, StreamState())
        unidirectional = sid & 2 == 2
        if state.header is None:
            state.buffer += data
            at = state.buffer.find(b"\n")
            if at < 0 and not end:
                return
            header = bytes(state.buffer[:at] if at >= 0 else state.buffer).decode(errors="replace")
            data = bytes(state.buffer[at + 1:]) if at >= 0 else b""
            state.buffer = bytearray()
            verb, _, arg = header.partition(" ")
            state.header = (verb, int(arg) if arg.isdigit() else 0)
            verb, n = state.header
            if unidirectional:
                if verb != "echo":
                    quic.stop_stream(sid, 2)
                    return
            elif verb == "send":
                quic.send_stream_data(sid, pattern(n, 0), True)
            elif verb == "reset":
                quic.reset_stream(sid, n)
            elif verb == "report-reset":
                state.waiting_reset = True
                quic.send_stream_data(sid, b"ready\n", False)
            elif verb == "close":
                self.close_code = n
                quic.close(error_code=n, reason_phrase="closed as asked")
            elif verb not in ("echo", "sink"):
                quic.reset_stream(sid, 2)
        verb, n = state.header
        if unidirectional:
            state.buffer += data
            if end:
                out = quic.get_next_available_stream_id(is_unidirectional=True)
                quic.send_stream_data(out, bytes(state.buffer), True)
        elif verb == "echo":
            quic.send_stream_data(sid, data, end)
        elif verb == "sink":
            state.buffer += data
            if end:
                ok = bytes(state.buffer) == pattern(n, 0)
                quic.send_stream_data(sid, f"{'ok' if ok else 'bad'} {len(state.buffer)}\n".encode(), True)
        elif verb == "report-reset" and end:
            quic.send_stream_data(sid, b"no-reset\n", True)


class ClientProtocol(QuicConnectionProtocol):
    """Requests as futures: one per stream, resolved with everything the server sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replies = {}
        self.uni_replies = asyncio.Queue()
        self.datagrams = asyncio.Queue()
        self.terminated = asyncio.get_event_loop().create_future()
        self.alpn = None
        self.resumed = None
        self.used0rtt = None
        self.line_waiters = {}
        # aioquic's own wait_connected() never returns if the handshake completed before it was called.
        self.handshake_done = asyncio.get_event_loop().create_future()

    def quic_event_received(self, event):
        if isinstance(event, events.HandshakeCompleted):
            self.alpn = event.alpn_protocol
            self.resumed = event.session_resumed
            self.used0rtt = event.early_data_accepted
            if not self.handshake_done.done():
                self.handshake_done.set_result(None)
        elif isinstance(event, events.StreamDataReceived):
            if event.stream_id & 2 == 2:
                reply = self.replies.setdefault(event.stream_id, [bytearray(), None])
                reply[0] += event.data
                if event.end_stream:
                    self.uni_replies.put_nowait(bytes(reply[0]))
                return
            reply = self.replies.get(event.stream_id)
            if reply is None:
                return
            reply[0] += event.data
            waiter = self.line_waiters.get(event.stream_id)
            if waiter is not None and b"\n" in reply[0] and not waiter.done():
                line, _, rest = bytes(reply[0]).partition(b"\n")
                reply[0] = bytearray(rest)
                waiter.set_result(line.decode())
            if event.end_stream and not reply[1].done():
                reply[1].set_result(bytes(reply[0]))
        elif isinstance(event, events.StreamReset):
            reply = self.replies.get(event.stream_id)
            if reply is not None and not reply[1].done():
                reply[1].set_exception(StreamResetError(event.error_code))
            waiter = self.line_waiters.get(event.stream_id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(StreamResetError(event.error_code))
        elif isinstance(event, events.DatagramFrameReceived):
            self.datagrams.put_nowait(event.data)
        elif isinstance(event, events.ConnectionTerminated):
            if not self.terminated.done():
                self.terminated.set_result(event)
            for reply in self.replies.values():
                if reply[1] is not None and not reply[1].done():
                    reply[1].set_exception(ConnectionError(f"connection closed: {event.error_code} {event.reason_phrase}"))

    def open(self, request, end=True):
        sid = self._quic.get_next_available_stream_id()
        future = asyncio.get_event_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # failures are read, or moot
        self.replies[sid] = [bytearray(), future]
        self._quic.send_stream_data(sid, request, end)
        self.transmit()
        return sid, future

    async def exchange(self, request):
        return await self.open(request)[1]

    async def line(self, sid):
        reply = self.replies[sid]
        if b"\n" in reply[0]:
            line, _, rest = bytes(reply[0]).partition(b"\n")
            reply[0] = bytearray(rest)
            return line.decode()
        waiter = asyncio.get_event_loop().create_future()
        self.line_waiters[sid] = waiter
        return await waiter


class StreamResetError(Exception):
    def __init__(self, code):
        super().__init__(f"reset {code}")
        self.code = code


def configuration(options, client):
    config = QuicConfiguration(is_client=client, alpn_protocols=options.alpn.split(","),
                               idle_timeout=30.0, max_datagram_frame_size=65536 if options.datagrams else None)
    if client:
        if options.ca:
            config.load_verify_locations(options.ca)
        config.server_name = options.sni or options.host
        if options.cert:
            config.load_cert_chain(options.cert, options.key)
    else:
        config.load_cert_chain(options.cert, options.key)
        if options.require_client_cert:
            config.load_verify_locations(options.ca)
    return config


async def run_server(options):
    ServerProtocol.options = options
    tickets = {}
    config = configuration(options, False)
    server = await serve(options.host, options.port, configuration=config, create_protocol=ServerProtocol,
                         # Single use (anti-replay); a ticket this server never issued is None, not a KeyError.
                         session_ticket_fetcher=(lambda label: tickets.pop(label, None)) if options.zero_rtt else None,
                         session_ticket_handler=(lambda t: tickets.__setitem__(t.ticket, t)) if options.zero_rtt else None)
    sockname = server._transport.get_extra_info("sockname")
    emit({"event": "listening", "port": sockname[1], "address": sockname[0]})
    loop = asyncio.get_event_loop()
    stdin_closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: (os.read(sys.stdin.fileno(), 65536) == b"" and not stdin_closed.done()
                                                 and stdin_closed.set_result(None)))
    await stdin_closed
    os._exit(0)


async def run_scenario(options, proto, result):
    s = options.scenario
    if s == "handshake":
        return
    if s == "echo":
        async def one(i):
            body = pattern(options.size + i * 7, i)
            got = await proto.exchange(b"echo\n" + body)
            if got != body:
                raise RuntimeError(f"stream {i}: {len(got)} bytes back of {len(body)}, or different")
        await asyncio.gather(*(one(i) for i in range(options.streams)))
        result["streams"] = options.streams
    elif s == "download":
        got = await proto.exchange(f"send {options.size}\n".encode())
        if got != pattern(options.size, 0):
            raise RuntimeError(f"received {len(got)} bytes of {options.size}, or different")
        result["bytes"] = len(got)
    elif s == "upload":
        got = await proto.exchange(f"sink {options.size}\n".encode() + pattern(options.size, 0))
        if got != f"ok {options.size}\n".encode():
            raise RuntimeError(f"server answered {got!r}")
        result["bytes"] = options.size
    elif s == "uni":
        body = pattern(options.size, 3)
        sid = proto._quic.get_next_available_stream_id(is_unidirectional=True)
        proto._quic.send_stream_data(sid, b"echo\n" + body, True)
        proto.transmit()
        got = await proto.uni_replies.get()
        if got != body:
            raise RuntimeError(f"uni echo: {len(got)} bytes of {len(body)}, or different")
        result["bytes"] = len(got)
    elif s == "reset-from-server":
        try:
            await proto.exchange(f"reset {options.code}\n".encode())
        except StreamResetError as error:
            if error.code != options.code:
                raise RuntimeError(f"reset code {error.code}, expected {options.code}")
            result["code"] = error.code
            return
        raise RuntimeError("expected a stream reset")
    elif s == "reset-from-client":
        sid, _ = proto.open(b"report-reset\n", end=False)
        line = await proto.line(sid)
        if line != "ready":
            raise RuntimeError(f"expected ready, got {line!r}")
        proto._quic.reset_stream(sid, options.code)
        proto.transmit()
        line = await proto.line(sid)
        if line != f"reset {options.code}":
            raise RuntimeError(f"server saw {line!r}")
        result["code"] = options.code
    elif s == "close-from-server":
        proto.open(f"close {options.code}\n".encode())
        event = await proto.terminated
        if event.frame_type is not None or event.error_code != options.code:
            raise RuntimeError(f"expected the peer's application close with {options.code}, got {event}")
        result["code"] = event.error_code
    elif s == "close-from-client":
        await proto.exchange(b"echo\nx")
        proto.close(error_code=options.code, reason_phrase="client closes")
        result["code"] = options.code
    elif s == "datagrams":
        if proto._quic._remote_max_datagram_frame_size is None:
            raise RuntimeError("the server does not accept datagrams")
        sent = set()
        for i in range(20):
            d = f"datagram {i} {'x' * 100}".encode()
            sent.add(d)
            proto._quic.send_datagram_frame(d)
            proto.transmit()
            await asyncio.sleep(0.002)
        received = 0
        deadline = time.monotonic() + 2
        while received < 20:
            try:
                d = await asyncio.wait_for(proto.datagrams.get(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if d not in sent:
                raise RuntimeError(f"unexpected datagram {d!r}")
            received += 1
        result.update(sent=20, received=received)
        if received == 0:
            raise RuntimeError("no datagram came back")
    else:
        raise RuntimeError(f"unknown scenario {s!r}")


async def run_client(options):
    config = configuration(options, True)
    if options.scenario == "resume":
        return await resume(options, config)
    started = time.monotonic()
    try:
        async with connect(options.host, options.port, configuration=config, create_protocol=ClientProtocol) as proto:
            result = {"event": "result", "scenario": options.scenario, "alpn": proto.alpn}
            try:
                await run_scenario(options, proto, result)
            except Exception as error:
                result.update(ok=False, stage="scenario", error=str(error) or type(error).__name__,
                              ms=int((time.monotonic() - started) * 1000))
                emit(result)
                proto.close(error_code=1, reason_phrase="failed")
                return 1
            result.update(ok=True, ms=int((time.monotonic() - started) * 1000))
            emit(result)
            if options.scenario not in ("close-from-server", "close-from-client"):
                proto.close(error_code=0, reason_phrase="done")
            await asyncio.sleep(0.05)
    except Exception as error:
        emit({"event": "result", "scenario": options.scenario, "ok": False, "stage": "handshake",
              "error": str(error) or type(error).__name__})
        return 1
    return 0


async def resume(options, config):
    tickets = []
    config.session_ticket = None
    try:
        async with connect(options.host, options.port, configuration=config, create_protocol=ClientProtocol,
                           session_ticket_handler=tickets.append) as proto:
            await proto.exchange(b"echo\nfirst")
            await asyncio.sleep(0.2)
            proto.close(error_code=0)
        if not tickets:
            raise RuntimeError("no session ticket")
        config.session_ticket = tickets[-1]
        async with connect(options.host, options.port, configuration=config, create_protocol=ClientProtocol,
                           wait_connected=False) as proto:
            got = await proto.exchange(b"echo\nsecond")
            if got != b"second":
                raise RuntimeError(f"echo on the resumed connection: {got!r}")
            await proto.handshake_done
            emit({"event": "result", "scenario": "resume", "ok": True, "resumed": proto.resumed, "used0rtt": proto.used0rtt})
            proto.close(error_code=0)
            await asyncio.sleep(0.05)
    except Exception as error:
        emit({"event": "result", "scenario": "resume", "ok": False, "stage": "scenario", "error": str(error) or type(error).__name__})
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--alpn", default="interop")
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--ca", default="")
    parser.add_argument("--sni", default="")
    parser.add_argument("--scenario", default="handshake")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument("--code", type=int, default=0x1234)
    parser.add_argument("--max-streams", type=int, default=100)
    parser.add_argument("--accept-delay", type=int, default=0)
    parser.add_argument("--datagrams", action="store_true")
    parser.add_argument("--0rtt", dest="zero_rtt", action="store_true")
    parser.add_argument("--require-client-cert", action="store_true")
    parser.add_argument("--timeout", default="30s")
    options = parser.parse_args()
    if options.mode == "server":
        asyncio.run(run_server(options))
        return
    timeout = float(options.timeout.rstrip("s"))

    async def bounded():
        try:
            return await asyncio.wait_for(run_client(options), timeout)
        except asyncio.TimeoutError:
            emit({"event": "result", "scenario": options.scenario, "ok": False, "stage": "timeout",
                  "error": "the scenario did not finish in time"})
            return 1
    sys.exit(asyncio.run(bounded()))


if __name__ == "__main__":
    main()
