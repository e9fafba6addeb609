//! Personal data expires: reporters of cases over for longer than the
//! retention lose their name, phone and ID number; dead letters' payloads
//! go after theirs. `gridhub expire` runs it on demand (the hub runs it
//! every ten minutes).

use std::time::Duration;

use crate::cli::gridhub;
use crate::helpers::{TestEnv, outgoing, ticket_12345, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_erased_after_its_retention() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let mut refused = outgoing("hotline-12345", "ticket", b"{\"caller\": \"x\"}".to_vec());
    refused.message_id = Some("refused-long-ago".into());
    let mut recent = outgoing("hotline-12345", "ticket", b"{}".to_vec());
    recent.message_id = Some("refused-today".into());
    env.publish(&[
        outgoing(
            "hotline-12345",
            "ticket",
            ticket_12345("BJ12345-20261206-000101"),
        ),
        outgoing(
            "hotline-12345",
            "ticket",
            ticket_12345("BJ12345-20261206-000102"),
        ),
        refused,
        recent,
    ])
    .await;
    wait_until(Duration::from_secs(30), "recorded", || async {
        env.count("SELECT count(*) FROM reporters WHERE phone IS NOT NULL")
            .await
            == 2
            && env.count("SELECT count(*) FROM dlq_messages").await == 2
    })
    .await;
    hub.stop().await;
    // One case closed 181 days ago, the other closed yesterday; one dead
    // letter 31 days old.
    for sql in [
        "UPDATE cases SET status = 'closed', closed_at = now() - interval '181 days'
         WHERE id = (SELECT case_id FROM case_sources WHERE source_ref = 'BJ12345-20261206-000101')",
        "UPDATE cases SET status = 'closed', closed_at = now() - interval '1 day'
         WHERE id = (SELECT case_id FROM case_sources WHERE source_ref = 'BJ12345-20261206-000102')",
        "UPDATE dlq_messages SET recorded_at = now() - interval '31 days'
         WHERE letter_id IN (SELECT letter_id FROM dlq_messages ORDER BY id LIMIT 1)",
    ] {
        sqlx::query(sql).execute(&env.pool).await.unwrap();
    }
    let config = crate::cli::tempdir().join("gridhub.toml");
    std::fs::write(
        &config,
        format!("namespace = \"{}\"\n", env.settings.namespace),
    )
    .unwrap();
    let run = || {
        gridhub()
            .args(["expire", "--config"])
            .arg(&config)
            .env("GRIDHUB_DATABASE_URL", &env.database_url)
            .output()
            .unwrap()
    };
    let output = run();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(printed.contains("reporters erased: 1"), "{printed}");
    assert!(printed.contains("dead letters expired: 1"), "{printed}");
    // The old case's reporter has no name, phone or ID number left; the
    // recent one's is kept; the reporter's flags stay.
    let kept: Vec<(Option<String>, Option<String>, bool)> = sqlx::query_as(
        "SELECT r.phone, r.name, r.erased_at IS NOT NULL FROM reporters r
         JOIN case_sources s ON s.case_id = r.case_id ORDER BY s.source_ref",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(kept[0], (None, None, true));
    assert!(kept[1].0.is_some() && !kept[1].2, "{kept:?}");
    // The old dead letter is gone, payload and properties; its refusal
    // (stage, reason) stays in the history.
    let letters: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT settled_as FROM dlq_messages ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(letters, vec![(None,)], "only the recent one is left");
    assert_eq!(env.dead_letters("hotline-12345").await.len(), 1);
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 2);
    // Running it again expires nothing more.
    let again = String::from_utf8_lossy(&run().stdout).to_string();
    assert!(again.contains("reporters erased: 0"), "{again}");
}
