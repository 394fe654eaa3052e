// A foreign Kademlia for the discovery tests (test/discovery/go-kad.test.ts): go-libp2p with
// go-libp2p-kad-dht in server mode on the registries' private protocol (/node-msquic/kad/1.0.0),
// QUIC only. It joins a network of registries and speaks none of their side protocols (record,
// providers). Its record validator for the registries' namespace ("svc") takes any value, so that
// it can also send records the registries must refuse.
//
//	peer <bootstrap multiaddr>...   prints "PEER <id>" and "LISTEN <multiaddr>", then runs the
//	                                commands below, one per line on stdin, one JSON line each on stdout:
//	  rt                            {"rt": <routing table size>, "peers": [<ids>]}
//	  findprov <name>               {"providers": [<ids>]} of the service <name> (up to 20, 10 s)
//	  provide <name>                {"ok": true} once the provider record of <name> is published
//	  putbad <name>                 {"ok": ..., "error": ...}: PUT_VALUE of garbage under this
//	                                peer's record key of <name> to the closest peers
//	  junk <peer id>                {"ok": true}: garbage bytes on a kad stream to <peer id>
//	  quit                          exits (so does a closed stdin)
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// As src/discovery/record.ts: the key prefix of a service name, and the record namespace.
const keyPrefix = "node-msquic/svc/v1/"
const namespace = "svc"

// The DHT protocol is prefix + "/kad/1.0.0".
const protocolPrefix = protocol.ID("/node-msquic")

// anyValue takes every value: this peer stores what it is sent and sends what it is told to.
type anyValue struct{}

func (anyValue) Validate(string, []byte) error        { return nil }
func (anyValue) Select(string, [][]byte) (int, error) { return 0, nil }

func digest(name string) []byte {
	sum := sha256.Sum256([]byte(keyPrefix + name))
	return sum[:]
}

// nameCid is src/discovery/record.ts's nameToCid(): CIDv1, raw codec, sha2-256 of the prefixed name.
func nameCid(name string) cid.Cid {
	hash, err := mh.Encode(digest(name), mh.SHA2_256)
	if err != nil {
		fail(err)
	}
	return cid.NewCidV1(cid.Raw, hash)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-kad peer:", err)
	os.Exit(1)
}

func say(v any) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func main() {
	ctx := context.Background()
	h, err := libp2p.New(
		libp2p.Transport(quic.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.UserAgent("go-libp2p-kad-dht interop peer"),
	)
	if err != nil {
		fail(err)
	}
	kad, err := dht.New(h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(protocolPrefix),
		dht.NamespacedValidator(namespace, anyValue{}),
		dht.BucketSize(20),
	)
	if err != nil {
		fail(err)
	}
	for _, arg := range os.Args[1:] {
		addr, err := ma.NewMultiaddr(arg)
		if err != nil {
			fail(err)
		}
		info, err := peer.AddrInfoFromP2pAddr(addr)
		if err != nil {
			fail(err)
		}
		if err := h.Connect(ctx, *info); err != nil {
			fail(err)
		}
	}
	if err := kad.Bootstrap(ctx); err != nil {
		fail(err)
	}
	fmt.Printf("PEER %s\n", h.ID())
	for _, addr := range h.Addrs() {
		fmt.Printf("LISTEN %s/p2p/%s\n", addr, h.ID())
	}
	commands(ctx, h, kad)
}

func commands(ctx context.Context, h host.Host, kad *dht.IpfsDHT) {
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "rt":
			peers := []string{}
			for _, p := range kad.RoutingTable().ListPeers() {
				peers = append(peers, p.String())
			}
			say(map[string]any{"rt": kad.RoutingTable().Size(), "peers": peers})
		case "findprov":
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			found := []string{}
			for info := range kad.FindProvidersAsync(c, nameCid(fields[1]), 20) {
				found = append(found, info.ID.String())
			}
			cancel()
			say(map[string]any{"providers": found})
		case "provide":
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := kad.Provide(c, nameCid(fields[1]), true)
			cancel()
			say(map[string]any{"ok": err == nil, "error": errorText(err)})
		case "putbad":
			key := "/" + namespace + "/" + hex.EncodeToString(digest(fields[1])) + "/" + h.ID().String()
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := kad.PutValue(c, key, []byte("not a service record"))
			cancel()
			say(map[string]any{"ok": err == nil, "error": errorText(err)})
		case "junk":
			id, err := peer.Decode(fields[1])
			if err != nil {
				say(map[string]any{"ok": false, "error": err.Error()})
				continue
			}
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			s, err := h.NewStream(c, id, protocolPrefix+"/kad/1.0.0")
			if err == nil {
				// A length prefix far past the message limit, then bytes that are no protobuf.
				_, err = s.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0xde, 0xad, 0xbe, 0xef})
				s.Close()
			}
			cancel()
			say(map[string]any{"ok": err == nil, "error": errorText(err)})
		case "quit":
			return
		default:
			say(map[string]any{"error": "unknown command " + fields[0]})
		}
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The record validator interface go-libp2p-kad-dht takes.
var _ record.Validator = anyValue{}
