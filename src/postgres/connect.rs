//! Opening one connection: the socket (the configured hosts in turn, TCP
//! or Unix), then the startup (TLS, authentication) and the connection's
//! I/O task, both where the store's [`Runner`] runs them: on tokio, or on
//! the JS thread that made the store (`js_thread`, through [`Driver`]),
//! where a call then costs no thread hop. No napi types.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, NoTls};

use super::failure::classify;
use crate::error::{PersistError, Result};
use crate::tls::TlsOptions;

/// A boxed future a [`Runner`] runs to its end.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A socket's byte stream, wherever its I/O is done.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Where a store's connections do their I/O other than on tokio: it adopts
/// a connected non-blocking socket and runs the tasks that use it.
pub trait Driver: Send + Sync {
    /// The socket `fd` as a stream for the tasks [`Driver::spawn`] runs.
    fn adopt(&self, fd: OwnedFd) -> io::Result<Box<dyn Io>>;
    /// Run `task` to its end (or drop it, if the driver is gone).
    fn spawn(&self, task: Task);
}

/// Where a store's connections run.
#[derive(Clone)]
pub enum Runner {
    Tokio,
    Driven(Arc<dyn Driver>),
}

impl Runner {
    fn spawn(&self, task: Task) {
        match self {
            Runner::Tokio => drop(tokio::spawn(task)),
            Runner::Driven(d) => d.spawn(task),
        }
    }

    fn socket(&self, dialed: Dialed) -> io::Result<Socket> {
        match (self, dialed) {
            (Runner::Tokio, Dialed::Tcp(s)) => Ok(Socket::Tcp(s)),
            (Runner::Tokio, Dialed::Unix(s)) => Ok(Socket::Unix(s)),
            (Runner::Driven(d), Dialed::Tcp(s)) => {
                d.adopt(s.into_std()?.into()).map(Socket::Driven)
            }
            (Runner::Driven(d), Dialed::Unix(s)) => {
                d.adopt(s.into_std()?.into()).map(Socket::Driven)
            }
        }
    }
}

enum Dialed {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The stream a connection speaks over.
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    Driven(Box<dyn Io>),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Socket::Tcp($s) => $e,
            Socket::Unix($s) => $e,
            Socket::Driven($s) => $e,
        }
    };
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A socket to the first of the configured hosts that accepts one, and the
/// host's name (what TLS verifies, unless `tls.servername` is set).
async fn dial(cfg: &Config) -> Result<(Dialed, String)> {
    let ports = cfg.get_ports();
    let mut last = None;
    for (i, host) in cfg.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let r = match host {
            Host::Tcp(name) => {
                let s = match cfg.get_hostaddrs().get(i) {
                    Some(ip) => TcpStream::connect((*ip, port)).await,
                    None => TcpStream::connect((name.as_str(), port)).await,
                };
                s.and_then(|s| {
                    s.set_nodelay(true)?;
                    if cfg.get_keepalives() {
                        let ka = socket2::TcpKeepalive::new().with_time(cfg.get_keepalives_idle());
                        socket2::SockRef::from(&s).set_tcp_keepalive(&ka)?;
                    }
                    Ok((Dialed::Tcp(s), name.clone()))
                })
            }
            Host::Unix(dir) => UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                .await
                .map(|s| (Dialed::Unix(s), String::new())),
        };
        match r {
            Ok(d) => return Ok(d),
            Err(e) => last = Some(format!("{host:?} port {port}: {e}")),
        }
    }
    Err(PersistError::Unavailable(format!(
        "could not connect to PostgreSQL: {}",
        last.unwrap_or_else(|| "no host configured".into())
    )))
}

/// rustls over the connection, verifying `tls.servername` when set, else
/// the host connected to.
pub(super) struct Named {
    servername: Option<String>,
    inner: tokio_postgres_rustls::MakeRustlsConnect,
}

impl Named {
    pub(super) fn new(options: &TlsOptions) -> Result<Named> {
        Ok(Named {
            servername: options.servername.clone(),
            inner: tokio_postgres_rustls::MakeRustlsConnect::new(
                options.client_config("createPostgresStore")?,
            ),
        })
    }
}

/// Open one connection within `timeout`: dial, then the startup and the
/// connection's I/O task where `runner` runs tasks. The task ends when the
/// client is dropped or the server goes away.
pub(super) async fn open(
    cfg: &Config,
    tls: Option<Arc<Named>>,
    runner: &Runner,
    timeout: Duration,
) -> Result<Client> {
    let ms = timeout.as_millis() as u64;
    let timed_out = |_| PersistError::Timeout(ms);
    // one deadline for the dial and the startup together
    let deadline = tokio::time::Instant::now() + timeout;
    let (dialed, host) = tokio::time::timeout_at(deadline, dial(cfg))
        .await
        .map_err(timed_out)??;
    let socket = runner
        .socket(dialed)
        .map_err(|e| PersistError::Unavailable(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    runner.spawn(Box::pin(startup(
        cfg.clone(),
        socket,
        host,
        tls,
        timeout,
        tx,
    )));
    tokio::time::timeout_at(deadline, rx)
        .await
        .map_err(timed_out)?
        .map_err(|_| PersistError::Unavailable("the connection's task ended".into()))?
}

/// The startup on `socket` (bounded by `timeout`); the client goes to
/// `tx`, then the connection's I/O runs here until it ends.
async fn startup(
    cfg: Config,
    socket: Socket,
    host: String,
    tls: Option<Arc<Named>>,
    timeout: Duration,
    tx: tokio::sync::oneshot::Sender<Result<Client>>,
) {
    let ms = timeout.as_millis() as u64;
    macro_rules! run {
        ($connect:expr) => {
            match tokio::time::timeout(timeout, $connect).await {
                Ok(Ok((client, conn))) => {
                    if tx.send(Ok(client)).is_ok() {
                        let _ = conn.await;
                    }
                }
                Ok(Err(e)) => drop(tx.send(Err(classify(&e)))),
                Err(_) => drop(tx.send(Err(PersistError::Timeout(ms)))),
            }
        };
    }
    match tls {
        None => run!(cfg.connect_raw(socket, NoTls)),
        Some(named) => {
            let name = named.servername.as_deref().unwrap_or(&host);
            let mut inner = named.inner.clone();
            match MakeTlsConnect::<Socket>::make_tls_connect(&mut inner, name) {
                Ok(connect) => run!(cfg.connect_raw(socket, connect)),
                Err(e) => drop(tx.send(Err(PersistError::InvalidArgument(format!(
                    "createPostgresStore: TLS server name {name:?}: {e}"
                ))))),
            }
        }
    }
}
