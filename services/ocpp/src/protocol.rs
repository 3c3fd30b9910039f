//! The OCPP versions this central system speaks, and choosing one from what a charger offers in
//! `Sec-WebSocket-Protocol`.

/// A version of OCPP-J, identified on the wire by its WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcppVersion {
    V16,
}

impl OcppVersion {
    /// Every version spoken here, the preferred (newest) first.
    pub const SUPPORTED: [OcppVersion; 1] = [OcppVersion::V16];

    pub fn subprotocol(self) -> &'static str {
        match self {
            OcppVersion::V16 => "ocpp1.6",
        }
    }

    /// The version number as stored with the charger (`1.6`).
    pub fn number(self) -> &'static str {
        match self {
            OcppVersion::V16 => "1.6",
        }
    }
}

/// What the charger offered, and the choice made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub version: OcppVersion,
    /// The offered token exactly as the charger spelled it: the answer must repeat one of the
    /// offered values, and some chargers write `OCPP1.6`.
    pub token: String,
}

/// Picks the preferred supported version among the comma-separated subprotocols offered;
/// `None` when none is supported (or nothing was offered).
pub fn negotiate(offered: Option<&str>) -> Option<Negotiated> {
    let offered: Vec<&str> = offered
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .collect();
    OcppVersion::SUPPORTED.into_iter().find_map(|version| {
        offered
            .iter()
            .find(|token| token.eq_ignore_ascii_case(version.subprotocol()))
            .map(|token| Negotiated {
                version,
                token: (*token).to_owned(),
            })
    })
}

/// The list of subprotocols spoken here, for messages.
pub fn supported_list() -> String {
    OcppVersion::SUPPORTED
        .iter()
        .map(|version| version.subprotocol())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supported_version_is_chosen_from_the_offer() {
        let chosen = |offer| negotiate(offer).map(|n| (n.version, n.token));
        assert_eq!(
            chosen(Some("ocpp2.0.1, ocpp1.6")),
            Some((OcppVersion::V16, "ocpp1.6".into()))
        );
        assert_eq!(
            chosen(Some("OCPP1.6")),
            Some((OcppVersion::V16, "OCPP1.6".into())),
            "the charger's own spelling is answered"
        );
        assert_eq!(chosen(Some("ocpp1.5, ocpp2.0.1")), None);
        assert_eq!(chosen(Some("")), None);
        assert_eq!(chosen(None), None);
    }
}
