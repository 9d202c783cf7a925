//! Lease owner tokens: 128 random bits from the OS, as 32 lowercase hex digits.

use crate::error::{PersistError, Result};

/// A fresh owner token.
pub fn new_token() -> Result<String> {
    Ok(new_tokens(1)?.pop().unwrap_or_default())
}

/// `n` fresh owner tokens, from one read of the OS's randomness.
pub fn new_tokens(n: usize) -> Result<Vec<String>> {
    let mut b = vec![0u8; 16 * n];
    getrandom::getrandom(&mut b)
        .map_err(|e| PersistError::Internal(format!("no randomness for a lease token: {e}")))?;
    Ok(b.chunks(16)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect())
        .collect())
}
