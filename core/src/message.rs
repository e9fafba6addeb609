//! An inbound message as the pipeline sees it, whatever carried it.

/// One inbound message: the AMQP body and the properties the pipeline reads.
#[derive(Clone, Default)]
pub struct Inbound {
    /// `<connector>.<message-type>`.
    pub routing_key: String,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    /// The AMQP `type` property: `v<N>` chooses the version of the message
    /// type's format (`connector::requested_version`).
    pub amqp_type: Option<String>,
    /// Publisher's broker user, as checked by the broker.
    pub user_id: Option<String>,
    pub body: Vec<u8>,
    /// How often ops replayed it from a DLQ (header `x-gridhub-replays`).
    pub replays: i32,
}

/// Debug output never shows the body: it is personal data.
impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("routing_key", &self.routing_key)
            .field("message_id", &self.message_id)
            .field("content_type", &self.content_type)
            .field("amqp_type", &self.amqp_type)
            .field("user_id", &self.user_id)
            .field("body_len", &self.body.len())
            .field("replays", &self.replays)
            .finish()
    }
}

/// A name taken from a message (a routing key, a message type), with every
/// control character escaped (`\u{0}`, `\u{1b}`): what is stored, shown and
/// logged never carries a NUL, which PostgreSQL text refuses, or a
/// terminal's escape sequence.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_unicode());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// The content type a file is published with, from its extension.
pub fn content_type_for(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}
