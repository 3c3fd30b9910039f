//! voltfleet-proxy at the edge: TLS with SNI and charger certificates, PROXY protocol from an
//! NLB, HTTPS redirects, malformed and smuggling-shaped requests, and reloads and binary
//! upgrades under load without a failed request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voltfleet_e2e::pki::Pki;
use voltfleet_e2e::proxy::ProxyProcess;
use voltfleet_e2e::upstream::TestUpstream;

fn pool_and_route(upstream: &TestUpstream) -> String {
    format!(
        "[upstreams.app]\npeers = [{{ address = \"{}\" }}]\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        upstream.address
    )
}

/// A TLS listener with `certificates` (the first is the default) that verifies charger
/// certificates as `client_auth` says, in front of `upstream`.
fn tls_listener(
    pki: &Pki,
    certificates: &[&voltfleet_e2e::pki::ServerCertificate],
    client_auth: &str,
    upstream: &TestUpstream,
) -> String {
    let certificates: Vec<String> = certificates
        .iter()
        .map(|c| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                c.cert.display(),
                c.key.display()
            )
        })
        .collect();
    format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[listeners.tls]\ncertificates = [{}]\nclient_ca = \"{}\"\nclient_auth = \"{client_auth}\"\n{}",
        certificates.join(", "),
        pki.client_ca_file.display(),
        pool_and_route(upstream)
    )
}

/// Sends raw bytes and returns everything the proxy answered before closing (bounded).
async fn raw_exchange(port: u16, request: &[u8]) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn echoed_header(answer: &str, name: &str) -> Option<String> {
    let body = answer.split("\r\n\r\n").nth(1)?;
    let start = body.find('{')?;
    let json: serde_json::Value = serde_json::from_str(body[start..].trim_end()).ok()?;
    json["headers"][name].as_str().map(str::to_string)
}

#[tokio::test]
async fn tls_picks_the_certificate_by_sni_and_passes_the_charger_identity() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let pki = Pki::new()?;
    let www = pki.server_certificate("www", &["www.voltfleet.test"])?;
    let ocpp = pki.server_certificate("ocpp", &["ocpp.voltfleet.test"])?;
    let proxy = ProxyProcess::start(&tls_listener(&pki, &[&www, &ocpp], "optional", &app)).await?;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], proxy.port));
    let names = ["www.voltfleet.test", "ocpp.voltfleet.test"];
    let peer_certificate = |response: &reqwest::Response| {
        response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(<[u8]>::to_vec)
    };

    // A browser: no client certificate; a forged identity header is dropped.
    let browser = pki.client(&names, address)?.build()?;
    let response = browser
        .get(format!("https://www.voltfleet.test:{}/", proxy.port))
        .header("X-Client-Cert-Subject", "CN=forged")
        .send()
        .await?;
    assert_eq!(peer_certificate(&response), Some(www.der.clone()));
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN h2");
    let echo: serde_json::Value = response.json().await?;
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    assert!(
        echo["headers"].get("x-client-cert-subject").is_none(),
        "{echo}"
    );

    // A charger on OCPP security profile 3: its certificate's subject reaches the OCPP service.
    let charger = pki
        .client(&names, address)?
        .identity(pki.charger_identity("CP-0042")?)
        .build()?;
    let response = charger
        .get(format!(
            "https://ocpp.voltfleet.test:{}/ocpp/CP-0042",
            proxy.port
        ))
        .send()
        .await?;
    assert_eq!(peer_certificate(&response), Some(ocpp.der.clone()));
    let echo: serde_json::Value = response.json().await?;
    let subject = echo["headers"]["x-client-cert-subject"]
        .as_str()
        .unwrap_or_default();
    assert!(subject.contains("CN=CP-0042"), "{echo}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while proxy.access_log().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = proxy.access_log();
    assert_eq!(
        log.last().map(|l| l["tls_version"].clone()),
        Some(serde_json::json!("TLSv1.3")),
        "{log:?}"
    );
    Ok(())
}

#[tokio::test]
async fn chargers_open_websockets_over_tls_with_their_certificate() -> anyhow::Result<()> {
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let pki = Pki::new()?;
    let server = pki.server_certificate("ocpp", &["ocpp.voltfleet.test"])?;
    let proxy = ProxyProcess::start(&tls_listener(&pki, &[&server], "required", &ocpp)).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pki.charger_tls("CP-0042")?));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port)).await?;
    let name = rustls::pki_types::ServerName::try_from("ocpp.voltfleet.test")?;
    let tls = connector.connect(name, tcp).await?;
    let url = format!("wss://ocpp.voltfleet.test:{}/ws", proxy.port);
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse()?);
    let (mut socket, response) = tokio_tungstenite::client_async(request, tls).await?;
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"ocpp1.6"[..])
    );
    // The upstream's greeting names the certificate subject the proxy asserted.
    match socket.next().await.transpose()? {
        Some(Message::Text(greeting)) => {
            assert!(greeting.contains("CN=CP-0042"), "{greeting}");
        }
        other => anyhow::bail!("expected the greeting, got {other:?}"),
    }
    let call = r#"[2,"1","Heartbeat",{}]"#;
    socket.send(Message::Text(call.into())).await?;
    assert_eq!(
        socket.next().await.transpose()?,
        Some(Message::Text(call.into()))
    );
    socket.close(None).await?;
    Ok(())
}

#[tokio::test]
async fn required_client_certificates_refuse_anonymous_clients() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let pki = Pki::new()?;
    let ocpp = pki.server_certificate("ocpp", &["ocpp.voltfleet.test"])?;
    let proxy = ProxyProcess::start(&tls_listener(&pki, &[&ocpp], "required", &app)).await?;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], proxy.port));
    let url = format!("https://ocpp.voltfleet.test:{}/ocpp/CP-1", proxy.port);
    let anonymous = pki.client(&["ocpp.voltfleet.test"], address)?.build()?;
    assert!(
        anonymous.get(&url).send().await.is_err(),
        "no certificate, no connection"
    );
    assert_eq!(app.served(), 0);
    let charger = pki
        .client(&["ocpp.voltfleet.test"], address)?
        .identity(pki.charger_identity("CP-1")?)
        .build()?;
    assert_eq!(charger.get(&url).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn proxy_protocol_gives_the_nlb_client_address() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\nproxy_protocol = true\n{}",
        pool_and_route(&app)
    ))
    .await?;
    let request = b"GET /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    let mut v1 = b"PROXY TCP4 198.51.100.23 10.0.0.1 56324 8080\r\n".to_vec();
    v1.extend_from_slice(request);
    let answer = raw_exchange(proxy.port, &v1).await?;
    assert_eq!(
        echoed_header(&answer, "x-forwarded-for").as_deref(),
        Some("198.51.100.23"),
        "{answer}"
    );

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]); // v2 PROXY, TCP over IPv4, 12 bytes
    v2.extend_from_slice(&[203, 0, 113, 77, 10, 0, 0, 1]);
    v2.extend_from_slice(&40000u16.to_be_bytes());
    v2.extend_from_slice(&8080u16.to_be_bytes());
    v2.extend_from_slice(request);
    let answer = raw_exchange(proxy.port, &v2).await?;
    assert_eq!(
        echoed_header(&answer, "x-forwarded-for").as_deref(),
        Some("203.0.113.77"),
        "{answer}"
    );

    let answer = raw_exchange(proxy.port, request).await?;
    assert!(answer.is_empty(), "no PROXY header, no service: {answer}");
    assert_eq!(app.served(), 2);
    Ok(())
}

#[tokio::test]
async fn plain_http_can_be_redirected_to_https() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\nredirect_https_port = 443\n{}",
        pool_and_route(&app)
    ))
    .await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .post(proxy.url("/api/v1/sessions?x=1"))
        .header("Host", "www.example.com:8080")
        .send()
        .await?;
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers().get("location").map(|v| v.as_bytes()),
        Some(&b"https://www.example.com/api/v1/sessions?x=1"[..])
    );
    assert_eq!(app.served(), 0);
    Ok(())
}

#[tokio::test]
async fn malformed_and_smuggling_shaped_requests_never_reach_an_upstream() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n{}",
        pool_and_route(&app)
    ))
    .await?;
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(128 * 1024)
    );
    let cases: [(&str, &[u8]); 5] = [
        (
            "Content-Length with Transfer-Encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        ),
        (
            "two different Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        ("a header without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n"),
        ("a space before the colon", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n"),
        ("an oversized header", huge_header.as_bytes()),
    ];
    for (what, request) in cases {
        let answer = raw_exchange(proxy.port, request).await?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .unwrap_or("none")
            .to_string();
        assert!(
            status.starts_with('4') || answer.is_empty(),
            "{what}: answered {status}:\n{}",
            answer.chars().take(300).collect::<String>()
        );
    }
    let chunked = raw_exchange(
        proxy.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await?;
    assert!(
        !chunked.contains("\"upstream\""),
        "invalid chunked body was proxied: {chunked}"
    );
    assert_eq!(app.served(), 0, "nothing malformed reached the upstream");
    Ok(())
}

/// Sends requests from `workers` tasks until `stop`, counting answers and failures.
fn load(
    url: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks = (0..workers)
        .map(|_| {
            let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for _ in 0..20_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match client.get(&url).send().await {
                        Ok(response) if response.status() == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst)
                        }
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();
    (ok, failed, tasks)
}

#[tokio::test]
async fn reload_and_binary_upgrade_under_load_fail_no_request() -> anyhow::Result<()> {
    let (first, second) = (
        TestUpstream::start("first").await?,
        TestUpstream::start("second").await?,
    );
    let template = |upstream: &TestUpstream| {
        format!(
            "[[listeners]]\naddress = \"{{LISTEN}}\"\n{}",
            pool_and_route(upstream)
        )
    };
    let mut proxy = ProxyProcess::start(&template(&first)).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, tasks) = load(proxy.url("/"), 4, stop.clone());

    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.reload(&template(&second)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while second.served() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(second.served() > 0, "the reload took effect");

    let successor = proxy.upgrade().await?;
    let old_exit = proxy.wait().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await?;
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(ok > 100, "too little load to mean anything: {ok}");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during reload and upgrade",
        ok + failed
    );
    assert!(
        old_exit.success(),
        "the old proxy exits cleanly after handing over: {old_exit}"
    );
    let status = successor.stop_with("TERM").await?;
    assert!(status.success());
    Ok(())
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n{}",
        pool_and_route(&app)
    ))
    .await?;
    // The harness's [server] section comes first; limits use the defaults (10 MiB).
    let client = reqwest::Client::new();
    let small = client
        .post(proxy.url("/upload"))
        .body(vec![b'x'; 4096])
        .send()
        .await?;
    assert_eq!(small.status(), 200);
    let declared = raw_exchange(
        proxy.port,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n",
    )
    .await?;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    let streamed = client
        .post(proxy.url("/upload"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..12).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024 * 1024])),
        )))
        .send()
        .await;
    match streamed {
        Ok(response) => assert_eq!(response.status(), 413),
        // The proxy may close before the client finishes sending; that is a refusal too.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    assert_eq!(
        app.served(),
        1,
        "only the small upload was answered by the upstream"
    );
    Ok(())
}
