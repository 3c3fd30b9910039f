//! The official OCPP 1.6 schemas, compiled once at start, and how a violation becomes the
//! CALLERROR code OCPP-J 1.6 prescribes for it.

use std::collections::HashMap;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Value, json};
use voltfleet_core::ocpp::v16::Action;

use crate::rpc::{CallError, ErrorCode};

/// The compiled request and response schema of every 1.6 action.
pub struct Schemas {
    by_action: HashMap<Action, (Validator, Validator)>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("actions", &self.by_action.len())
            .finish()
    }
}

/// Which of an action's two schemas applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

impl Schemas {
    /// Compiles the embedded schemas; an error names the schema that failed.
    pub fn compile() -> Result<Schemas, String> {
        let compile = |name: String, text: &str| -> Result<Validator, String> {
            let schema: Value = serde_json::from_str(text)
                .map_err(|err| format!("the embedded OCPP 1.6 schema {name} is not JSON: {err}"))?;
            jsonschema::draft4::options()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|err| {
                    format!("the embedded OCPP 1.6 schema {name} does not compile: {err}")
                })
        };
        let mut by_action = HashMap::new();
        for &action in Action::ALL {
            let request = compile(format!("{action}.json"), action.request_schema())?;
            let response = compile(format!("{action}Response.json"), action.response_schema())?;
            by_action.insert(action, (request, response));
        }
        Ok(Schemas { by_action })
    }

    /// Checks a payload of `action`; the error is the CALLERROR to answer with, naming the
    /// first offending field.
    pub fn check(
        &self,
        action: Action,
        direction: Direction,
        payload: &Value,
    ) -> Result<(), CallError> {
        let Some((request, response)) = self.by_action.get(&action) else {
            return Err(CallError::internal(format!(
                "no schema is loaded for {action}"
            )));
        };
        let validator = match direction {
            Direction::Request => request,
            Direction::Response => response,
        };
        match validator.validate(payload) {
            Ok(()) => Ok(()),
            Err(error) => Err(call_error(action, direction, &error)),
        }
    }
}

fn call_error(action: Action, direction: Direction, error: &ValidationError<'_>) -> CallError {
    let kind = error.kind();
    let code = match kind {
        ValidationErrorKind::Required { .. } => ErrorCode::OccurenceConstraintViolation,
        ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MaxItems { .. } => {
            ErrorCode::OccurenceConstraintViolation
        }
        ValidationErrorKind::Type { .. } => ErrorCode::TypeConstraintViolation,
        ValidationErrorKind::AdditionalProperties { .. } => ErrorCode::FormationViolation,
        _ => ErrorCode::PropertyConstraintViolation,
    };
    let path = error.instance_path().to_string();
    let field = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    let what = match direction {
        Direction::Request => action.to_string(),
        Direction::Response => format!("{action} answer"),
    };
    CallError::new(code, format!("{what}: {field}: {error}")).with_details(json!({
        "field": field,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        Schemas::compile().expect("the embedded schemas compile")
    }

    fn code_of(action: Action, payload: Value) -> ErrorCode {
        schemas()
            .check(action, Direction::Request, &payload)
            .expect_err("invalid")
            .code
    }

    #[test]
    fn every_action_has_both_schemas() {
        assert_eq!(schemas().by_action.len(), Action::ALL.len());
    }

    #[test]
    fn violations_map_to_the_1_6_error_codes() {
        let boot = |payload| code_of(Action::BootNotification, payload);
        assert_eq!(
            boot(json!({"chargePointVendor": "V"})),
            ErrorCode::OccurenceConstraintViolation
        );
        assert_eq!(
            boot(json!({"chargePointVendor": 5, "chargePointModel": "M"})),
            ErrorCode::TypeConstraintViolation
        );
        assert_eq!(
            boot(json!({"chargePointVendor": "V".repeat(21), "chargePointModel": "M"})),
            ErrorCode::PropertyConstraintViolation
        );
        assert_eq!(
            boot(json!({"chargePointVendor": "V", "chargePointModel": "M", "colour": "red"})),
            ErrorCode::FormationViolation
        );
        assert_eq!(
            code_of(
                Action::StatusNotification,
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"})
            ),
            ErrorCode::PropertyConstraintViolation
        );
        assert_eq!(
            code_of(
                Action::StartTransaction,
                json!({"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"})
            ),
            ErrorCode::PropertyConstraintViolation,
            "date-time formats are checked"
        );
    }

    #[test]
    fn the_error_names_the_field() {
        let error = schemas()
            .check(
                Action::BootNotification,
                Direction::Request,
                &json!({"chargePointVendor": "V", "chargePointModel": "M".repeat(21)}),
            )
            .expect_err("too long");
        assert!(error.description.contains("/chargePointModel"), "{error}");
        assert_eq!(error.details, json!({"field": "/chargePointModel"}));
    }

    #[test]
    fn valid_payloads_pass_both_ways() {
        let schemas = schemas();
        schemas
            .check(Action::Heartbeat, Direction::Request, &json!({}))
            .expect("valid request");
        schemas
            .check(
                Action::Heartbeat,
                Direction::Response,
                &json!({"currentTime": "2026-12-01T10:00:00.000Z"}),
            )
            .expect("valid response");
    }
}
