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
