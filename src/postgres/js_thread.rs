//! The store's connections on the JS thread that made it (`transport:
//! 'auto'` in Node): a [`Driver`] whose sockets are watched by that loop
//! and whose tasks (startups, connections' I/O) run on its executor
//! ([`crate::js_loop::executor`]), where the binding runs the store's calls
//! too. napi side: the pure core only sees the trait.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::connect::{Driver, Io, Task};
use crate::js_loop::executor::Shared;
use crate::js_loop::stream::{this_thread, LoopSocket};

pub(super) struct JsThread {
    shared: Arc<Shared>,
    thread: usize,
}

impl JsThread {
    /// The driver of the executor behind `shared`, whose JS thread is this one.
    pub(super) fn here(shared: Arc<Shared>) -> JsThread {
        JsThread {
            shared,
            thread: this_thread(),
        }
    }
}

impl Driver for JsThread {
    fn adopt(&self, fd: OwnedFd) -> io::Result<Box<dyn Io>> {
        Ok(Box::new(LoopSocket::new(
            fd,
            self.thread,
            self.shared.event_loop,
        )))
    }

    fn spawn(&self, task: Task) {
        self.shared.spawn(task);
    }
}
