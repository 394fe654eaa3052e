//! An interop peer for node-msquic's tests, on quinn 0.11 and rustls. The protocol and the command
//! line are described in test/interop/peers/README.md; results are JSON lines on stdout.
use std::collections::HashMap;
use std::io::BufReader;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn::{Connection, ConnectionError, Endpoint, ReadError, ReadToEndError, RecvStream, SendStream, VarInt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, String>;

#[derive(Clone)]
struct Options {
    host: String,
    port: u16,
    alpn: Vec<Vec<u8>>,
    cert: String,
    key: String,
    ca: String,
    sni: String,
    scenario: String,
    streams: usize,
    size: usize,
    code: u64,
    max_streams: u32,
    accept_delay: u64,
    datagrams: bool,
    zero_rtt: bool,
    require_client_cert: bool,
    timeout: Duration,
}

fn emit(value: Value) {
    println!("{}", value);
}

fn fail(scenario: &str, stage: &str, error: &str) -> ! {
    emit(json!({"event": "result", "scenario": scenario, "ok": false, "stage": stage, "error": error}));
    std::process::exit(1)
}

/// byte i is (i + seed) % 251
fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i + seed) % 251) as u8).collect()
}

fn parse_args() -> (String, Options) {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: peer server|client [flags]");
        std::process::exit(2);
    }
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: 0,
        alpn: vec![b"interop".to_vec()],
        cert: String::new(),
        key: String::new(),
        ca: String::new(),
        sni: String::new(),
        scenario: "handshake".into(),
        streams: 20,
        size: 65536,
        code: 0x1234,
        max_streams: 100,
        accept_delay: 0,
        datagrams: false,
        zero_rtt: false,
        require_client_cert: false,
        timeout: Duration::from_secs(30),
    };
    let mut i = 2;
    while i < args.len() {
        let flag = args[i].trim_start_matches('-').to_string();
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        let boolean = matches!(name.as_str(), "datagrams" | "0rtt" | "require-client-cert");
        let value = if boolean {
            inline.unwrap_or_else(|| "true".into())
        } else if let Some(v) = inline {
            v
        } else {
            i += 1;
            args.get(i).cloned().unwrap_or_default()
        };
        let number = |v: &str| -> u64 { v.parse().unwrap_or_else(|_| fail("args", "setup", &format!("bad number for {}: {}", name, v))) };
        match name.as_str() {
            "host" => o.host = value,
            "port" => o.port = number(&value) as u16,
            "alpn" => o.alpn = value.split(',').map(|a| a.as_bytes().to_vec()).collect(),
            "cert" => o.cert = value,
            "key" => o.key = value,
            "ca" => o.ca = value,
            "sni" => o.sni = value,
            "scenario" => o.scenario = value,
            "streams" => o.streams = number(&value) as usize,
            "size" => o.size = number(&value) as usize,
            "code" => o.code = number(&value),
            "max-streams" => o.max_streams = number(&value) as u32,
            "accept-delay" => o.accept_delay = number(&value),
            "datagrams" => o.datagrams = value == "true",
            "0rtt" => o.zero_rtt = value == "true",
            "require-client-cert" => o.require_client_cert = value == "true",
            "timeout" => o.timeout = Duration::from_secs_f64(value.trim_end_matches('s').parse().unwrap_or(30.0)),
            other => fail("args", "setup", &format!("unknown flag --{}", other)),
        }
        i += 1;
    }
    (args[1].clone(), o)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {}", path, e))?;
    let certs: std::result::Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(file)).collect();
    certs.map_err(|e| format!("{}: {}", path, e))
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {}", path, e))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| format!("{}: {}", path, e))?
        .ok_or_else(|| format!("{}: no private key", path))
}

fn roots(path: &str) -> Result<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        store.add(cert).map_err(|e| format!("{}: {}", path, e))?;
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport(o: &Options) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(o.max_streams));
    t.max_concurrent_uni_streams(VarInt::from_u32(o.max_streams));
    t.max_idle_timeout(Some(VarInt::from_u32(30_000).into()));
    if !o.datagrams {
        t.datagram_receive_buffer_size(None);
    }
    Arc::new(t)
}

fn socket_addr(host: &str, port: u16) -> Result<SocketAddr> {
    let ip: IpAddr = host.parse().map_err(|_| format!("not an IP address: {}", host))?;
    Ok(SocketAddr::new(ip, port))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mode, o) = parse_args();
    match mode.as_str() {
        "server" => {
            if let Err(e) = server(o).await {
                fail("server", "setup", &e)
            }
        }
        "client" => {
            let scenario = o.scenario.clone();
            match tokio::time::timeout(o.timeout, client(o)).await {
                Ok(Ok(())) => {}
                Ok(Err((stage, e))) => fail(&scenario, &stage, &e),
                Err(_) => fail(&scenario, "timeout", "the scenario did not finish in time"),
            }
        }
        _ => {
            eprintln!("usage: peer server|client [flags]");
            std::process::exit(2)
        }
    }
}

// ---- server ----

async fn server(o: Options) -> Result<()> {
    let certs = load_certs(&o.cert)?;
    let key = load_key(&o.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let mut tls = if o.require_client_cert {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&o.ca)?), provider())
            .build()
            .map_err(|e| e.to_string())?;
        builder.with_client_cert_verifier(verifier).with_single_cert(certs, key)
    } else {
        builder.with_no_client_auth().with_single_cert(certs, key)
    }
    .map_err(|e| e.to_string())?;
    tls.alpn_protocols = o.alpn.clone();
    if o.zero_rtt {
        tls.max_early_data_size = u32::MAX;
    }
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(&o));
    let endpoint = Endpoint::server(config, socket_addr(&o.host, o.port)?).map_err(|e| e.to_string())?;
    let local = endpoint.local_addr().map_err(|e| e.to_string())?;
    emit(json!({"event": "listening", "port": local.port(), "address": local.ip().to_string()}));
    // Stops when stdin closes (the test ends).
    tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        std::process::exit(0);
    });
    while let Some(incoming) = endpoint.accept().await {
        let o = o.clone();
        tokio::spawn(async move {
            let connecting = match incoming.accept() {
                Ok(c) => c,
                Err(_) => return,
            };
            // Awaiting the handshake still takes 0-RTT data (with --0rtt); it is read once it completes.
            match connecting.await {
                Ok(conn) => serve_connection(o, conn).await,
                // Closed as soon as it was up (e.g. a client that only handshakes): still reported.
                Err(ConnectionError::ApplicationClosed(close)) => emit(json!({"event": "connection", "closedBy": "peer",
                    "closeCode": close.error_code.into_inner(), "streamResets": [], "early": true})),
                Err(other) => emit(json!({"event": "connection", "closedBy": "transport", "error": other.to_string()})),
            }
        });
    }
    Ok(())
}

struct Report {
    resets: Vec<u64>,
    close_code: Option<u64>,
}

async fn serve_connection(o: Options, conn: Connection) {
    let (alpn, sni) = match conn.handshake_data().and_then(|d| d.downcast::<HandshakeData>().ok()) {
        Some(data) => (data.protocol.map(|p| String::from_utf8_lossy(&p).into_owned()), data.server_name),
        None => (None, None),
    };
    let report = Arc::new(Mutex::new(Report { resets: vec![], close_code: None }));
    if o.accept_delay > 0 {
        tokio::time::sleep(Duration::from_millis(o.accept_delay)).await;
    }
    {
        let conn = conn.clone();
        let report = report.clone();
        tokio::spawn(async move {
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(serve_stream(conn.clone(), send, recv, report.clone()));
            }
        });
    }
    {
        let conn = conn.clone();
        tokio::spawn(async move {
            while let Ok(recv) = conn.accept_uni().await {
                tokio::spawn(serve_uni(conn.clone(), recv));
            }
        });
    }
    if o.datagrams {
        let conn = conn.clone();
        tokio::spawn(async move {
            while let Ok(d) = conn.read_datagram().await {
                let _ = conn.send_datagram(d);
            }
        });
    }
    let reason = conn.closed().await;
    let mut out = json!({"event": "connection", "alpn": alpn, "sni": sni});
    let report = report.lock().unwrap();
    match reason {
        ConnectionError::ApplicationClosed(close) => {
            out["closeCode"] = json!(close.error_code.into_inner());
            out["closedBy"] = json!("peer");
        }
        ConnectionError::LocallyClosed => {
            out["closeCode"] = json!(report.close_code);
            out["closedBy"] = json!("local");
        }
        other => {
            out["closedBy"] = json!("transport");
            out["error"] = json!(other.to_string());
        }
    }
    out["streamResets"] = json!(report.resets);
    emit(out);
}

/// Reads up to and including the first '\n'; returns the line and whatever came after it.
async fn read_header(recv: &mut RecvStream) -> std::result::Result<(String, Vec<u8>), ReadError> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = buffer.iter().position(|&b| b == b'\n') {
            let rest = buffer.split_off(at + 1);
            buffer.pop();
            return Ok((String::from_utf8_lossy(&buffer).into_owned(), rest));
        }
        match recv.read(&mut chunk).await? {
            Some(n) => buffer.extend_from_slice(&chunk[..n]),
            None => return Ok((String::from_utf8_lossy(&buffer).into_owned(), vec![])),
        }
    }
}

async fn serve_stream(conn: Connection, mut send: SendStream, mut recv: RecvStream, report: Arc<Mutex<Report>>) {
    let (header, rest) = match read_header(&mut recv).await {
        Ok(h) => h,
        Err(_) => {
            let _ = send.reset(VarInt::from_u32(1));
            return;
        }
    };
    let (verb, arg) = header.split_once(' ').unwrap_or((header.as_str(), ""));
    let n: u64 = arg.parse().unwrap_or(0);
    match verb {
        "echo" => {
            if send.write_all(&rest).await.is_err() {
                return;
            }
            let mut chunk = vec![0u8; 65536];
            loop {
                match recv.read(&mut chunk).await {
                    Ok(Some(k)) => {
                        if send.write_all(&chunk[..k]).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            let _ = send.finish();
        }
        "send" => {
            let _ = send.write_all(&pattern(n as usize, 0)).await;
            let _ = send.finish();
        }
        "sink" => {
            let mut got = rest;
            match recv.read_to_end(usize::MAX).await {
                Ok(more) => got.extend_from_slice(&more),
                Err(_) => return,
            }
            let answer = if got == pattern(n as usize, 0) { format!("ok {}\n", got.len()) } else { format!("bad {}\n", got.len()) };
            let _ = send.write_all(answer.as_bytes()).await;
            let _ = send.finish();
        }
        "reset" => {
            let _ = send.reset(VarInt::from_u64(n).unwrap_or(VarInt::from_u32(0)));
            let _ = recv.read_to_end(usize::MAX).await;
        }
        "report-reset" => {
            let _ = send.write_all(b"ready\n").await;
            let answer = match recv.read_to_end(usize::MAX).await {
                Err(ReadToEndError::Read(ReadError::Reset(code))) => {
                    report.lock().unwrap().resets.push(code.into_inner());
                    format!("reset {}\n", code.into_inner())
                }
                _ => "no-reset\n".to_string(),
            };
            let _ = send.write_all(answer.as_bytes()).await;
            let _ = send.finish();
        }
        "close" => {
            report.lock().unwrap().close_code = Some(n);
            conn.close(VarInt::from_u64(n).unwrap_or(VarInt::from_u32(0)), b"closed as asked");
        }
        _ => {
            let _ = send.reset(VarInt::from_u32(2));
        }
    }
}

async fn serve_uni(conn: Connection, mut recv: RecvStream) {
    let (header, mut data) = match read_header(&mut recv).await {
        Ok(h) => h,
        Err(_) => return,
    };
    if header != "echo" {
        let _ = recv.stop(VarInt::from_u32(2));
        return;
    }
    match recv.read_to_end(usize::MAX).await {
        Ok(more) => data.extend_from_slice(&more),
        Err(_) => return,
    }
    if let Ok(mut send) = conn.open_uni().await {
        let _ = send.write_all(&data).await;
        let _ = send.finish();
        let _ = send.stopped().await;
    }
}

// ---- client ----

type Staged<T> = std::result::Result<T, (String, String)>;

fn stage<T, E: ToString>(name: &str) -> impl FnOnce(E) -> (String, String) + '_ {
    move |e| (name.to_string(), e.to_string())
}

fn client_config(o: &Options) -> Result<quinn::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(&o.ca)?);
    let mut tls = if o.cert.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_auth_cert(load_certs(&o.cert)?, load_key(&o.key)?).map_err(|e| e.to_string())?
    };
    tls.alpn_protocols = o.alpn.clone();
    tls.enable_early_data = true;
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(o));
    Ok(config)
}

async fn client(o: Options) -> Staged<()> {
    let target = socket_addr(&o.host, o.port).map_err(stage::<(), _>("setup"))?;
    let bind: SocketAddr = if target.is_ipv6() { "[::]:0".parse().unwrap() } else { "0.0.0.0:0".parse().unwrap() };
    let mut endpoint = Endpoint::client(bind).map_err(stage::<(), _>("setup"))?;
    endpoint.set_default_client_config(client_config(&o).map_err(stage::<(), _>("setup"))?);
    let name = if o.sni.is_empty() { o.host.clone() } else { o.sni.clone() };
    if o.scenario == "resume" {
        return resume(&o, &endpoint, target, &name).await;
    }
    let started = Instant::now();
    let conn = endpoint
        .connect(target, &name)
        .map_err(stage::<(), _>("handshake"))?
        .await
        .map_err(stage::<(), _>("handshake"))?;
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .map(|p| String::from_utf8_lossy(&p).into_owned());
    let mut result = json!({"event": "result", "scenario": o.scenario, "alpn": alpn});
    let outcome = run_scenario(&o, &conn, &mut result).await;
    result["ms"] = json!(started.elapsed().as_millis() as u64);
    match outcome {
        Ok(()) => {
            result["ok"] = json!(true);
            emit(result);
            if o.scenario != "close-from-server" && o.scenario != "close-from-client" {
                conn.close(VarInt::from_u32(0), b"done");
            }
            endpoint.wait_idle().await;
            Ok(())
        }
        Err(e) => {
            conn.close(VarInt::from_u32(1), b"failed");
            result["ok"] = json!(false);
            result["stage"] = json!("scenario");
            result["error"] = json!(e);
            emit(result);
            std::process::exit(1)
        }
    }
}

async fn exchange(conn: &Connection, request: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    // Write while reading: an echo larger than the flow-control windows needs both at once.
    tokio::spawn(async move {
        let _ = send.write_all(&request).await;
        let _ = send.finish();
    });
    recv.read_to_end(usize::MAX).await.map_err(|e| match e {
        ReadToEndError::Read(ReadError::Reset(code)) => format!("reset {}", code.into_inner()),
        other => other.to_string(),
    })
}

async fn run_scenario(o: &Options, conn: &Connection, result: &mut Value) -> Result<()> {
    match o.scenario.as_str() {
        "handshake" => Ok(()),
        "echo" => {
            let mut tasks = Vec::new();
            for i in 0..o.streams {
                let conn = conn.clone();
                let size = o.size + i * 7;
                tasks.push(tokio::spawn(async move {
                    let body = pattern(size, i);
                    let mut request = b"echo\n".to_vec();
                    request.extend_from_slice(&body);
                    let got = exchange(&conn, request).await?;
                    if got != body {
                        return Err(format!("stream {}: {} bytes back of {}, or different", i, got.len(), body.len()));
                    }
                    Ok(())
                }));
            }
            for task in tasks {
                task.await.map_err(|e| e.to_string())??;
            }
            result["streams"] = json!(o.streams);
            Ok(())
        }
        "download" => {
            let got = exchange(conn, format!("send {}\n", o.size).into_bytes()).await?;
            if got != pattern(o.size, 0) {
                return Err(format!("received {} bytes of {}, or different", got.len(), o.size));
            }
            result["bytes"] = json!(got.len());
            Ok(())
        }
        "upload" => {
            let mut request = format!("sink {}\n", o.size).into_bytes();
            request.extend_from_slice(&pattern(o.size, 0));
            let got = exchange(conn, request).await?;
            if got != format!("ok {}\n", o.size).into_bytes() {
                return Err(format!("server answered {:?}", String::from_utf8_lossy(&got)));
            }
            result["bytes"] = json!(o.size);
            Ok(())
        }
        "uni" => {
            let body = pattern(o.size, 3);
            let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
            let mut request = b"echo\n".to_vec();
            request.extend_from_slice(&body);
            tokio::spawn(async move {
                let _ = send.write_all(&request).await;
                let _ = send.finish();
            });
            let mut recv = conn.accept_uni().await.map_err(|e| e.to_string())?;
            let got = recv.read_to_end(usize::MAX).await.map_err(|e| e.to_string())?;
            if got != body {
                return Err(format!("uni echo: {} bytes of {}, or different", got.len(), body.len()));
            }
            result["bytes"] = json!(got.len());
            Ok(())
        }
        "reset-from-server" => {
            match exchange(conn, format!("reset {}\n", o.code).into_bytes()).await {
                Err(e) if e == format!("reset {}", o.code) => {
                    result["code"] = json!(o.code);
                    Ok(())
                }
                other => Err(format!("expected a reset with {}, got {:?}", o.code, other)),
            }
        }
        "reset-from-client" => {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(b"report-reset\n").await.map_err(|e| e.to_string())?;
            let (line, _) = read_header(&mut recv).await.map_err(|e| e.to_string())?;
            if line != "ready" {
                return Err(format!("expected ready, got {:?}", line));
            }
            send.reset(VarInt::from_u64(o.code).unwrap()).map_err(|e| e.to_string())?;
            let (line, _) = read_header(&mut recv).await.map_err(|e| e.to_string())?;
            if line != format!("reset {}", o.code) {
                return Err(format!("server saw {:?}", line));
            }
            result["code"] = json!(o.code);
            Ok(())
        }
        "close-from-server" => {
            let _ = exchange(conn, format!("close {}\n", o.code).into_bytes()).await;
            match conn.closed().await {
                ConnectionError::ApplicationClosed(close) if close.error_code.into_inner() == o.code => {
                    result["code"] = json!(o.code);
                    Ok(())
                }
                other => Err(format!("expected the peer's application close with {}, got {}", o.code, other)),
            }
        }
        "close-from-client" => {
            exchange(conn, b"echo\nx".to_vec()).await?;
            conn.close(VarInt::from_u64(o.code).unwrap(), b"client closes");
            result["code"] = json!(o.code);
            Ok(())
        }
        "datagrams" => {
            if conn.max_datagram_size().is_none() {
                return Err("the server does not accept datagrams".into());
            }
            let mut sent = HashMap::new();
            for i in 0..20 {
                let d = format!("datagram {} {}", i, "x".repeat(100));
                conn.send_datagram(d.clone().into_bytes().into()).map_err(|e| e.to_string())?;
                sent.insert(d.into_bytes(), true);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let mut received = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while received < 20 {
                match tokio::time::timeout_at(deadline, conn.read_datagram()).await {
                    Ok(Ok(d)) => {
                        if !sent.contains_key(d.as_ref()) {
                            return Err(format!("unexpected datagram {:?}", d));
                        }
                        received += 1;
                    }
                    _ => break,
                }
            }
            result["sent"] = json!(20);
            result["received"] = json!(received);
            if received == 0 {
                return Err("no datagram came back".into());
            }
            Ok(())
        }
        other => Err(format!("unknown scenario {:?}", other)),
    }
}

/// A first connection that keeps the session ticket, then a second that resumes it and sends its
/// request as 0-RTT data.
async fn resume(o: &Options, endpoint: &Endpoint, target: SocketAddr, name: &str) -> Staged<()> {
    let first = endpoint.connect(target, name).map_err(stage::<(), _>("handshake"))?.await.map_err(stage::<(), _>("handshake"))?;
    exchange(&first, b"echo\nfirst".to_vec()).await.map_err(stage::<(), _>("scenario"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.close(VarInt::from_u32(0), b"done");
    let connecting = endpoint.connect(target, name).map_err(stage::<(), _>("handshake"))?;
    let (second, accepted) = match connecting.into_0rtt() {
        Ok((conn, accepted)) => (conn, Some(accepted)),
        Err(connecting) => (connecting.await.map_err(stage::<(), _>("handshake"))?, None),
    };
    let got = exchange(&second, b"echo\nsecond".to_vec()).await.map_err(stage::<(), _>("scenario"))?;
    if got != b"second" {
        return Err(("scenario".into(), format!("echo on the resumed connection: {:?}", got)));
    }
    let used0rtt = match accepted {
        Some(accepted) => accepted.await,
        None => false,
    };
    emit(json!({"event": "result", "scenario": o.scenario, "ok": true, "resumed": if used0rtt { json!(true) } else { Value::Null }, "used0rtt": used0rtt}));
    second.close(VarInt::from_u32(0), b"done");
    endpoint.wait_idle().await;
    Ok(())
}
