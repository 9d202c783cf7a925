//! Opening a connection of the tokio transport: the crate's multiplexed
//! connection, over TCP or a unix socket as the crate opens them, or over
//! TLS from our own handshake ([`crate::tls`]), so that both transports
//! honour the same `tls` options (CA, client certificate, `servername`,
//! `rejectUnauthorized`).

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisResult};

use crate::tls::TlsOptions;

/// A multiplexed connection to `client`'s server (its driver spawned on
/// tokio). A TLS failure comes back as an I/O error naming its cause.
pub async fn open(
    client: &Client,
    tls: &TlsOptions,
    cfg: &AsyncConnectionConfig,
) -> RedisResult<MultiplexedConnection> {
    let info = client.get_connection_info();
    let redis::ConnectionAddr::TcpTls { host, port, .. } = info.addr() else {
        return client
            .get_multiplexed_async_connection_with_config(cfg)
            .await;
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
    tcp.set_nodelay(true)?;
    let stream = tls
        .handshake("createRedisStore", tcp, host)
        .await
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, e.to_string()))?;
    let (conn, driver) =
        MultiplexedConnection::new_with_config(info.redis_settings(), stream, cfg.clone()).await?;
    tokio::spawn(driver);
    Ok(conn)
}
