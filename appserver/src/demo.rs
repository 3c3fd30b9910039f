//! The demo data of `voltfleet up`: one location with two chargers, an RFID token, an operator
//! and an API key. Seeding looks each item up by its natural key first, so running `up` again
//! finds what the first run made and duplicates nothing.
//!
//! These credentials are well known on purpose; only `up` creates them, never `serve`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use voltfleet_core::credentials::{ApiKey, hash_password};
use voltfleet_core::domain::{
    AuditOutcome, ConnectorFormat, CountryCode, IdTokenStatus, PowerType, RegistrationStatus, Role,
};
use voltfleet_core::storage::{
    Database, NewApiKey, NewAuditEntry, NewChargePoint, NewConnector, NewEvse, NewIdToken,
    NewLocation, NewOperator,
};

const LOCATION: &str = "Demo Plaza";
const CHARGE_POINTS: [&str; 2] = ["DEMO-CP-1", "DEMO-CP-2"];
const DEMO_PASSWORD: &str = "voltfleet-demo";
const ID_TOKEN: &str = "DEMO-TAG-1";
const OPERATOR_EMAIL: &str = "admin@example.com";
const API_KEY_NAME: &str = "demo";
/// The plain demo API key is kept here (mode 0600) so later runs can print it again; the
/// database holds only its hash.
const API_KEY_FILE: &str = "demo-api-key";
/// The API's token secret when `api.token_secret` is not configured (mode 0600), so that
/// access tokens survive a restart of `up`.
const TOKEN_SECRET_FILE: &str = "api-token-secret";

/// What the banner tells the person who ran `voltfleet up`.
#[derive(Debug)]
pub struct DemoData {
    pub location: &'static str,
    pub charge_points: [&'static str; 2],
    pub charger_password: &'static str,
    pub id_token: &'static str,
    pub operator_email: &'static str,
    pub operator_password: &'static str,
    pub api_key: String,
}

/// Creates whatever part of the demo data is missing.
pub async fn seed(db: &Database, data_dir: &Path) -> anyhow::Result<DemoData> {
    let mut created = Vec::new();

    let location_id = match db.locations().find_by_name(LOCATION).await? {
        Some(location) => location.id,
        None => {
            created.push(format!("location {LOCATION}"));
            db.locations()
                .create(&NewLocation {
                    name: LOCATION.into(),
                    address: "Paseo de la Castellana 1".into(),
                    city: "Madrid".into(),
                    postal_code: "28046".into(),
                    country: "ESP".parse::<CountryCode>()?,
                    latitude: 40.4273,
                    longitude: -3.6913,
                    time_zone: "Europe/Madrid".into(),
                    opening_hours: Some(r#"{"twentyfourseven":true}"#.into()),
                    tariff_text: Some("0.39 EUR/kWh, 0.05 EUR/min after 4 h".into()),
                })
                .await?
        }
    };

    for identity in CHARGE_POINTS {
        if db
            .charge_points()
            .find_by_identity(&identity.parse()?)
            .await?
            .is_some()
        {
            continue;
        }
        created.push(format!("charge point {identity}"));
        seed_charge_point(db, identity, location_id).await?;
    }

    if db.id_tokens().find(ID_TOKEN).await?.is_none() {
        created.push(format!("id token {ID_TOKEN}"));
        db.id_tokens()
            .create(&NewIdToken {
                token: ID_TOKEN.into(),
                token_type: "RFID".into(),
                status: IdTokenStatus::Accepted,
                expires_at: None,
                group_token: None,
                driver_id: None,
                label: None,
            })
            .await?;
    }

    let operator_id = match db.operators().find_by_email(OPERATOR_EMAIL).await? {
        Some(operator) => operator.id,
        None => {
            created.push(format!("operator {OPERATOR_EMAIL}"));
            db.operators()
                .create(&NewOperator {
                    email: OPERATOR_EMAIL.into(),
                    display_name: "Demo Administrator".into(),
                    password_hash: hash_password(DEMO_PASSWORD)?,
                    role: Role::Admin,
                })
                .await?
        }
    };

    let api_key = demo_api_key(db, data_dir, operator_id, &mut created).await?;

    if !created.is_empty() {
        db.audit()
            .record(&NewAuditEntry {
                occurred_at: Utc::now(),
                actor: "voltfleet up".into(),
                action: "demo.seed".into(),
                target: "demo data".into(),
                details: serde_json::json!({ "created": created }),
                outcome: AuditOutcome::Success,
            })
            .await?;
        tracing::info!(created = ?created, "Created the demo data.");
    }

    Ok(DemoData {
        location: LOCATION,
        charge_points: CHARGE_POINTS,
        charger_password: DEMO_PASSWORD,
        id_token: ID_TOKEN,
        operator_email: OPERATOR_EMAIL,
        operator_password: DEMO_PASSWORD,
        api_key,
    })
}

/// A charger with two AC EVSEs of one Type 2 socket each, 22 kW.
async fn seed_charge_point(db: &Database, identity: &str, location_id: i64) -> anyhow::Result<()> {
    let charge_point_id = db
        .charge_points()
        .create(&NewChargePoint {
            identity: identity.parse()?,
            location_id: Some(location_id),
            ocpp_password_hash: Some(hash_password(DEMO_PASSWORD)?),
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    for evse_number in 1..=2 {
        let evse_id = db
            .charge_points()
            .add_evse(&NewEvse {
                charge_point_id,
                evse_number,
            })
            .await?;
        db.charge_points()
            .add_connector(&NewConnector {
                evse_id,
                connector_number: 1,
                standard: "IEC_62196_T2".into(),
                format: ConnectorFormat::Socket,
                power_type: PowerType::Ac3Phase,
                max_voltage: 400,
                max_amperage: 32,
                max_power_w: Some(22_000),
            })
            .await?;
    }
    Ok(())
}

/// The demo API key: the one a previous run stored, if it is still valid, else a new one.
async fn demo_api_key(
    db: &Database,
    data_dir: &Path,
    operator_id: i64,
    created: &mut Vec<String>,
) -> anyhow::Result<String> {
    let path = data_dir.join(API_KEY_FILE);
    if let Ok(stored) = std::fs::read_to_string(&path) {
        let stored = stored.trim();
        if let Ok(key) = ApiKey::parse(stored)
            && let Some(record) = db.api_keys().find_by_prefix(key.prefix()).await?
            && !record.is_revoked()
            && key.matches(&record.key_hash)
        {
            return Ok(stored.to_string());
        }
    }
    let (plain, prefix, key_hash) = ApiKey::generate();
    db.api_keys()
        .create(&NewApiKey {
            name: API_KEY_NAME.into(),
            prefix,
            key_hash,
            scopes: vec!["locations:read".into()],
            operator_id: Some(operator_id),
            driver_id: None,
        })
        .await?;
    write_private(&path, &plain)
        .with_context(|| format!("saving the demo API key to {}", path.display()))?;
    created.push("API key".into());
    Ok(plain)
}

/// `api.token_secret` for `voltfleet up` when none is configured: the one a previous run kept
/// under `data_dir`, else 48 new random bytes (hex), kept there.
pub fn token_secret(data_dir: &Path) -> anyhow::Result<secrecy::SecretString> {
    let path = data_dir.join(TOKEN_SECRET_FILE);
    if let Ok(stored) = std::fs::read_to_string(&path) {
        let stored = stored.trim();
        if stored.len() >= voltfleet_core::config::MIN_TOKEN_SECRET_BYTES {
            return Ok(stored.to_owned().into());
        }
    }
    let secret = voltfleet_core::credentials::random_secret_hex(48);
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    write_private(&path, &secret)
        .with_context(|| format!("saving the API token secret to {}", path.display()))?;
    Ok(secret.into())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{contents}")
}
