//! Static sites: the public website served from a directory, the way S3 behind CloudFront
//! would serve it — GET and HEAD, validators and conditional requests, single byte ranges,
//! `Cache-Control` by path prefix, and gzip or brotli for text.
//!
//! `EdgeProxy::request_filter` hands a request whose route targets a site to
//! [`StaticSites::serve`] and answers nothing else. The submodules are pure where they can be:
//! `path` (which file; traversal refused), `conditional` (ETag, 304, 412, If-Range), `range`,
//! `content` (type, compressibility, caching), `encoding` (which coding, and the streaming
//! encoders); `body` streams the file.

mod body;
mod conditional;
mod content;
mod encoding;
mod path;
mod range;

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::path::PathBuf;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, RANGE};
use http::{HeaderValue, Method};
use pingora::prelude::*;
use pingora::proxy::Session;

use crate::config::StaticSiteConfig;
use conditional::{Precondition, Validators};
use encoding::Encoder;
use path::{RequestPath, Resolved};
use range::RangeRequest;

/// The sites of one configuration, by name.
#[derive(Debug, Default)]
pub struct StaticSites {
    sites: HashMap<String, StaticSite>,
}

impl StaticSites {
    pub fn new(configs: &BTreeMap<String, StaticSiteConfig>) -> StaticSites {
        StaticSites {
            sites: configs
                .iter()
                .map(|(name, config)| (name.clone(), StaticSite::new(config)))
                .collect(),
        }
    }

    /// Answers the request from the site `name`. `route_headers` are the route's
    /// `set_response_headers`, which `response_filter` would have applied to a proxied answer.
    pub async fn serve(
        &self,
        name: &str,
        session: &mut Session,
        route_headers: &[(String, String)],
        request_id: &str,
    ) -> Result<()> {
        let reply = Reply {
            route_headers,
            request_id,
        };
        match self.sites.get(name) {
            Some(site) => site.serve(session, &reply).await,
            // The configuration check makes every route's site exist; stay safe regardless.
            None => reply.not_found(session).await,
        }
    }
}

/// One site, its root resolved once so that every request compares against the same path.
#[derive(Debug)]
pub struct StaticSite {
    /// Canonical: symlinks inside the site are followed and must still land under it.
    root: PathBuf,
    index: String,
    cache_control: Vec<(String, HeaderValue)>,
    default_cache_control: Option<HeaderValue>,
    compress: bool,
}

impl StaticSite {
    pub fn new(config: &StaticSiteConfig) -> StaticSite {
        let root = std::fs::canonicalize(&config.root).unwrap_or_else(|err| {
            // The check at start saw the directory; until it is back every path is a 404.
            tracing::warn!(site = %config.name, error = %err, "The site's root cannot be resolved.");
            config.root.clone()
        });
        let default_cache_control = HeaderValue::from_str(&config.default_cache_control).ok();
        if default_cache_control.is_none() {
            tracing::warn!(site = %config.name, "default_cache_control is not a header value; it is not sent.");
        }
        StaticSite {
            root,
            index: config.index.clone(),
            // The check keeps only valid values, longest prefix first.
            cache_control: config
                .cache_control
                .iter()
                .filter_map(|(prefix, value)| {
                    Some((prefix.clone(), HeaderValue::from_str(value).ok()?))
                })
                .collect(),
            default_cache_control,
            compress: config.compress,
        }
    }

    async fn serve(&self, session: &mut Session, reply: &Reply<'_>) -> Result<()> {
        let method = session.req_header().method.clone();
        if method != Method::GET && method != Method::HEAD {
            let allow = [("Allow", "GET, HEAD".to_string())];
            return reply
                .text(session, 405, "Method not allowed.\n", &allow)
                .await;
        }
        let Some(request_path) = RequestPath::parse(session.req_header().uri.path()) else {
            return reply.not_found(session).await;
        };
        match path::resolve(&self.root, &self.index, &request_path).await {
            Resolved::NotFound => reply.not_found(session).await,
            Resolved::AddSlash => reply.add_slash(session).await,
            Resolved::File { path, metadata } => {
                let file = File {
                    path,
                    metadata,
                    request_path: request_path.normalized(),
                };
                self.file(session, reply, &method, &file).await
            }
        }
    }

    /// 200, 206, 304, 412 or 416 for a file that exists.
    async fn file(
        &self,
        session: &mut Session,
        reply: &Reply<'_>,
        method: &Method,
        file: &File,
    ) -> Result<()> {
        let size = file.metadata.len();
        let validators = Validators::of(&file.metadata);
        let content_type = content::content_type(&file.path);
        let compressible = self.compress
            && content::compressible(&content_type)
            && size >= content::MIN_COMPRESS_SIZE;

        let mut header = reply.header(200)?;
        header.insert_header("ETag", validators.etag.as_str())?;
        if let Some(date) = validators.last_modified_header() {
            header.insert_header("Last-Modified", date)?;
        }
        let cache_control = content::cache_control(
            &self.cache_control,
            self.default_cache_control.as_ref(),
            &file.request_path,
        );
        if let Some(value) = cache_control {
            header.insert_header("Cache-Control", value.clone())?;
        }
        if compressible {
            // Also on identity answers (HEAD, ranges, 304): a cache must key on the encoding.
            header.insert_header("Vary", "Accept-Encoding")?;
        }

        let request = session.req_header();
        // Range is defined for GET only (RFC 9110 §14.2).
        let range_header = match request.headers.get(RANGE) {
            Some(value) if *method == Method::GET => Some(value.to_str().unwrap_or_default()),
            _ => None,
        };
        // HTTP/1.0 has no chunked framing for a body whose length is not known in advance.
        let coding = (compressible
            && *method == Method::GET
            && range_header.is_none()
            && request.version >= http::Version::HTTP_11)
            .then(|| encoding::negotiate(request.headers.get(ACCEPT_ENCODING)))
            .flatten();
        if coding.is_some() {
            // Other bytes with the same meaning: a weak ETag (a 304 carries it too). The
            // client's copy still matches by weak comparison.
            header.insert_header("ETag", format!("W/{}", validators.etag))?;
        }
        match conditional::evaluate(method, &request.headers, &validators) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                header.set_status(304)?;
                return reply.send_header(session, header, true).await;
            }
            Precondition::Failed => {
                return reply
                    .text(session, 412, "Precondition failed.\n", &[])
                    .await;
            }
        }
        let range = match range_header {
            Some(value) if conditional::range_applies(&request.headers, &validators) => {
                range::parse(value, size)
            }
            _ => RangeRequest::Full,
        };

        let (start, len) = match range {
            RangeRequest::Unsatisfiable => {
                let unsatisfied = [("Content-Range", format!("bytes */{size}"))];
                return reply
                    .text(session, 416, "Range not satisfiable.\n", &unsatisfied)
                    .await;
            }
            RangeRequest::Partial(part) => {
                header.set_status(206)?;
                header.insert_header("Content-Range", part.content_range(size))?;
                (part.start, part.len())
            }
            RangeRequest::Full => (0, size),
        };
        header.insert_header("Content-Type", content_type)?;
        match coding {
            Some(coding) => {
                // Compressed as it streams: the length is not known, and byte ranges of this
                // response would not address the file's bytes. (HTTP/2 drops the chunked
                // framing header and frames the body itself.)
                header.insert_header("Content-Encoding", coding.token())?;
                header.insert_header("Transfer-Encoding", "chunked")?;
            }
            None => {
                header.insert_header("Content-Length", len.to_string())?;
                header.insert_header("Accept-Ranges", "bytes")?;
            }
        }
        if *method == Method::HEAD || len == 0 {
            return reply.send_header(session, header, true).await;
        }
        // Opened before anything is sent, so that a file gone since the lookup is still a 404.
        let Ok(handle) = tokio::fs::File::open(&file.path).await else {
            return reply.not_found(session).await;
        };
        reply.send_header(session, header, false).await?;
        body::send(session, handle, start, len, coding.map(Encoder::new)).await
    }
}

/// A file found for a request.
#[derive(Debug)]
struct File {
    path: PathBuf,
    metadata: Metadata,
    /// The decoded request path, for `Cache-Control` prefixes.
    request_path: String,
}

/// What every answer of a static route carries, and the short answers.
#[derive(Debug)]
struct Reply<'a> {
    route_headers: &'a [(String, String)],
    request_id: &'a str,
}

impl Reply<'_> {
    fn header(&self, status: u16) -> Result<ResponseHeader> {
        let mut header = ResponseHeader::build(status, Some(12))?;
        header.insert_header("X-Request-Id", self.request_id)?;
        Ok(header)
    }

    /// Sends `header` with the route's headers applied last, so that they win over ours.
    async fn send_header(
        &self,
        session: &mut Session,
        mut header: ResponseHeader,
        end: bool,
    ) -> Result<()> {
        for (name, value) in self.route_headers {
            header.insert_header(name.clone(), value.as_str())?;
        }
        session.write_response_header(Box::new(header), end).await
    }

    /// A short text answer that names nothing on disk; the connection stays open.
    async fn text(
        &self,
        session: &mut Session,
        status: u16,
        body: &'static str,
        extra: &[(&'static str, String)],
    ) -> Result<()> {
        let mut header = self.header(status)?;
        header.insert_header("Content-Type", "text/plain; charset=utf-8")?;
        header.insert_header("Content-Length", body.len().to_string())?;
        header.insert_header("Cache-Control", "no-store")?;
        for (name, value) in extra {
            header.insert_header(*name, value.as_str())?;
        }
        self.send_header(session, header, false).await?;
        session
            .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
            .await
    }

    async fn not_found(&self, session: &mut Session) -> Result<()> {
        self.text(session, 404, "Not found.\n", &[]).await
    }

    /// 301 from a directory to its slash form, keeping the query. The path is the one the
    /// client sent (still encoded) with leading slashes merged, so that `//host` can never
    /// become a protocol-relative redirect to another site.
    async fn add_slash(&self, session: &mut Session) -> Result<()> {
        let uri = &session.req_header().uri;
        let mut location = format!("/{}/", uri.path().trim_start_matches('/'));
        if let Some(query) = uri.query() {
            location.push('?');
            location.push_str(query);
        }
        let mut header = self.header(301)?;
        header.insert_header("Location", location)?;
        header.insert_header("Content-Length", "0")?;
        self.send_header(session, header, true).await
    }
}
