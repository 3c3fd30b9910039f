//! The messages of the OCPP 1.6 Smart Charging profile, and the charging profiles they carry:
//! limits on the power or current a charger, or one transaction, may draw over time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Installs a charging profile on a connector, or on the whole charger on connector 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetChargingProfileRequest {
    pub connector_id: i32,
    /// One profile despite the plural name.
    pub cs_charging_profiles: ChargingProfile,
}

impl SetChargingProfileRequest {
    /// The rules of OCPP 1.6 §3.13 that the schema cannot express, each broken one described
    /// so that an operator can fix the profile: a charger would reject it, or worse, apply
    /// something other than what was meant.
    pub fn problems(&self) -> Vec<String> {
        let profile = &self.cs_charging_profiles;
        let schedule = &profile.charging_schedule;
        let mut problems = Vec::new();
        if self.connector_id < 0 {
            problems.push(format!("connectorId {} is negative", self.connector_id));
        }
        match profile.charging_profile_purpose {
            ChargingProfilePurpose::ChargePointMaxProfile if self.connector_id != 0 => problems
                .push(format!(
                    "a ChargePointMaxProfile limits the whole charger, so it goes on connectorId 0, not {}",
                    self.connector_id
                )),
            ChargingProfilePurpose::TxProfile if self.connector_id == 0 => problems.push(
                "a TxProfile applies to one transaction, so it goes on the transaction's connector, not connectorId 0"
                    .to_owned(),
            ),
            _ => {}
        }
        if profile.transaction_id.is_some()
            && profile.charging_profile_purpose != ChargingProfilePurpose::TxProfile
        {
            problems.push(format!(
                "transactionId belongs only in a TxProfile, not in a {}",
                profile.charging_profile_purpose
            ));
        }
        if profile.stack_level < 0 {
            problems.push(format!("stackLevel {} is negative", profile.stack_level));
        }
        match (profile.charging_profile_kind, profile.recurrency_kind) {
            (ChargingProfileKind::Recurring, None) => problems
                .push("a Recurring profile needs a recurrencyKind (Daily or Weekly)".to_owned()),
            (ChargingProfileKind::Recurring, Some(_)) if schedule.start_schedule.is_none() => {
                problems.push("a Recurring profile needs a startSchedule to recur from".to_owned())
            }
            (kind, Some(_)) if kind != ChargingProfileKind::Recurring => problems.push(format!(
                "recurrencyKind belongs only in a Recurring profile, not in an {kind} one"
            )),
            _ => {}
        }
        if profile.charging_profile_kind == ChargingProfileKind::Relative
            && schedule.start_schedule.is_some()
        {
            problems.push(
                "a Relative profile starts with its transaction, so it has no startSchedule"
                    .to_owned(),
            );
        }
        if let (Some(from), Some(to)) = (profile.valid_from, profile.valid_to)
            && from >= to
        {
            problems.push(format!("validFrom {from} is not before validTo {to}"));
        }
        if let Some(duration) = schedule.duration
            && duration <= 0
        {
            problems.push(format!(
                "the schedule's duration {duration}s is not positive"
            ));
        }
        if let Some(rate) = schedule.min_charging_rate
            && rate < 0.0
        {
            problems.push(format!("minChargingRate {rate} is negative"));
        }
        let periods = &schedule.charging_schedule_period;
        match periods.first() {
            None => problems.push("the schedule has no chargingSchedulePeriod".to_owned()),
            Some(first) if first.start_period != 0 => problems.push(format!(
                "the first chargingSchedulePeriod starts at {}s; it must start at 0",
                first.start_period
            )),
            Some(_) => {}
        }
        for pair in periods.windows(2) {
            if pair[1].start_period <= pair[0].start_period {
                problems.push(format!(
                    "chargingSchedulePeriod startPeriod {}s follows {}s; periods go in increasing order",
                    pair[1].start_period, pair[0].start_period
                ));
            }
        }
        for period in periods {
            if !period.limit.is_finite() || period.limit < 0.0 {
                problems.push(format!(
                    "the limit {} at {}s is not a non-negative number",
                    period.limit, period.start_period
                ));
            }
            if let Some(phases) = period.number_phases
                && !(1..=3).contains(&phases)
            {
                problems.push(format!(
                    "numberPhases {phases} at {}s is not 1, 2 or 3",
                    period.start_period
                ));
            }
        }
        problems
    }
}

/// The answer to [`SetChargingProfileRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetChargingProfileResponse {
    pub status: ChargingProfileStatus,
}

wire_enum! {
    /// Whether a charger installed a charging profile.
    ChargingProfileStatus, "OCPP 1.6 charging profile status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
        NotSupported = "NotSupported",
    }
}

/// Removes the charging profile with `id`, or the ones that match every other criterion
/// given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearChargingProfileRequest {
    /// A `chargingProfileId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_profile_purpose: Option<ChargingProfilePurpose>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_level: Option<i32>,
}

/// The answer to [`ClearChargingProfileRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearChargingProfileResponse {
    pub status: ClearChargingProfileStatus,
}

wire_enum! {
    /// Whether any charging profile was removed.
    ClearChargingProfileStatus, "OCPP 1.6 clear charging profile status" {
        Accepted = "Accepted",
        /// No profile matched.
        Unknown = "Unknown",
    }
}

/// Asks for the limits a connector will apply over the coming `duration` seconds, all its
/// profiles combined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetCompositeScheduleRequest {
    /// 0 asks for the charger's total.
    pub connector_id: i32,
    /// Seconds.
    pub duration: i32,
    /// The unit to answer in; absent lets the charger choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_rate_unit: Option<ChargingRateUnit>,
}

/// The answer to [`GetCompositeScheduleRequest`]; the schedule is there when accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetCompositeScheduleResponse {
    pub status: GetCompositeScheduleStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<i32>,
    /// When the periods of `chargingSchedule` start counting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_schedule: Option<ChargingSchedule>,
}

wire_enum! {
    /// Whether a charger computed a composite schedule.
    GetCompositeScheduleStatus, "OCPP 1.6 composite schedule status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
    }
}

/// A charging profile: a schedule of limits, what it applies to and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargingProfile {
    /// Chosen by the central system; a profile with the same id replaces this one.
    pub charging_profile_id: i32,
    /// Only for a `TxProfile` sent during its transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i64>,
    /// Of profiles with the same purpose, the highest stack level applies.
    pub stack_level: i32,
    pub charging_profile_purpose: ChargingProfilePurpose,
    pub charging_profile_kind: ChargingProfileKind,
    /// Only for a `Recurring` profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrency_kind: Option<RecurrencyKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
    pub charging_schedule: ChargingSchedule,
}

/// Limits over time, as periods from the schedule's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargingSchedule {
    /// Seconds; absent, the last period lasts indefinitely (or to the end of the
    /// transaction when `startSchedule` is absent too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i32>,
    /// For `Absolute` and `Recurring` profiles; a `Relative` one starts with its transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_schedule: Option<DateTime<Utc>>,
    pub charging_rate_unit: ChargingRateUnit,
    /// In increasing order of `startPeriod`, the first starting at 0.
    pub charging_schedule_period: Vec<ChargingSchedulePeriod>,
    /// The lowest rate the EV charges at efficiently, in `chargingRateUnit`; the schema
    /// wants a multiple of 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_charging_rate: Option<f64>,
}

/// One limit of a [`ChargingSchedule`], until the next period starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargingSchedulePeriod {
    /// Seconds from the start of the schedule.
    pub start_period: i32,
    /// In the schedule's `chargingRateUnit`; the schema wants a multiple of 0.1.
    pub limit: f64,
    /// Absent means 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_phases: Option<i32>,
}

wire_enum! {
    /// What a charging profile limits.
    ChargingProfilePurpose, "OCPP 1.6 charging profile purpose" {
        /// The whole charger (connector 0 only).
        ChargePointMaxProfile = "ChargePointMaxProfile",
        /// Each new transaction, unless it has a `TxProfile`.
        TxDefaultProfile = "TxDefaultProfile",
        /// One transaction.
        TxProfile = "TxProfile",
    }
}

wire_enum! {
    /// When a charging profile's schedule starts.
    ChargingProfileKind, "OCPP 1.6 charging profile kind" {
        /// At its `startSchedule`.
        Absolute = "Absolute",
        /// At its `startSchedule`, again every day or week.
        Recurring = "Recurring",
        /// When the transaction starts.
        Relative = "Relative",
    }
}

wire_enum! {
    /// How often a `Recurring` profile starts again.
    RecurrencyKind, "OCPP 1.6 recurrency kind" {
        Daily = "Daily",
        Weekly = "Weekly",
    }
}

wire_enum! {
    /// The unit of a schedule's limits.
    ChargingRateUnit, "OCPP 1.6 charging rate unit" {
        /// Amperes per phase.
        A = "A",
        /// Watts, all phases together.
        W = "W",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Action;
    use super::super::testing::{at, schema_errors};
    use super::*;

    #[test]
    fn a_tx_profile_for_a_running_transaction() {
        let payload = json!({
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1842,
                "transactionId": 1842,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "duration": 3600,
                    "startSchedule": "2026-03-02T18:00:00Z",
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                        {"startPeriod": 1800, "limit": 10.5, "numberPhases": 3},
                        {"startPeriod": 2700, "limit": 6}
                    ],
                    "minChargingRate": 6.0
                }
            }
        });
        let errors = schema_errors(Action::SetChargingProfile.request_schema(), &payload);
        assert!(errors.is_empty(), "{errors:#?}");
        let request: SetChargingProfileRequest = serde_json::from_value(payload).expect("reads");
        let period = |start_period, limit, number_phases| ChargingSchedulePeriod {
            start_period,
            limit,
            number_phases,
        };
        assert_eq!(
            request,
            SetChargingProfileRequest {
                connector_id: 1,
                cs_charging_profiles: ChargingProfile {
                    charging_profile_id: 1842,
                    transaction_id: Some(1842),
                    stack_level: 1,
                    charging_profile_purpose: ChargingProfilePurpose::TxProfile,
                    charging_profile_kind: ChargingProfileKind::Absolute,
                    recurrency_kind: None,
                    valid_from: None,
                    valid_to: None,
                    charging_schedule: ChargingSchedule {
                        duration: Some(3600),
                        start_schedule: Some(at("2026-03-02T18:00:00Z")),
                        charging_rate_unit: ChargingRateUnit::A,
                        charging_schedule_period: vec![
                            period(0, 16.0, Some(3)),
                            period(1800, 10.5, Some(3)),
                            period(2700, 6.0, None),
                        ],
                        min_charging_rate: Some(6.0),
                    },
                },
            }
        );
        // Written back, an integral limit becomes `6.0`, which is the same JSON number.
        let written = serde_json::to_value(&request).expect("serializes");
        assert_eq!(
            written["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][2],
            json!({"startPeriod": 2700, "limit": 6.0})
        );
        assert!(schema_errors(Action::SetChargingProfile.request_schema(), &written).is_empty());
    }

    #[test]
    fn limits_must_be_multiples_of_a_tenth_for_the_schema_only() {
        let period = |limit: f64| {
            json!({"connectorId": 0, "csChargingProfiles": {
                "chargingProfileId": 1, "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": limit}
                ]}
            }})
        };
        let schema = Action::SetChargingProfile.request_schema();
        assert!(schema_errors(schema, &period(22080.0)).is_empty());
        assert!(schema_errors(schema, &period(0.3)).is_empty());
        // The types take any number; the OCPP service's schema check refuses these.
        for limit in [13.75, 0.05] {
            assert!(!schema_errors(schema, &period(limit)).is_empty(), "{limit}");
            let read: SetChargingProfileRequest =
                serde_json::from_value(period(limit)).expect("reads");
            let limits = &read
                .cs_charging_profiles
                .charging_schedule
                .charging_schedule_period;
            assert_eq!(limits[0].limit, limit);
        }
    }

    fn max_profile(connector_id: i32) -> SetChargingProfileRequest {
        serde_json::from_value(json!({"connectorId": connector_id, "csChargingProfiles": {
            "chargingProfileId": 7, "stackLevel": 0,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": "2026-03-02T18:00:00Z",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 32.0}, {"startPeriod": 600, "limit": 16.0}
                ]}
        }}))
        .expect("reads")
    }

    #[test]
    fn a_sound_profile_has_no_problems() {
        assert_eq!(max_profile(0).problems(), Vec::<String>::new());
    }

    #[test]
    fn each_broken_rule_is_named() {
        let mut wrong = max_profile(2);
        let profile = &mut wrong.cs_charging_profiles;
        profile.transaction_id = Some(5);
        profile.charging_profile_kind = ChargingProfileKind::Recurring;
        profile.valid_from = Some(at("2026-03-03T00:00:00Z"));
        profile.valid_to = Some(at("2026-03-02T00:00:00Z"));
        let periods = &mut profile.charging_schedule.charging_schedule_period;
        periods[0].start_period = 60;
        periods[1].start_period = 30;
        periods[1].number_phases = Some(4);
        let problems = wrong.problems().join("\n");
        for expected in [
            "goes on connectorId 0, not 2",
            "transactionId belongs only in a TxProfile",
            "needs a recurrencyKind",
            "is not before validTo",
            "must start at 0",
            "startPeriod 30s follows 60s",
            "numberPhases 4",
        ] {
            assert!(
                problems.contains(expected),
                "{expected:?} missing from:\n{problems}"
            );
        }
    }

    #[test]
    fn a_tx_profile_needs_a_connector_and_a_relative_one_no_start() {
        let mut tx = max_profile(0);
        tx.cs_charging_profiles.charging_profile_purpose = ChargingProfilePurpose::TxProfile;
        tx.cs_charging_profiles.charging_profile_kind = ChargingProfileKind::Relative;
        let problems = tx.problems().join("\n");
        assert!(problems.contains("not connectorId 0"), "{problems}");
        assert!(problems.contains("has no startSchedule"), "{problems}");
    }

    #[test]
    fn reads_a_composite_schedule() {
        let payload = json!({
            "status": "Accepted",
            "connectorId": 1,
            "scheduleStart": "2026-03-02T18:00:00Z",
            "chargingSchedule": {
                "duration": 86400,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]
            }
        });
        let errors = schema_errors(Action::GetCompositeSchedule.response_schema(), &payload);
        assert!(errors.is_empty(), "{errors:#?}");
        let answer: GetCompositeScheduleResponse = serde_json::from_value(payload).expect("reads");
        let schedule = answer.charging_schedule.expect("a schedule");
        assert_eq!(schedule.charging_rate_unit, ChargingRateUnit::W);
        assert_eq!(schedule.charging_schedule_period[0].limit, 11000.0);
        assert_eq!(answer.schedule_start, Some(at("2026-03-02T18:00:00Z")));
    }
}
