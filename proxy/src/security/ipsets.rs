//! Allow and deny lists of client networks (IPv4 and IPv6 CIDRs): those the configuration
//! names, directly or in files, and those added at run time through the admin API, each with
//! a reason and, when given one, an expiry. An allowed client is neither refused nor inspected
//! by the firewall; a denied one is refused before routing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::Serialize;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum List {
    Allow,
    Deny,
}

impl List {
    pub fn as_str(self) -> &'static str {
        match self {
            List::Allow => "allow",
            List::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<List> {
        match text {
            "allow" => Some(List::Allow),
            "deny" => Some(List::Deny),
            _ => None,
        }
    }
}

/// Where an entry came from: a reload replaces the configured ones and keeps the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    /// The admin API, on this proxy or another of the fleet.
    Api,
    /// Automatic blocking (`security::autoblock`), on this proxy or another of the fleet.
    Auto,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
            Origin::Auto => "auto",
        }
    }

    pub fn parse(text: &str) -> Option<Origin> {
        match text {
            "config" => Some(Origin::Config),
            "api" => Some(Origin::Api),
            "auto" => Some(Origin::Auto),
            _ => None,
        }
    }
}

/// One network on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub network: IpNet,
    pub reason: String,
    pub expires_at: Option<SystemTime>,
    pub origin: Origin,
}

impl Entry {
    pub fn live_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|expires| expires > now)
    }
}

/// One list, keyed by prefix length, so that a lookup costs one hash probe per length in use
/// rather than a scan of every network.
#[derive(Debug, Default)]
struct Table {
    by_length: HashMap<u8, HashMap<IpNet, Entry>>,
}

impl Table {
    fn insert(&mut self, entry: Entry) {
        let network = entry.network.trunc();
        self.by_length
            .entry(network.prefix_len())
            .or_default()
            .insert(network, Entry { network, ..entry });
    }

    fn remove(&mut self, network: IpNet) -> bool {
        let network = network.trunc();
        let removed = self
            .by_length
            .get_mut(&network.prefix_len())
            .and_then(|networks| networks.remove(&network))
            .is_some();
        self.by_length.retain(|_, networks| !networks.is_empty());
        removed
    }

    fn find(&self, ip: IpAddr, now: SystemTime) -> Option<&Entry> {
        self.by_length.iter().find_map(|(length, networks)| {
            let network = IpNet::new(ip, *length).ok()?.trunc();
            networks.get(&network).filter(|entry| entry.live_at(now))
        })
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_length.values().flat_map(HashMap::values)
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        for networks in self.by_length.values_mut() {
            networks.retain(|_, entry| keep(entry));
        }
        self.by_length.retain(|_, networks| !networks.is_empty());
    }
}

/// Both lists, shared by every listener and the admin API.
#[derive(Debug, Default)]
pub struct IpSets {
    tables: RwLock<(Table, Table)>,
}

impl IpSets {
    /// The lists as the configuration names them.
    pub fn new(allow: &[IpNet], deny: &[IpNet]) -> IpSets {
        let sets = IpSets::default();
        sets.replace_configured(allow, deny);
        sets
    }

    /// Replaces the configured entries (a reload) and keeps those added at run time.
    pub fn replace_configured(&self, allow: &[IpNet], deny: &[IpNet]) {
        let mut guard = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let (allowed, denied) = &mut *guard;
        for (table, networks) in [(allowed, allow), (denied, deny)] {
            table.retain(|entry| entry.origin != Origin::Config);
            for network in networks {
                table.insert(Entry {
                    network: *network,
                    reason: "configuration".to_owned(),
                    expires_at: None,
                    origin: Origin::Config,
                });
            }
        }
    }

    /// The list `ip` is on at `now`: allow wins, so that a partner or a monitor on the allow
    /// list is never shut out by a network-wide deny.
    pub fn check(&self, ip: IpAddr, now: SystemTime) -> Option<List> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        if tables.0.find(ip, now).is_some() {
            Some(List::Allow)
        } else if tables.1.find(ip, now).is_some() {
            Some(List::Deny)
        } else {
            None
        }
    }

    /// Adds (or replaces) a network on `list`; `ttl` None keeps it until removed. The entry
    /// as stored, for the fleet to hear of.
    pub fn add(
        &self,
        list: List,
        network: IpNet,
        ttl: Option<Duration>,
        reason: &str,
        origin: Origin,
        now: SystemTime,
    ) -> Entry {
        let entry = Entry {
            network: network.trunc(),
            reason: reason.to_owned(),
            expires_at: ttl.and_then(|ttl| now.checked_add(ttl)),
            origin,
        };
        self.insert(list, entry.clone());
        entry
    }

    /// Stores an entry as another proxy of the fleet made it.
    pub fn insert(&self, list: List, entry: Entry) {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        match list {
            List::Allow => tables.0.insert(entry),
            List::Deny => tables.1.insert(entry),
        }
    }

    /// Removes a network from `list`; false when it was not there.
    pub fn remove(&self, list: List, network: IpNet) -> bool {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        match list {
            List::Allow => tables.0.remove(network),
            List::Deny => tables.1.remove(network),
        }
    }

    /// How many live entries each list holds (allow, deny).
    pub fn sizes(&self, now: SystemTime) -> (usize, usize) {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let live = |table: &Table| table.entries().filter(|entry| entry.live_at(now)).count();
        (live(&tables.0), live(&tables.1))
    }

    /// The live entries of `list`, most specific networks first; expired ones are dropped.
    pub fn entries(&self, list: List, now: SystemTime) -> Vec<Entry> {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let table = match list {
            List::Allow => &mut tables.0,
            List::Deny => &mut tables.1,
        };
        table.retain(|entry| entry.live_at(now));
        let mut entries: Vec<Entry> = table.entries().cloned().collect();
        entries.sort_by(|a, b| {
            b.network
                .prefix_len()
                .cmp(&a.network.prefix_len())
                .then_with(|| a.network.to_string().cmp(&b.network.to_string()))
        });
        entries
    }
}

/// A network as written: a CIDR, or a bare address (one host).
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        parse_network(text).expect("a network")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn networks_of_both_families_are_matched_by_prefix() {
        let now = SystemTime::now();
        let sets = IpSets::new(
            &[net("10.1.0.0/16")],
            &[
                net("203.0.113.0/24"),
                net("2001:db8::/32"),
                net("198.51.100.7"),
            ],
        );
        assert_eq!(sets.check(ip("203.0.113.200"), now), Some(List::Deny));
        assert_eq!(sets.check(ip("2001:db8:1::5"), now), Some(List::Deny));
        assert_eq!(sets.check(ip("198.51.100.7"), now), Some(List::Deny));
        assert_eq!(sets.check(ip("198.51.100.8"), now), None);
        assert_eq!(sets.check(ip("10.1.2.3"), now), Some(List::Allow));
        assert_eq!(sets.check(ip("2001:db9::1"), now), None);
    }

    #[test]
    fn allow_wins_and_runtime_entries_expire_and_survive_a_reload() {
        let now = SystemTime::now();
        let sets = IpSets::new(&[], &[net("192.0.2.0/24")]);
        sets.add(
            List::Allow,
            net("192.0.2.10"),
            None,
            "monitor",
            Origin::Api,
            now,
        );
        assert_eq!(sets.check(ip("192.0.2.10"), now), Some(List::Allow));
        sets.add(
            List::Deny,
            net("198.18.0.0/15"),
            Some(Duration::from_secs(60)),
            "scanner",
            Origin::Api,
            now,
        );
        assert_eq!(sets.check(ip("198.19.1.1"), now), Some(List::Deny));
        let later = now + Duration::from_secs(61);
        assert_eq!(sets.check(ip("198.19.1.1"), later), None, "expired");
        assert!(
            sets.entries(List::Deny, later)
                .iter()
                .all(|e| e.reason != "scanner")
        );

        sets.add(
            List::Deny,
            net("198.51.100.0/24"),
            None,
            "abuse",
            Origin::Auto,
            now,
        );
        sets.replace_configured(&[], &[]);
        assert_eq!(
            sets.check(ip("192.0.2.1"), now),
            None,
            "the configured entry went"
        );
        assert_eq!(
            sets.check(ip("198.51.100.9"), now),
            Some(List::Deny),
            "the added one stayed"
        );
        assert!(sets.remove(List::Deny, net("198.51.100.0/24")));
        assert!(!sets.remove(List::Deny, net("198.51.100.0/24")));
        assert_eq!(sets.check(ip("198.51.100.9"), now), None);
    }

    #[test]
    fn addresses_and_networks_are_read_as_written() {
        assert_eq!(parse_network("203.0.113.5"), Some(net("203.0.113.5/32")));
        assert_eq!(parse_network(" 2001:db8::1 "), Some(net("2001:db8::1/128")));
        assert_eq!(
            parse_network("203.0.113.5/24").map(|n| n.trunc()),
            Some(net("203.0.113.0/24"))
        );
        for bad in ["", "203.0.113", "10.0.0.0/33", "example.com", "::/129"] {
            assert_eq!(parse_network(bad), None, "{bad}");
        }
    }
}
