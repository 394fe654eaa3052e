// An interop peer for node-msquic's tests, on quic-go. The protocol it speaks is described in
// test/interop/peers/README.md; every peer (quic-go, quinn, aioquic, and node-msquic's own in the
// tests) speaks the same one. Results are JSON, one object per line, on stdout.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

type options struct {
	mode, host, alpn, cert, key, ca, sni, scenario string
	port, streams, size, code, maxStreams, acceptDelay int
	datagrams, zeroRTT, requireClientCert           bool
	timeout                                          time.Duration
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

func fail(scenario string, stage string, err error) {
	emit(map[string]any{"event": "result", "scenario": scenario, "ok": false, "stage": stage, "error": err.Error()})
	os.Exit(1)
}

// pattern(n, seed): byte i is (i + seed) % 251.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i + seed) % 251)
	}
	return b
}

func main() {
	var o options
	flag.StringVar(&o.host, "host", "127.0.0.1", "address to listen on or connect to")
	flag.IntVar(&o.port, "port", 0, "UDP port")
	flag.StringVar(&o.alpn, "alpn", "interop", "ALPN protocols, comma separated")
	flag.StringVar(&o.cert, "cert", "", "PEM certificate (server, or client certificate)")
	flag.StringVar(&o.key, "key", "", "PEM private key")
	flag.StringVar(&o.ca, "ca", "", "PEM CA to trust")
	flag.StringVar(&o.sni, "sni", "", "server name (client; default: host)")
	flag.StringVar(&o.scenario, "scenario", "handshake", "client scenario")
	flag.IntVar(&o.streams, "streams", 20, "streams (echo)")
	flag.IntVar(&o.size, "size", 65536, "bytes per stream or transfer")
	flag.IntVar(&o.code, "code", 0x1234, "application error code")
	flag.IntVar(&o.maxStreams, "max-streams", 100, "peer's bidirectional stream credit (server)")
	flag.IntVar(&o.acceptDelay, "accept-delay", 0, "ms to wait before accepting a connection's streams (server)")
	flag.BoolVar(&o.datagrams, "datagrams", false, "enable datagrams")
	flag.BoolVar(&o.zeroRTT, "0rtt", false, "accept 0-RTT (server)")
	flag.BoolVar(&o.requireClientCert, "require-client-cert", false, "require a client certificate (server)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "client deadline")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peer server|client [flags]")
		os.Exit(2)
	}
	o.mode = os.Args[1]
	flag.CommandLine.Parse(os.Args[2:])
	switch o.mode {
	case "server":
		server(o)
	case "client":
		client(o)
	default:
		fmt.Fprintln(os.Stderr, "usage: peer server|client [flags]")
		os.Exit(2)
	}
}

func pool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in " + path)
	}
	return p, nil
}

func quicConfig(o options) *quic.Config {
	return &quic.Config{
		MaxIncomingStreams:    int64(o.maxStreams),
		MaxIncomingUniStreams: int64(o.maxStreams),
		EnableDatagrams:       o.datagrams,
		Allow0RTT:             o.zeroRTT,
		MaxIdleTimeout:        30 * time.Second,
		HandshakeIdleTimeout:  10 * time.Second,
	}
}

// ---- server ----

type connReport struct {
	mu     sync.Mutex
	resets []uint64
}

func server(o options) {
	cert, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		fail("server", "setup", err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: strings.Split(o.alpn, ",")}
	if o.requireClientCert {
		p, err := pool(o.ca)
		if err != nil {
			fail("server", "setup", err)
		}
		tlsConf.ClientCAs = p
		tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := quic.ListenAddrEarly(net.JoinHostPort(o.host, strconv.Itoa(o.port)), tlsConf, quicConfig(o))
	if err != nil {
		fail("server", "listen", err)
	}
	addr := ln.Addr().(*net.UDPAddr)
	emit(map[string]any{"event": "listening", "port": addr.Port, "address": addr.IP.String()})
	// Stops when stdin closes (the test ends) or on a signal.
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			fail("server", "accept", err)
		}
		go serveConn(o, conn)
	}
}

func serveConn(o options, conn *quic.Conn) {
	<-conn.HandshakeComplete()
	state := conn.ConnectionState()
	report := &connReport{resets: []uint64{}}
	if o.acceptDelay > 0 {
		time.Sleep(time.Duration(o.acceptDelay) * time.Millisecond)
	}
	go func() {
		for {
			s, err := conn.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			go serveUni(conn, s)
		}
	}()
	if o.datagrams {
		go func() {
			for {
				d, err := conn.ReceiveDatagram(context.Background())
				if err != nil {
					return
				}
				conn.SendDatagram(d)
			}
		}()
	}
	go func() {
		for {
			s, err := conn.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go serveStream(conn, s, report)
		}
	}()
	<-conn.Context().Done()
	cause := context.Cause(conn.Context())
	out := map[string]any{
		"event": "connection", "alpn": state.TLS.NegotiatedProtocol, "sni": state.TLS.ServerName,
		"resumed": state.TLS.DidResume, "used0rtt": state.Used0RTT,
	}
	var appErr *quic.ApplicationError
	if errors.As(cause, &appErr) {
		out["closeCode"] = uint64(appErr.ErrorCode)
		if appErr.Remote {
			out["closedBy"] = "peer"
		} else {
			out["closedBy"] = "local"
		}
	} else if cause != nil {
		out["closedBy"] = "transport"
		out["error"] = cause.Error()
	}
	report.mu.Lock()
	out["streamResets"] = report.resets
	report.mu.Unlock()
	emit(out)
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

func serveStream(conn *quic.Conn, s *quic.Stream, report *connReport) {
	r := bufio.NewReaderSize(s, 65536)
	header, err := readLine(r)
	if err != nil {
		s.CancelWrite(1)
		return
	}
	verb, arg, _ := strings.Cut(header, " ")
	n, _ := strconv.Atoi(arg)
	switch verb {
	case "echo":
		io.Copy(s, r)
		s.Close()
	case "send":
		s.Write(pattern(n, 0))
		s.Close()
	case "sink":
		want := pattern(n, 0)
		got, err := io.ReadAll(r)
		if err == nil && bytes.Equal(got, want) {
			fmt.Fprintf(s, "ok %d\n", len(got))
		} else {
			fmt.Fprintf(s, "bad %d\n", len(got))
		}
		s.Close()
	case "reset":
		s.CancelWrite(quic.StreamErrorCode(n))
		io.Copy(io.Discard, r)
	case "report-reset":
		s.Write([]byte("ready\n"))
		_, err := io.Copy(io.Discard, r)
		var streamErr *quic.StreamError
		if errors.As(err, &streamErr) {
			report.mu.Lock()
			report.resets = append(report.resets, uint64(streamErr.ErrorCode))
			report.mu.Unlock()
			fmt.Fprintf(s, "reset %d\n", streamErr.ErrorCode)
		} else {
			fmt.Fprintf(s, "no-reset\n")
		}
		s.Close()
	case "close":
		conn.CloseWithError(quic.ApplicationErrorCode(n), "closed as asked")
	default:
		s.CancelWrite(2)
	}
}

func serveUni(conn *quic.Conn, s *quic.ReceiveStream) {
	r := bufio.NewReader(s)
	header, err := readLine(r)
	if err != nil || header != "echo" {
		s.CancelRead(2)
		return
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return
	}
	out, err := conn.OpenUniStreamSync(context.Background())
	if err != nil {
		return
	}
	out.Write(data)
	out.Close()
}

// ---- client ----

func client(o options) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	tlsConf := &tls.Config{NextProtos: strings.Split(o.alpn, ","), ServerName: o.sni}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = o.host
	}
	if o.ca != "" {
		p, err := pool(o.ca)
		if err != nil {
			fail(o.scenario, "setup", err)
		}
		tlsConf.RootCAs = p
	}
	if o.cert != "" {
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			fail(o.scenario, "setup", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	addr := net.JoinHostPort(o.host, strconv.Itoa(o.port))
	if o.scenario == "resume" {
		resume(ctx, o, addr, tlsConf)
		return
	}
	started := time.Now()
	conn, err := quic.DialAddr(ctx, addr, tlsConf, quicConfig(o))
	if err != nil {
		fail(o.scenario, "handshake", err)
	}
	result := map[string]any{"event": "result", "scenario": o.scenario, "alpn": conn.ConnectionState().TLS.NegotiatedProtocol}
	err = runScenario(ctx, o, conn, result)
	result["ms"] = time.Since(started).Milliseconds()
	if err != nil {
		result["ok"] = false
		result["stage"] = "scenario"
		result["error"] = err.Error()
		emit(result)
		conn.CloseWithError(1, "failed")
		os.Exit(1)
	}
	result["ok"] = true
	emit(result)
	if o.scenario != "close-from-server" && o.scenario != "close-from-client" {
		conn.CloseWithError(0, "done")
	}
	// Let the CONNECTION_CLOSE leave before the process does.
	time.Sleep(50 * time.Millisecond)
}

func exchange(conn *quic.Conn, ctx context.Context, request []byte) ([]byte, error) {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	// Write while reading: an echo of more than the flow-control windows needs both at once.
	go func() {
		s.Write(request)
		s.Close()
	}()
	return io.ReadAll(s)
}

func runScenario(ctx context.Context, o options, conn *quic.Conn, result map[string]any) error {
	switch o.scenario {
	case "handshake":
		return nil
	case "echo":
		errs := make(chan error, o.streams)
		for i := 0; i < o.streams; i++ {
			go func(i int) {
				body := pattern(o.size+i*7, i)
				got, err := exchange(conn, ctx, append([]byte("echo\n"), body...))
				if err == nil && !bytes.Equal(got, body) {
					err = fmt.Errorf("stream %d: %d bytes back of %d, or different", i, len(got), len(body))
				}
				errs <- err
			}(i)
		}
		for i := 0; i < o.streams; i++ {
			if err := <-errs; err != nil {
				return err
			}
		}
		result["streams"] = o.streams
		return nil
	case "download":
		got, err := exchange(conn, ctx, []byte(fmt.Sprintf("send %d\n", o.size)))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, pattern(o.size, 0)) {
			return fmt.Errorf("received %d bytes of %d, or different", len(got), o.size)
		}
		result["bytes"] = len(got)
		return nil
	case "upload":
		got, err := exchange(conn, ctx, append([]byte(fmt.Sprintf("sink %d\n", o.size)), pattern(o.size, 0)...))
		if err != nil {
			return err
		}
		if string(got) != fmt.Sprintf("ok %d\n", o.size) {
			return fmt.Errorf("server answered %q", got)
		}
		result["bytes"] = o.size
		return nil
	case "uni":
		body := pattern(o.size, 3)
		s, err := conn.OpenUniStreamSync(ctx)
		if err != nil {
			return err
		}
		go func() {
			s.Write(append([]byte("echo\n"), body...))
			s.Close()
		}()
		in, err := conn.AcceptUniStream(ctx)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, body) {
			return fmt.Errorf("uni echo: %d bytes of %d, or different", len(got), len(body))
		}
		result["bytes"] = len(got)
		return nil
	case "reset-from-server":
		_, err := exchange(conn, ctx, []byte(fmt.Sprintf("reset %d\n", o.code)))
		var streamErr *quic.StreamError
		if !errors.As(err, &streamErr) {
			return fmt.Errorf("expected a stream reset, got %v", err)
		}
		result["code"] = uint64(streamErr.ErrorCode)
		if uint64(streamErr.ErrorCode) != uint64(o.code) {
			return fmt.Errorf("reset code %d, expected %d", streamErr.ErrorCode, o.code)
		}
		return nil
	case "reset-from-client":
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return err
		}
		s.Write([]byte("report-reset\n"))
		r := bufio.NewReader(s)
		if line, err := readLine(r); err != nil || line != "ready" {
			return fmt.Errorf("expected ready, got %q %v", line, err)
		}
		s.CancelWrite(quic.StreamErrorCode(o.code))
		line, err := readLine(r)
		if err != nil {
			return err
		}
		if line != fmt.Sprintf("reset %d", o.code) {
			return fmt.Errorf("server saw %q", line)
		}
		result["code"] = o.code
		return nil
	case "close-from-server":
		exchange(conn, ctx, []byte(fmt.Sprintf("close %d\n", o.code)))
		select {
		case <-conn.Context().Done():
		case <-ctx.Done():
			return errors.New("the server did not close the connection")
		}
		var appErr *quic.ApplicationError
		if !errors.As(context.Cause(conn.Context()), &appErr) || !appErr.Remote {
			return fmt.Errorf("expected the peer's application close, got %v", context.Cause(conn.Context()))
		}
		result["code"] = uint64(appErr.ErrorCode)
		if uint64(appErr.ErrorCode) != uint64(o.code) {
			return fmt.Errorf("close code %d, expected %d", appErr.ErrorCode, o.code)
		}
		return nil
	case "close-from-client":
		// Make sure the server has the connection (and its streams) before it goes.
		if _, err := exchange(conn, ctx, []byte("echo\nx")); err != nil {
			return err
		}
		conn.CloseWithError(quic.ApplicationErrorCode(o.code), "client closes")
		result["code"] = o.code
		return nil
	case "datagrams":
		if !conn.ConnectionState().SupportsDatagrams.Remote {
			return errors.New("the server does not accept datagrams")
		}
		sent := map[string]bool{}
		for i := 0; i < 20; i++ {
			d := fmt.Sprintf("datagram %d %s", i, strings.Repeat("x", 100))
			sent[d] = true
			conn.SendDatagram([]byte(d))
			time.Sleep(2 * time.Millisecond)
		}
		received := 0
		wait, cancelWait := context.WithTimeout(ctx, 2*time.Second)
		defer cancelWait()
		for received < 20 {
			d, err := conn.ReceiveDatagram(wait)
			if err != nil {
				break
			}
			if !sent[string(d)] {
				return fmt.Errorf("unexpected datagram %q", d)
			}
			received++
		}
		result["sent"] = 20
		result["received"] = received
		if received == 0 {
			return errors.New("no datagram came back")
		}
		return nil
	}
	return fmt.Errorf("unknown scenario %q", o.scenario)
}

// resume: a first connection that keeps the session ticket, then a second one that resumes with
// it and sends a request as 0-RTT data.
func resume(ctx context.Context, o options, addr string, tlsConf *tls.Config) {
	tlsConf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	conf := quicConfig(o)
	first, err := quic.DialAddr(ctx, addr, tlsConf, conf)
	if err != nil {
		fail(o.scenario, "handshake", err)
	}
	if _, err := exchange(first, ctx, []byte("echo\nfirst")); err != nil {
		fail(o.scenario, "scenario", err)
	}
	// The ticket comes after the handshake; give it a moment.
	time.Sleep(200 * time.Millisecond)
	first.CloseWithError(0, "done")
	second, err := quic.DialAddrEarly(ctx, addr, tlsConf, conf)
	if err != nil {
		fail(o.scenario, "handshake", err)
	}
	got, err := exchange(second, ctx, []byte("echo\nsecond"))
	if err != nil || string(got) != "second" {
		fail(o.scenario, "scenario", fmt.Errorf("echo on the resumed connection: %q %v", got, err))
	}
	state := second.ConnectionState()
	emit(map[string]any{"event": "result", "scenario": o.scenario, "ok": true, "resumed": state.TLS.DidResume, "used0rtt": state.Used0RTT})
	second.CloseWithError(0, "done")
	time.Sleep(50 * time.Millisecond)
}
