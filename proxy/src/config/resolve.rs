//! Upstream host names resolved again while the proxy runs. The app tier sits behind an internal
//! ALB whose addresses change over time; a name resolved only at start would slowly go stale
//! (NGINX's classic trap). Every address a name resolves to is a peer of its own.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{PeerConfig, ProxyConfig};

/// Resolves every named peer again; `Some` with the new configuration when any pool's set of
/// addresses changed. A name that fails to resolve keeps its last addresses (a DNS hiccup must
/// not empty a pool).
pub async fn refresh_addresses(config: &ProxyConfig) -> Option<ProxyConfig> {
    let mut fresh: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    for peer in config.upstreams.values().flat_map(|u| &u.peers) {
        let Some(name) = &peer.name else { continue };
        if fresh.contains_key(name) {
            continue;
        }
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(addresses) => {
                let mut all: Vec<SocketAddr> = addresses.collect();
                all.sort();
                all.dedup();
                if !all.is_empty() {
                    fresh.insert(name.clone(), all);
                }
            }
            Err(err) => {
                tracing::warn!(name = %name, error = %err, "Resolving an upstream name failed; keeping its last addresses.");
            }
        }
    }
    let mut changed = false;
    let mut updated = config.clone();
    for upstream in updated.upstreams.values_mut() {
        let mut peers: Vec<PeerConfig> = Vec::with_capacity(upstream.peers.len());
        for peer in &upstream.peers {
            match peer.name.as_ref().and_then(|name| fresh.get(name)) {
                None => peers.push(peer.clone()),
                Some(addresses) => {
                    let already = peers.iter().any(|p| p.name == peer.name);
                    if !already {
                        peers.extend(addresses.iter().map(|&address| PeerConfig {
                            address,
                            ..peer.clone()
                        }));
                    }
                }
            }
        }
        let before: Vec<SocketAddr> = upstream.peers.iter().map(|p| p.address).collect();
        let after: Vec<SocketAddr> = peers.iter().map(|p| p.address).collect();
        if before != after {
            tracing::info!(upstream = %upstream.name, ?before, ?after, "Upstream addresses changed.");
            changed = true;
            upstream.peers = peers;
        }
    }
    changed.then_some(updated)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[tokio::test]
    async fn a_named_peer_becomes_every_address_and_stays_when_unchanged() {
        let config = ProxyConfig::parse(
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[upstreams.app]\npeers = [{ address = \"localhost:8101\" }, { address = \"127.0.0.2:8101\" }]\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
            Path::new("proxy.toml"),
        )
        .expect("valid");
        let peers = &config.upstreams["app"].peers;
        assert!(
            peers
                .iter()
                .any(|p| p.name.as_deref() == Some("localhost:8101"))
        );
        assert!(peers.iter().any(|p| p.name.is_none()));
        assert!(
            refresh_addresses(&config).await.is_none(),
            "nothing changed"
        );

        let mut stale = config.clone();
        if let Some(upstream) = stale.upstreams.get_mut("app") {
            for peer in upstream.peers.iter_mut().filter(|p| p.name.is_some()) {
                peer.address = "10.255.255.1:8101".parse().expect("valid");
            }
        }
        let refreshed = refresh_addresses(&stale)
            .await
            .expect("the stale address is replaced");
        let addresses: Vec<_> = refreshed.upstreams["app"]
            .peers
            .iter()
            .map(|p| p.address)
            .collect();
        let original: Vec<_> = config.upstreams["app"]
            .peers
            .iter()
            .map(|p| p.address)
            .collect();
        assert_eq!(addresses, original);
    }
}
