//! The one error type of the crate. Every failure a caller can see is a
//! variant here, with a stable `code` string and the JavaScript class it is
//! thrown as. No napi types: the binding layer (`boundary/js_error.rs`) maps it.

use std::sync::Arc;

use thiserror::Error;

/// Which JavaScript error class a [`PersistError`] is surfaced as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsClass {
    Error,
    TypeError,
    RangeError,
    SyntaxError,
}

impl JsClass {
    /// The JavaScript constructor's name.
    pub fn name(self) -> &'static str {
        match self {
            JsClass::Error => "Error",
            JsClass::TypeError => "TypeError",
            JsClass::RangeError => "RangeError",
            JsClass::SyntaxError => "SyntaxError",
        }
    }
}

/// Every error code of the package with the JavaScript class it is thrown
/// as: the one table, exported to JS (`errorClasses`) and read by
/// `lib/errors.js`. `ERR_NATIVE_BINDING_NOT_FOUND` is raised by the JS loader
/// (`lib/native.js`) when this binary cannot be loaded.
pub const ERROR_CLASSES: [(&str, JsClass); 13] = [
    ("ERR_INVALID_ARG", JsClass::TypeError),
    ("ERR_INVALID_DOCUMENT", JsClass::TypeError),
    ("ERR_JSON_SYNTAX", JsClass::SyntaxError),
    ("ERR_OUT_OF_RANGE", JsClass::RangeError),
    ("ERR_CORRUPT", JsClass::Error),
    ("ERR_IO", JsClass::Error),
    ("ERR_STORE_UNAVAILABLE", JsClass::Error),
    ("ERR_STORE_TIMEOUT", JsClass::Error),
    ("ERR_STORE", JsClass::Error),
    ("ERR_STORE_CLOSED", JsClass::Error),
    ("ERR_LEASE_LOST", JsClass::Error),
    ("ERR_INTERNAL", JsClass::Error),
    ("ERR_NATIVE_BINDING_NOT_FOUND", JsClass::Error),
];

/// Cloneable, so one failure can be reported to every caller it affects
/// (each write of a failed batch, each op of a failed pipeline).
#[derive(Debug, Clone, Error)]
pub enum PersistError {
    /// A caller passed an argument or option of the wrong type or range.
    #[error("{0}")]
    InvalidArgument(String),
    /// JSON that parsed but is not a state document / serialized result.
    #[error("{0}")]
    InvalidDocument(String),
    /// Text that is not JSON.
    #[error("{0}")]
    Syntax(String),
    /// A value too deep or too large to handle.
    #[error("{0}")]
    Range(String),
    /// A stored value that cannot be read back (torn file, garbage in a key).
    #[error("corrupt value at {location}: {reason}")]
    Corrupt { location: String, reason: String },
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The store cannot be reached (connection refused, dropped).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer within the configured time.
    #[error("store operation timed out after {0} ms")]
    Timeout(u64),
    /// The store answered with an error.
    #[error("store error: {0}")]
    Store(String),
    /// The store was closed by the caller.
    #[error("store is closed")]
    Closed,
    /// A fenced write (a snapshot save or delete by a store that holds the
    /// run's lease) found the lease no longer its own: nothing was written.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// A bug: a panic caught at the boundary, or an invariant broken.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PersistError {
    /// Stable machine-readable code, set as `error.code` in JavaScript.
    pub fn code(&self) -> &'static str {
        match self {
            PersistError::InvalidArgument(_) => "ERR_INVALID_ARG",
            PersistError::InvalidDocument(_) => "ERR_INVALID_DOCUMENT",
            PersistError::Syntax(_) => "ERR_JSON_SYNTAX",
            PersistError::Range(_) => "ERR_OUT_OF_RANGE",
            PersistError::Corrupt { .. } => "ERR_CORRUPT",
            PersistError::Io { .. } => "ERR_IO",
            PersistError::Unavailable(_) => "ERR_STORE_UNAVAILABLE",
            PersistError::Timeout(_) => "ERR_STORE_TIMEOUT",
            PersistError::Store(_) => "ERR_STORE",
            PersistError::Closed => "ERR_STORE_CLOSED",
            PersistError::LeaseLost(_) => "ERR_LEASE_LOST",
            PersistError::Internal(_) => "ERR_INTERNAL",
        }
    }

    /// The JavaScript class this error is thrown as (see [`ERROR_CLASSES`]).
    pub fn js_class(&self) -> JsClass {
        let code = self.code();
        ERROR_CLASSES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(JsClass::Error, |&(_, class)| class)
    }

    pub fn io(op: &'static str, path: impl Into<String>, source: std::io::Error) -> Self {
        PersistError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// A fenced write refused: the run's lease is no longer the caller's.
    pub fn lease_lost() -> Self {
        PersistError::LeaseLost(
            "the run's lease is no longer this store's (expired or taken over): nothing written"
                .into(),
        )
    }

    pub fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> Self {
        PersistError::Corrupt {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = PersistError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_classes_match() {
        assert_eq!(
            PersistError::InvalidArgument("x".into()).code(),
            "ERR_INVALID_ARG"
        );
        assert_eq!(
            PersistError::InvalidArgument("x".into()).js_class(),
            JsClass::TypeError
        );
        assert_eq!(
            PersistError::Syntax("x".into()).js_class(),
            JsClass::SyntaxError
        );
        let c = PersistError::corrupt("a.json", "unexpected end");
        assert_eq!(c.code(), "ERR_CORRUPT");
        assert_eq!(c.to_string(), "corrupt value at a.json: unexpected end");
        assert_eq!(PersistError::Timeout(500).code(), "ERR_STORE_TIMEOUT");
        assert_eq!(PersistError::Closed.js_class(), JsClass::Error);
        assert_eq!(
            PersistError::Range("x".into()).js_class(),
            JsClass::RangeError
        );
    }

    #[test]
    fn every_code_is_in_the_class_table_once() {
        let all = [
            PersistError::InvalidArgument(String::new()),
            PersistError::InvalidDocument(String::new()),
            PersistError::Syntax(String::new()),
            PersistError::Range(String::new()),
            PersistError::corrupt("", ""),
            PersistError::io("x", "", std::io::Error::other("x")),
            PersistError::Unavailable(String::new()),
            PersistError::Timeout(0),
            PersistError::Store(String::new()),
            PersistError::Closed,
            PersistError::LeaseLost(String::new()),
            PersistError::Internal(String::new()),
        ];
        for e in &all {
            let n = ERROR_CLASSES.iter().filter(|(c, _)| *c == e.code()).count();
            assert_eq!(n, 1, "{}", e.code());
        }
    }
}
