//! Opening a JS-thread connection's socket (one server's, or a cluster
//! primary's), on tokio (never per call):
//! connect (TCP or a unix socket, DNS included), the TLS handshake of a
//! `rediss://` store, then `AUTH` / `SELECT` as the URL says; the socket
//! ([`DirectSocket`]) then goes to the JS thread, non-blocking.

use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::Value;

use crate::error::{PersistError, Result};
use crate::redis::cluster::slots::Node;
use crate::redis::store::{RedisStore, Transport};

/// A socket for the JS-thread connection, connected, its TLS handshake
/// (if any) and `AUTH`/`SELECT` done ([`RedisStore::connect_direct`]).
pub struct DirectSocket {
    pub fd: std::os::fd::OwnedFd,
    /// The TLS session of a `rediss://` store.
    pub tls: Option<Box<crate::tls::Session>>,
}

impl DirectSocket {
    fn plain(fd: std::os::fd::OwnedFd) -> DirectSocket {
        DirectSocket { fd, tls: None }
    }
}

impl RedisStore {
    /// Open a socket for the data connection of [`RedisStore::direct_capable`]
    /// stores, within `connect_timeout_ms`: connected, `AUTH` and `SELECT`
    /// done as the URL says, non-blocking. Counts as a connection opened.
    pub async fn connect_direct(&self) -> Result<DirectSocket> {
        let Transport::Single(client) = &self.inner.transport else {
            return Err(PersistError::Internal("connect_direct on a cluster".into()));
        };
        self.connect_socket(client.get_connection_info()).await
    }

    /// Open a socket to the cluster primary `node` as
    /// [`RedisStore::connect_direct`] does for one server (the client made
    /// as the first seed's).
    pub async fn connect_direct_node(&self, node: &Node) -> Result<DirectSocket> {
        let Some(c) = self.cluster() else {
            return Err(PersistError::Internal(
                "connect_direct_node: not a cluster".into(),
            ));
        };
        let client = c.client_of(node)?;
        self.connect_socket(client.get_connection_info()).await
    }

    async fn connect_socket(&self, info: &redis::ConnectionInfo) -> Result<DirectSocket> {
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
        use tokio_util::codec::Decoder;
        if self.is_closed() {
            return Err(PersistError::Closed);
        }
        let settings = info.redis_settings();
        let mut hello = Vec::new();
        let mut replies = 0;
        if let Some(pw) = settings.password() {
            let mut c = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                c.arg(user);
            }
            c.arg(pw).write_packed_command(&mut hello);
            replies += 1;
        }
        if settings.db() != 0 {
            redis::cmd("SELECT")
                .arg(settings.db())
                .write_packed_command(&mut hello);
            replies += 1;
        }
        async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
            s: &mut S,
            hello: &[u8],
            replies: usize,
        ) -> Result<()> {
            let io = |e: std::io::Error| PersistError::Unavailable(e.to_string());
            if replies == 0 {
                return Ok(());
            }
            s.write_all(hello).await.map_err(io)?;
            let mut codec = redis::ValueCodec::default();
            let mut buf = bytes::BytesMut::with_capacity(256);
            let mut got = 0;
            while got < replies {
                match codec.decode(&mut buf) {
                    Ok(Some(Value::ServerError(e))) => {
                        // e.g. a wrong password: the server answered
                        return Err(PersistError::Store(format!(
                            "{} {}",
                            e.code(),
                            e.details().unwrap_or("")
                        )));
                    }
                    Ok(Some(_)) => got += 1,
                    Ok(None) => {
                        if s.read_buf(&mut buf).await.map_err(io)? == 0 {
                            return Err(PersistError::Unavailable(
                                "the server closed the connection during the handshake".into(),
                            ));
                        }
                    }
                    Err(e) => return Err(PersistError::Store(e.to_string())),
                }
            }
            Ok(())
        }
        let cto = self.inner.config.connect_timeout_ms;
        let refused = |e: std::io::Error| PersistError::Unavailable(e.to_string());
        let attempt = async {
            let socket = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port) => {
                    let mut s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(refused)?;
                    s.set_nodelay(true).map_err(refused)?;
                    handshake(&mut s, &hello, replies).await?;
                    DirectSocket::plain(s.into_std().map_err(refused)?.into())
                }
                redis::ConnectionAddr::TcpTls { host, port, .. } => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(refused)?;
                    s.set_nodelay(true).map_err(refused)?;
                    let mut s = self
                        .inner
                        .config
                        .tls
                        .handshake("createRedisStore", s, host)
                        .await?;
                    handshake(&mut s, &hello, replies).await?;
                    let (tcp, session) = s.into_inner();
                    DirectSocket {
                        fd: tcp.into_std().map_err(refused)?.into(),
                        tls: Some(Box::new(session)),
                    }
                }
                redis::ConnectionAddr::Unix(path) => {
                    let mut s = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(refused)?;
                    handshake(&mut s, &hello, replies).await?;
                    DirectSocket::plain(s.into_std().map_err(refused)?.into())
                }
                _ => {
                    return Err(PersistError::Internal(
                        "connect_direct: not a TCP, TLS or unix address".into(),
                    ))
                }
            };
            Ok(socket)
        };
        let socket = match tokio::time::timeout(Duration::from_millis(cto.max(1)), attempt).await {
            Ok(r) => r?,
            Err(_) => return Err(PersistError::Timeout(cto)),
        };
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        Ok(socket)
    }
}
