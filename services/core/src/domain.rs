//! Domain types of the charging network, parsed at the edges and trusted inside.
//!
//! Wire formats (OCPP, OCPI, the API) and database rows convert into these with `FromStr` or
//! `TryFrom<String>`; once a value has one of these types it is known to be valid, so nothing
//! downstream checks it again. Each parse error names the value and what a valid one looks like.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest OCPP identity: OCPP 1.6 has no limit, OCPP 2.0.1 allows 48, so 48 works with both.
const MAX_CHARGE_POINT_ID_LEN: usize = 48;

/// The identity a charger connects with (the last path segment of `/ocpp/{chargePointId}`).
///
/// 1 to 48 visible ASCII characters without `/`. Spaces are refused as well: they do not
/// survive URL paths and logs unambiguously, and MySQL ignores trailing spaces when comparing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChargePointId(String);

/// Why a text is not a [`ChargePointId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a valid charge point identity: {reason}; OCPP identities are 1 to 48 visible ASCII characters without `/` or spaces"
)]
pub struct InvalidChargePointId {
    /// The refused text, shortened when it is very long.
    pub value: String,
    pub reason: &'static str,
}

impl ChargePointId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(text: &str) -> Result<(), &'static str> {
        if text.is_empty() {
            return Err("it is empty");
        }
        if text.len() > MAX_CHARGE_POINT_ID_LEN {
            return Err("it is longer than 48 characters");
        }
        if text.contains('/') {
            return Err("it contains `/`");
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("it contains a space, a control character or non-ASCII text");
        }
        Ok(())
    }
}

impl TryFrom<String> for ChargePointId {
    type Error = InvalidChargePointId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        match ChargePointId::check(&text) {
            Ok(()) => Ok(ChargePointId(text)),
            Err(reason) => Err(InvalidChargePointId {
                value: shorten(&text),
                reason,
            }),
        }
    }
}

impl FromStr for ChargePointId {
    type Err = InvalidChargePointId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ChargePointId::try_from(text.to_string())
    }
}

impl From<ChargePointId> for String {
    fn from(id: ChargePointId) -> String {
        id.0
    }
}

impl AsRef<str> for ChargePointId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChargePointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keeps error messages readable when someone sends a megabyte where an identifier belongs.
fn shorten(text: &str) -> String {
    const KEEP: usize = 64;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// An amount of energy, or a meter reading, in watt-hours.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct EnergyWh(pub i64);

impl EnergyWh {
    /// Energy between two meter readings; `None` when it would overflow (a garbage reading).
    pub fn since(self, earlier: EnergyWh) -> Option<EnergyWh> {
        self.0.checked_sub(earlier.0).map(EnergyWh)
    }
}

impl fmt::Display for EnergyWh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Wh", self.0)
    }
}

/// An ISO 3166-1 alpha-3 country code such as `ESP`, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 3]);

/// Why a text is not a [`CountryCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ISO 3166-1 alpha-3 country code; use three letters such as ESP or PRT")]
pub struct InvalidCountryCode(pub String);

impl CountryCode {
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for CountryCode {
    type Err = InvalidCountryCode;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|l| l.is_ascii_alphabetic()) => Ok(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err(InvalidCountryCode(shorten(text))),
        }
    }
}

impl TryFrom<String> for CountryCode {
    type Error = InvalidCountryCode;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<CountryCode> for String {
    fn from(code: CountryCode) -> String {
        code.as_str().to_string()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text is not one of the values a closed set allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}; use one of {expected}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    /// The allowed spellings, listed for the reader.
    pub expected: String,
}

/// A closed set of values with one spelling each, shared by the database, the wire and logs.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownValue {
                        kind: $kind,
                        value: shorten(text),
                        expected: [$(concat!("`", $text, "`")),+].join(", "),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// What a Back Office operator may do.
    Role, "operator role" {
        /// Everything, including managing operators and API keys.
        Admin = "admin",
        /// Day-to-day operation: chargers, tokens, transactions.
        Operator = "operator",
        /// Read only.
        Viewer = "viewer",
    }
}

text_enum! {
    /// Whether the central system accepts a charger (OCPP RegistrationStatus).
    RegistrationStatus, "registration status" {
        Accepted = "Accepted",
        Pending = "Pending",
        Rejected = "Rejected",
    }
}

text_enum! {
    /// Whether an ID token may start charging (the OCPP 1.6 AuthorizationStatus subset we store).
    IdTokenStatus, "ID token status" {
        Accepted = "Accepted",
        Blocked = "Blocked",
        Expired = "Expired",
        Invalid = "Invalid",
    }
}

text_enum! {
    /// How a connector is offered (OCPI ConnectorFormat).
    ConnectorFormat, "connector format" {
        /// The driver brings the cable.
        Socket = "SOCKET",
        /// The cable is attached to the charger.
        Cable = "CABLE",
    }
}

text_enum! {
    /// The kind of current a connector delivers (OCPI PowerType, without the rarely used
    /// split-phase variants).
    PowerType, "power type" {
        Ac1Phase = "AC_1_PHASE",
        Ac3Phase = "AC_3_PHASE",
        Dc = "DC",
    }
}

text_enum! {
    /// How an audited action ended.
    AuditOutcome, "audit outcome" {
        Success = "success",
        /// Refused by authorization or validation.
        Denied = "denied",
        /// Attempted and failed.
        Failure = "failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_point_ids_follow_the_ocpp_rules() {
        for good in ["CP-1", "DEMO-CP-1", "a", &"x".repeat(48), "Zz_09.~:@!"] {
            let id: ChargePointId = good.parse().expect("valid identity");
            assert_eq!(id.as_str(), good);
        }
        for (bad, reason) in [
            ("", "empty"),
            (&"x".repeat(49) as &str, "longer than 48"),
            ("a/b", "`/`"),
            ("a b", "space"),
            ("é", "non-ASCII"),
            ("a\nb", "control"),
        ] {
            let err = bad.parse::<ChargePointId>().expect_err("invalid identity");
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn long_bad_values_are_shortened_in_messages() {
        let err = "/"
            .repeat(10_000)
            .parse::<ChargePointId>()
            .expect_err("bad");
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn country_codes_are_three_letters_upper_cased() {
        assert_eq!("esp".parse::<CountryCode>().expect("valid").as_str(), "ESP");
        for bad in ["ES", "ESPA", "E1P", "ÉSP"] {
            let err = bad.parse::<CountryCode>().expect_err("invalid");
            assert!(err.to_string().contains("alpha-3"), "{err}");
        }
    }

    #[test]
    fn text_enums_round_trip_and_name_the_allowed_values() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        for status in RegistrationStatus::ALL {
            assert_eq!(
                status.to_string().parse::<RegistrationStatus>(),
                Ok(*status)
            );
        }
        let err = "Admin".parse::<Role>().expect_err("case matters");
        assert_eq!(
            err.to_string(),
            "\"Admin\" is not a valid operator role; use one of `admin`, `operator`, `viewer`"
        );
        assert_eq!(
            serde_json::to_string(&PowerType::Ac3Phase).expect("serializes"),
            "\"AC_3_PHASE\""
        );
    }

    #[test]
    fn energy_since_refuses_overflow() {
        assert_eq!(EnergyWh(1500).since(EnergyWh(1000)), Some(EnergyWh(500)));
        assert_eq!(EnergyWh(i64::MIN).since(EnergyWh(1)), None);
        assert_eq!(EnergyWh(7).to_string(), "7 Wh");
    }
}
