//! CALLERROR: the error codes of OCPP-J 1.6, spelled as the specification spells them, and the
//! error a handler returns instead of a CALLRESULT.

use std::fmt;

/// The OCPP-J 1.6 error codes. `OccurenceConstraintViolation` is misspelt in the specification,
/// and on the wire it must stay so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The action is not known to the receiver.
    NotImplemented,
    /// The action is known but not supported (for instance sent in the wrong direction).
    NotSupported,
    /// The receiver failed while processing the action.
    InternalError,
    /// The payload is incomplete.
    ProtocolError,
    /// The action cannot be carried out because of the sender's security state.
    SecurityError,
    /// The payload is syntactically wrong or does not conform to the action's structure.
    FormationViolation,
    /// A field holds a value it may not hold.
    PropertyConstraintViolation,
    /// A field is missing or occurs too often.
    OccurenceConstraintViolation,
    /// A field has the wrong data type.
    TypeConstraintViolation,
    /// Anything else.
    GenericError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::NotImplemented,
        ErrorCode::NotSupported,
        ErrorCode::InternalError,
        ErrorCode::ProtocolError,
        ErrorCode::SecurityError,
        ErrorCode::FormationViolation,
        ErrorCode::PropertyConstraintViolation,
        ErrorCode::OccurenceConstraintViolation,
        ErrorCode::TypeConstraintViolation,
        ErrorCode::GenericError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::FormationViolation => "FormationViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::GenericError => "GenericError",
        }
    }

    /// The code a charger sent; codes outside the list (other versions, typos) are kept as
    /// `GenericError` by the caller, with the original text in the description.
    pub fn from_wire(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest errorDescription we send: enough for a field path and the reason, short enough for
/// chargers with small buffers.
const MAX_DESCRIPTION: usize = 255;

/// A CALLERROR to send instead of a CALLRESULT.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub code: ErrorCode,
    pub description: String,
    /// The errorDetails object; `{}` when there is nothing to add.
    pub details: serde_json::Value,
}

impl CallError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> CallError {
        let mut description = description.into();
        if description.len() > MAX_DESCRIPTION {
            let mut cut = MAX_DESCRIPTION - 1;
            while !description.is_char_boundary(cut) {
                cut -= 1;
            }
            description.truncate(cut);
            description.push('…');
        }
        CallError {
            code,
            description,
            details: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> CallError {
        self.details = details;
        self
    }

    /// For failures of our own (the database is down): the charger should send it again later.
    pub fn internal(description: impl Into<String>) -> CallError {
        CallError::new(ErrorCode::InternalError, description)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_the_specification_spelling() {
        assert_eq!(
            ErrorCode::OccurenceConstraintViolation.as_str(),
            "OccurenceConstraintViolation"
        );
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("OccurrenceConstraintViolation"), None);
        assert_eq!(ErrorCode::from_wire("MessageTypeNotSupported"), None);
    }

    #[test]
    fn long_descriptions_are_cut_on_a_character_boundary() {
        let error = CallError::new(ErrorCode::GenericError, "é".repeat(300));
        assert!(error.description.len() <= MAX_DESCRIPTION + '…'.len_utf8());
        assert!(error.description.ends_with('…'));
    }
}
