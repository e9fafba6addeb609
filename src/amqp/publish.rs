//! Publishing as a connector would: used by `gridhub publish` and the tests.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use sha2::{Digest, Sha256};

/// One message to publish.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    /// The AMQP `type` property: `v2` chooses that version of the message
    /// type's format.
    pub amqp_type: Option<String>,
    pub user_id: Option<String>,
    pub body: Vec<u8>,
    /// Replay count to carry in `x-gridhub-replays` (0: none).
    pub replays: i32,
}

impl Outgoing {
    /// Its AMQP properties: persistent, with the message_id, content type,
    /// `type` and user_id it has, and a replay's headers.
    pub fn properties(&self) -> BasicProperties {
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(id) = &self.message_id {
            properties = properties.with_message_id(id.as_str().into());
        }
        if let Some(content_type) = &self.content_type {
            properties = properties.with_content_type(content_type.as_str().into());
        }
        if let Some(amqp_type) = &self.amqp_type {
            properties = properties.with_type(amqp_type.as_str().into());
        }
        if let Some(user) = &self.user_id {
            properties = properties.with_user_id(user.as_str().into());
        }
        if self.replays > 0 {
            // A replay as the hub publishes one: it names the original
            // publisher, here the user publishing it.
            let mut headers = lapin::types::FieldTable::default();
            headers.insert(
                crate::dlq::REPLAYS.into(),
                lapin::types::AMQPValue::LongInt(self.replays),
            );
            if let Some(user) = &self.user_id {
                headers.insert(
                    crate::dlq::ORIGINAL_USER.into(),
                    lapin::types::AMQPValue::LongString(user.as_str().into()),
                );
            }
            properties = properties.with_headers(headers);
        }
        properties
    }
}

/// What the broker said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Confirmed and routed to a queue.
    Confirmed,
    /// Confirmed, but no queue was bound for its routing key.
    Unroutable,
    /// The broker refused it (nack).
    Refused,
}

/// The message_id a connector gives a body: the hex SHA-256 of its bytes, so
/// that publishing the same content twice is recognised as one message.
pub fn content_message_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Puts a channel in confirm mode.
pub async fn confirming(channel: &Channel) -> lapin::Result<()> {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
}

/// Publishes every message (mandatory, persistent) and waits for every confirm.
pub async fn publish_all(
    channel: &Channel,
    exchange: &str,
    messages: &[Outgoing],
) -> lapin::Result<Vec<Published>> {
    let mut confirms = Vec::with_capacity(messages.len());
    for message in messages {
        let properties = message.properties();
        let confirm = channel
            .basic_publish(
                exchange.into(),
                message.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &message.body,
                properties,
            )
            .await?;
        confirms.push(confirm);
    }
    let mut results = Vec::with_capacity(confirms.len());
    for confirm in confirms {
        results.push(match confirm.await? {
            Confirmation::Ack(Some(_)) => Published::Unroutable,
            Confirmation::Ack(None) | Confirmation::NotRequested => Published::Confirmed,
            Confirmation::Nack(_) => Published::Refused,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_the_content_hash() {
        assert_eq!(
            content_message_id(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
