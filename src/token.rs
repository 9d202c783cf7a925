//! Lease owner tokens: 128 random bits from the OS, as 32 lowercase hex digits.

use crate::error::{PersistError, Result};

/// A fresh owner token.
pub fn new_token() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| PersistError::Internal(format!("no randomness for a lease token: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
