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
    let properties =
        ConnectionProperties::default().with_connection_name(format!("gridhub {role}").into());
    Connection::connect(url, properties).await
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
