//! A minimal AMQP 0-9-1 client for one job: taking a message off a queue
//! whatever its properties hold.
//!
//! lapin (through amq-protocol) reads a message's short strings (message_id,
//! type, app_id, header keys, ...) as UTF-8, and a message whose bytes are
//! not fails the parse of its frame and with it the whole connection. AMQP
//! 0-9-1 allows any octets there; pika sends them and RabbitMQ delivers
//! them. Such a message can never be consumed through lapin: every attempt
//! ends the connection again. This client speaks just enough of the
//! protocol (PLAIN login, one channel, `basic.get`, `basic.ack`,
//! `basic.reject`) to take such a message off its queue with its
//! properties as raw bytes, so that the hub can dead-letter a copy it can
//! read (`amqp::unreadable`). Everything else goes through lapin.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// The channel this client works on.
const CHANNEL: u16 = 1;
/// The largest frame this client accepts, whatever the broker offers.
const FRAME_LIMIT: u32 = 131_072;
/// The largest body this client takes in (the hub's own limit is far lower;
/// the broker's `max_message_size` bounds what can arrive).
const BODY_LIMIT: u64 = 128 * 1024 * 1024;
/// How long any one exchange with the broker may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("broker connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the broker did not answer within {} s", ANSWER_WITHIN.as_secs())]
    Timeout,
    #[error("unexpected frame from the broker: {0}")]
    Protocol(String),
    #[error("the broker closed the {what}: {code} {text}")]
    Closed {
        what: &'static str,
        code: u16,
        text: String,
    },
    #[error("cannot use the broker URL: {0}")]
    Url(String),
}

/// A message taken with `basic.get`, as it travelled.
#[derive(Clone)]
pub struct RawMessage {
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub routing_key: Vec<u8>,
    /// The content header's property flags and property list, as sent.
    pub properties: Vec<u8>,
    pub body: Vec<u8>,
}

/// The body is personal data: `Debug` shows sizes only.
impl std::fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMessage")
            .field("delivery_tag", &self.delivery_tag)
            .field("redelivered", &self.redelivered)
            .field("properties_len", &self.properties.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One connection with one open channel.
pub struct RawConnection {
    stream: TcpStream,
    frame_max: u32,
}

/// A method frame's arguments, written in AMQP's encoding.
#[derive(Default)]
struct Args(Vec<u8>);

impl Args {
    fn method(class: u16, method: u16) -> Args {
        let mut args = Args::default();
        args.u16(class).u16(method);
        args
    }
    fn u8(&mut self, v: u8) -> &mut Args {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Args {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Args {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Args {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn short(&mut self, s: &[u8]) -> &mut Args {
        let len = s.len().min(255);
        self.0.push(len as u8);
        self.0.extend_from_slice(&s[..len]);
        self
    }
    fn long(&mut self, s: &[u8]) -> &mut Args {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s);
        self
    }
}

/// Reads AMQP's encoding off a frame's payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RawError> {
        if self.0.len() < n {
            return Err(RawError::Protocol("frame shorter than its fields".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RawError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RawError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, RawError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, RawError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn short(&mut self) -> Result<&'a [u8], RawError> {
        let len = self.u8()? as usize;
        self.take(len)
    }
}

impl RawConnection {
    /// Connects, logs in and opens a channel. Plain `amqp://` only.
    pub async fn open(url: &str) -> Result<RawConnection, RawError> {
        let uri: lapin::uri::AMQPUri = url.parse().map_err(RawError::Url)?;
        if !matches!(uri.scheme, lapin::uri::AMQPScheme::AMQP) {
            return Err(RawError::Url("only amqp:// is supported here".into()));
        }
        let address = (uri.authority.host.as_str(), uri.authority.port);
        let stream = within(TcpStream::connect(address)).await??;
        stream.set_nodelay(true)?;
        let mut connection = RawConnection {
            stream,
            frame_max: FRAME_LIMIT,
        };
        connection.handshake(&uri).await?;
        Ok(connection)
    }

    async fn handshake(&mut self, uri: &lapin::uri::AMQPUri) -> Result<(), RawError> {
        self.stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        self.expect(0, 10, 10).await?; // connection.start
        let user = &uri.authority.userinfo;
        let mut response = vec![0];
        response.extend_from_slice(user.username.as_bytes());
        response.push(0);
        response.extend_from_slice(user.password.as_bytes());
        let mut start_ok = Args::method(10, 11);
        start_ok
            .u32(0) // no client properties
            .short(b"PLAIN")
            .long(&response)
            .short(b"en_US");
        self.send_method(0, start_ok).await?;
        let tune = self.expect(0, 10, 30).await?;
        let mut tune = Reader(&tune);
        let _channel_max = tune.u16()?;
        let frame_max = tune.u32()?;
        self.frame_max = match frame_max {
            0 => FRAME_LIMIT,
            n => n.min(FRAME_LIMIT),
        };
        let mut tune_ok = Args::method(10, 31);
        tune_ok.u16(1).u32(self.frame_max).u16(0); // one channel, no heartbeats
        self.send_method(0, tune_ok).await?;
        let mut open = Args::method(10, 40);
        open.short(uri.vhost.as_bytes()).short(b"").u8(0);
        self.send_method(0, open).await?;
        self.expect(0, 10, 41).await?;
        let mut channel_open = Args::method(20, 10);
        channel_open.short(b"");
        self.send_method(CHANNEL, channel_open).await?;
        self.expect(CHANNEL, 20, 11).await?;
        Ok(())
    }

    /// Takes the message at the head of `queue` (unacknowledged), if any.
    pub async fn get(&mut self, queue: &str) -> Result<Option<RawMessage>, RawError> {
        let mut get = Args::method(60, 70);
        get.u16(0).short(queue.as_bytes()).u8(0);
        self.send_method(CHANNEL, get).await?;
        let (class, method, args) = self.method(CHANNEL).await?;
        match (class, method) {
            (60, 72) => return Ok(None), // get-empty
            (60, 71) => {}
            other => return Err(RawError::Protocol(format!("{other:?} instead of get-ok"))),
        }
        let mut ok = Reader(&args);
        let delivery_tag = ok.u64()?;
        let redelivered = ok.u8()? & 1 == 1;
        let _exchange = ok.short()?;
        let routing_key = ok.short()?.to_vec();
        let (kind, channel, header) = self.frame().await?;
        if kind != FRAME_HEADER || channel != CHANNEL {
            return Err(RawError::Protocol("no content header after get-ok".into()));
        }
        let mut header = Reader(&header);
        let _class = header.u16()?;
        let _weight = header.u16()?;
        let size = header.u64()?;
        if size > BODY_LIMIT {
            return Err(RawError::Protocol(format!("a body of {size} bytes")));
        }
        let properties = header.0.to_vec();
        let mut body = Vec::with_capacity(size as usize);
        while (body.len() as u64) < size {
            let (kind, channel, payload) = self.frame().await?;
            if kind != FRAME_BODY || channel != CHANNEL {
                return Err(RawError::Protocol("a body frame was expected".into()));
            }
            body.extend_from_slice(&payload);
        }
        Ok(Some(RawMessage {
            delivery_tag,
            redelivered,
            routing_key,
            properties,
            body,
        }))
    }

    /// Acknowledges a message taken with [`RawConnection::get`].
    pub async fn ack(&mut self, delivery_tag: u64) -> Result<(), RawError> {
        let mut ack = Args::method(60, 80);
        ack.u64(delivery_tag).u8(0);
        self.send_method(CHANNEL, ack).await
    }

    /// Gives a message back to its queue.
    pub async fn requeue(&mut self, delivery_tag: u64) -> Result<(), RawError> {
        let mut reject = Args::method(60, 90);
        reject.u64(delivery_tag).u8(1);
        self.send_method(CHANNEL, reject).await
    }

    /// Closes the connection and waits for the broker's answer, so that
    /// every acknowledgement sent before has been taken.
    pub async fn close(mut self) -> Result<(), RawError> {
        let mut close = Args::method(10, 50);
        close.u16(200).short(b"done").u16(0).u16(0);
        self.send_method(0, close).await?;
        loop {
            let (class, method, _) = self.method(0).await?;
            if (class, method) == (10, 51) {
                return Ok(());
            }
        }
    }

    async fn send_method(&mut self, channel: u16, args: Args) -> Result<(), RawError> {
        let payload = args.0;
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.push(FRAME_METHOD);
        frame.extend_from_slice(&channel.to_be_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.push(FRAME_END);
        within(self.stream.write_all(&frame)).await??;
        Ok(())
    }

    /// The next frame other than a heartbeat: (type, channel, payload).
    async fn frame(&mut self) -> Result<(u8, u16, Vec<u8>), RawError> {
        loop {
            let mut head = [0u8; 7];
            within(self.stream.read_exact(&mut head)).await??;
            let kind = head[0];
            let channel = u16::from_be_bytes([head[1], head[2]]);
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
            // RabbitMQ sends a content header as one frame even past the
            // negotiated frame_max; accept up to this client's own limit.
            if size > FRAME_LIMIT.max(self.frame_max) {
                return Err(RawError::Protocol(format!("a frame of {size} bytes")));
            }
            let mut payload = vec![0u8; size as usize + 1];
            within(self.stream.read_exact(&mut payload)).await??;
            if payload.pop() != Some(FRAME_END) {
                return Err(RawError::Protocol("frame without its end octet".into()));
            }
            if kind != FRAME_HEARTBEAT {
                return Ok((kind, channel, payload));
            }
        }
    }

    /// The next method frame on `channel`: (class, method, arguments). A
    /// close from the broker is an error naming its reason.
    async fn method(&mut self, channel: u16) -> Result<(u16, u16, Vec<u8>), RawError> {
        let (kind, on, payload) = self.frame().await?;
        if kind != FRAME_METHOD {
            return Err(RawError::Protocol(format!(
                "frame type {kind} instead of a method"
            )));
        }
        let mut reader = Reader(&payload);
        let (class, method) = (reader.u16()?, reader.u16()?);
        let args = reader.0.to_vec();
        if (class, method) == (10, 50) || (class, method) == (20, 40) {
            let mut close = Reader(&args);
            let code = close.u16()?;
            let text = String::from_utf8_lossy(close.short()?).into_owned();
            return Err(RawError::Closed {
                what: if class == 10 { "connection" } else { "channel" },
                code,
                text,
            });
        }
        if on != channel {
            return Err(RawError::Protocol(format!("a method on channel {on}")));
        }
        Ok((class, method, args))
    }

    async fn expect(&mut self, channel: u16, class: u16, method: u16) -> Result<Vec<u8>, RawError> {
        let (c, m, args) = self.method(channel).await?;
        if (c, m) != (class, method) {
            return Err(RawError::Protocol(format!(
                "{c}.{m} instead of {class}.{method}"
            )));
        }
        Ok(args)
    }
}

async fn within<F: std::future::Future>(future: F) -> Result<F::Output, RawError> {
    tokio::time::timeout(ANSWER_WITHIN, future)
        .await
        .map_err(|_| RawError::Timeout)
}
