//! How a failed PostgreSQL call becomes ours ([`classify`]): connection
//! trouble (the server gone, shutting down or refusing connections) is
//! `ERR_STORE_UNAVAILABLE`, anything the server rejected is `ERR_STORE`.

use crate::error::PersistError;

/// Our error for a client error: connection trouble is
/// `Unavailable`, anything the server rejected is `Store`.
pub fn classify(e: &tokio_postgres::Error) -> PersistError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let msg = format!("{} ({code})", db.message());
        // 08: connection exception; 57P0x: shutdown, crash, not yet
        // accepting; 53300: too many connections
        return if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
            PersistError::Unavailable(msg)
        } else {
            PersistError::Store(msg)
        };
    }
    PersistError::Unavailable(with_causes(e))
}

/// `e`'s message and those of its causes (a TLS handshake error names the
/// certificate problem only in its source), `: `-separated.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}
