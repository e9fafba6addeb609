//! Everything that speaks AMQP: topology, the consumers, the outbox relay and
//! the publisher used by the CLI.

pub mod access;
pub mod consumer;
pub mod limits;
pub mod publish;
pub mod raw;
pub mod relay;
pub mod topology;
pub mod unreadable;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

/// Names of the exchanges and queues, under one namespace (default `gridhub`).
#[derive(Debug, Clone)]
pub struct Names {
    pub namespace: String,
}

impl Names {
    pub fn new(namespace: &str) -> Names {
        Names {
            namespace: namespace.to_owned(),
        }
    }
    /// Topic exchange all connectors publish to, routing key `<connector>.<type>`.
    pub fn inbound_exchange(&self) -> String {
        format!("{}.in", self.namespace)
    }
    /// Topic exchange of refused messages, routing key as received.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.namespace)
    }
    /// Topic exchange of events, routing key `<destination>.<event>`.
    pub fn outbound_exchange(&self) -> String {
        format!("{}.out", self.namespace)
    }
    pub fn inbound_queue(&self, connector: &str) -> String {
        format!("{}.in.{connector}", self.namespace)
    }
    pub fn dead_letter_queue(&self, connector: &str) -> String {
        format!("{}.dlq.{connector}", self.namespace)
    }
    pub fn outbound_queue(&self, destination: &str) -> String {
        format!("{}.out.{destination}", self.namespace)
    }
}

/// Opens a connection named after its role, so operators see who is who.
pub async fn connect(url: &str, role: &str) -> lapin::Result<Connection> {
    connect_with(url, role, None).await
}

/// Connects; an `amqps://` URL trusts and shows what `tls` says (the
/// system's roots and no client certificate without it).
pub async fn connect_with(url: &str, role: &str, tls: Option<&Tls>) -> lapin::Result<Connection> {
    let properties =
        ConnectionProperties::default().with_connection_name(format!("gridhub {role}").into());
    match tls {
        Some(tls) => {
            lapin::DefaultConnectionBuilder::new()?
                .with_uri_str(url.to_owned())
                .with_properties(properties)
                .with_tls_config(tls.0.clone())
                .connect()
                .await
        }
        None => Connection::connect(url, properties).await,
    }
}

/// A broker's addresses (a cluster's nodes) and the TLS that applies to
/// each. Every connection tries them in turn: from a rotating start (random
/// at first), so that several hubs, and the connections of one hub, spread
/// over the nodes; on failure it moves to the next, and only a whole round
/// of failures is an error (the caller backs off then).
#[derive(Debug, Clone)]
pub struct Brokers {
    urls: Arc<[String]>,
    tls: Option<Tls>,
    /// Most one address may take to connect (TCP, TLS, AMQP handshake): a
    /// node that accepts and then says nothing costs only this.
    attempt: Duration,
    next: Arc<AtomicUsize>,
}

/// A connection and the address it went to.
pub struct Connected {
    pub connection: Connection,
    pub url: String,
}

impl Brokers {
    pub fn new(urls: Vec<String>, tls: Option<Tls>) -> Brokers {
        use std::hash::{BuildHasher, Hasher};
        // A random start: hubs started together do not all pick the first node.
        let start = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Brokers {
            urls: urls.into(),
            tls,
            attempt: Duration::from_secs(15),
            next: Arc::new(AtomicUsize::new(start as usize)),
        }
    }

    /// One address, no TLS.
    pub fn single(url: &str) -> Brokers {
        Brokers::new(vec![url.to_owned()], None)
    }

    pub fn with_tls(mut self, tls: Option<Tls>) -> Brokers {
        self.tls = tls;
        self
    }

    pub fn with_attempt_bound(mut self, attempt: Duration) -> Brokers {
        self.attempt = attempt;
        self
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The broker user, the hub's identity (the same in every address).
    pub fn user(&self) -> String {
        self.urls
            .first()
            .map(|url| url_user(url))
            .unwrap_or_else(|| "guest".to_owned())
    }

    /// Connects to the first address that answers, starting after the one
    /// the previous connection started at. Fails when all of them failed,
    /// with each one's error.
    pub async fn connect(&self, role: &str) -> lapin::Result<Connected> {
        let count = self.urls.len();
        if count == 0 {
            return Err(std::io::Error::other("no broker address").into());
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut failures = Vec::new();
        for step in 0..count {
            let index = (start + step) % count;
            let url = &self.urls[index];
            let attempt =
                tokio::time::timeout(self.attempt, connect_with(url, role, self.tls.as_ref()));
            let error = match attempt.await {
                Ok(Ok(connection)) => {
                    if step > 0 {
                        tracing::info!(role, broker = %redact_url(url), "connected to another broker node");
                    }
                    return Ok(Connected {
                        connection,
                        url: url.clone(),
                    });
                }
                Ok(Err(error)) => error,
                Err(_) => std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} ms", self.attempt.as_millis()),
                )
                .into(),
            };
            if count == 1 {
                return Err(error);
            }
            tracing::debug!(role, broker = %redact_url(url), error = %error, "broker node unavailable; trying the next");
            failures.push(format!("{}: {error}", redact_url(url)));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("no broker node answered ({})", failures.join("; ")),
        )
        .into())
    }
}

/// The broker link's TLS, read from its files: the CA that signed the
/// broker's certificate, and the hub's own certificate and key (PKCS#8
/// PEM) where the broker asks for one.
#[derive(Debug, Clone)]
pub struct Tls(lapin::tcp::OwnedTLSConfig);

impl Tls {
    /// Reads the files; `None` when none is named.
    pub fn load(
        ca: Option<&std::path::Path>,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<Tls>> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        };
        let cert_chain = match ca {
            Some(path) => Some(String::from_utf8(read(path)?)?),
            None => None,
        };
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some(lapin::tcp::OwnedIdentity::PKCS8 {
                pem: read(cert)?,
                key: read(key)?,
            }),
            (None, None) => None,
            _ => anyhow::bail!("amqp_tls_cert_file and amqp_tls_key_file go together"),
        };
        Ok((cert_chain.is_some() || identity.is_some()).then_some(Tls(
            lapin::tcp::OwnedTLSConfig {
                identity,
                cert_chain,
            },
        )))
    }
}

/// Whether an error is the client failing to parse what the broker sent:
/// a frame whose short strings are not UTF-8 (amq-protocol reads them so),
/// or a frame larger than the negotiated size. Such an error comes back
/// with the message that caused it (`amqp::unreadable`).
pub fn unparseable(error: &lapin::Error) -> bool {
    match error.kind() {
        lapin::ErrorKind::ParsingError(_) => true,
        lapin::ErrorKind::ProtocolError(error) => {
            error.kind()
                == &lapin::protocol::AMQPErrorKind::Hard(lapin::protocol::AMQPHardError::FRAMEERROR)
        }
        _ => false,
    }
}

/// The broker user in an AMQP URL: the identity the hub publishes with.
pub fn url_user(url: &str) -> String {
    url.parse::<lapin::uri::AMQPUri>()
        .map(|uri| uri.authority.userinfo.username)
        .unwrap_or_else(|_| "guest".to_owned())
}

/// The virtual host a broker URL names (`/` when it names none).
pub fn url_vhost(url: &str) -> String {
    url.parse::<lapin::uri::AMQPUri>()
        .map(|uri| uri.vhost)
        .unwrap_or_else(|_| "/".to_owned())
}

/// The URL with its password hidden, for logs.
pub fn redact_url(url: &str) -> String {
    match url.parse::<lapin::uri::AMQPUri>() {
        Ok(uri) => format!(
            "{}://{}@{}:{}/{}",
            if matches!(uri.scheme, lapin::uri::AMQPScheme::AMQPS) {
                "amqps"
            } else {
                "amqp"
            },
            uri.authority.userinfo.username,
            uri.authority.host,
            uri.authority.port,
            uri.vhost
        ),
        Err(_) => "<invalid amqp url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_user_and_redaction() {
        let url = "amqp://hub:s3cret@127.0.0.1:5672/%2f";
        assert_eq!(url_user(url), "hub");
        assert!(!redact_url(url).contains("s3cret"));
    }

    #[test]
    fn names_follow_the_namespace() {
        let names = Names::new("gridhub");
        assert_eq!(
            names.inbound_queue("hotline-12345"),
            "gridhub.in.hotline-12345"
        );
        assert_eq!(
            names.dead_letter_queue("hotline-12345"),
            "gridhub.dlq.hotline-12345"
        );
        assert_eq!(
            names.outbound_queue("command-centre"),
            "gridhub.out.command-centre"
        );
    }
}
