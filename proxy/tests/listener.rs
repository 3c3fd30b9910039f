//! The listener layer on real sockets: PROXY protocol v1 and v2, TLS certificates chosen by SNI,
//! HTTP/2 by ALPN, and client certificates, in front of a small Pingora HTTP app that answers
//! with what it sees of the connection.
//!
//! Pingora's `Server` owns its process, so each test accepts on its own tokio listener and hands
//! every connection to `EdgeApp::process_new` the way Pingora's listener does: as a Pingora TCP
//! stream whose socket digest holds the peer address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use voltfleet_proxy::config::{CertificateConfig, ClientAuth, ListenerConfig, TlsConfig};
use voltfleet_proxy::listener::{EdgeApp, client_identity, server_tls_config};

/// Every wait in these tests ends within this.
const WAIT: Duration = Duration::from_secs(10);

const REQUEST: &[u8] = b"GET /whoami HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n";

/// Answers with what it knows of the connection, one `key=value` line each.
struct WhoAmI;

#[async_trait]
impl ServeHttp for WhoAmI {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let digest = session.digest();
        let tls = digest
            .and_then(|digest| digest.ssl_digest.as_ref())
            .map_or("none".to_string(), |ssl| ssl.version.to_string());
        let identity = client_identity(digest);
        let subject = identity
            .as_ref()
            .map_or("none".to_string(), |id| id.to_string());
        let common_name = identity
            .and_then(|id| id.common_name.clone())
            .unwrap_or_else(|| "none".to_string());
        let body = format!(
            "client={}\nserver={}\nversion={:?}\ntls={tls}\nidentity={subject}\ncn={common_name}\n",
            show(session.client_addr()),
            show(session.server_addr()),
            session.req_header().version,
        );
        http::Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .header("content-length", body.len())
            .body(body.into_bytes())
            .expect("a valid response")
    }
}

fn show(addr: Option<&pingora::protocols::l4::socket::SocketAddr>) -> String {
    addr.map_or("none".to_string(), ToString::to_string)
}

/// An `EdgeApp` around `WhoAmI`, accepting on a loopback port until dropped.
struct Edge {
    addr: SocketAddr,
    _shutdown: watch::Sender<bool>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn start_edge(proxy_protocol: bool, tls: Option<TlsConfig>) -> Edge {
    let server_config = tls
        .as_ref()
        .map(|tls| server_tls_config(tls).expect("test TLS settings are valid"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    let config = ListenerConfig {
        name: "test".to_string(),
        address: addr,
        proxy_protocol,
        proxy_protocol_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(30),
        client_header_timeout: Duration::from_secs(20),
        client_body_timeout: Duration::from_secs(60),
        max_connections_per_ip: 1024,
        trusted_proxies: Vec::new(),
        h2c: false,
        redirect_https_port: None,
        tls,
    };
    let app = Arc::new(EdgeApp::new(Arc::new(WhoAmI), &config, server_config));
    let (shutdown, watch) = watch::channel(false);
    let accept_loop = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            // What Pingora's listener does with an accepted socket.
            let mut stream = L4Stream::from(tcp);
            let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
            let _ = digest.peer_addr.set(Some(peer.into()));
            stream.set_socket_digest(digest);
            let stream: Stream = Box::new(stream);
            let app = app.clone();
            let watch = watch.clone();
            tokio::spawn(async move {
                let _ = app.process_new(stream, &watch).await;
            });
        }
    });
    Edge {
        addr,
        _shutdown: shutdown,
        accept_loop,
    }
}

/// Reads until the peer closes (or resets) the connection.
async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("the edge answers or closes in time")
        {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// The `key=value` lines of a `WhoAmI` answer, headers skipped.
fn facts(response: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(response);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_ref(), |(_, body)| body);
    body.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Sends `bytes` in one write and returns the answer.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> HashMap<String, String> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect to the edge");
    tcp.write_all(bytes).await.expect("send");
    let response = read_until_closed(&mut tcp).await;
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "unexpected answer: {}",
        String::from_utf8_lossy(&response)
    );
    facts(&response)
}

fn v2_header(command: u8, client: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x20 | command);
    let mut addresses = Vec::new();
    match (client, destination) {
        (SocketAddr::V4(client), SocketAddr::V4(destination)) => {
            header.push(0x11);
            addresses.extend(client.ip().octets());
            addresses.extend(destination.ip().octets());
        }
        (SocketAddr::V6(client), SocketAddr::V6(destination)) => {
            header.push(0x21);
            addresses.extend(client.ip().octets());
            addresses.extend(destination.ip().octets());
        }
        _ => panic!("one address family for both ends"),
    }
    addresses.extend(client.port().to_be_bytes());
    addresses.extend(destination.port().to_be_bytes());
    // The NLB adds a TLV with its VPC endpoint; it must be skipped, not taken for HTTP.
    addresses.extend([0xea, 0x00, 0x05, 0x01, b'v', b'p', b'c', b'e']);
    let length = u16::try_from(addresses.len()).expect("a short header");
    header.extend(length.to_be_bytes());
    header.extend(addresses);
    header
}

fn with_request(header: &[u8]) -> Vec<u8> {
    [header, REQUEST].concat()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a test address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_headers_set_the_client_address() {
    let edge = start_edge(true, None).await;

    let v1_ipv4 = b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 80\r\n";
    let seen = exchange(edge.addr, &with_request(v1_ipv4)).await;
    assert_eq!(seen["client"], "203.0.113.7:56324");
    assert_eq!(seen["server"], "10.0.0.1:80");
    assert_eq!(seen["tls"], "none");

    let v1_ipv6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 56324 80\r\n";
    let seen = exchange(edge.addr, &with_request(v1_ipv6)).await;
    assert_eq!(seen["client"], "[2001:db8::7]:56324");
    assert_eq!(seen["server"], "[2001:db8::1]:80");

    let v2_ipv4 = v2_header(1, addr("198.51.100.9:40000"), addr("10.0.0.2:80"));
    let seen = exchange(edge.addr, &with_request(&v2_ipv4)).await;
    assert_eq!(seen["client"], "198.51.100.9:40000");
    assert_eq!(seen["server"], "10.0.0.2:80");

    let v2_ipv6 = v2_header(1, addr("[2001:db8::9]:40001"), addr("[2001:db8::2]:80"));
    let seen = exchange(edge.addr, &with_request(&v2_ipv6)).await;
    assert_eq!(seen["client"], "[2001:db8::9]:40001");
    assert_eq!(seen["server"], "[2001:db8::2]:80");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_local_keeps_the_socket_address() {
    let edge = start_edge(true, None).await;
    let mut tcp = TcpStream::connect(edge.addr).await.expect("connect");
    let own = tcp.local_addr().expect("own address");
    // A health check of the NLB: the addresses in a LOCAL header mean nothing.
    let local = v2_header(0, addr("192.0.2.1:1"), addr("192.0.2.2:2"));
    tcp.write_all(&with_request(&local)).await.expect("send");
    let seen = facts(&read_until_closed(&mut tcp).await);
    assert_eq!(seen["client"], own.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_proxy_header_closes_the_connection() {
    let edge = start_edge(true, None).await;
    let too_long = [
        b"PROXY TCP4 203.0.113.7 10.0.0.1 1 80".as_slice(),
        &[b' '; 80],
        b"\r\n",
    ];
    let malformed = [
        REQUEST.to_vec(),
        b"PROXY TCP4 203.0.113.7 10.0.0.1 99999 80\r\n".to_vec(),
        too_long.concat(),
    ];
    for bytes in &malformed {
        let mut tcp = TcpStream::connect(edge.addr).await.expect("connect");
        tcp.write_all(&with_request(bytes)).await.expect("send");
        let answer = read_until_closed(&mut tcp).await;
        assert!(
            answer.is_empty(),
            "{:?} got an answer: {}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&answer)
        );
    }
}

/// A throwaway PKI: a CA for servers, a CA for chargers, and their certificates as files.
struct Pki {
    dir: TempDir,
    server_ca: Issuer<'static, KeyPair>,
    server_ca_pem: String,
    client_ca: Issuer<'static, KeyPair>,
    client_ca_file: PathBuf,
}

/// A server certificate on disk and its DER, to compare with what a client received.
struct ServerCert {
    files: CertificateConfig,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new().expect("a temporary directory");
        let (server_ca, server_ca_pem) = certificate_authority("voltfleet test server CA");
        let (client_ca, client_ca_pem) = certificate_authority("voltfleet test charger CA");
        let client_ca_file = dir.path().join("client-ca.pem");
        std::fs::write(&client_ca_file, client_ca_pem).expect("write the client CA");
        Pki {
            dir,
            server_ca,
            server_ca_pem,
            client_ca,
            client_ca_file,
        }
    }

    fn server_cert(&self, file_stem: &str, names: &[&str]) -> ServerCert {
        let mut params = CertificateParams::new(
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        )
        .expect("valid names");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.server_ca)
            .expect("sign the server certificate");
        let files = CertificateConfig {
            cert: self.dir.path().join(format!("{file_stem}.crt")),
            key: self.dir.path().join(format!("{file_stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        ServerCert {
            files,
            der: cert.der().clone(),
        }
    }

    /// A charger's certificate and key, as one PEM for reqwest.
    fn client_identity(&self, charger_id: &str) -> reqwest::Identity {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        // Issuer order, most general first, as CAs write it; rcgen's default holds a CN already.
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "voltfleet test");
        params
            .distinguished_name
            .push(DnType::CommonName, charger_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.client_ca)
            .expect("sign the client certificate");
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        reqwest::Identity::from_pem(pem.as_bytes()).expect("a usable client identity")
    }

    fn tls(&self, certificates: Vec<CertificateConfig>, client_auth: ClientAuth) -> TlsConfig {
        TlsConfig {
            certificates,
            client_ca: (client_auth != ClientAuth::Off).then(|| self.client_ca_file.clone()),
            client_auth,
            client_identity_header: "X-Client-Cert-Subject".to_string(),
        }
    }

    fn https_client(&self, edge: &Edge) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.server_ca_pem.as_bytes())
                    .expect("the server CA"),
            )
            .resolve("edge.test", edge.addr)
            .timeout(WAIT)
    }

    fn rustls_client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls::pki_types::CertificateDer::from_pem_slice(self.server_ca_pem.as_bytes())
                    .expect("the server CA"),
            )
            .expect("add the server CA");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

fn certificate_authority(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("a key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (Issuer::new(params, key), cert.pem())
}

async fn get(
    client: &reqwest::Client,
    edge: &Edge,
) -> reqwest::Result<(http::Version, HashMap<String, String>)> {
    let response = client
        .get(format!("https://edge.test:{}/whoami", edge.addr.port()))
        .send()
        .await?;
    let version = response.version();
    let body = response.bytes().await?;
    Ok((version, facts(&body)))
}

/// Connects with TLS and returns the certificate the edge presented for `server_name`.
async fn presented_certificate(
    pki: &Pki,
    edge: &Edge,
    server_name: &str,
) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(pki.rustls_client());
    let tcp = TcpStream::connect(edge.addr).await.expect("connect");
    let name = ServerName::try_from(server_name.to_string()).expect("a valid server name");
    let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time")
        .expect("the handshake succeeds");
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the edge presented a certificate")
        .clone()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_chooses_the_certificate_by_sni() {
    let pki = Pki::new();
    let default = pki.server_cert("edge", &["edge.test", "127.0.0.1"]);
    let chargers = pki.server_cert("ocpp", &["*.ocpp.test"]);
    let tls = pki.tls(
        vec![default.files.clone(), chargers.files.clone()],
        ClientAuth::Off,
    );
    let edge = start_edge(false, Some(tls)).await;

    assert_eq!(
        presented_certificate(&pki, &edge, "edge.test").await,
        default.der
    );
    assert_eq!(
        presented_certificate(&pki, &edge, "cp-7.ocpp.test").await,
        chargers.der
    );
    // An IP address sends no SNI at all: the first certificate answers.
    assert_eq!(
        presented_certificate(&pki, &edge, "127.0.0.1").await,
        default.der
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_chooses_http2_or_http1_and_tls_versions_are_reported() {
    let pki = Pki::new();
    let cert = pki.server_cert("edge", &["edge.test"]);
    let edge = start_edge(false, Some(pki.tls(vec![cert.files], ClientAuth::Off))).await;

    let client = pki.https_client(&edge).build().expect("a client");
    let (version, seen) = get(&client, &edge).await.expect("an HTTP/2 answer");
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(seen["version"], "HTTP/2.0");
    assert_eq!(seen["tls"], "TLSv1.3");
    assert!(seen["client"].starts_with("127.0.0.1:"), "{seen:?}");
    assert_eq!(seen["identity"], "none");

    let client = pki
        .https_client(&edge)
        .http1_only()
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .expect("a client");
    let (version, seen) = get(&client, &edge).await.expect("an HTTP/1.1 answer");
    assert_eq!(version, http::Version::HTTP_11);
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(seen["tls"], "TLSv1.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates() {
    let pki = Pki::new();
    let cert = pki.server_cert("edge", &["edge.test"]);
    let edge = start_edge(false, Some(pki.tls(vec![cert.files], ClientAuth::Required))).await;

    let anonymous = pki.https_client(&edge).build().expect("a client");
    assert!(
        get(&anonymous, &edge).await.is_err(),
        "a client without a certificate was served"
    );

    let charger = pki
        .https_client(&edge)
        .identity(pki.client_identity("CP-0042"))
        .build()
        .expect("a client");
    let (version, seen) = get(&charger, &edge).await.expect("an answer");
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(seen["cn"], "CP-0042");
    assert_eq!(seen["identity"], "CN=CP-0042,O=voltfleet test");

    // The same identity reaches HTTP/1.1 requests, which keep the stream, and HTTP/2 ones,
    // which see only the connection's digest.
    let charger = pki
        .https_client(&edge)
        .http1_only()
        .identity(pki.client_identity("CP-0043"))
        .build()
        .expect("a client");
    let (version, seen) = get(&charger, &edge).await.expect("an answer");
    assert_eq!(version, http::Version::HTTP_11);
    assert_eq!(seen["cn"], "CP-0043");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates() {
    let pki = Pki::new();
    let cert = pki.server_cert("edge", &["edge.test"]);
    let edge = start_edge(false, Some(pki.tls(vec![cert.files], ClientAuth::Optional))).await;

    let anonymous = pki.https_client(&edge).build().expect("a client");
    let (_, seen) = get(&anonymous, &edge).await.expect("an anonymous answer");
    assert_eq!(seen["identity"], "none");

    let charger = pki
        .https_client(&edge)
        .identity(pki.client_identity("CP-0044"))
        .build()
        .expect("a client");
    let (_, seen) = get(&charger, &edge).await.expect("an answer");
    assert_eq!(seen["cn"], "CP-0044");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_v2_then_tls() {
    let pki = Pki::new();
    let cert = pki.server_cert("edge", &["edge.test"]);
    let edge = start_edge(true, Some(pki.tls(vec![cert.files], ClientAuth::Off))).await;

    let mut tcp = TcpStream::connect(edge.addr).await.expect("connect");
    let header = v2_header(1, addr("203.0.113.50:61000"), addr("10.0.0.3:443"));
    tcp.write_all(&header).await.expect("send the PROXY header");
    let connector = tokio_rustls::TlsConnector::from(pki.rustls_client());
    let name = ServerName::try_from("edge.test").expect("a valid server name");
    let mut tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time")
        .expect("the handshake succeeds");
    tls.write_all(REQUEST).await.expect("send the request");
    let seen = facts(&read_until_closed(&mut tls).await);
    assert_eq!(seen["client"], "203.0.113.50:61000");
    assert_eq!(seen["server"], "10.0.0.3:443");
    assert_eq!(seen["tls"], "TLSv1.3");
}

#[test]
fn unusable_tls_files_are_named_in_the_error() {
    let pki = Pki::new();
    let good = pki.server_cert("edge", &["edge.test"]);
    let other = pki.server_cert("other", &["other.test"]);
    let garbage = pki.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let missing = pki.dir.path().join("missing.pem");

    let check = |tls: TlsConfig, expected: &[&str]| {
        let err = server_tls_config(&tls)
            .expect_err("unusable settings")
            .to_string();
        for part in expected {
            assert!(err.contains(part), "{err:?} does not mention {part:?}");
        }
    };
    let with_cert = |cert: &PathBuf, key: &PathBuf| {
        pki.tls(
            vec![CertificateConfig {
                cert: cert.clone(),
                key: key.clone(),
            }],
            ClientAuth::Off,
        )
    };
    let missing_text = missing.display().to_string();
    let garbage_text = garbage.display().to_string();
    let cert_text = good.files.cert.display().to_string();
    check(
        with_cert(&missing, &good.files.key),
        &[&missing_text, "cannot read"],
    );
    check(
        with_cert(&garbage, &good.files.key),
        &[&garbage_text, "PEM"],
    );
    check(
        with_cert(&good.files.cert, &garbage),
        &[&garbage_text, "private key"],
    );
    check(
        with_cert(&good.files.cert, &other.files.key),
        &[&cert_text, "cannot serve"],
    );
    check(pki.tls(Vec::new(), ClientAuth::Off), &["no certificate"]);
    let mut no_ca = pki.tls(vec![good.files.clone()], ClientAuth::Required);
    no_ca.client_ca = None;
    check(no_ca, &["client_ca"]);
    let mut bad_ca = pki.tls(vec![good.files.clone()], ClientAuth::Optional);
    bad_ca.client_ca = Some(garbage.clone());
    check(bad_ca, &[&garbage_text, "client CA"]);
}
