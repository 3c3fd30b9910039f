//! The admin listener (loopback by default): `/healthz`, `/readyz`, `/metrics` and `/status`;
//! `POST /cache/purge`, which with `[fleet]` configured reaches every proxy of the web tier;
//! and `/ip-sets`, the firewall's allow and deny lists. The last two need the bearer token of
//! `admin.token_file`. It is never exposed to the
//! internet.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{Response, StatusCode, header};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Serialize;

use crate::cache::purge::PurgeRule;
use crate::cache::zones::CacheZones;
use crate::fleet::Fleet;
use crate::metrics::ProxyMetrics;
use crate::proxy::Runtime;
use crate::security::ipsets::{IpSets, List, Origin, parse_network};

/// Admin requests carry a small JSON object; anything longer is refused unread.
const MAX_BODY: usize = 16 * 1024;

/// A change to an IP set, as `POST` and `DELETE /ip-sets` send it.
#[derive(Debug)]
struct IpSetChange {
    list: List,
    network: ipnet::IpNet,
    ttl: Option<std::time::Duration>,
    reason: String,
}

impl IpSetChange {
    fn from_json(body: &[u8]) -> Result<IpSetChange, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            list: String,
            network: String,
            ttl: Option<String>,
            reason: Option<String>,
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|err| {
            format!("the body must be JSON like {{\"list\": \"deny\", \"network\": \"203.0.113.0/24\", \"ttl\": \"1h\", \"reason\": \"scanner\"}}: {err}")
        })?;
        let list = List::parse(&raw.list)
            .ok_or_else(|| format!("list {:?} is neither \"allow\" nor \"deny\"", raw.list))?;
        let network = parse_network(&raw.network).ok_or_else(|| {
            format!(
                "network {:?} is not an address or a CIDR like \"203.0.113.0/24\"",
                raw.network
            )
        })?;
        let ttl = raw
            .ttl
            .map(|ttl| {
                humantime::parse_duration(&ttl).map_err(|err| {
                    format!("ttl {ttl:?} is not a duration like \"30m\" or \"1h\": {err}")
                })
            })
            .transpose()?;
        Ok(IpSetChange {
            list,
            network,
            ttl,
            reason: raw.reason.unwrap_or_default().chars().take(200).collect(),
        })
    }
}

#[derive(Debug)]
pub struct AdminApp {
    runtime: Arc<ArcSwap<Runtime>>,
    metrics: ProxyMetrics,
    cache_zones: Arc<CacheZones>,
    token: Option<String>,
    fleet: Option<Arc<Fleet>>,
    ip_sets: Arc<IpSets>,
}

impl AdminApp {
    pub fn new(
        runtime: Arc<ArcSwap<Runtime>>,
        metrics: ProxyMetrics,
        cache_zones: Arc<CacheZones>,
        token: Option<String>,
        fleet: Option<Arc<Fleet>>,
        ip_sets: Arc<IpSets>,
    ) -> AdminApp {
        AdminApp {
            runtime,
            metrics,
            cache_zones,
            token,
            fleet,
            ip_sets,
        }
    }

    /// The answer to a request that may not change the proxy, or `None` when it may.
    fn refusal(&self, session: &ServerSession, what: &str) -> Option<Response<Vec<u8>>> {
        if self.token.is_none() {
            return Some(problem(
                StatusCode::FORBIDDEN,
                &format!("{what} are off: set admin.token_file in the proxy's configuration"),
            ));
        }
        (!self.authorized(session)).then(|| {
            problem(
                StatusCode::UNAUTHORIZED,
                "send the admin token as Authorization: Bearer TOKEN",
            )
        })
    }

    /// The request's body, up to `MAX_BODY`.
    async fn body(session: &mut ServerSession) -> Result<Vec<u8>, Response<Vec<u8>>> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_BODY {
                        return Err(problem(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "the body is over 16 KiB",
                        ));
                    }
                }
                Ok(None) => return Ok(body),
                Err(err) => {
                    return Err(problem(
                        StatusCode::BAD_REQUEST,
                        &format!("reading the body: {err}"),
                    ));
                }
            }
        }
    }

    /// `GET /ip-sets` lists both lists; `POST` adds a network to one (with a reason and an
    /// optional `ttl`), `DELETE` removes one.
    async fn ip_sets(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if let Some(refusal) = self.refusal(session, "IP set changes") {
            return refusal;
        }
        let now = SystemTime::now();
        let method = session.req_header().method.clone();
        if method == http::Method::GET {
            let listed = |list| {
                self.ip_sets
                    .entries(list, now)
                    .into_iter()
                    .map(|entry| {
                        serde_json::json!({
                            "network": entry.network.to_string(),
                            "reason": entry.reason,
                            "origin": entry.origin,
                            "expires_in_seconds": entry.expires_at
                                .and_then(|at| at.duration_since(now).ok())
                                .map(|left| left.as_secs()),
                        })
                    })
                    .collect::<Vec<_>>()
            };
            let body =
                serde_json::json!({ "allow": listed(List::Allow), "deny": listed(List::Deny) });
            return reply(
                StatusCode::OK,
                "application/json",
                body.to_string().into_bytes(),
            );
        }
        if method != http::Method::POST && method != http::Method::DELETE {
            return problem(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE");
        }
        let body = match Self::body(session).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let change = match IpSetChange::from_json(&body) {
            Ok(change) => change,
            Err(why) => return problem(StatusCode::BAD_REQUEST, &why),
        };
        if method == http::Method::DELETE {
            let removed = self.ip_sets.remove(change.list, change.network);
            tracing::info!(list = change.list.as_str(), network = %change.network, removed, "Removed a network from an IP set.");
            self.observe_ip_sets();
            // Told to the fleet even when this proxy did not have it: another may.
            if let Some(fleet) = &self.fleet
                && let Err(err) = fleet
                    .publish_ip_set_remove(change.list, change.network)
                    .await
            {
                return fleet_not_told(
                    &format!(
                        "removed {} from this proxy's {} list",
                        change.network,
                        change.list.as_str()
                    ),
                    &err,
                );
            }
            let status = if removed || self.fleet.is_some() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            let body = serde_json::json!({ "removed": removed });
            return reply(status, "application/json", body.to_string().into_bytes());
        }
        let entry = self.ip_sets.add(
            change.list,
            change.network,
            change.ttl,
            &change.reason,
            Origin::Api,
            now,
        );
        tracing::info!(
            list = change.list.as_str(),
            network = %change.network,
            ttl = ?change.ttl,
            reason = %change.reason,
            "Added a network to an IP set."
        );
        self.observe_ip_sets();
        if let Some(fleet) = &self.fleet
            && let Err(err) = fleet.publish_ip_set_add(change.list, &entry).await
        {
            return fleet_not_told(
                &format!(
                    "added {} to this proxy's {} list",
                    change.network,
                    change.list.as_str()
                ),
                &err,
            );
        }
        let body = serde_json::json!({
            "list": change.list,
            "network": change.network.to_string(),
            "expires_in_seconds": change.ttl.map(|ttl| ttl.as_secs()),
        });
        reply(
            StatusCode::CREATED,
            "application/json",
            body.to_string().into_bytes(),
        )
    }

    fn observe_ip_sets(&self) {
        let (allow, deny) = self.ip_sets.sizes(SystemTime::now());
        self.metrics.observe_ip_sets(allow, deny);
    }

    /// Whether the request carries the admin token; compared in constant time.
    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let presented = session
            .req_header()
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        presented.len() == token.len()
            && presented
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    async fn purge(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if session.req_header().method != http::Method::POST {
            return problem(StatusCode::METHOD_NOT_ALLOWED, "purges are POST requests");
        }
        if let Some(refusal) = self.refusal(session, "purges") {
            return refusal;
        }
        let body = match Self::body(session).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let rule = match PurgeRule::from_json(&body) {
            Ok(rule) => rule,
            Err(err) => return problem(StatusCode::BAD_REQUEST, &err.to_string()),
        };
        let removed = self.cache_zones.purge_where(|url| rule.matches(url)).await;
        tracing::info!(?rule, removed, "Purged cached objects.");
        self.cache_zones.observe();
        let mut body = serde_json::json!({ "removed": removed });
        if let Some(fleet) = &self.fleet {
            match fleet.publish_purge(&rule).await {
                Ok(entry) => body["fleet_entry"] = entry.into(),
                Err(err) => {
                    tracing::error!(?rule, error = %err, "A purge did not reach the fleet.");
                    let status = StatusCode::SERVICE_UNAVAILABLE;
                    let body = serde_json::json!({
                        "status": status.as_u16(),
                        "detail": format!("removed {removed} objects from this proxy, but the other proxies were not told: {err}; send the purge again once Redis answers"),
                        "removed": removed,
                    });
                    return reply(
                        status,
                        "application/problem+json",
                        body.to_string().into_bytes(),
                    );
                }
            }
        }
        reply(
            StatusCode::OK,
            "application/json",
            body.to_string().into_bytes(),
        )
    }
}

/// 503 for a change that acted on this proxy but did not reach Redis.
fn fleet_not_told(done: &str, err: &crate::fleet::FleetError) -> Response<Vec<u8>> {
    tracing::error!(error = %err, "An IP-set change did not reach the fleet: {done}.");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "{done}, but the other proxies were not told: {err}; send the change again once Redis answers"
        ),
    )
}

fn problem(status: StatusCode, detail: &str) -> Response<Vec<u8>> {
    let body = serde_json::json!({ "status": status.as_u16(), "detail": detail });
    reply(
        status,
        "application/problem+json",
        body.to_string().into_bytes(),
    )
}

#[derive(Debug, Serialize)]
struct PoolReport {
    name: String,
    usable_peers: usize,
    peers: Vec<PeerReport>,
}

#[derive(Debug, Serialize)]
struct PeerReport {
    address: String,
    weight: u32,
    backup: bool,
    healthy: bool,
    ejected: bool,
    in_flight: usize,
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = response.body().len().to_string().parse() {
        response.headers_mut().insert(header::CONTENT_LENGTH, value);
    }
    response
}

impl AdminApp {
    fn pools(&self) -> Vec<PoolReport> {
        let runtime = self.runtime.load();
        let mut reports: Vec<PoolReport> = runtime
            .pools
            .values()
            .map(|entry| {
                let peers: Vec<PeerReport> = entry
                    .pool
                    .status()
                    .into_iter()
                    .map(|peer| PeerReport {
                        address: peer.address.to_string(),
                        weight: peer.weight,
                        backup: peer.backup,
                        healthy: peer.healthy,
                        ejected: peer.ejected,
                        in_flight: peer.in_flight,
                    })
                    .collect();
                PoolReport {
                    name: entry.pool.name().to_string(),
                    usable_peers: peers.iter().filter(|p| p.healthy && !p.ejected).count(),
                    peers,
                }
            })
            .collect();
        reports.sort_by(|a, b| a.name.cmp(&b.name));
        reports
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/healthz" => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            // Not ready only when no pool can take traffic: this instance then serves nothing
            // and the load balancer should send elsewhere. One pool down is the app tier's
            // problem, which every instance shares: taking them all out would turn a partial
            // outage into a total one, so that is reported as degraded, still 200.
            "/readyz" => {
                let pools = self.pools();
                let usable = pools.iter().filter(|pool| pool.usable_peers > 0).count();
                let ready = pools.is_empty() || usable > 0;
                let body = serde_json::json!({
                    "ready": ready,
                    "degraded": usable < pools.len(),
                    "pools": pools,
                });
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                reply(status, "application/json", body.to_string().into_bytes())
            }
            "/status" => {
                let body = serde_json::json!({ "pools": self.pools() });
                reply(
                    StatusCode::OK,
                    "application/json",
                    body.to_string().into_bytes(),
                )
            }
            "/cache/purge" => self.purge(session).await,
            "/ip-sets" => self.ip_sets(session).await,
            "/metrics" => {
                self.cache_zones.observe();
                self.observe_ip_sets();
                let pools = self.runtime.load().all_pools();
                reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(&pools).into_bytes(),
                )
            }
            _ => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
