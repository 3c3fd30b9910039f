//! voltfleet-proxy serving the public website from a directory: the real binary, a site in a
//! temporary directory, and a pool beside it on the same listener.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voltfleet_e2e::proxy::ProxyProcess;
use voltfleet_e2e::upstream::TestUpstream;

const APP_JS_SIZE: usize = 300 * 1024;
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const DEFAULT_CACHE: &str = "public, max-age=300";
const INDEX_HTML: &str = "<!doctype html><title>voltfleet</title><h1>Charge here</h1>\n";

/// A site on disk and a proxy serving it at `/`, with `/api/` proxied to an upstream.
struct Site {
    proxy: ProxyProcess,
    client: reqwest::Client,
    app_js: Vec<u8>,
    style_css: Vec<u8>,
    logo_png: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn start() -> anyhow::Result<Site> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("site");
        let (app_js, style_css, logo_png) = write_site(&root)?;
        let upstream = TestUpstream::start("app").await?;
        let template = r#"
[[listeners]]
address = "{LISTEN}"
h2c = true

[upstreams.app]
peers = [{ address = "UPSTREAM" }]

[static_sites.www]
root = "ROOT"
default_cache_control = "DEFAULT_CACHE"

[static_sites.www.cache_control]
"/assets/" = "IMMUTABLE"

[[routes]]
path = "/"
static = "www"
set_response_headers = { "Strict-Transport-Security" = "max-age=63072000" }

[[routes]]
path = "/api/"
upstream = "app"
"#
        .replace("UPSTREAM", &upstream.address.to_string())
        .replace("ROOT", &root.display().to_string())
        .replace("DEFAULT_CACHE", DEFAULT_CACHE)
        .replace("IMMUTABLE", IMMUTABLE);
        let proxy = ProxyProcess::start(&template).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Site {
            proxy,
            client,
            app_js,
            style_css,
            logo_png,
            _dir: dir,
        })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let mut request = self.client.request(method, self.proxy.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok((status, headers, body))
    }

    async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, HeaderMap, Vec<u8>)> {
        self.request(Method::GET, path, headers).await
    }
}

/// Writes the site: a small index, a 300 KiB script, a stylesheet, a binary image, a
/// subdirectory with its own index, and symlinks that lead out of the root.
fn write_site(root: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    std::fs::create_dir_all(root.join("assets"))?;
    std::fs::create_dir_all(root.join("img"))?;
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("index.html"), INDEX_HTML)?;
    std::fs::write(root.join("docs/index.html"), "<h1>Docs</h1>\n")?;

    let mut app_js = Vec::with_capacity(APP_JS_SIZE + 64);
    let mut line = 0u64;
    while app_js.len() < APP_JS_SIZE {
        let value = (line * 7919) % 100_003;
        app_js.extend_from_slice(format!("export const v{line} = {value};\n").as_bytes());
        line += 1;
    }
    app_js.truncate(APP_JS_SIZE);
    std::fs::write(root.join("assets/app.js"), &app_js)?;

    let style_css = "body { color: #102030; margin: 0 auto; }\n"
        .repeat(80)
        .into_bytes();
    std::fs::write(root.join("assets/style.css"), &style_css)?;

    // Incompressible bytes from a small linear congruential generator.
    let mut state = 0x2545_f491_u32;
    let logo_png: Vec<u8> = (0..5000)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            state.to_be_bytes()[0]
        })
        .collect();
    std::fs::write(root.join("img/logo.png"), &logo_png)?;

    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd"))?;
    std::os::unix::fs::symlink("/etc", root.join("etc"))?;
    Ok((app_js, style_css, logo_png))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Sends a request line exactly as written (no client normalizes the path) and returns the
/// status and the whole answer.
async fn raw_get(port: u16, target: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status line in {answer:?}"))?;
    Ok((status, answer))
}

#[tokio::test]
async fn files_come_with_type_length_validators_and_caching() -> anyhow::Result<()> {
    let site = Site::start().await?;

    let (status, headers, body) = site.get("/", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body, INDEX_HTML.as_bytes());
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let length = INDEX_HTML.len().to_string();
    assert_eq!(header(&headers, "content-length"), Some(length.as_str()));
    let etag = header(&headers, "etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(header(&headers, "last-modified").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(header(&headers, "cache-control"), Some(DEFAULT_CACHE));
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    assert!(header(&headers, "x-request-id").is_some());
    // The route's response headers apply to static answers too.
    assert_eq!(
        header(&headers, "strict-transport-security"),
        Some("max-age=63072000")
    );

    let (status, headers, body) = site.get("/assets/app.js", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body.len(), APP_JS_SIZE);
    assert!(body == site.app_js, "the 300 KiB script arrived altered");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(header(&headers, "cache-control"), Some(IMMUTABLE));
    assert_eq!(
        header(&headers, "vary"),
        Some("Accept-Encoding"),
        "compressible types vary even when sent as they are"
    );

    let (status, headers, body) = site.get("/assets/style.css", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body, site.style_css);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/css; charset=utf-8")
    );

    let (status, headers, body) = site.get("/img/logo.png", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body, site.logo_png);
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    assert_eq!(header(&headers, "vary"), None);

    let (status, headers, body) = site.request(Method::HEAD, "/assets/app.js", &[]).await?;
    assert_eq!(status, 200);
    assert!(body.is_empty(), "HEAD has no body");
    let size = APP_JS_SIZE.to_string();
    assert_eq!(header(&headers, "content-length"), Some(size.as_str()));
    assert!(header(&headers, "etag").is_some());
    assert!(header(&headers, "last-modified").is_some());

    let (status, headers, body) = site.get("/missing.html", &[]).await?;
    assert_eq!(status, 404);
    assert_eq!(body, b"Not found.\n");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    Ok(())
}

#[tokio::test]
async fn conditional_requests_get_304() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let (_, headers, _) = site.get("/assets/style.css", &[]).await?;
    let etag = header(&headers, "etag").expect("an ETag").to_string();
    let modified = header(&headers, "last-modified")
        .expect("a Last-Modified")
        .to_string();
    let weak = format!("W/{etag}");
    let listed = format!("\"stale\", {etag}");

    let not_modified = [
        vec![("if-none-match", etag.as_str())],
        vec![("if-none-match", weak.as_str())],
        vec![("if-none-match", listed.as_str())],
        vec![("if-none-match", "*")],
        vec![("if-modified-since", modified.as_str())],
        vec![("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")],
    ];
    for conditions in not_modified {
        let (status, headers, body) = site.get("/assets/style.css", &conditions).await?;
        assert_eq!(status, 304, "{conditions:?}");
        assert!(body.is_empty());
        assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
        assert_eq!(header(&headers, "cache-control"), Some(IMMUTABLE));
    }
    let modified_since = [
        vec![("if-none-match", "\"stale\"")],
        vec![("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        // If-None-Match decides; If-Modified-Since is then ignored.
        vec![
            ("if-none-match", "\"stale\""),
            ("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ],
    ];
    for conditions in modified_since {
        let (status, _, body) = site.get("/assets/style.css", &conditions).await?;
        assert_eq!(status, 200, "{conditions:?}");
        assert_eq!(body, site.style_css);
    }
    let (status, _, _) = site
        .get("/assets/style.css", &[("if-match", "\"stale\"")])
        .await?;
    assert_eq!(status, 412);
    Ok(())
}

#[tokio::test]
async fn single_ranges_get_206_and_impossible_ones_416() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let size = APP_JS_SIZE;
    let cases = [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, size - 1),
        ("bytes=-100", size - 100, size - 1),
        ("bytes=307000-999999", 307_000, size - 1),
    ];
    for (range, first, last) in cases {
        let (status, headers, body) = site.get("/assets/app.js", &[("range", range)]).await?;
        assert_eq!(status, 206, "{range}");
        let expected = format!("bytes {first}-{last}/{size}");
        assert_eq!(header(&headers, "content-range"), Some(expected.as_str()));
        assert!(body == site.app_js[first..=last], "{range}: wrong bytes");
        let length = (last - first + 1).to_string();
        assert_eq!(header(&headers, "content-length"), Some(length.as_str()));
    }

    let (status, headers, _) = site
        .get("/assets/app.js", &[("range", "bytes=400000-")])
        .await?;
    assert_eq!(status, 416);
    let unsatisfied = format!("bytes */{size}");
    assert_eq!(
        header(&headers, "content-range"),
        Some(unsatisfied.as_str())
    );

    // Several ranges are answered with the whole file.
    let (status, _, body) = site
        .get("/assets/app.js", &[("range", "bytes=0-9,20-29")])
        .await?;
    assert_eq!(status, 200);
    assert_eq!(body.len(), size);

    let (_, headers, _) = site.request(Method::HEAD, "/assets/app.js", &[]).await?;
    let etag = header(&headers, "etag").expect("an ETag").to_string();
    let (status, _, body) = site
        .get(
            "/assets/app.js",
            &[("range", "bytes=0-9"), ("if-range", etag.as_str())],
        )
        .await?;
    assert_eq!(status, 206);
    assert_eq!(body, site.app_js[..10]);
    let (status, _, body) = site
        .get(
            "/assets/app.js",
            &[("range", "bytes=0-9"), ("if-range", "\"changed\"")],
        )
        .await?;
    assert_eq!(status, 200, "a changed file is sent whole");
    assert_eq!(body.len(), size);
    Ok(())
}

#[tokio::test]
async fn directories_serve_their_index_and_gain_a_slash() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let (status, headers, body) = site.get("/docs/", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body, b"<h1>Docs</h1>\n");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );

    let (status, headers, _) = site.get("/docs", &[]).await?;
    assert_eq!(status, 301);
    assert_eq!(header(&headers, "location"), Some("/docs/"));
    let (status, headers, _) = site.get("/docs?lang=es&page=2", &[]).await?;
    assert_eq!(status, 301);
    assert_eq!(header(&headers, "location"), Some("/docs/?lang=es&page=2"));
    // Leading slashes are merged: the redirect can never point at another host.
    let (status, answer) = raw_get(site.proxy.port, "//docs").await?;
    assert_eq!(status, 301);
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("\r\nlocation: /docs/\r\n"), "{answer}");
    Ok(())
}

#[tokio::test]
async fn nothing_outside_the_root_is_ever_served() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let attempts = [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%2fetc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/assets/..%2f..%2f..%2f..%2fetc/passwd",
        "/..%5c..%5cetc%5cpasswd",
        "/index.html%00.png",
        "/passwd",
        "/etc/passwd",
        "/etc/",
    ];
    for target in attempts {
        let (status, answer) = raw_get(site.proxy.port, target).await?;
        assert_eq!(status, 404, "{target}: {answer}");
        assert!(
            answer.ends_with("\r\n\r\nNot found.\n"),
            "{target}: {answer}"
        );
        assert!(!answer.contains("root:"), "{target} leaked /etc/passwd");
        assert!(!answer.contains("/etc"), "{target} named a path: {answer}");
    }
    Ok(())
}

#[tokio::test]
async fn methods_other_than_get_and_head_get_405() -> anyhow::Result<()> {
    let site = Site::start().await?;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let (status, headers, _) = site.request(method.clone(), "/index.html", &[]).await?;
        assert_eq!(status, 405, "{method}");
        assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    }
    Ok(())
}

/// Decodes a body with strict decoders: a stream without its end is an error.
fn decode(coding: &str, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?,
        "br" => brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out)?,
        other => anyhow::bail!("unexpected coding {other}"),
    };
    Ok(out)
}

#[tokio::test]
async fn text_is_compressed_with_brotli_or_gzip() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let cases = [
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br, zstd", "br"),
        ("br;q=0.5, gzip", "gzip"),
    ];
    for (accept, coding) in cases {
        for (path, original) in [
            ("/assets/app.js", &site.app_js),
            ("/assets/style.css", &site.style_css),
        ] {
            let (status, headers, body) = site.get(path, &[("accept-encoding", accept)]).await?;
            assert_eq!(status, 200);
            assert_eq!(
                header(&headers, "content-encoding"),
                Some(coding),
                "{accept}"
            );
            assert!(
                header(&headers, "vary").is_some_and(|v| v.eq_ignore_ascii_case("accept-encoding")),
                "{accept}: {headers:?}"
            );
            assert!(header(&headers, "content-length").is_none());
            assert!(
                header(&headers, "etag").is_some_and(|etag| etag.starts_with("W/\"")),
                "a compressed body has a weak ETag"
            );
            assert!(
                body.len() < original.len(),
                "{path} {accept} did not shrink"
            );
            assert!(
                decode(coding, &body)? == *original,
                "{path} {accept} decoded wrong"
            );
        }
    }

    // A compressed copy revalidates against its weak ETag.
    let (_, headers, _) = site
        .get("/assets/app.js", &[("accept-encoding", "br")])
        .await?;
    let weak = header(&headers, "etag").expect("an ETag").to_string();
    let (status, headers, _) = site
        .get(
            "/assets/app.js",
            &[("accept-encoding", "br"), ("if-none-match", weak.as_str())],
        )
        .await?;
    assert_eq!(status, 304);
    assert_eq!(header(&headers, "etag"), Some(weak.as_str()));

    // Not compressed: ranges, HEAD, small files, binary types, identity.
    let identity = [
        (Method::GET, "/assets/app.js", vec![("range", "bytes=0-99")]),
        (Method::HEAD, "/assets/app.js", vec![]),
        (Method::GET, "/index.html", vec![]),
        (Method::GET, "/img/logo.png", vec![]),
        (
            Method::GET,
            "/assets/app.js",
            vec![("accept-encoding", "identity")],
        ),
    ];
    for (method, path, mut headers) in identity {
        if !headers.iter().any(|(name, _)| *name == "accept-encoding") {
            headers.push(("accept-encoding", "gzip, br"));
        }
        let (status, answer, _) = site.request(method.clone(), path, &headers).await?;
        assert!(status.is_success(), "{method} {path}: {status}");
        assert_eq!(header(&answer, "content-encoding"), None, "{method} {path}");
        assert!(
            header(&answer, "content-length").is_some(),
            "{method} {path}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn static_and_upstream_routes_share_a_listener() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let (status, _, body) = site.get("/api/stations", &[]).await?;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(echo["upstream"], "app");

    let (status, _, body) = site.get("/index.html", &[]).await?;
    assert_eq!(status, 200);
    assert_eq!(body, INDEX_HTML.as_bytes());

    // Static answers are logged like proxied ones.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = site.proxy.access_log();
        let logged = log
            .iter()
            .find(|line| line["uri"] == "/index.html")
            .cloned();
        if let Some(line) = logged {
            assert_eq!(line["status"], 200);
            assert_eq!(line["route"], "*/");
            assert!(line["upstream"].is_null());
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no access log line for /index.html in {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn http2_clients_get_the_same_answers() -> anyhow::Result<()> {
    let site = Site::start().await?;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(20))
        .build()?;
    let url = site.proxy.url("/assets/app.js");

    let response = client
        .get(&url)
        .header("accept-encoding", "br")
        .send()
        .await?;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-encoding"), Some("br"));
    assert_eq!(header(response.headers(), "transfer-encoding"), None);
    let body = response.bytes().await?;
    assert!(
        decode("br", &body)? == site.app_js,
        "the h2 brotli body decoded wrong"
    );

    let response = client.get(&url).header("range", "bytes=-10").send().await?;
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await?, site.app_js[APP_JS_SIZE - 10..]);

    let response = client.get(&url).send().await?;
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await? == site.app_js,
        "the h2 body arrived altered"
    );
    Ok(())
}
