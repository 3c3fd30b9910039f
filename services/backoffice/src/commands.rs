//! The OCPP 1.6 commands an operator sends from a charger's page: one form each, read and
//! checked here (each problem next to its field), built as the typed request of
//! `voltfleet_core::ocpp::v16`, sent with `ChargerCommands`, and the charger's answer — or why
//! there is none: offline, timeout, refused with a CALLERROR — shown on the page and written
//! to the audit log, as is a form refused for its problems.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{AuditOutcome, ChargePointId};
use voltfleet_core::ocpp::commands::{ChargerCommands, CommandError};
use voltfleet_core::ocpp::v16::{
    Action, AuthorizationData, AuthorizationStatus, AvailabilityType, CancelReservationRequest,
    CentralSystemRequest, ChangeAvailabilityRequest, ChangeConfigurationRequest, ChargingProfile,
    ChargingProfileKind, ChargingProfilePurpose, ChargingRateUnit, ChargingSchedule,
    ChargingSchedulePeriod, ClearCacheRequest, ClearChargingProfileRequest,
    GetConfigurationRequest, GetDiagnosticsRequest, IdTagInfo, MessageTrigger, RecurrencyKind,
    RemoteStartTransactionRequest, RemoteStopTransactionRequest, ReserveNowRequest, ResetRequest,
    ResetType, SendLocalListRequest, SetChargingProfileRequest, TriggerMessageRequest,
    UnlockConnectorRequest, UpdateFirmwareRequest, UpdateType,
};
use voltfleet_core::storage::{NewReservation, ReservationStatus};

use crate::audit;
use crate::charge_points::{self, Shown};
use crate::error::PageError;
use crate::forms::{Fields, Problems, Reader};
use crate::session::Operating;

/// The key under which problems of the whole form (not one field) are kept.
pub const FORM_PROBLEM: &str = "_form";
/// Most keys one GetConfiguration asks for, and entries one SendLocalList carries.
const MAX_KEYS: usize = 100;
const MAX_LIST_ENTRIES: usize = 500;

/// One field of a command form.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    /// `number`, `decimal`, `text`, `datetime`, `url`, `textarea` or `select`.
    pub input: &'static str,
    pub options: &'static [&'static str],
    pub required: bool,
    pub hint: &'static str,
}

const fn field(
    name: &'static str,
    label: &'static str,
    input: &'static str,
    required: bool,
    hint: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        label,
        input,
        options: &[],
        required,
        hint,
    }
}

const fn select(
    name: &'static str,
    label: &'static str,
    options: &'static [&'static str],
    required: bool,
    hint: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        label,
        input: "select",
        options,
        required,
        hint,
    }
}

/// A command form.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// The path segment: `/commands/{slug}`.
    pub slug: &'static str,
    pub title: &'static str,
    pub help: &'static str,
    pub fields: &'static [FieldSpec],
}

const CONNECTOR: FieldSpec = field("connector_id", "Connector", "number", true, "1, 2, …");
const CONNECTOR_OR_ALL: FieldSpec = field(
    "connector_id",
    "Connector",
    "number",
    true,
    "0 is the whole charger",
);
const ID_TAG: FieldSpec = field("id_tag", "ID tag", "text", true, "up to 20 characters");
const PURPOSES: &[&str] = &["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"];

/// Every command, in the order of the page.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        slug: "unlock-connector",
        title: "Unlock connector",
        help: "Releases the cable of a connector, such as when a driver cannot unplug.",
        fields: &[CONNECTOR],
    },
    CommandSpec {
        slug: "reset",
        title: "Reset",
        help: "Soft stops transactions and restarts the software; Hard reboots the charger.",
        fields: &[select("type", "Type", &["Soft", "Hard"], true, "")],
    },
    CommandSpec {
        slug: "change-availability",
        title: "Change availability",
        help: "Takes a connector (or the whole charger) out of service, or back in.",
        fields: &[
            CONNECTOR_OR_ALL,
            select(
                "type",
                "Availability",
                &["Operative", "Inoperative"],
                true,
                "",
            ),
        ],
    },
    CommandSpec {
        slug: "remote-start",
        title: "Remote start",
        help: "Starts a transaction for an ID tag.",
        fields: &[
            field(
                "connector_id",
                "Connector",
                "number",
                false,
                "empty: the charger chooses",
            ),
            ID_TAG,
        ],
    },
    CommandSpec {
        slug: "remote-stop",
        title: "Remote stop",
        help: "Stops a running transaction.",
        fields: &[field(
            "transaction_id",
            "Transaction",
            "number",
            true,
            "its id",
        )],
    },
    CommandSpec {
        slug: "get-configuration",
        title: "Get configuration",
        help: "Reads configuration keys; the answer is also stored as this page's configuration.",
        fields: &[field(
            "keys",
            "Keys",
            "textarea",
            false,
            "one per line or comma-separated; empty: all",
        )],
    },
    CommandSpec {
        slug: "change-configuration",
        title: "Change configuration",
        help: "Sets one configuration key.",
        fields: &[
            field("key", "Key", "text", true, "such as HeartbeatInterval"),
            field("value", "Value", "text", true, "up to 500 characters"),
        ],
    },
    CommandSpec {
        slug: "trigger-message",
        title: "Trigger message",
        help: "Asks the charger to send a message now.",
        fields: &[
            select(
                "requested_message",
                "Message",
                &[
                    "BootNotification",
                    "DiagnosticsStatusNotification",
                    "FirmwareStatusNotification",
                    "Heartbeat",
                    "MeterValues",
                    "StatusNotification",
                ],
                true,
                "",
            ),
            field(
                "connector_id",
                "Connector",
                "number",
                false,
                "empty: the whole charger",
            ),
        ],
    },
    CommandSpec {
        slug: "update-firmware",
        title: "Update firmware",
        help: "The charger downloads the firmware from the URL and installs it after the date.",
        fields: &[
            field("location", "Firmware URL", "url", true, ""),
            field(
                "retrieve_date",
                "Retrieve after (UTC)",
                "datetime",
                true,
                "",
            ),
            field("retries", "Retries", "number", false, ""),
            field("retry_interval", "Retry interval (s)", "number", false, ""),
        ],
    },
    CommandSpec {
        slug: "get-diagnostics",
        title: "Get diagnostics",
        help: "The charger uploads a diagnostics file.",
        fields: &[
            field(
                "location",
                "Upload URL",
                "url",
                false,
                "empty: the central system's own upload address",
            ),
            field("start_time", "From (UTC)", "datetime", false, ""),
            field("stop_time", "To (UTC)", "datetime", false, ""),
            field("retries", "Retries", "number", false, ""),
            field("retry_interval", "Retry interval (s)", "number", false, ""),
        ],
    },
    CommandSpec {
        slug: "clear-cache",
        title: "Clear cache",
        help: "Empties the charger's authorization cache.",
        fields: &[],
    },
    CommandSpec {
        slug: "send-local-list",
        title: "Send local list",
        help: "Replaces (Full) or changes (Differential) the charger's local authorization list.",
        fields: &[
            field(
                "list_version",
                "List version",
                "number",
                true,
                "higher than the charger's",
            ),
            select("update_type", "Update", &["Full", "Differential"], true, ""),
            field(
                "entries",
                "Entries",
                "textarea",
                false,
                "one per line: TAG [Accepted|Blocked|Expired|Invalid]; a Differential TAG alone removes it",
            ),
        ],
    },
    CommandSpec {
        slug: "reserve-now",
        title: "Reserve now",
        help: "Reserves a connector (0: any) for an ID tag until the expiry.",
        fields: &[
            CONNECTOR_OR_ALL,
            ID_TAG,
            field("expiry_date", "Expires (UTC)", "datetime", true, ""),
            field("parent_id_tag", "Parent ID tag", "text", false, ""),
        ],
    },
    CommandSpec {
        slug: "cancel-reservation",
        title: "Cancel reservation",
        help: "Cancels a reservation by its id.",
        fields: &[field(
            "reservation_id",
            "Reservation",
            "number",
            true,
            "its id",
        )],
    },
    CommandSpec {
        slug: "set-charging-profile",
        title: "Set charging profile",
        help: "Installs a charging profile with one limit.",
        fields: &[
            CONNECTOR_OR_ALL,
            field(
                "charging_profile_id",
                "Profile id",
                "number",
                true,
                "a profile with the same id is replaced",
            ),
            field("stack_level", "Stack level", "number", true, "0 or more"),
            select("purpose", "Purpose", PURPOSES, true, ""),
            select(
                "kind",
                "Kind",
                &["Absolute", "Recurring", "Relative"],
                true,
                "",
            ),
            select(
                "recurrency_kind",
                "Recurrency",
                &["Daily", "Weekly"],
                false,
                "Recurring only",
            ),
            field(
                "start_schedule",
                "Schedule start (UTC)",
                "datetime",
                false,
                "Absolute and Recurring",
            ),
            field(
                "duration",
                "Duration (s)",
                "number",
                false,
                "empty: indefinite",
            ),
            select("rate_unit", "Unit", &["A", "W"], true, ""),
            field("limit", "Limit", "decimal", true, "such as 16 or 11000"),
            field(
                "transaction_id",
                "Transaction",
                "number",
                false,
                "TxProfile only",
            ),
        ],
    },
    CommandSpec {
        slug: "clear-charging-profile",
        title: "Clear charging profile",
        help: "Removes the profiles matching every criterion given; none given removes all.",
        fields: &[
            field("id", "Profile id", "number", false, ""),
            field("connector_id", "Connector", "number", false, ""),
            select("purpose", "Purpose", PURPOSES, false, ""),
            field("stack_level", "Stack level", "number", false, ""),
        ],
    },
];

/// A command form as the page shows it.
#[derive(Debug, Clone)]
pub struct CommandForm {
    pub spec: &'static CommandSpec,
    pub values: Fields,
    pub problems: Problems,
    /// Whether the form is shown unfolded (it was just sent).
    pub open: bool,
}

impl CommandForm {
    pub fn action_url(&self, charger_url: &str) -> String {
        format!("{charger_url}/commands/{}", self.spec.slug)
    }
}

/// Every form, the one just sent (if any) with its values and problems.
pub fn forms(sent: Option<(String, Fields, Problems)>) -> Vec<CommandForm> {
    COMMANDS
        .iter()
        .map(|spec| match &sent {
            Some((slug, values, problems)) if slug == spec.slug => CommandForm {
                spec,
                values: values.clone(),
                problems: problems.clone(),
                open: true,
            },
            _ => CommandForm {
                spec,
                values: Fields::default(),
                problems: Problems::default(),
                open: false,
            },
        })
        .collect()
}

/// What the page says about a command that was sent.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub title: String,
    /// `ok`, `warn` or `error`, the CSS class.
    pub kind: &'static str,
    pub summary: String,
    /// The charger's answer, pretty-printed JSON, when it answered.
    pub answer: Option<String>,
}

/// A command ready to send.
#[derive(Debug)]
enum Prepared {
    Reset(ResetRequest),
    Unlock(UnlockConnectorRequest),
    Availability(ChangeAvailabilityRequest),
    Start(RemoteStartTransactionRequest),
    Stop(RemoteStopTransactionRequest),
    GetConfiguration(GetConfigurationRequest),
    ChangeConfiguration(ChangeConfigurationRequest),
    Trigger(TriggerMessageRequest),
    UpdateFirmware(UpdateFirmwareRequest),
    GetDiagnostics(GetDiagnosticsRequest),
    ClearCache(ClearCacheRequest),
    SendLocalList(SendLocalListRequest),
    /// The reservation id is made when it is sent.
    Reserve(NewReservationForm),
    CancelReservation(CancelReservationRequest),
    SetProfile(SetChargingProfileRequest),
    ClearProfile(ClearChargingProfileRequest),
}

#[derive(Debug)]
struct NewReservationForm {
    connector_id: i32,
    id_tag: String,
    expiry_date: chrono::DateTime<chrono::Utc>,
    parent_id_tag: Option<String>,
}

fn action_of<R: CentralSystemRequest>(_: &R) -> Action {
    R::ACTION
}

fn int32(value: Option<i64>) -> Option<i32> {
    value.and_then(|value| i32::try_from(value).ok())
}

/// The OCPP action a form sends, for the audit log, also when it was refused before sending.
fn action_name(slug: &str) -> String {
    match slug {
        "remote-start" => "RemoteStartTransaction".to_owned(),
        "remote-stop" => "RemoteStopTransaction".to_owned(),
        _ => slug
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect(),
    }
}

/// Reads the form of `spec`; the request, or the problems by field.
fn prepare(spec: &CommandSpec, fields: &Fields) -> Result<Prepared, Problems> {
    let mut r = Reader::new(fields);
    let max = i64::from(i32::MAX);
    let prepared = match spec.slug {
        "reset" => r
            .choice::<ResetType>("type", true)
            .map(|kind| Prepared::Reset(ResetRequest { kind })),
        "unlock-connector" => int32(r.int("connector_id", 1, max, true))
            .map(|connector_id| Prepared::Unlock(UnlockConnectorRequest { connector_id })),
        "change-availability" => {
            let connector = int32(r.int("connector_id", 0, max, true));
            let kind = r.choice::<AvailabilityType>("type", true);
            connector.zip(kind).map(|(connector_id, kind)| {
                Prepared::Availability(ChangeAvailabilityRequest { connector_id, kind })
            })
        }
        "remote-start" => {
            let connector_id = int32(r.int("connector_id", 1, max, false));
            r.text("id_tag", 20, true).map(|id_tag| {
                Prepared::Start(RemoteStartTransactionRequest {
                    connector_id,
                    id_tag,
                    charging_profile: None,
                })
            })
        }
        "remote-stop" => r
            .int("transaction_id", 0, i64::MAX, true)
            .map(|transaction_id| Prepared::Stop(RemoteStopTransactionRequest { transaction_id })),
        "get-configuration" => {
            let keys: Vec<String> = fields
                .get("keys")
                .split([',', '\n', '\r'])
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned)
                .collect();
            if keys.len() > MAX_KEYS {
                r.problems
                    .add("keys", format!("Ask for at most {MAX_KEYS} keys at once."));
            } else if let Some(long) = keys.iter().find(|key| key.chars().count() > 50) {
                r.problems.add(
                    "keys",
                    format!(
                        "“{}” is longer than 50 characters, the longest key OCPP allows.",
                        crate::forms::shorten(long)
                    ),
                );
            }
            Some(Prepared::GetConfiguration(GetConfigurationRequest {
                key: (!keys.is_empty()).then_some(keys),
            }))
        }
        "change-configuration" => {
            let key = r.text("key", 50, true);
            let value = r.text("value", 500, true);
            key.zip(value).map(|(key, value)| {
                Prepared::ChangeConfiguration(ChangeConfigurationRequest { key, value })
            })
        }
        "trigger-message" => {
            let requested_message = r.choice::<MessageTrigger>("requested_message", true);
            let connector_id = int32(r.int("connector_id", 0, max, false));
            requested_message.map(|requested_message| {
                Prepared::Trigger(TriggerMessageRequest {
                    requested_message,
                    connector_id,
                })
            })
        }
        "update-firmware" => {
            let location = r.url("location", true);
            let retrieve_date = r.instant("retrieve_date", true);
            let retries = int32(r.int("retries", 0, 100, false));
            let retry_interval = int32(r.int("retry_interval", 0, 86_400, false));
            location
                .zip(retrieve_date)
                .map(|(location, retrieve_date)| {
                    Prepared::UpdateFirmware(UpdateFirmwareRequest {
                        location,
                        retries,
                        retrieve_date,
                        retry_interval,
                    })
                })
        }
        "get-diagnostics" => {
            let location = r.url("location", false).unwrap_or_default();
            let start_time = r.instant("start_time", false);
            let stop_time = r.instant("stop_time", false);
            if let (Some(start), Some(stop)) = (start_time, stop_time)
                && stop < start
            {
                r.problems.add("stop_time", "End after the start.");
            }
            Some(Prepared::GetDiagnostics(GetDiagnosticsRequest {
                location,
                retries: int32(r.int("retries", 0, 100, false)),
                retry_interval: int32(r.int("retry_interval", 0, 86_400, false)),
                start_time,
                stop_time,
            }))
        }
        "clear-cache" => Some(Prepared::ClearCache(ClearCacheRequest {})),
        "send-local-list" => {
            let list_version = int32(r.int("list_version", 1, max, true));
            let update_type = r.choice::<UpdateType>("update_type", true);
            let entries = local_list_entries(fields.get("entries"), update_type, &mut r.problems);
            list_version
                .zip(update_type)
                .map(|(list_version, update_type)| {
                    Prepared::SendLocalList(SendLocalListRequest {
                        list_version,
                        local_authorization_list: Some(entries),
                        update_type,
                    })
                })
        }
        "reserve-now" => {
            let connector_id = int32(r.int("connector_id", 0, max, true));
            let id_tag = r.text("id_tag", 20, true);
            let expiry_date = r.instant("expiry_date", true);
            let parent_id_tag = r.text("parent_id_tag", 20, false);
            if let Some(expiry) = expiry_date
                && expiry <= chrono::Utc::now()
            {
                r.problems
                    .add("expiry_date", "Choose a time in the future.");
            }
            match (connector_id, id_tag, expiry_date) {
                (Some(connector_id), Some(id_tag), Some(expiry_date)) => {
                    Some(Prepared::Reserve(NewReservationForm {
                        connector_id,
                        id_tag,
                        expiry_date,
                        parent_id_tag,
                    }))
                }
                _ => None,
            }
        }
        "cancel-reservation" => r
            .int("reservation_id", 0, i64::MAX, true)
            .map(|reservation_id| {
                Prepared::CancelReservation(CancelReservationRequest { reservation_id })
            }),
        "set-charging-profile" => set_profile(&mut r),
        "clear-charging-profile" => Some(Prepared::ClearProfile(ClearChargingProfileRequest {
            id: int32(r.int("id", 0, max, false)),
            connector_id: int32(r.int("connector_id", 0, max, false)),
            charging_profile_purpose: r.choice::<ChargingProfilePurpose>("purpose", false),
            stack_level: int32(r.int("stack_level", 0, max, false)),
        })),
        _ => None,
    };
    match prepared {
        Some(prepared) if r.problems.is_empty() => Ok(prepared),
        _ => {
            if r.problems.is_empty() {
                r.problems
                    .add(FORM_PROBLEM, "The form could not be read; reload the page.");
            }
            Err(r.problems)
        }
    }
}

fn set_profile(r: &mut Reader<'_>) -> Option<Prepared> {
    let max = i64::from(i32::MAX);
    let connector_id = int32(r.int("connector_id", 0, max, true));
    let charging_profile_id = int32(r.int("charging_profile_id", 1, max, true));
    let stack_level = int32(r.int("stack_level", 0, max, true));
    let purpose = r.choice::<ChargingProfilePurpose>("purpose", true);
    let kind = r.choice::<ChargingProfileKind>("kind", true);
    let recurrency_kind = r.choice::<RecurrencyKind>("recurrency_kind", false);
    let start_schedule = r.instant("start_schedule", false);
    let duration = int32(r.int("duration", 1, max, false));
    let unit = r.choice::<ChargingRateUnit>("rate_unit", true);
    let limit = r.decimal("limit", 0.0, 1_000_000.0);
    let transaction_id = r.int("transaction_id", 0, i64::MAX, false);
    let request = SetChargingProfileRequest {
        connector_id: connector_id?,
        cs_charging_profiles: ChargingProfile {
            charging_profile_id: charging_profile_id?,
            transaction_id,
            stack_level: stack_level?,
            charging_profile_purpose: purpose?,
            charging_profile_kind: kind?,
            recurrency_kind,
            valid_from: None,
            valid_to: None,
            charging_schedule: ChargingSchedule {
                duration,
                start_schedule,
                charging_rate_unit: unit?,
                charging_schedule_period: vec![ChargingSchedulePeriod {
                    start_period: 0,
                    limit: limit?,
                    number_phases: None,
                }],
                min_charging_rate: None,
            },
        },
    };
    let problems = request.problems();
    if !problems.is_empty() {
        r.problems.add(FORM_PROBLEM, problems.join(" "));
        return None;
    }
    Some(Prepared::SetProfile(request))
}

fn local_list_entries(
    text: &str,
    update_type: Option<UpdateType>,
    problems: &mut Problems,
) -> Vec<AuthorizationData> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let tag = words.next().unwrap_or_default();
        let status = words.next();
        if words.next().is_some() || tag.chars().count() > 20 {
            problems.add(
                "entries",
                format!(
                    "Line {}: write an ID tag of up to 20 characters and, optionally, a status.",
                    number + 1
                ),
            );
            continue;
        }
        let status = match status {
            Some(text) => match text.parse::<AuthorizationStatus>() {
                Ok(status) => Some(status),
                Err(_) => {
                    problems.add(
                        "entries",
                        format!(
                            "Line {}: “{}” is not Accepted, Blocked, Expired or Invalid.",
                            number + 1,
                            crate::forms::shorten(text)
                        ),
                    );
                    continue;
                }
            },
            None if update_type == Some(UpdateType::Differential) => None,
            None => Some(AuthorizationStatus::Accepted),
        };
        entries.push(AuthorizationData {
            id_tag: tag.to_owned(),
            id_tag_info: status.map(|status| IdTagInfo {
                expiry_date: None,
                parent_id_tag: None,
                status,
            }),
        });
    }
    if entries.len() > MAX_LIST_ENTRIES {
        problems.add(
            "entries",
            format!("Send at most {MAX_LIST_ENTRIES} entries at once."),
        );
    }
    entries
}

/// Sends `prepared` and returns the request as sent (JSON), its action and the answer.
async fn send_prepared(
    ctx: &AppContext,
    charge_point_id: i64,
    identity: &ChargePointId,
    prepared: Prepared,
) -> (
    Action,
    serde_json::Value,
    Result<serde_json::Value, CommandError>,
) {
    let commands =
        ChargerCommands::new(ctx.shared.clone(), ctx.settings.ocpp_protocol.call_timeout);
    macro_rules! typed {
        ($request:expr) => {{
            let request = $request;
            let json = serde_json::to_value(&request).unwrap_or_default();
            let answer = commands
                .send(identity, &request)
                .await
                .map(|answer| serde_json::to_value(answer).unwrap_or_default());
            (action_of(&request), json, answer)
        }};
    }
    match prepared {
        Prepared::Reset(request) => typed!(request),
        Prepared::Unlock(request) => typed!(request),
        Prepared::Availability(request) => typed!(request),
        Prepared::Start(request) => typed!(request),
        Prepared::Stop(request) => typed!(request),
        Prepared::GetConfiguration(request) => typed!(request),
        Prepared::ChangeConfiguration(request) => typed!(request),
        Prepared::Trigger(request) => typed!(request),
        Prepared::UpdateFirmware(request) => typed!(request),
        Prepared::GetDiagnostics(mut request) => {
            if request.location.is_empty() {
                let location = voltfleet_core::ocpp::diagnostics::diagnostics_location(
                    &ctx.settings.ocpp_protocol.diagnostics,
                    &ctx.shared.cache,
                    identity,
                )
                .await;
                match location {
                    Ok(Some(location)) => request.location = location,
                    Ok(None) => {
                        let json = serde_json::to_value(&request).unwrap_or_default();
                        return (
                            Action::GetDiagnostics,
                            json,
                            Err(CommandError::Invalid {
                                charge_point: identity.to_string(),
                                action: "GetDiagnostics".into(),
                                problem: "no upload URL was given and ocpp.diagnostics.public_url is not set; enter an upload URL".into(),
                            }),
                        );
                    }
                    Err(err) => {
                        let json = serde_json::to_value(&request).unwrap_or_default();
                        return (
                            Action::GetDiagnostics,
                            json,
                            Err(CommandError::Unavailable {
                                charge_point: identity.to_string(),
                                reason: err.to_string(),
                            }),
                        );
                    }
                }
            }
            typed!(request)
        }
        Prepared::ClearCache(request) => typed!(request),
        Prepared::SendLocalList(request) => typed!(request),
        Prepared::Reserve(form) => {
            let created = ctx
                .db
                .reservations()
                .create(&NewReservation {
                    charge_point_id,
                    connector_id: form.connector_id,
                    id_tag: form.id_tag.clone(),
                    parent_id_tag: form.parent_id_tag.clone(),
                    expires_at: form.expiry_date,
                })
                .await;
            let reservation_id = match created {
                Ok(id) => id,
                Err(err) => {
                    return (
                        Action::ReserveNow,
                        serde_json::json!({}),
                        Err(CommandError::Unavailable {
                            charge_point: identity.to_string(),
                            reason: err.to_string(),
                        }),
                    );
                }
            };
            let result = typed!(ReserveNowRequest {
                connector_id: form.connector_id,
                expiry_date: form.expiry_date,
                id_tag: form.id_tag,
                parent_id_tag: form.parent_id_tag,
                reservation_id,
            });
            if result.2.is_err()
                && let Err(err) = ctx
                    .db
                    .reservations()
                    .set_status(reservation_id, ReservationStatus::Cancelled)
                    .await
            {
                tracing::warn!(%err, reservation_id, "A reservation the charger never got could not be marked cancelled.");
            }
            result
        }
        Prepared::CancelReservation(request) => typed!(request),
        Prepared::SetProfile(request) => typed!(request),
        Prepared::ClearProfile(request) => typed!(request),
    }
}

/// Statuses that mean the charger did what was asked.
fn is_yes(status: &str) -> bool {
    matches!(status, "Accepted" | "Unlocked")
}

fn outcome_of(
    title: &str,
    answer: &Result<serde_json::Value, CommandError>,
) -> (CommandOutcome, AuditOutcome) {
    match answer {
        Ok(payload) => {
            let status = payload.get("status").and_then(|s| s.as_str());
            let (kind, summary, audit) = match status {
                Some(status) if is_yes(status) => (
                    "ok",
                    format!("The charger answered {status}."),
                    AuditOutcome::Success,
                ),
                Some(status) => (
                    "warn",
                    format!("The charger answered {status}: it did not do it."),
                    AuditOutcome::Failure,
                ),
                None => (
                    "ok",
                    "The charger answered.".to_owned(),
                    AuditOutcome::Success,
                ),
            };
            (
                CommandOutcome {
                    title: title.to_owned(),
                    kind,
                    summary,
                    answer: serde_json::to_string_pretty(payload).ok(),
                },
                audit,
            )
        }
        Err(err) => {
            let summary = match err {
                CommandError::Offline { .. } => format!("Not sent: {err}."),
                CommandError::Timeout { .. } => format!("No answer: {err}."),
                _ => format!("{err}."),
            };
            (
                CommandOutcome {
                    title: title.to_owned(),
                    kind: "error",
                    summary,
                    answer: None,
                },
                AuditOutcome::Failure,
            )
        }
    }
}

/// `POST /backoffice/charge-points/{identity}/commands/{command}`.
pub async fn send(
    State(ctx): State<AppContext>,
    Operating(signed): Operating,
    Path((identity, command)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let Some(spec) = COMMANDS.iter().find(|spec| spec.slug == command) else {
        return Err(PageError::NotFound(format!(
            "There is no command “{}”.",
            crate::forms::shorten(&command)
        )));
    };
    let cp = charge_points::find(&ctx, &identity).await?;
    let mut fields = Fields::from_pairs(pairs);
    fields.0.remove(crate::security::CSRF_FIELD);
    let target = format!("charge_point:{}", cp.identity);
    let prepared = match prepare(spec, &fields) {
        Ok(prepared) => prepared,
        Err(problems) => {
            audit::record(
                &ctx,
                &signed.actor(),
                &format!("charge_point.command.{}", action_name(spec.slug)),
                &target,
                serde_json::json!({ "problems": problems.0 }),
                AuditOutcome::Denied,
            )
            .await;
            return charge_points::render_detail(
                &ctx,
                &signed,
                cp,
                Shown {
                    status: Some(StatusCode::UNPROCESSABLE_ENTITY),
                    form: Some((spec.slug.to_owned(), fields, problems)),
                    ..Shown::default()
                },
            )
            .await;
        }
    };
    let (action, request, answer) = send_prepared(&ctx, cp.id, &cp.identity, prepared).await;
    let (outcome, audited) = outcome_of(spec.title, &answer);
    audit::record(
        &ctx,
        &signed.actor(),
        &format!("charge_point.command.{action}"),
        &target,
        serde_json::json!({
            "request": request,
            "answer": match &answer {
                Ok(payload) => payload.clone(),
                Err(err) => serde_json::json!({ "error": err.to_string() }),
            },
        }),
        audited,
    )
    .await;
    tracing::info!(operator = %signed.operator.email, charger = %cp.identity, %action, kind = outcome.kind, "An operator sent a command.");
    let cp = charge_points::find(&ctx, &identity).await?;
    charge_points::render_detail(
        &ctx,
        &signed,
        cp,
        Shown {
            outcome: Some(outcome),
            form: Some((spec.slug.to_owned(), fields, Problems::default())),
            ..Shown::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields::from_pairs(
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
    }

    fn spec(slug: &str) -> &'static CommandSpec {
        COMMANDS
            .iter()
            .find(|spec| spec.slug == slug)
            .expect("a command")
    }

    #[test]
    fn every_form_field_is_read_by_its_command() {
        // A form with every field empty must be read (refused or not) without the catch-all.
        for spec in COMMANDS {
            if let Err(problems) = prepare(spec, &Fields::default()) {
                assert!(
                    problems.of(FORM_PROBLEM).is_none() || spec.slug == "set-charging-profile",
                    "{}: {problems:?}",
                    spec.slug
                );
                for name in problems.0.keys() {
                    assert!(
                        name == FORM_PROBLEM || spec.fields.iter().any(|f| f.name == name),
                        "{} reports a problem for a field it does not show: {name}",
                        spec.slug
                    );
                }
            }
        }
    }

    #[test]
    fn every_form_is_named_by_its_ocpp_action() {
        for spec in COMMANDS {
            let name = action_name(spec.slug);
            assert!(
                name.parse::<Action>().is_ok(),
                "{} is named {name}, which is not an OCPP 1.6 action",
                spec.slug
            );
        }
    }

    #[test]
    fn forms_are_checked_field_by_field() {
        let problems = prepare(spec("unlock-connector"), &fields(&[("connector_id", "0")]))
            .expect_err("connector 0 cannot be unlocked");
        assert_eq!(
            problems.of("connector_id"),
            Some("Enter a number from 1 to 2147483647.")
        );
        let problems =
            prepare(spec("reset"), &fields(&[("type", "Warm")])).expect_err("no such type");
        assert!(problems.of("type").is_some());
        assert!(matches!(
            prepare(spec("reset"), &fields(&[("type", "Hard")])),
            Ok(Prepared::Reset(ResetRequest {
                kind: ResetType::Hard
            }))
        ));
        let problems = prepare(
            spec("send-local-list"),
            &fields(&[
                ("list_version", "2"),
                ("update_type", "Full"),
                ("entries", "TAG-1\nTAG-2 Maybe"),
            ]),
        )
        .expect_err("a bad status");
        assert_eq!(
            problems.of("entries"),
            Some("Line 2: “Maybe” is not Accepted, Blocked, Expired or Invalid.")
        );
        let problems = prepare(
            spec("set-charging-profile"),
            &fields(&[
                ("connector_id", "1"),
                ("charging_profile_id", "1"),
                ("stack_level", "0"),
                ("purpose", "ChargePointMaxProfile"),
                ("kind", "Absolute"),
                ("rate_unit", "A"),
                ("limit", "16"),
            ]),
        )
        .expect_err("a ChargePointMaxProfile is for connector 0 only");
        assert!(problems.of(FORM_PROBLEM).is_some(), "{problems:?}");
    }
}
