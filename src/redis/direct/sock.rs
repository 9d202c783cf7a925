//! The socket's bytes: plain `recv`/`send`, and over TLS the records that
//! rustls (sans I/O) reads and writes on the same non-blocking socket.

use std::ffi::c_void;
use std::os::fd::RawFd;

use super::Owner;
use crate::error::PersistError;
use crate::redis::wire::{Replies, Wire};

pub(super) fn closed_by_server() -> PersistError {
    PersistError::Unavailable("the server closed the connection".into())
}

/// The socket as `Read` / `Write` for rustls, and for the plain path:
/// non-blocking `recv` / `send` (a closed peer is an error, never SIGPIPE),
/// EINTR retried.
pub(super) struct Sock(pub(super) RawFd);

impl Sock {
    pub(super) fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // SAFETY: `buf` is writable for its length
            let n = unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut c_void, buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    pub(super) fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            // SAFETY: `buf` is readable for its length
            let n = unsafe {
                libc::send(
                    self.0,
                    buf.as_ptr() as *const c_void,
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl std::io::Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.recv(buf)
    }
}

impl std::io::Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.send(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encrypt `wire`'s unwritten bytes and write the records to `fd` until
/// everything is out (false) or the socket would block (true).
pub(super) fn flush_tls(
    tls: &mut crate::tls::Session,
    wire: &mut Wire<Owner>,
    fd: RawFd,
) -> Result<bool, PersistError> {
    use std::io::Write;
    loop {
        let plain = wire.unwritten();
        let took_some = !plain.is_empty();
        if took_some {
            let n = tls
                .writer()
                .write(plain)
                .map_err(|e| PersistError::Unavailable(format!("TLS: {e}")))?;
            wire.wrote(n);
        }
        if !tls.wants_write() {
            if wire.unwritten().is_empty() {
                return Ok(false);
            }
            if took_some {
                continue;
            }
            return Err(PersistError::Internal(
                "TLS: the session took no bytes and has none to send".into(),
            ));
        }
        match tls.write_tls(&mut Sock(fd)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(PersistError::Unavailable(e.to_string())),
        }
    }
}

/// Read records from `fd`, decrypt them, and hand the plaintext to `wire`:
/// the batches it completes go to `done`.
pub(super) fn read_tls(
    tls: &mut crate::tls::Session,
    wire: &mut Wire<Owner>,
    fd: RawFd,
    done: &mut Vec<(Owner, Replies)>,
) -> Result<(), PersistError> {
    use std::io::Read;
    // level-triggered: what is left is read on the next callback
    for _ in 0..16 {
        let got = match tls.read_tls(&mut Sock(fd)) {
            Ok(0) => return Err(closed_by_server()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(PersistError::Unavailable(e.to_string())),
        };
        let state = tls
            .process_new_packets()
            .map_err(|e| PersistError::Unavailable(format!("TLS: {e}")))?;
        let mut avail = state.plaintext_bytes_to_read();
        let peer_closed = state.peer_has_closed();
        while avail > 0 {
            let n = wire.fill(|ptr, len| {
                let want = len.min(avail);
                // SAFETY: `ptr` is writable for `len` >= `want` bytes
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr, want) };
                match tls.reader().read(buf) {
                    Ok(n) => n as isize,
                    Err(_) => -1,
                }
            });
            if n <= 0 {
                break;
            }
            avail -= n as usize;
            wire.parse(done)?;
        }
        if peer_closed {
            return Err(closed_by_server());
        }
        if got == 0 {
            return Ok(());
        }
    }
    Ok(())
}
