// A go-libp2p peer for the interop tests (test/libp2p/go-interop.test.ts): QUIC v1 only, identify
// and ping (go-libp2p's defaults), and an echo protocol.
//
//	peer listen            prints "LISTEN <multiaddr with /p2p>" and serves until stdin closes
//	peer dial <multiaddr>  identifies, pings, then echoes <streams> streams <concurrency> at a time;
//	                       prints one JSON line with what happened
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
)

const echoProtocol = protocol.ID("/echo/1.0.0")

func newHost(listen bool) host.Host {
	opts := []libp2p.Option{libp2p.Transport(quic.NewTransport), libp2p.UserAgent("go-libp2p interop peer")}
	if listen {
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		fail(err)
	}
	h.SetStreamHandler(echoProtocol, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
		}
	})
	return h
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-libp2p peer:", err)
	os.Exit(1)
}

func echoOnce(ctx context.Context, h host.Host, id peer.ID, payload []byte) error {
	s, err := h.NewStream(ctx, id, echoProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Write(payload); err != nil {
		s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return err
	}
	back, err := io.ReadAll(s)
	if err != nil {
		s.Reset()
		return err
	}
	if !bytes.Equal(back, payload) {
		return fmt.Errorf("echo mismatch: %d bytes back for %d", len(back), len(payload))
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: peer listen | peer dial <multiaddr> [streams] [concurrency]"))
	}
	switch os.Args[1] {
	case "listen":
		h := newHost(true)
		for _, addr := range h.Addrs() {
			fmt.Printf("LISTEN %s/p2p/%s\n", addr, h.ID())
		}
		fmt.Printf("PEER %s\n", h.ID())
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		h.Close()
	case "dial":
		target, err := ma.NewMultiaddr(os.Args[2])
		if err != nil {
			fail(err)
		}
		streams, concurrency := 1000, 10
		if len(os.Args) > 3 {
			streams, _ = strconv.Atoi(os.Args[3])
		}
		if len(os.Args) > 4 {
			concurrency, _ = strconv.Atoi(os.Args[4])
		}
		h := newHost(false)
		info, err := peer.AddrInfoFromP2pAddr(target)
		if err != nil {
			fail(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := h.Connect(ctx, *info); err != nil {
			fail(err)
		}
		// identify: wait until the peer's protocols are known
		var protocols []protocol.ID
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			protocols, _ = h.Peerstore().GetProtocols(info.ID)
			if len(protocols) > 0 {
				break
			}
		}
		agent, _ := h.Peerstore().Get(info.ID, "AgentVersion")
		result := <-ping.Ping(ctx, h, info.ID)
		if result.Error != nil {
			fail(fmt.Errorf("ping: %w", result.Error))
		}
		var ok, failed atomic.Int64
		var firstError atomic.Value
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(streams) {
						return
					}
					if err := echoOnce(ctx, h, info.ID, []byte(fmt.Sprintf("echo %d from go-libp2p", i))); err != nil {
						failed.Add(1)
						firstError.CompareAndSwap(nil, err.Error())
					} else {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		out := map[string]any{"protocols": protocols, "agent": agent, "rttMs": float64(result.RTT.Microseconds()) / 1000, "echoed": ok.Load(), "failed": failed.Load(), "connections": len(h.Network().ConnsToPeer(info.ID))}
		if e := firstError.Load(); e != nil {
			out["firstError"] = e
		}
		line, _ := json.Marshal(out)
		fmt.Println(string(line))
		h.Close()
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
