//! The three OCPP-J frames and their parsing from, and writing to, WebSocket text.

use serde_json::{Value, json};

use super::error::{CallError, ErrorCode};

const CALL: u64 = 2;
const CALL_RESULT: u64 = 3;
const CALL_ERROR: u64 = 4;

/// OCPP-J caps message ids at 36 characters (a UUID in text).
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// The id OCPP-J uses in a CALLERROR answering a message whose own id could not be read.
pub const UNKNOWN_MESSAGE_ID: &str = "-1";

/// One OCPP-J message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `[2, id, action, payload]`: a request.
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    /// `[3, id, payload]`: the answer to the CALL with the same id.
    CallResult { id: String, payload: Value },
    /// `[4, id, code, description, details]`: the CALL with the same id failed.
    CallError {
        id: String,
        code: String,
        description: String,
        details: Value,
    },
}

/// A text that is not a well-formed OCPP-J message.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    /// The CALLERROR to send back, with the id to send it under. `None` when the text claimed
    /// to be a CALLRESULT or CALLERROR, which may not be answered.
    pub answer: Option<(String, CallError)>,
    /// What is wrong, for the log.
    pub problem: String,
}

impl Malformed {
    fn answer(id: Option<&str>, problem: impl Into<String>) -> Malformed {
        let problem = problem.into();
        Malformed {
            answer: Some((
                id.unwrap_or(UNKNOWN_MESSAGE_ID).to_owned(),
                CallError::new(ErrorCode::FormationViolation, problem.clone()),
            )),
            problem,
        }
    }

    fn silent(problem: impl Into<String>) -> Malformed {
        Malformed {
            answer: None,
            problem: problem.into(),
        }
    }
}

impl Frame {
    /// Reads one WebSocket text message.
    pub fn parse(text: &str) -> Result<Frame, Malformed> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| Malformed::answer(None, format!("the message is not JSON: {err}")))?;
        let Value::Array(mut items) = value else {
            return Err(Malformed::answer(
                None,
                "an OCPP-J message is a JSON array: [2, id, action, payload], [3, id, payload] or [4, id, code, description, details]",
            ));
        };
        let id = items.get(1).and_then(Value::as_str).map(str::to_owned);
        let Some(kind) = items.first().and_then(Value::as_u64) else {
            return Err(Malformed::answer(
                id.as_deref(),
                "the first element must be the message type: 2 (CALL), 3 (CALLRESULT) or 4 (CALLERROR)",
            ));
        };
        let Some(id) = id else {
            let problem = "the second element must be the message id, a string";
            return Err(match kind {
                CALL_RESULT | CALL_ERROR => Malformed::silent(problem),
                _ => Malformed::answer(None, problem),
            });
        };
        match kind {
            CALL => {
                if items.len() != 4 {
                    return Err(Malformed::answer(
                        Some(&id),
                        format!(
                            "a CALL has 4 elements [2, id, action, payload], this one has {}",
                            items.len()
                        ),
                    ));
                }
                if id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN {
                    return Err(Malformed::answer(
                        Some(&id),
                        "the message id must be 1 to 36 characters",
                    ));
                }
                let payload = items.pop().unwrap_or(Value::Null);
                let Some(action) = items.pop().and_then(|action| match action {
                    Value::String(action) => Some(action),
                    _ => None,
                }) else {
                    return Err(Malformed::answer(
                        Some(&id),
                        "the third element of a CALL must be the action name, a string",
                    ));
                };
                if !payload.is_object() {
                    return Err(Malformed::answer(
                        Some(&id),
                        format!("the payload of {action} must be a JSON object"),
                    ));
                }
                Ok(Frame::Call {
                    id,
                    action,
                    payload,
                })
            }
            CALL_RESULT => {
                if items.len() != 3 || !items[2].is_object() {
                    return Err(Malformed::silent(format!(
                        "CALLRESULT {id} is not [3, id, {{payload}}]"
                    )));
                }
                let payload = items.pop().unwrap_or(Value::Null);
                Ok(Frame::CallResult { id, payload })
            }
            CALL_ERROR => {
                // Some chargers leave out the details; that loses nothing, so it is accepted.
                let (code, description) = match (items.get(2), items.get(3)) {
                    (Some(Value::String(code)), Some(Value::String(description)))
                        if items.len() == 4 || (items.len() == 5 && items[4].is_object()) =>
                    {
                        (code.clone(), description.clone())
                    }
                    _ => {
                        return Err(Malformed::silent(format!(
                            "CALLERROR {id} is not [4, id, code, description, {{details}}]"
                        )));
                    }
                };
                let details = items.get_mut(4).map_or_else(|| json!({}), std::mem::take);
                Ok(Frame::CallError {
                    id,
                    code,
                    description,
                    details,
                })
            }
            other => Err(Malformed::answer(
                Some(&id),
                format!(
                    "message type {other} does not exist; OCPP-J has 2 (CALL), 3 (CALLRESULT) and 4 (CALLERROR)"
                ),
            )),
        }
    }

    /// A CALLERROR frame answering message `id`.
    pub fn error(id: impl Into<String>, error: CallError) -> Frame {
        Frame::CallError {
            id: id.into(),
            code: error.code.as_str().to_owned(),
            description: error.description,
            details: error.details,
        }
    }

    /// The WebSocket text of this frame.
    pub fn to_text(&self) -> String {
        let value = match self {
            Frame::Call {
                id,
                action,
                payload,
            } => json!([CALL, id, action, payload]),
            Frame::CallResult { id, payload } => json!([CALL_RESULT, id, payload]),
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => json!([CALL_ERROR, id, code, description, details]),
        };
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> (String, ErrorCode) {
        let malformed = Frame::parse(text).expect_err("malformed");
        let (id, error) = malformed.answer.expect("answered");
        (id, error.code)
    }

    #[test]
    fn the_three_frames_parse_and_write_back() {
        for text in [
            r#"[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}]"#,
            r#"[3,"19223201",{"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]"#,
            r#"[4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}]"#,
        ] {
            let frame = Frame::parse(text).expect("well formed");
            assert_eq!(Frame::parse(&frame.to_text()).expect("round trip"), frame);
        }
        match Frame::parse(r#"[2,"1","Heartbeat",{}]"#) {
            Ok(Frame::Call { id, action, .. }) => {
                assert_eq!((id.as_str(), action.as_str()), ("1", "Heartbeat"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_calls_are_answered_with_a_formation_violation_under_their_id() {
        assert_eq!(
            answer("not json"),
            ("-1".into(), ErrorCode::FormationViolation)
        );
        assert_eq!(
            answer(r#"{"a":1}"#),
            ("-1".into(), ErrorCode::FormationViolation)
        );
        assert_eq!(
            answer(r#"[2,"7","Heartbeat"]"#),
            ("7".into(), ErrorCode::FormationViolation)
        );
        assert_eq!(
            answer(r#"[2,"7",42,{}]"#),
            ("7".into(), ErrorCode::FormationViolation)
        );
        assert_eq!(
            answer(r#"[2,"7","Heartbeat",[]]"#),
            ("7".into(), ErrorCode::FormationViolation)
        );
        assert_eq!(
            answer(r#"["2","7","Heartbeat",{}]"#),
            ("7".into(), ErrorCode::FormationViolation)
        );
        assert_eq!(
            answer(r#"[9,"7",{}]"#),
            ("7".into(), ErrorCode::FormationViolation)
        );
        let long = format!(r#"[2,"{}","Heartbeat",{{}}]"#, "x".repeat(37));
        assert_eq!(answer(&long).1, ErrorCode::FormationViolation);
    }

    #[test]
    fn broken_answers_are_never_answered() {
        for text in [
            r#"[3,"7"]"#,
            r#"[3,"7",[]]"#,
            r#"[4,"7","X"]"#,
            r#"[3,7,{}]"#,
        ] {
            let malformed = Frame::parse(text).expect_err("malformed");
            assert!(malformed.answer.is_none(), "{text}");
        }
    }

    #[test]
    fn a_callerror_without_details_is_accepted() {
        match Frame::parse(r#"[4,"7","GenericError","no"]"#) {
            Ok(Frame::CallError { details, .. }) => assert_eq!(details, json!({})),
            other => panic!("{other:?}"),
        }
    }
}
