//! Binding side of errors: turns a [`PersistError`] into a thrown JavaScript
//! error of the right class with `error.code` set, and guards against panics.
//!
//! Sync functions call [`throw`], which throws on the env and returns a
//! `PendingException` napi error (napi-rs then leaves the pending exception
//! alone). Async functions cannot pick the class of their rejection, so they
//! return [`to_async`]: a plain `Error` whose message starts with `[CODE] `;
//! the JavaScript glue (`lib/native.js`) moves that prefix into `error.code`.

use napi::bindgen_prelude::*;

use napi_derive::napi;

use crate::error::{JsClass, PersistError, ERROR_CLASSES};

/// Every error code → the name of the JS class it is thrown as
/// (`ERROR_CLASSES`), for `lib/errors.js`.
#[napi(js_name = "errorClasses")]
pub fn error_classes() -> std::collections::HashMap<String, String> {
    ERROR_CLASSES
        .iter()
        .map(|(code, class)| (code.to_string(), class.name().to_string()))
        .collect()
}

/// Throw `err` into `env` as the matching JS class with `code` set.
pub fn throw(env: &Env, err: PersistError) -> napi::Error {
    let msg = err.to_string();
    let code = err.code();
    match err.js_class() {
        JsClass::TypeError => {
            let _ = env.throw_type_error(&msg, Some(code));
        }
        JsClass::RangeError => {
            let _ = env.throw_range_error(&msg, Some(code));
        }
        JsClass::SyntaxError => {
            env.throw_syntax_error(&msg, Some(code));
        }
        JsClass::Error => {
            let _ = env.throw_error(&msg, Some(code));
        }
    }
    napi::Error::new(Status::PendingException, msg)
}

/// An error for an async rejection: `[CODE] message`, decoded by `lib/native.js`.
pub fn to_async(err: PersistError) -> napi::Error {
    napi::Error::new(Status::GenericFailure, coded(&err))
}

/// `[CODE] message`: how an error crosses as text (async rejections, the
/// per-op errors of a batch), decoded by `lib/native.js`.
pub fn coded(err: &PersistError) -> String {
    format!("[{}] {}", err.code(), err)
}

/// Run `f`, turning a panic into [`PersistError::Internal`] so that no panic
/// ever unwinds into Node (which would abort the process). The error's
/// message carries the panic's message and where it happened.
pub fn guard<T>(f: impl FnOnce() -> crate::error::Result<T>) -> crate::error::Result<T> {
    match catch_panic(f) {
        Ok(r) => r,
        Err(what) => Err(PersistError::Internal(format!("panic: {what}"))),
    }
}

// A panic caught at our boundary becomes an `ERR_INTERNAL` error that says
// what and where, so the default hook's report on stderr (message, and a
// backtrace under RUST_BACKTRACE) would only repeat it: while `catch_panic`
// runs on a thread, our hook records the panic instead of printing it. Every
// other panic (another thread, napi's own `catch_unwind`, a committer thread)
// goes to the previous hook. AWAITLY_NATIVE_PANIC_REPORT=1 (README
// "Environment variables") prints caught panics too.
thread_local! {
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    static CAUGHT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

fn install_panic_hook() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let report_caught =
            std::env::var("AWAITLY_NATIVE_PANIC_REPORT").is_ok_and(|v| !v.is_empty() && v != "0");
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught_here = CATCHING.with(|c| c.get()) > 0;
            if caught_here {
                let mut what = payload_text(info.payload());
                if let Some(at) = info.location() {
                    what = format!("{what} (at {}:{}:{})", at.file(), at.line(), at.column());
                }
                CAUGHT.with(|c| *c.borrow_mut() = Some(what));
            }
            if !caught_here || report_caught {
                previous(info);
            }
        }));
    });
}

/// Run `f`, catching a panic: `Err` holds its message and location.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    install_panic_hook();
    CATCHING.with(|c| c.set(c.get() + 1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    r.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| payload_text(&*payload))
    })
}

/// Await `fut`, catching a panic in any of its polls as [`catch_panic`] does.
pub async fn catch_panic_async<T>(
    fut: impl std::future::Future<Output = T>,
) -> std::result::Result<T, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| match catch_panic(|| fut.as_mut().poll(cx)) {
        Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
        Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
        Err(what) => std::task::Poll::Ready(Err(what)),
    })
    .await
}

/// Await `fut`, a call of the `store` (its name, for the message), turning
/// a panic inside it into `ERR_INTERNAL`.
pub async fn caught<T>(
    store: &str,
    fut: impl std::future::Future<Output = crate::error::Result<T>>,
) -> crate::error::Result<T> {
    match catch_panic_async(fut).await {
        Ok(r) => r,
        Err(what) => Err(PersistError::Internal(format!(
            "panic in the {store} store: {what}"
        ))),
    }
}

/// [`caught`] with the error as napi-rs rejects it (napi-rs alone would
/// reject a panic with a bare "Panic in async function").
pub async fn guarded<T>(
    store: &str,
    fut: impl std::future::Future<Output = crate::error::Result<T>>,
) -> napi::Result<T> {
    caught(store, fut).await.map_err(to_async)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_says_what_and_where() {
        let r = catch_panic(|| -> u32 { panic!("boom {}", 7) });
        let what = r.expect_err("caught");
        assert!(
            what.starts_with("boom 7 (at src/boundary/js_error.rs:"),
            "{what}"
        );
        assert!(catch_panic(|| 5).is_ok_and(|v| v == 5));
        // nested: the inner catch does not end the outer one
        let outer = catch_panic(|| {
            let inner = catch_panic(|| -> u32 { panic!("inner") });
            assert!(inner.expect_err("inner").starts_with("inner (at "));
            panic!("outer")
        });
        assert!(outer.expect_err("outer").starts_with("outer (at "));
        CATCHING.with(|c| assert_eq!(c.get(), 0));
    }

    /// In a child process (this test binary, re-run on this test alone with
    /// output not captured, marked by AWAITLY_PANIC_HOOK_CHILD): a panic we
    /// catch prints nothing, a panic caught anywhere else still gets the
    /// default report on stderr.
    #[test]
    fn only_panics_caught_by_us_are_silenced() {
        if std::env::var_os("AWAITLY_PANIC_HOOK_CHILD").is_some() {
            let _ = catch_panic(|| -> u32 { panic!("caught-by-our-boundary") });
            let _ = std::panic::catch_unwind(|| -> u32 { panic!("caught-elsewhere") });
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "boundary::js_error::tests::only_panics_caught_by_us_are_silenced",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AWAITLY_PANIC_HOOK_CHILD", "1")
            .env_remove("AWAITLY_NATIVE_PANIC_REPORT")
            .output()
            .expect("run the child");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("panicked at") && stderr.contains("caught-elsewhere"),
            "{stderr}"
        );
        assert!(!stderr.contains("caught-by-our-boundary"), "{stderr}");
    }

    #[test]
    fn guard_turns_a_panic_into_internal() {
        match guard(|| -> crate::error::Result<()> { panic!("bad state") }) {
            Err(PersistError::Internal(m)) => {
                assert!(m.starts_with("panic: bad state (at "), "{m}")
            }
            other => panic!("expected Internal, got {other:?}"),
        }
    }

    #[test]
    fn a_panic_in_a_polled_future_is_caught() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let r = rt.block_on(catch_panic_async(async {
            tokio::task::yield_now().await;
            if CATCHING.with(|c| c.get()) > 0 {
                panic!("after a yield");
            }
            1
        }));
        assert!(r.expect_err("caught").starts_with("after a yield (at "));
        assert_eq!(rt.block_on(catch_panic_async(async { 2 })), Ok(2));
    }
}
