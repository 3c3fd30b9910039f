//! `EdgeProxy`, the one type implementing Pingora's `ProxyHttp`: each phase is short and hands
//! the decision to a module — `routing` picks the route, `upstream` the peer, `forwarded` the
//! client's identity, `respond` the local answers, `access_log` and `metrics` the record.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, header};
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheKey, CacheMeta, ForcedFreshness, HitHandler, RespCacheable};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{ErrorSource, ErrorType};

use crate::access_log::{AccessLog, AccessRecord};
use crate::cache::phases::{self, CacheState};
use crate::cache::zones::CacheZones;
use crate::config::{
    HashKey, Limits, ListenerConfig, ProxyConfig, RouteConfig, RouteTarget, UpstreamConfig,
    UpstreamProtocol,
};
use crate::fleet::Fleet;
use crate::forwarded::{self, RequestId};
use crate::hygiene;
use crate::limits;
use crate::metrics::{PoolSeries, ProxyMetrics, RouteSeries};
use crate::respond;
use crate::routing::Router;
use crate::security::autoblock::{AutoBlock, Offence};
use crate::security::ipsets::{List, Origin};
use crate::security::ratelimit::{self, ClientLimiter, RateLimiters};
use crate::security::{self, guard, guard::Verdict};
use crate::security_log::{self, SecurityEvent, SecurityLog};
use crate::static_files::StaticSites;
use crate::upstream::{Pool, Selected};
use crate::websocket::{self, TunnelLimits, handshake};

/// A pool with its configuration and its series.
#[derive(Debug)]
pub struct PoolEntry {
    pub pool: Arc<Pool>,
    pub config: UpstreamConfig,
    series: PoolSeries,
}

/// A route of the running configuration, with everything a request on it needs resolved once:
/// its pool, its metric series and its header rules.
#[derive(Debug)]
pub struct ActiveRoute {
    pub config: RouteConfig,
    /// `None` for a static site (or a pool the configuration lacks, which the check refuses).
    pool: Option<Arc<PoolEntry>>,
    series: RouteSeries,
    set_request_headers: Vec<(Bytes, HeaderValue)>,
    set_response_headers: Vec<(Bytes, HeaderValue)>,
    /// This proxy's count of the route's clients, when the route is limited.
    rate_limiter: Option<Arc<ClientLimiter>>,
}

/// The routing table, pools and static sites of one configuration; swapped whole on reload.
#[derive(Debug)]
pub struct Runtime {
    pub router: Router<Arc<ActiveRoute>>,
    pub pools: HashMap<String, Arc<PoolEntry>>,
    pub static_sites: StaticSites,
}

impl Runtime {
    /// `listeners` are the names of the running listeners, in order: a route's request counters
    /// are kept per listener.
    pub fn new(
        config: &ProxyConfig,
        metrics: &ProxyMetrics,
        listeners: &[String],
        rate_limiters: &RateLimiters,
    ) -> Runtime {
        rate_limiters.retain_routes(config.routes.iter().map(|route| route.label.as_str()));
        let pools: HashMap<String, Arc<PoolEntry>> = config
            .upstreams
            .iter()
            .map(|(name, upstream)| {
                let entry = Arc::new(PoolEntry {
                    pool: Arc::new(Pool::new(upstream)),
                    config: upstream.clone(),
                    series: metrics.pool_series(name),
                });
                (name.clone(), entry)
            })
            .collect();
        let routes = config.routes.iter().map(|route| {
            let pool = match &route.target {
                RouteTarget::Upstream(name) => pools.get(name).cloned(),
                RouteTarget::Static(_) => None,
            };
            let active = ActiveRoute {
                config: route.clone(),
                pool,
                series: metrics.route_series(listeners, &route.label),
                set_request_headers: header_rules(&route.set_request_headers),
                set_response_headers: header_rules(&route.set_response_headers),
                rate_limiter: route.rate_limit.map(|limit| {
                    rate_limiters.for_route(
                        &route.label,
                        limit.rate,
                        limit.keying,
                        limit.max_clients,
                    )
                }),
            };
            (route, Arc::new(active))
        });
        Runtime {
            router: Router::new(routes),
            pools,
            static_sites: StaticSites::new(&config.static_sites),
        }
    }

    pub fn all_pools(&self) -> Vec<Arc<Pool>> {
        self.pools
            .values()
            .map(|entry| entry.pool.clone())
            .collect()
    }
}

/// Header rules as Pingora takes them; the configuration check has refused invalid ones.
fn header_rules(rules: &[(String, String)]) -> Vec<(Bytes, HeaderValue)> {
    rules
        .iter()
        .filter_map(|(name, value)| {
            let value = HeaderValue::from_str(value).ok()?;
            Some((Bytes::copy_from_slice(name.as_bytes()), value))
        })
        .collect()
}

/// Per-request facts shared across the phases.
#[derive(Debug)]
pub struct RequestCtx {
    started: Instant,
    route: Option<Arc<ActiveRoute>>,
    peer_is_trusted: bool,
    socket_peer: Option<IpAddr>,
    client: Option<IpAddr>,
    request_id: RequestId,
    /// The Host header or HTTP/2 authority, read once.
    host: Option<HeaderValue>,
    tried: Vec<SocketAddr>,
    current: Option<Selected>,
    upstream_started: Option<Instant>,
    upstream_finished: Option<Instant>,
    websocket_open: bool,
    body_bytes: u64,
    cache: CacheState,
    /// The start of the body, held back until the firewall has read it (`firewall_body`).
    waf_body: Option<bytes::BytesMut>,
    /// The firewall rule that refused the request, for the answer `fail_to_proxy` gives.
    waf_refused: Option<u32>,
    /// The client is on the allow list: neither refused nor inspected.
    client_allowed: bool,
}

impl RequestCtx {
    /// The host the request named, or empty when it named none readable.
    fn host_str(&self) -> &str {
        self.host
            .as_ref()
            .and_then(|host| host.to_str().ok())
            .unwrap_or("")
    }
}

/// What every listener's proxy shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub metrics: ProxyMetrics,
    /// Where requests that matched no route are counted (route label `none`).
    pub unrouted: RouteSeries,
    pub access_log: Option<AccessLog>,
    pub limits: Limits,
    /// Turns true when the process starts draining (SIGTERM, or handing over to an upgrade).
    pub draining: tokio::sync::watch::Receiver<bool>,
    /// Over how long the WebSockets of a draining proxy are closed.
    pub websocket_close_spread: std::time::Duration,
    /// The cache zones, opened once for the life of the process.
    pub cache_zones: Arc<CacheZones>,
    /// The firewall's allow and deny lists of client networks.
    pub ip_sets: Arc<security::ipsets::IpSets>,
    /// The fleet's Redis, when the proxies of the tier share one.
    pub fleet: Option<Arc<Fleet>>,
    /// Who is put on the deny list without anyone asking, when configured.
    pub auto_block: Option<Arc<AutoBlock>>,
    /// Where security events are written, when `[security_log]` is configured.
    pub security_log: Option<Arc<SecurityLog>>,
}

/// The proxy of one listener.
#[derive(Debug)]
pub struct EdgeProxy {
    listener: ListenerConfig,
    /// The listener's place in the configuration, which indexes its request counters.
    listener_index: usize,
    shared: Shared,
}

impl EdgeProxy {
    pub fn new(listener: ListenerConfig, listener_index: usize, shared: Shared) -> EdgeProxy {
        EdgeProxy {
            listener,
            listener_index,
            shared,
        }
    }

    /// The request's route's cache settings, when it caches.
    fn route_cache(ctx: &RequestCtx) -> Option<&crate::config::RouteCacheConfig> {
        ctx.route.as_ref()?.config.cache.as_ref()
    }

    /// The pool of the request's route (cheap to clone: phases keep it across `ctx` updates).
    fn pool(ctx: &RequestCtx) -> Option<Arc<PoolEntry>> {
        ctx.route.as_ref()?.pool.clone()
    }

    /// Who is asking, as far as it can be believed, and under which request id.
    fn identify_client(&self, session: &Session, ctx: &mut RequestCtx) {
        let socket_peer = session
            .client_addr()
            .and_then(|address| address.as_inet())
            .map(|address| address.ip());
        let trusted = &self.listener.trusted_proxies;
        ctx.socket_peer = socket_peer;
        ctx.peer_is_trusted = socket_peer.is_some_and(|ip| forwarded::is_trusted(ip, trusted));
        ctx.client = socket_peer.map(|ip| {
            forwarded::client_address(ip, header_str(session, "x-forwarded-for"), trusted)
        });
        let incoming_id = session.req_header().headers.get("x-request-id");
        ctx.request_id = forwarded::request_id(incoming_id, ctx.peer_is_trusted);
    }

    /// Answers requests over the limits or with ambiguous framing; true when answered.
    async fn refuse_malformed(&self, session: &mut Session, ctx: &RequestCtx) -> Result<bool> {
        let raw_header = session
            .as_downstream()
            .as_http1()
            .map(|h1| h1.get_headers_raw_bytes());
        if let Some(status) =
            limits::check_request(session, raw_header.as_deref(), &self.shared.limits)
        {
            let body = match status {
                414 => "The request target is too long.\n",
                431 => "Request header fields too large.\n",
                _ => "The request is too large.\n",
            };
            respond::plain(session, status, body, ctx.request_id.as_str()).await?;
            return Ok(true);
        }
        if let Some(problem) =
            hygiene::framing_problem(&session.req_header().headers, raw_header.as_deref())
        {
            tracing::info!(client = ?ctx.client, problem, "Refused a request with ambiguous framing.");
            respond::plain(session, 400, "Bad request.\n", ctx.request_id.as_str()).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Inspects the request's header as the route's firewall settings say; answers 403 and
    /// returns true when they block it. A body to read is held back for `firewall_body`.
    async fn firewall_refuses(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        waf: &crate::config::RouteWafConfig,
    ) -> Result<bool> {
        let header = session.req_header();
        let inspected: Vec<(&str, &str)> = header
            .headers
            .iter()
            .filter(|(name, _)| *name == http::header::COOKIE || waf.inspect_headers.contains(name))
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let request = security::parts::Request {
            path: header.uri.path(),
            query: header.uri.query(),
            headers: &inspected,
            content_type: None,
            body: b"",
        };
        let verdict = guard::check(waf, &request);
        if verdict == Verdict::Pass {
            if guard::inspects_body(waf, header) {
                ctx.waf_body = Some(bytes::BytesMut::new());
            }
            return Ok(false);
        }
        let blocked = self.record_firewall_match(session, ctx, verdict);
        if let Some(rule) = blocked {
            respond::refused(session, rule, ctx.request_id.as_str()).await?;
        }
        Ok(blocked.is_some())
    }

    /// Holds the body back until the firewall has read its start (up to the inspection
    /// bound), then lets it go on; a body that matches a blocking rule ends the request with
    /// 403 before the upstream has any of it.
    fn firewall_body(
        &self,
        session: &Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(held) = ctx.waf_body.as_mut() else {
            return Ok(());
        };
        // A body that arrives whole in one chunk (most API bodies) is read where it lies.
        let mut whole = None;
        if let Some(chunk) = body.take() {
            if held.is_empty() && end_of_stream {
                whole = Some(chunk);
            } else {
                held.extend_from_slice(&chunk);
            }
        }
        // The route outlives the borrow of `ctx` below; cloning it is a reference count.
        let route = ctx.route.clone();
        let Some(waf) = route.as_ref().and_then(|route| route.config.waf.as_ref()) else {
            return Ok(());
        };
        let bound = waf.limits.max_body_bytes;
        if !end_of_stream && held.len() < bound {
            // An empty chunk sends nothing upstream and does not end the body.
            *body = Some(Bytes::new());
            return Ok(());
        }
        let held = match (whole, ctx.waf_body.take()) {
            (Some(chunk), _) => chunk,
            (None, held) => held.unwrap_or_default().freeze(),
        };
        let content_type = session
            .req_header()
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        let complete = end_of_stream && held.len() <= bound;
        let inspected = &held[..held.len().min(bound)];
        let verdict = guard::check_body(waf, content_type, inspected, complete);
        if let Some(rule) = self.record_firewall_match(session, ctx, verdict) {
            return Error::e_explain(
                ErrorType::HTTPStatus(403),
                format!("the request body matched firewall rule {rule}"),
            );
        }
        *body = Some(held);
        Ok(())
    }

    /// Counts the request against the route's limit for its client; true when it was refused
    /// (429 with Retry-After).
    async fn rate_limited(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &ActiveRoute,
    ) -> Result<bool> {
        let (Some(limiter), Some(client)) = (&route.rate_limiter, ctx.client) else {
            return Ok(false);
        };
        let label = route.config.label.as_str();
        let shared = route.config.rate_limit.is_some_and(|limit| limit.shared);
        let decision = match (&self.shared.fleet, shared) {
            (Some(fleet), true) => {
                let key = limiter.keying().key(client);
                match fleet.rate_check(label, key, &limiter.rate()).await {
                    Ok(decision) => decision,
                    Err(err) => {
                        self.shared.metrics.rate_limit_fallbacks.inc();
                        tracing::debug!(error = %err, route = label, "Counting a shared rate limit on this proxy alone.");
                        limiter.check(client, Instant::now())
                    }
                }
            }
            _ => limiter.check(client, Instant::now()),
        };
        let ratelimit::Decision::Limit { retry_after } = decision else {
            return Ok(false);
        };
        self.shared.metrics.rate_limited(label);
        tracing::info!(client = %client, route = label, retry_after = ?retry_after, request_id = ctx.request_id.as_str(), "Refused a request over the route's rate limit.");
        self.log_refusal(session, ctx, security::RATE_LIMIT_RULE, "rate_limit", None);
        self.note_offence(session, ctx, client, Offence::RateLimited);
        respond::too_many_requests(session, retry_after, ctx.request_id.as_str()).await?;
        Ok(true)
    }

    /// Tells the automatic blocking about a refused request; a client that has done it too
    /// often goes onto the deny list of every proxy.
    fn note_offence(&self, session: &Session, ctx: &RequestCtx, client: IpAddr, offence: Offence) {
        let Some(auto_block) = &self.shared.auto_block else {
            return;
        };
        let Some(block) = auto_block.note(client, offence, Instant::now()) else {
            return;
        };
        let trigger = match offence {
            Offence::FirewallMatch => "firewall",
            Offence::RateLimited => "rate_limit",
        };
        self.shared.metrics.auto_block(trigger);
        tracing::warn!(client = %client, network = %block.network, block_for = ?block.block_for, reason = %block.reason, "Put a client on the deny list automatically.");
        let reason = Some(("reason", block.reason.as_str()));
        self.log_refusal(
            session,
            ctx,
            security::AUTO_BLOCK_RULE,
            "auto_block",
            reason,
        );
        let entry = self.shared.ip_sets.add(
            List::Deny,
            block.network,
            Some(block.block_for),
            &block.reason,
            Origin::Auto,
            std::time::SystemTime::now(),
        );
        if let Some(fleet) = self.shared.fleet.clone() {
            // The request that triggered the block is answered without waiting for Redis.
            tokio::spawn(async move {
                if let Err(err) = fleet.publish_ip_set_add(List::Deny, &entry).await {
                    tracing::error!(network = %entry.network, error = %err, "An automatic block did not reach the fleet; it holds on this proxy only.");
                }
            });
        }
    }

    /// Logs, counts and records a firewall match; the rule id when the route blocks the
    /// request.
    fn record_firewall_match(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        verdict: Verdict,
    ) -> Option<u32> {
        let (detection, action) = match verdict {
            Verdict::Pass => return None,
            Verdict::Count(detection) => (detection, security_log::Action::Count),
            Verdict::Block(detection) => (detection, security_log::Action::Block),
        };
        let route = ctx
            .route
            .as_ref()
            .map_or("none", |route| route.config.label.as_str());
        self.shared
            .metrics
            .waf_match(route, detection.finding.rule, action.as_str());
        tracing::warn!(
            client = ?ctx.client,
            route,
            rule = detection.finding.rule,
            family = detection.finding.family.as_str(),
            location = detection.location.as_str(),
            name = %detection.name,
            matched = %detection.excerpt,
            action = action.as_str(),
            request_id = ctx.request_id.as_str(),
            "A request matched a firewall rule."
        );
        if action == security_log::Action::Block
            && let Some(client) = ctx.client
        {
            self.note_offence(session, ctx, client, Offence::FirewallMatch);
        }
        if let Some(log) = &self.shared.security_log {
            let (rule, kind) = (detection.finding.rule, detection.finding.family.as_str());
            let event = self.security_event(session, ctx, rule, kind, action);
            log.record(event.matched(
                detection.location.as_str(),
                &detection.name,
                &detection.excerpt,
            ));
        }
        (action == security_log::Action::Block).then(|| {
            ctx.waf_refused = Some(detection.finding.rule);
            detection.finding.rule
        })
    }

    /// A security event about this request; the caller adds what matched, if anything, and
    /// records it with `SecurityLog::record`.
    /// Records a request refused by something else than a firewall rule; `why` is a named
    /// reason kept as the event's matched part.
    fn log_refusal(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        rule: u32,
        kind: &'static str,
        why: Option<(&'static str, &str)>,
    ) {
        let Some(log) = &self.shared.security_log else {
            return;
        };
        let event = self.security_event(session, ctx, rule, kind, security_log::Action::Block);
        log.record(match why {
            Some((location, text)) => event.matched(location, "", text),
            None => event,
        });
    }

    fn security_event(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        rule: u32,
        kind: &'static str,
        action: security_log::Action,
    ) -> SecurityEvent {
        let header = session.req_header();
        let facts = security_log::RequestFacts {
            client_ip: ctx.client,
            listener: &self.listener.name,
            route: ctx
                .route
                .as_ref()
                .map_or("none", |route| route.config.label.as_str()),
            host: ctx.host_str(),
            method: header.method.as_str(),
            path: header.uri.path(),
            request_id: ctx.request_id.as_str(),
        };
        SecurityEvent::new(facts, kind, rule, action)
    }

    /// The scheme the client used, as far as it can be believed (an ALB in front tells).
    fn client_scheme(&self, session: &Session, ctx: &RequestCtx) -> &'static str {
        forwarded::forwarded_proto(
            header_str(session, "x-forwarded-proto"),
            ctx.peer_is_trusted,
            self.listener.tls.is_some(),
        )
    }

    /// What the upstream is told: who the client is, over which scheme, under which id.
    fn forwarding_headers(
        &self,
        session: &Session,
        request: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        if let Some(peer) = ctx.socket_peer {
            let chain = forwarded::forwarded_for(
                peer,
                header_str(session, "x-forwarded-for"),
                ctx.peer_is_trusted,
            );
            request.insert_header("X-Forwarded-For", chain)?;
        }
        let proto = self.client_scheme(session, ctx);
        request.insert_header("X-Forwarded-Proto", HeaderValue::from_static(proto))?;
        if let Some(host) = &ctx.host {
            request.insert_header("X-Forwarded-Host", host.clone())?;
        }
        request.insert_header("X-Request-Id", ctx.request_id.header_value())?;
        if let Some(tls) = &self.listener.tls {
            // Only this proxy may assert a client certificate identity.
            request.remove_header(tls.client_identity_header.as_str());
            if let Some(identity) = crate::listener::client_identity(session.digest()) {
                request.insert_header(tls.client_identity_header.clone(), identity.to_string())?;
            }
        }
        if let Some(route) = &ctx.route {
            for (name, value) in &route.set_request_headers {
                request.insert_header(name.clone(), value.clone())?;
            }
        }
        Ok(())
    }

    /// Marks the answer with its cache status and, for a successful unsafe request, removes
    /// what it changed from the cache.
    async fn cache_answer(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let Some(cache) = Self::route_cache(ctx) else {
            return Ok(());
        };
        response.insert_header("X-Cache-Status", phases::status(session, &ctx.cache))?;
        if !session.req_header().method.is_safe()
            && let Some(zone) = self.shared.cache_zones.get(&cache.zone)
        {
            let scheme = self.client_scheme(session, ctx);
            phases::invalidate(zone, cache, session, response, scheme, ctx.host_str()).await;
        }
        Ok(())
    }

    /// Carries an upgrade request (a WebSocket) to a peer of the route's pool and relays the
    /// connection after the 101; `websocket` says why this is not left to Pingora's proxy.
    async fn tunnel(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &ActiveRoute,
    ) -> Result<()> {
        let request_id = ctx.request_id.clone();
        let Some(entry) = route.pool.clone() else {
            return respond::error(session, 502, request_id.as_str()).await;
        };
        let config = &entry.config;
        let mut request = session.req_header().clone();
        self.forwarding_headers(session, &mut request, ctx)?;
        let limits = handshake::HandshakeLimits {
            connect_timeout: config.connect_timeout,
            write_timeout: config.write_timeout,
            read_timeout: config.read_timeout,
            max_bytes: websocket::MAX_ANSWER_BYTES,
        };
        let key = match &config.balance {
            crate::config::Balance::Hash(key) => hash_key(key, session, ctx),
            _ => None,
        };
        let mut upstream = match connect_for_upgrade(ctx, &entry, key.as_deref(), &limits).await {
            Ok(upstream) => upstream,
            Err(status) => return respond::error(session, status, request_id.as_str()).await,
        };
        let answer = handshake::exchange(&mut upstream, &request, &limits).await;
        ctx.upstream_finished = Some(Instant::now());
        let peer = ctx.tried.last().copied();
        let (mut response, early) = match answer {
            Ok(answer) => answer,
            Err(err) => {
                let status = upgrade_failed(&entry, peer, &err);
                return respond::error(session, status, request_id.as_str()).await;
            }
        };
        if let Some(peer) = peer {
            entry.pool.report_success(peer);
        }
        answer_headers(Some(route), &mut response, &request_id)?;
        if response.status.as_u16() != 101 {
            // A refusal (a charger the OCPP service does not know, say) is passed on whole.
            let body = handshake::refusal_body(&mut upstream, &response, early, &limits).await;
            let body = match body {
                Ok(body) => body,
                Err(err) => {
                    let status = upgrade_failed(&entry, peer, &err);
                    return respond::error(session, status, request_id.as_str()).await;
                }
            };
            response.remove_header(&header::TRANSFER_ENCODING);
            response.insert_header(header::CONTENT_LENGTH, body.len())?;
            session.set_keepalive(None);
            session
                .write_response_header(Box::new(response), false)
                .await?;
            return session.write_response_body(Some(body), true).await;
        }
        route.series.websockets_total.inc();
        route.series.websockets_active.inc();
        ctx.websocket_open = true;
        let client = session.as_downstream_mut();
        client.write_response_header(Box::new(response)).await?;
        let limits = TunnelLimits {
            idle_timeout: route.config.websocket_idle_timeout,
            write_timeout: config.write_timeout,
            close_spread: self.shared.websocket_close_spread,
        };
        let draining = self.shared.draining.clone();
        let end = websocket::relay(client, upstream, early, limits, draining).await;
        tracing::debug!(route = %route.config.label, end = end.as_str(), "A WebSocket tunnel ended.");
        Ok(())
    }
}

/// A connection to a peer of the pool for an upgrade, trying further peers while connections
/// are refused (as `fail_to_connect` does for other requests); on failure, the status to answer.
async fn connect_for_upgrade(
    ctx: &mut RequestCtx,
    entry: &PoolEntry,
    key: Option<&[u8]>,
    limits: &handshake::HandshakeLimits,
) -> std::result::Result<tokio::net::TcpStream, u16> {
    let config = &entry.config;
    loop {
        let selected = entry.pool.select(key, &ctx.tried).map_err(|err| {
            tracing::warn!(error = %err, "No peer can take a WebSocket.");
            503u16
        })?;
        if !ctx.tried.is_empty() {
            entry.series.retries.inc();
        }
        let peer = selected.peer;
        ctx.tried.push(peer);
        ctx.upstream_started = Some(Instant::now());
        match handshake::connect(peer, limits).await {
            Ok(stream) => {
                ctx.current = Some(selected);
                return Ok(stream);
            }
            Err(err) => {
                let status = upgrade_failed(entry, Some(peer), &err);
                if ctx.tried.len() >= config.tries as usize {
                    return Err(status);
                }
            }
        }
    }
}

/// Reports a peer that failed an upgrade to passive health; the status to answer.
fn upgrade_failed(
    entry: &PoolEntry,
    peer: Option<SocketAddr>,
    err: &handshake::HandshakeError,
) -> u16 {
    if let Some(peer) = peer {
        entry.pool.report_failure(peer);
    }
    let upstream = &entry.config.name;
    tracing::warn!(%upstream, ?peer, error = %err, "A peer failed a WebSocket upgrade.");
    err.status()
}

/// The Host header, or the HTTP/2 authority.
fn request_host(session: &Session) -> Option<HeaderValue> {
    let request = session.req_header();
    request.headers.get(header::HOST).cloned().or_else(|| {
        let authority = request.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    })
}

fn header_str<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// The bytes a hashing pool hashes for this request.
fn hash_key(key: &HashKey, session: &Session, ctx: &RequestCtx) -> Option<Vec<u8>> {
    let request = session.req_header();
    match key {
        HashKey::PathSegment(n) => request
            .uri
            .path()
            .split('/')
            .filter(|segment| !segment.is_empty())
            .nth(n - 1)
            .map(|segment| segment.as_bytes().to_vec()),
        HashKey::Header(name) => request.headers.get(name).map(|v| v.as_bytes().to_vec()),
        HashKey::ClientIp => ctx.client.map(|ip| ip.to_string().into_bytes()),
        HashKey::Uri => Some(request.uri.to_string().into_bytes()),
    }
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: None,
            peer_is_trusted: false,
            socket_peer: None,
            client: None,
            request_id: RequestId::default(),
            host: None,
            tried: Vec::new(),
            current: None,
            upstream_started: None,
            upstream_finished: None,
            websocket_open: false,
            body_bytes: 0,
            cache: CacheState::default(),
            waf_body: None,
            waf_refused: None,
            client_allowed: false,
        }
    }

    /// Learns who the client is, answers redirects and unknown paths, and picks the route.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.shared.metrics.requests_in_flight.inc();
        // Bounds each read of the body; a zero would mean waiting forever.
        let body_timeout = self.listener.client_body_timeout;
        session.set_read_timeout((!body_timeout.is_zero()).then_some(body_timeout));
        self.identify_client(session, ctx);
        if self.refuse_malformed(session, ctx).await? {
            return Ok(true);
        }
        let listed = ctx.client.and_then(|client| {
            self.shared
                .ip_sets
                .check(client, std::time::SystemTime::now())
        });
        ctx.host = request_host(session);
        if listed == Some(List::Deny) {
            self.shared.metrics.ip_set_refused.inc();
            tracing::info!(client = ?ctx.client, request_id = ctx.request_id.as_str(), "Refused a client on the deny list.");
            self.log_refusal(session, ctx, security::DENY_LIST_RULE, "ip_deny", None);
            respond::plain(session, 403, "Forbidden.\n", ctx.request_id.as_str()).await?;
            return Ok(true);
        }
        ctx.client_allowed = listed == Some(List::Allow);
        let host = ctx.host.as_ref().and_then(|host| host.to_str().ok());
        let request_id = ctx.request_id.as_str();
        if let Some(port) = self.listener.redirect_https_port {
            respond::redirect_to_https(session, host, port, request_id).await?;
            return Ok(true);
        }
        let runtime = self.shared.runtime.load();
        let path = session.req_header().uri.path();
        let Some(route) = runtime.router.route(host, path).cloned() else {
            respond::plain(session, 404, "No route for this address.\n", request_id).await?;
            return Ok(true);
        };
        ctx.route = Some(route.clone());
        if !ctx.client_allowed && self.rate_limited(session, ctx, &route).await? {
            return Ok(true);
        }
        if let RouteTarget::Static(site) = &route.config.target {
            let headers = &route.config.set_response_headers;
            let sites = &runtime.static_sites;
            sites
                .serve(site, session, headers, ctx.request_id.as_str())
                .await?;
            return Ok(true);
        }
        if let Some(methods) = &route.config.methods
            && !methods.contains(&session.req_header().method)
        {
            respond::method_not_allowed(session, methods, ctx.request_id.as_str()).await?;
            return Ok(true);
        }
        if let Some(waf) = &route.config.waf
            && !ctx.client_allowed
            && self.firewall_refuses(session, ctx, waf).await?
        {
            return Ok(true);
        }
        if session.is_upgrade_req() {
            self.tunnel(session, ctx, &route).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Picks the next peer of the route's pool; a retry never returns to a peer already tried.
    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(entry) = Self::pool(ctx) else {
            return Error::e_explain(ErrorType::HTTPStatus(502), "the route's pool is missing");
        };
        let (pool, config) = (&entry.pool, &entry.config);
        let key = match &config.balance {
            crate::config::Balance::Hash(key) => hash_key(key, session, ctx),
            _ => None,
        };
        let selected = pool
            .select(key.as_deref(), &ctx.tried)
            .map_err(|err| Error::explain(ErrorType::HTTPStatus(503), err.to_string()))?;
        if !ctx.tried.is_empty() {
            entry.series.retries.inc();
        }
        let address = selected.peer;
        ctx.tried.push(address);
        ctx.current = Some(selected);
        ctx.upstream_started = Some(Instant::now());
        Ok(Box::new(peer_for(address, config)))
    }

    /// Tells the upstream who the client is, over which scheme, under which request id.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.cache.sent_upstream_at = Some(std::time::SystemTime::now());
        self.forwarding_headers(session, request, ctx)
    }

    /// Turns the cache on for the route's GET and HEAD requests that do not bypass it.
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        if let Some(route) = ctx.route.clone()
            && let Some(cache) = &route.config.cache
        {
            phases::enable(session, cache, &self.shared.cache_zones, &mut ctx.cache);
        }
        Ok(())
    }

    /// The route's key template applied to the request.
    fn cache_key_callback(&self, session: &Session, ctx: &mut RequestCtx) -> Result<CacheKey> {
        let Some(cache) = Self::route_cache(ctx) else {
            return Error::e_explain(ErrorType::InternalError, "the route does not cache");
        };
        let scheme = self.client_scheme(session, ctx);
        Ok(phases::key(
            cache,
            &phases::target(session, scheme, ctx.host_str()),
        ))
    }

    /// Whether the stored response may answer, by the request's directives and the route's.
    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        meta: &CacheMeta,
        _hit_handler: &mut HitHandler,
        is_fresh: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<ForcedFreshness>> {
        let Some(route) = ctx.route.clone() else {
            return Ok(None);
        };
        let Some(cache) = &route.config.cache else {
            return Ok(None);
        };
        Ok(phases::hit_filter(meta, is_fresh, cache, &mut ctx.cache))
    }

    /// `only-if-cached` with nothing usable stored is answered 504 without asking the origin.
    async fn proxy_upstream_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        if Self::route_cache(ctx).is_some() && phases::refuses_origin(&ctx.cache) {
            let request_id = ctx.request_id.as_str();
            respond::plain(session, 504, "Not in the cache.\n", request_id).await?;
            return Ok(false);
        }
        Ok(true)
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        response: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        let Some(route) = ctx.route.clone() else {
            return Ok(RespCacheable::Uncacheable(
                pingora::cache::NoCacheReason::NeverEnabled,
            ));
        };
        let Some(cache) = &route.config.cache else {
            return Ok(RespCacheable::Uncacheable(
                pingora::cache::NoCacheReason::NeverEnabled,
            ));
        };
        Ok(phases::response_cacheable(
            session,
            response,
            cache,
            &mut ctx.cache,
        ))
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        _ctx: &mut RequestCtx,
        request: &RequestHeader,
    ) -> Option<HashBinary> {
        phases::variant(meta, &request.headers)
    }

    fn should_serve_stale(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
        error: Option<&Error>,
    ) -> bool {
        Self::route_cache(ctx).is_some_and(|cache| phases::serve_stale(&ctx.cache, cache, error))
    }

    /// Drops the upstream's connection-specific fields, and keeps a validating 304's fields for
    /// the cache (before Pingora merges some of them).
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for name in hygiene::hop_by_hop_response_fields(response.status, &response.headers) {
            response.remove_header(&name);
        }
        if Self::route_cache(ctx).is_some() {
            phases::note_upstream_response(session, response, &mut ctx.cache);
        }
        Ok(())
    }

    /// Reports the peer's answer to passive health and applies the route's response rules.
    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.upstream_finished.get_or_insert_with(Instant::now);
        if let (Some(entry), Some(selected)) = (Self::pool(ctx), ctx.current.as_ref()) {
            entry.pool.report_success(selected.peer);
        }
        if Self::route_cache(ctx).is_some() {
            self.cache_answer(session, response, ctx).await?;
        }
        answer_headers(ctx.route.as_deref(), response, &ctx.request_id)
    }

    /// Counts the body as it streams; one byte over the limit ends the request with 413.
    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, |chunk| chunk.len() as u64);
        limits::check_body(ctx.body_bytes, &self.shared.limits)?;
        self.firewall_body(session, body, end_of_stream, ctx)
    }

    /// A peer that refused the connection is reported and the request tries another one.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let (Some(entry), Some(address)) = (Self::pool(ctx), peer_address(peer)) {
            entry.pool.report_failure(address);
            e.set_retry(ctx.tried.len() < entry.config.tries as usize);
        }
        e
    }

    /// After the request was sent, only an idempotent request whose body is still whole may
    /// be tried again elsewhere.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context("upstream failed while proxying");
        // A client that hung up is no fault of the peer, and there is no one left to answer.
        let upstream_at_fault = e.esource() == &ErrorSource::Upstream;
        let (Some(entry), true) = (Self::pool(ctx), upstream_at_fault) else {
            e.set_retry(false);
            return e;
        };
        if let Some(address) = peer_address(peer) {
            entry.pool.report_failure(address);
        }
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        e.set_retry(replayable && ctx.tried.len() < entry.config.tries as usize);
        e
    }

    /// Errors become 502, 503 (with Retry-After) or 504 without internal details.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let status = error_status(e);
        if let Some(rule) = ctx.waf_refused {
            if let Err(err) = respond::refused(session, rule, ctx.request_id.as_str()).await {
                tracing::debug!(error = %err, "Could not send the firewall's answer.");
            }
        } else if status > 0 {
            let request_id = ctx.request_id.as_str();
            if let Err(err) = respond::error(session, status, request_id).await {
                tracing::debug!(error = %err, "Could not send the error response.");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    /// Records the request: passive health, metrics and the access log.
    async fn logging(&self, session: &mut Session, _error: Option<&Error>, ctx: &mut RequestCtx) {
        self.shared.metrics.requests_in_flight.dec();
        let status = session
            .response_written()
            .map_or(0, |response| response.status.as_u16());
        // The request is no longer in flight on its peer.
        drop(ctx.current.take());
        let elapsed = ctx.started.elapsed();
        let upstream_time = ctx
            .upstream_started
            .map(|started| ctx.upstream_finished.unwrap_or_else(Instant::now) - started);
        let route = ctx.route.as_deref();
        let series = route.map_or(&self.shared.unrouted, |route| &route.series);
        if ctx.websocket_open {
            series.websockets_active.dec();
        }
        series.count(self.listener_index, status);
        series.duration.observe(elapsed.as_secs_f64());
        if let (Some(upstream_time), Some(entry)) = (upstream_time, Self::pool(ctx)) {
            let seconds = upstream_time.as_secs_f64();
            entry.series.upstream_duration.observe(seconds);
        }
        let cache_status = Self::route_cache(ctx).map(|cache| {
            let status = phases::status(session, &ctx.cache);
            if let Some(zone) = self.shared.cache_zones.get(&cache.zone) {
                let from_cache = matches!(status, "HIT" | "STALE" | "UPDATING" | "REVALIDATED");
                let served = if from_cache {
                    session.body_bytes_sent() as u64
                } else {
                    0
                };
                zone.series.count(status, served);
                if let Some(waited) = session.cache.lock_duration() {
                    zone.series.lock_waits.inc();
                    zone.series.lock_wait_seconds.observe(waited.as_secs_f64());
                }
            }
            status
        });
        if let Some(log) = &self.shared.access_log {
            log.write(
                &AccessRecord::new(
                    session,
                    ctx.client,
                    status,
                    ctx.request_id.as_str(),
                    ctx.tried.last().copied(),
                    upstream_time,
                    elapsed,
                    route.map_or("none", |route| route.config.label.as_str()),
                )
                .with_cache_status(cache_status),
            );
        }
    }
}

/// The route's response header rules and the request id, on an answer from a peer.
fn answer_headers(
    route: Option<&ActiveRoute>,
    response: &mut ResponseHeader,
    request_id: &RequestId,
) -> Result<()> {
    if let Some(route) = route {
        for name in &route.config.hide_response_headers {
            response.remove_header(name.as_str());
        }
        for (name, value) in &route.set_response_headers {
            response.insert_header(name.clone(), value.clone())?;
        }
    }
    response.insert_header("X-Request-Id", request_id.header_value())
}

/// How to reach one peer for one request (upgrades go through `websocket` instead).
fn peer_for(address: SocketAddr, config: &UpstreamConfig) -> HttpPeer {
    let mut peer = HttpPeer::new(address, false, String::new());
    let options = &mut peer.options;
    options.connection_timeout = Some(config.connect_timeout);
    options.total_connection_timeout = Some(config.connect_timeout);
    options.write_timeout = Some(config.write_timeout);
    options.idle_timeout = Some(config.idle_timeout);
    options.read_timeout = Some(config.read_timeout);
    if config.protocol == UpstreamProtocol::Http2 {
        options.set_http_version(2, 2);
    }
    peer
}

fn peer_address(peer: &HttpPeer) -> Option<SocketAddr> {
    peer._address.as_inet().copied()
}

/// The status a failed request is answered with; 0 when the client is gone.
fn error_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        // A body that stalled past listener.client_body_timeout, as NGINX answers it.
        ErrorType::ReadTimedout if e.esource() == &ErrorSource::Downstream => 408,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}
