//! The reliability invariants, against the real broker and database: no
//! message lost, none doubled, every refusal in its DLQ with a reason.

use std::time::Duration;

use gridhub::amqp::publish::Published;

use crate::helpers::{
    TestEnv, batches_through, outgoing, ticket_12345, wait_until, with_message_id,
};
use crate::proxy::Proxy;

fn ticket(n: usize) -> Vec<u8> {
    ticket_12345(&format!("BJ12345-20261128-{n:06}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_and_republished_messages_open_one_case() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let first = outgoing("hotline-12345", "ticket", ticket(1));
    let same_ticket_new_id = with_message_id(first.clone(), "republished-with-another-id");
    // The same message three times (one of them in a later batch), and the same ticket under another id.
    env.publish(&[first.clone(), first.clone()]).await;
    env.wait_count("SELECT count(*) FROM cases", 1, Duration::from_secs(10))
        .await;
    env.publish(&[first.clone(), same_ticket_new_id]).await;
    env.wait_count("SELECT count(*) FROM inbox", 2, Duration::from_secs(10))
        .await;
    env.wait_depth(
        &env.names.inbound_queue("hotline-12345"),
        0,
        Duration::from_secs(10),
    )
    .await;
    hub.stop().await;
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 1);
    assert_eq!(
        env.count("SELECT count(*) FROM case_events WHERE kind = 'opened'")
            .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE routing_key = 'command-centre.case.opened'")
            .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM inbox WHERE outcome = 'duplicate_source'")
            .await,
        1
    );
    assert_eq!(
        env.depth(&env.names.dead_letter_queue("hotline-12345"))
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_without_id_is_refused_with_that_reason() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let mut message = outgoing("hotline-12345", "ticket", ticket(2));
    message.message_id = None;
    assert_eq!(env.publish(&[message]).await, vec![Published::Confirmed]);
    let queue = env.names.dead_letter_queue("hotline-12345");
    env.wait_depth(&queue, 1, Duration::from_secs(10)).await;
    let letters = env.dead_letters("hotline-12345").await;
    assert_eq!(letters[0].stage, "decode");
    assert_eq!(letters[0].reason, "message has no message_id");
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_the_database_refuses_is_dead_lettered_alone() {
    let env = TestEnv::new().await;
    // PostgreSQL text cannot hold NUL: the schema allows it, the store does not.
    let poison = String::from_utf8(ticket(3))
        .unwrap()
        .replace("玉桥街道某工地", "玉桥\\u0000工地");
    let mut messages: Vec<_> = (10..20)
        .map(|n| outgoing("hotline-12345", "ticket", ticket(n)))
        .collect();
    messages.insert(4, outgoing("hotline-12345", "ticket", poison.into_bytes()));
    env.publish(&messages).await;
    // One hub, started after publishing, so all eleven arrive in one batch.
    let hub = env.start_hub(env.settings.clone()).await;
    env.wait_count("SELECT count(*) FROM inbox", 11, Duration::from_secs(15))
        .await;
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 10);
    let queue = env.names.dead_letter_queue("hotline-12345");
    env.wait_depth(&queue, 1, Duration::from_secs(5)).await;
    let letters = env.dead_letters("hotline-12345").await;
    assert_eq!(letters[0].stage, "apply");
    assert!(
        letters[0].reason.contains("SQLSTATE"),
        "{}",
        letters[0].reason
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_loses_nothing_and_dead_letters_nothing() {
    let env = TestEnv::new().await;
    let database = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut settings = env.settings.clone();
    settings.database_url = env
        .database_url
        .replace("127.0.0.1:5432", &database.addr.to_string());
    settings.prefetch = 50;
    settings.batch_size = 20;
    let hub = env.start_hub(settings).await;

    let first: Vec<_> = (0..100)
        .map(|n| outgoing("hotline-12345", "ticket", ticket(1000 + n)))
        .collect();
    env.publish(&first).await;
    env.wait_count("SELECT count(*) FROM cases", 100, Duration::from_secs(15))
        .await;

    database.cut();
    let second: Vec<_> = (0..300)
        .map(|n| outgoing("hotline-12345", "ticket", ticket(2000 + n)))
        .collect();
    env.publish(&second).await;
    let queue = env.names.inbound_queue("hotline-12345");
    // The hub holds at most its prefetch; the rest waits in the queue.
    env.wait_depth(&queue, 250, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.depth(&queue).await,
        250,
        "nothing taken beyond the prefetch while the database is down"
    );
    assert_eq!(
        env.depth(&env.names.dead_letter_queue("hotline-12345"))
            .await,
        0
    );

    database.restore();
    env.wait_count("SELECT count(*) FROM cases", 400, Duration::from_secs(60))
        .await;
    assert_eq!(
        env.count("SELECT count(*) FROM case_events WHERE kind = 'opened'")
            .await,
        400
    );
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 0);
    assert_eq!(
        env.depth(&env.names.dead_letter_queue("hotline-12345"))
            .await,
        0
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_connections_cut_mid_stream_lose_nothing_and_double_nothing() {
    let env = TestEnv::new().await;
    let broker = Proxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let mut settings = env.settings.clone();
    settings.amqp_url = broker.amqp_url();
    settings.batch_size = 10;
    settings.prefetch = 20;
    let hub = env.start_hub(settings).await;

    let total = 600;
    let messages: Vec<_> = (0..total)
        .map(|n| outgoing("hotline-12345", "ticket", ticket(5000 + n)))
        .collect();
    for (round, chunk) in messages.chunks(150).enumerate() {
        env.publish(chunk).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        broker.drop_links();
        if round == 1 {
            // A longer outage: new connections refused for a while.
            broker.cut();
            tokio::time::sleep(Duration::from_millis(800)).await;
            broker.restore();
        }
    }
    env.wait_count(
        "SELECT count(*) FROM inbox",
        total as i64,
        Duration::from_secs(60),
    )
    .await;
    let queue = env.names.inbound_queue("hotline-12345");
    env.wait_depth(&queue, 0, Duration::from_secs(30)).await;
    assert_eq!(env.count("SELECT count(*) FROM cases").await, total as i64);
    assert_eq!(
        env.count("SELECT count(*) FROM case_events WHERE kind = 'opened'")
            .await,
        total as i64
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE routing_key = 'command-centre.case.opened'")
            .await,
        total as i64
    );
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 0);
    // Every event reaches the centre; redelivered ones carry the same event id.
    wait_until(Duration::from_secs(30), "outbox sent", || async {
        env.count("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .await
            == 0
    })
    .await;
    let events = env.drain(&env.names.outbound_queue("command-centre")).await;
    let distinct: std::collections::HashSet<_> =
        events.iter().map(|(_, e)| e["event_id"].clone()).collect();
    let centre_events = env
        .count("SELECT count(*) FROM outbox WHERE destination = 'command-centre'")
        .await;
    assert_eq!(distinct.len() as i64, centre_events);
    let opened = events.iter().filter(|(_, e)| e["event"] == "case.opened");
    let opened: std::collections::HashSet<_> = opened.map(|(_, e)| e["case_no"].clone()).collect();
    assert_eq!(opened.len(), total);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_accepts_and_never_answers_is_given_up_on_and_retried() {
    let env = TestEnv::new().await;
    let broker = Proxy::start("127.0.0.1:5672".parse().unwrap()).await;
    // The TCP connection succeeds; the AMQP handshake never does.
    broker.mute();
    let mut settings = env.settings.clone();
    settings.amqp_url = broker.amqp_url();
    settings.broker_connect_timeout_ms = 1000;
    let hub = env.start_hub(settings).await;
    env.publish(&[outgoing("hotline-12345", "ticket", ticket(7000))])
        .await;
    // Past the bound the first attempt is given up; the next ones reach
    // the broker. Without the bound the hub would wait on the first one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.count("SELECT count(*) FROM inbox").await, 0);
    broker.restore();
    env.wait_count("SELECT count(*) FROM cases", 1, Duration::from_secs(30))
        .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_may_redo_a_refused_message_once() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let broken = outgoing("hotline-12345", "ticket", b"{\"ticketNo\": 1}".to_vec());
    let broken = with_message_id(broken, "fixed-later");
    env.publish(std::slice::from_ref(&broken)).await;
    env.wait_count(
        "SELECT count(*) FROM dead_letters",
        1,
        Duration::from_secs(10),
    )
    .await;
    // The same message_id again, not a replay: recognised, nothing new. And
    // replayed with its body fixed, in the same batch or the next: processed.
    let mut replay = with_message_id(
        outgoing("hotline-12345", "ticket", ticket(7)),
        "fixed-later",
    );
    replay.replays = 1;
    env.publish(&[broken, replay.clone()]).await;
    env.wait_count("SELECT count(*) FROM cases", 1, Duration::from_secs(10))
        .await;
    // The same replay copy redelivered: nothing new.
    env.publish(&[replay]).await;
    let queue = env.names.inbound_queue("hotline-12345");
    env.wait_depth(&queue, 0, Duration::from_secs(10)).await;
    hub.stop().await;
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 1);
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 1);
    assert_eq!(
        env.depth(&env.names.dead_letter_queue("hotline-12345"))
            .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM inbox WHERE outcome = 'case_opened' AND replays = 1")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_never_holds_more_than_its_bytes() {
    let env = TestEnv::new().await;
    let tickets: Vec<_> = (1..=4)
        .map(|n| outgoing("hotline-12345", "ticket", ticket(n)))
        .collect();
    let size = tickets[0].body.len();
    assert!(tickets.iter().all(|t| t.body.len() == size));
    // Waiting in the queue before the hub starts, so that every batch
    // could take them all; a second ticket would take a batch over its
    // bytes, so each starts a batch of its own.
    env.publish(&tickets).await;
    let hub = env
        .start_hub(gridhub::settings::Settings {
            batch_bytes: size * 3 / 2,
            batch_linger_ms: 300,
            ..env.settings.clone()
        })
        .await;
    env.wait_count("SELECT count(*) FROM inbox", 4, Duration::from_secs(20))
        .await;
    let (_, metrics) = hub.call("GET", "/metrics", None, None).await;
    let batches = batches_through(metrics.as_str().unwrap(), "record");
    assert_eq!(batches, 4, "one batch per ticket");
    hub.stop().await;
    assert_eq!(
        env.depth(&env.names.dead_letter_queue("hotline-12345"))
            .await,
        0
    );
}
