//! The in-process bus: the broker's part of the hub's topology, in memory.
//!
//! `gridhub demo` runs on it instead of RabbitMQ, and the pipeline's tests
//! run on it as well as on the broker. It keeps the semantics the hub relies
//! on, and nothing more:
//!
//! - topic exchanges, routed by the same bindings the broker is given
//!   ([`Topology`]): `*` is one word, `#` zero or more;
//! - per-queue delivery tags and manual acknowledgement, one or multiple;
//! - what a consumer took and did not acknowledge goes back to the head of
//!   its queue, marked redelivered, when the consumer goes away (as when an
//!   AMQP channel closes);
//! - `basic.get` with the number of messages left, and `basic.reject` with
//!   requeue, which is how ops read dead-letter queues;
//! - a publish reports how many queues it reached (unroutable is 0), which
//!   stands for the broker's confirm of a mandatory publish.
//!
//! Nothing is persisted: the bus lives as long as the process. That is the
//! demo's trade; production runs on RabbitMQ's quorum queues.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lapin::BasicProperties;
use tokio::sync::Notify;

use crate::amqp::topology::Topology;

/// A message as a queue holds it.
#[derive(Debug, Clone)]
pub struct Message {
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    /// Handed out before and given back unacknowledged.
    pub redelivered: bool,
}

/// A message handed out and not yet settled.
#[derive(Debug)]
pub struct Delivery {
    pub tag: u64,
    pub message: Message,
}

#[derive(Default)]
struct Queue {
    /// Most ready messages kept; the oldest are dropped beyond it (as
    /// RabbitMQ's `x-max-length` with its default `drop-head`).
    max_length: Option<usize>,
    ready: VecDeque<Message>,
    /// Delivery tag → (who holds it, the message).
    unacked: BTreeMap<u64, (u64, Message)>,
    next_tag: u64,
    arrived: Arc<Notify>,
}

struct Binding {
    exchange: String,
    pattern: Vec<String>,
    queue: String,
}

/// Exchanges, queues and bindings of one topology, in memory.
pub struct LocalBus {
    bindings: Vec<Binding>,
    queues: Mutex<HashMap<String, Queue>>,
    holders: AtomicU64,
}

impl LocalBus {
    /// Declares everything the topology names.
    pub fn new(topology: &Topology) -> Arc<LocalBus> {
        let queues = topology
            .queues
            .iter()
            .map(|q| (q.name.clone(), Queue::default()))
            .collect();
        let bindings = topology
            .bindings
            .iter()
            .map(|b| Binding {
                exchange: b.exchange.clone(),
                pattern: b.routing_key.split('.').map(str::to_owned).collect(),
                queue: b.queue.clone(),
            })
            .collect();
        Arc::new(LocalBus {
            bindings,
            queues: Mutex::new(queues),
            holders: AtomicU64::new(1),
        })
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<String, Queue>> {
        // A panic while holding the lock cannot leave a queue half-changed
        // (every change is one push, pop or move), so the data stays usable.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes to a topic exchange; returns how many queues took a copy.
    pub fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> usize {
        let words: Vec<&str> = routing_key.split('.').collect();
        let mut targets: Vec<&str> = self
            .bindings
            .iter()
            .filter(|b| b.exchange == exchange && topic_matches(&b.pattern, &words))
            .map(|b| b.queue.as_str())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let mut queues = self.queues();
        let mut routed = 0;
        for name in targets {
            if let Some(queue) = queues.get_mut(name) {
                queue.ready.push_back(Message {
                    routing_key: routing_key.to_owned(),
                    properties: properties.clone(),
                    body: body.to_vec(),
                    redelivered: false,
                });
                if let Some(max) = queue.max_length {
                    while queue.ready.len() > max {
                        queue.ready.pop_front();
                    }
                }
                queue.arrived.notify_one();
                routed += 1;
            }
        }
        routed
    }

    /// Keeps at most `max` ready messages in a queue, dropping the oldest:
    /// for queues nobody consumes, such as the demo's event queues.
    pub fn set_max_length(&self, queue: &str, max: usize) {
        if let Some(queue) = self.queues().get_mut(queue) {
            queue.max_length = Some(max);
        }
    }

    /// A new holder id: a consumer or one dead-letter scan.
    pub fn holder(&self) -> u64 {
        self.holders.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes the next ready message of a queue for `holder`, with the
    /// number of messages still ready after it. `None` if none is ready or
    /// the queue does not exist.
    pub fn get(&self, queue: &str, holder: u64) -> Option<(Delivery, usize)> {
        let mut queues = self.queues();
        let queue = queues.get_mut(queue)?;
        let message = queue.ready.pop_front()?;
        queue.next_tag += 1;
        let tag = queue.next_tag;
        queue.unacked.insert(tag, (holder, message.clone()));
        Some((Delivery { tag, message }, queue.ready.len()))
    }

    /// Acknowledges `tag` (and, if `multiple`, every earlier tag) held by `holder`.
    pub fn ack(&self, queue: &str, holder: u64, tag: u64, multiple: bool) {
        let mut queues = self.queues();
        let Some(queue) = queues.get_mut(queue) else {
            return;
        };
        if multiple {
            let done: Vec<u64> = queue
                .unacked
                .range(..=tag)
                .filter(|(_, (h, _))| *h == holder)
                .map(|(t, _)| *t)
                .collect();
            for t in done {
                queue.unacked.remove(&t);
            }
        } else if queue.unacked.get(&tag).is_some_and(|(h, _)| *h == holder) {
            queue.unacked.remove(&tag);
        }
    }

    /// Gives one message back to the head of its queue (requeue) or drops it.
    pub fn reject(&self, queue: &str, holder: u64, tag: u64, requeue: bool) {
        let mut queues = self.queues();
        let Some(queue) = queues.get_mut(queue) else {
            return;
        };
        if queue.unacked.get(&tag).is_some_and(|(h, _)| *h == holder)
            && let Some((_, mut message)) = queue.unacked.remove(&tag)
            && requeue
        {
            message.redelivered = true;
            queue.ready.push_front(message);
            queue.arrived.notify_one();
        }
    }

    /// Gives back, in their order, every message `holder` took from the
    /// queue and did not settle, up to `through` (all when `None`): a
    /// `basic.nack` with `multiple` and requeue.
    pub fn release_through(&self, queue: &str, holder: u64, through: Option<u64>) {
        let mut queues = self.queues();
        let Some(queue) = queues.get_mut(queue) else {
            return;
        };
        let held: Vec<u64> = queue
            .unacked
            .iter()
            .filter(|(t, (h, _))| *h == holder && through.is_none_or(|last| **t <= last))
            .map(|(t, _)| *t)
            .collect();
        for tag in held.into_iter().rev() {
            if let Some((_, mut message)) = queue.unacked.remove(&tag) {
                message.redelivered = true;
                queue.ready.push_front(message);
            }
        }
        queue.arrived.notify_one();
    }

    /// Gives back, in their order, every message `holder` took from the
    /// queue and did not settle.
    pub fn release(&self, queue: &str, holder: u64) {
        self.release_through(queue, holder, None);
    }

    /// Messages ready in a queue (what a passive declare reports), or
    /// `None` if there is no such queue.
    pub fn depth(&self, queue: &str) -> Option<u32> {
        self.queues()
            .get(queue)
            .map(|q| u32::try_from(q.ready.len()).unwrap_or(u32::MAX))
    }

    /// Messages taken from a queue and not yet settled.
    pub fn unacked(&self, queue: &str) -> usize {
        self.queues().get(queue).map_or(0, |q| q.unacked.len())
    }

    /// Consumes a queue: deliveries in order, settled through the consumer.
    pub fn consume(self: &Arc<Self>, queue: &str) -> Option<LocalConsumer> {
        let arrived = self.queues().get(queue)?.arrived.clone();
        Some(LocalConsumer {
            bus: self.clone(),
            queue: queue.to_owned(),
            holder: self.holder(),
            arrived,
        })
    }
}

/// One consumer of one queue. What it took and did not acknowledge goes
/// back to the queue when it is dropped.
pub struct LocalConsumer {
    bus: Arc<LocalBus>,
    queue: String,
    holder: u64,
    arrived: Arc<Notify>,
}

impl LocalConsumer {
    /// Waits for the next delivery.
    pub async fn next(&self) -> Delivery {
        loop {
            let notified = self.arrived.notified();
            if let Some((delivery, left)) = self.bus.get(&self.queue, self.holder) {
                if left > 0 {
                    // Other consumers of the queue may take the rest.
                    self.arrived.notify_one();
                }
                return delivery;
            }
            notified.await;
        }
    }

    pub fn ack(&self, tag: u64, multiple: bool) {
        self.bus.ack(&self.queue, self.holder, tag, multiple);
    }

    /// Gives back every delivery up to `tag` (nack, multiple, requeue).
    pub fn release_through(&self, tag: u64) {
        self.bus
            .release_through(&self.queue, self.holder, Some(tag));
    }

    pub fn bus(&self) -> &Arc<LocalBus> {
        &self.bus
    }
}

impl Drop for LocalConsumer {
    fn drop(&mut self) {
        self.bus.release(&self.queue, self.holder);
    }
}

/// AMQP topic matching: `*` matches one word, `#` zero or more.
fn topic_matches(pattern: &[String], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((first, rest)) if first == "#" => {
            (0..=words.len()).any(|skip| topic_matches(rest, &words[skip..]))
        }
        Some((first, rest)) => match words.split_first() {
            Some((word, more)) => (first == "*" || first == word) && topic_matches(rest, more),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::topology::{BindingSpec, QueueSpec};

    fn pattern(text: &str) -> Vec<String> {
        text.split('.').map(str::to_owned).collect()
    }

    fn words(text: &str) -> Vec<&str> {
        text.split('.').collect()
    }

    #[test]
    fn topic_patterns_match_as_the_broker_does() {
        assert!(topic_matches(&pattern("a.#"), &words("a.ticket")));
        assert!(topic_matches(&pattern("a.#"), &words("a")));
        assert!(topic_matches(&pattern("a.#"), &words("a.b.c")));
        assert!(!topic_matches(&pattern("a.#"), &words("ab.c")));
        assert!(topic_matches(&pattern("a.*"), &words("a.b")));
        assert!(!topic_matches(&pattern("a.*"), &words("a.b.c")));
        assert!(!topic_matches(&pattern("a.*"), &words("a")));
        assert!(topic_matches(&pattern("#.c"), &words("a.b.c")));
        assert!(topic_matches(&pattern("#"), &words("anything.at.all")));
    }

    fn bus() -> Arc<LocalBus> {
        LocalBus::new(&Topology {
            exchanges: vec!["in".into()],
            queues: vec![
                QueueSpec {
                    name: "q.a".into(),
                    arguments: Vec::new(),
                },
                QueueSpec {
                    name: "q.b".into(),
                    arguments: Vec::new(),
                },
            ],
            bindings: vec![
                BindingSpec {
                    exchange: "in".into(),
                    queue: "q.a".into(),
                    routing_key: "a.#".into(),
                },
                BindingSpec {
                    exchange: "in".into(),
                    queue: "q.b".into(),
                    routing_key: "b.#".into(),
                },
            ],
        })
    }

    fn publish(bus: &LocalBus, key: &str) -> usize {
        bus.publish("in", key, BasicProperties::default(), key.as_bytes())
    }

    #[test]
    fn publishes_route_by_binding_and_unroutable_reach_nothing() {
        let bus = bus();
        assert_eq!(publish(&bus, "a.ticket"), 1);
        assert_eq!(publish(&bus, "b.ticket"), 1);
        assert_eq!(publish(&bus, "c.ticket"), 0);
        assert_eq!(
            bus.publish("other", "a.x", BasicProperties::default(), b""),
            0
        );
        assert_eq!(bus.depth("q.a"), Some(1));
        assert_eq!(bus.depth("q.b"), Some(1));
        assert_eq!(bus.depth("q.c"), None);
    }

    #[test]
    fn a_queue_with_a_max_length_drops_its_oldest() {
        let bus = bus();
        bus.set_max_length("q.a", 2);
        for key in ["a.1", "a.2", "a.3"] {
            publish(&bus, key);
        }
        assert_eq!(bus.depth("q.a"), Some(2));
        let (first, _) = bus.get("q.a", bus.holder()).unwrap();
        assert_eq!(first.message.routing_key, "a.2");
    }

    #[test]
    fn multiple_ack_settles_only_the_holders_own_tags() {
        let bus = bus();
        for _ in 0..4 {
            publish(&bus, "a.t");
        }
        let (one, two) = (bus.holder(), bus.holder());
        let (first, _) = bus.get("q.a", one).unwrap();
        let (second, _) = bus.get("q.a", two).unwrap();
        let (third, left) = bus.get("q.a", one).unwrap();
        assert_eq!(left, 1);
        bus.ack("q.a", one, third.tag, true);
        assert_eq!(bus.unacked("q.a"), 1, "the other holder's message stays");
        bus.release("q.a", two);
        assert_eq!(bus.depth("q.a"), Some(2));
        let (again, _) = bus.get("q.a", one).unwrap();
        assert!(again.message.redelivered);
        assert_eq!(again.message.body, second.message.body);
        assert!(first.tag < second.tag && second.tag < third.tag);
    }

    #[test]
    fn a_rejected_message_returns_to_the_head() {
        let bus = bus();
        publish(&bus, "a.first");
        publish(&bus, "a.second");
        let holder = bus.holder();
        let (first, _) = bus.get("q.a", holder).unwrap();
        bus.reject("q.a", holder, first.tag, true);
        let (again, _) = bus.get("q.a", holder).unwrap();
        assert_eq!(again.message.routing_key, "a.first");
        assert!(again.message.redelivered);
        bus.reject("q.a", holder, again.tag, false);
        assert_eq!(bus.depth("q.a"), Some(1));
    }

    #[tokio::test]
    async fn a_dropped_consumer_gives_back_what_it_held() {
        let bus = bus();
        publish(&bus, "a.one");
        publish(&bus, "a.two");
        {
            let consumer = bus.consume("q.a").unwrap();
            let one = consumer.next().await;
            let _two = consumer.next().await;
            consumer.ack(one.tag, false);
        }
        assert_eq!(bus.depth("q.a"), Some(1));
        assert_eq!(bus.unacked("q.a"), 0);
        let consumer = bus.consume("q.a").unwrap();
        let waiting = tokio::spawn(async move { consumer.next().await.message.routing_key });
        let first = waiting.await.unwrap();
        assert_eq!(first, "a.two");
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_publish() {
        let bus = bus();
        let consumer = bus.consume("q.b").unwrap();
        let waiting = tokio::spawn(async move { consumer.next().await.message.routing_key });
        tokio::task::yield_now().await;
        publish(&bus, "b.late");
        assert_eq!(waiting.await.unwrap(), "b.late");
    }
}
