//! Personal data expires: reporters of cases over for longer than the
//! retention lose their name, phone and ID number; dead letters' payloads
//! go after theirs. `gridhub expire` runs it on demand (the hub runs it
//! every ten minutes).

use std::time::Duration;

use crate::cli::gridhub;
use crate::helpers::{
    TestEnv, empty_ticket, hotline_ticket, outgoing, wait_until, with_message_id,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_erased_after_its_retention() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let refused = outgoing("hotline-12345", "ticket", b"{\"caller\": \"x\"}".to_vec());
    let refused = with_message_id(refused, "refused-long-ago");
    let recent = empty_ticket("refused-today");
    env.publish(&[
        hotline_ticket("BJ12345-20261206-000101"),
        hotline_ticket("BJ12345-20261206-000102"),
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
    // Dead letters' bodies are sealed at rest like reporters.
    assert_eq!(
        env.count(
            "SELECT count(*) FROM dlq_messages WHERE sealed_with = 'test1' \
             AND position('caller'::bytea in body) = 0"
        )
        .await,
        2
    );
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
    let config = env.config_file("");
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

/// Reporters' name, phone and ID number are stored sealed; `gridhub key
/// rotate` seals them again with a new key, after which the old one can go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporters_are_sealed_at_rest_and_keys_rotate() {
    use gridhub::store::seal::Seal;
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    env.publish(&[hotline_ticket("BJ12345-20261206-000201")])
        .await;
    env.wait_count("SELECT count(*) FROM reporters", 1, Duration::from_secs(30))
        .await;
    hub.stop().await;
    type Stored = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let stored = || async {
        let row: (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = sqlx::query_as(
            "SELECT case_id::text, name, phone, id_number, phone_hash FROM reporters",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        let id: uuid::Uuid = row.0.parse().unwrap();
        (id, (row.1, row.2, row.3, row.4) as Stored)
    };
    let (case_id, (name, phone, _, hash)) = stored().await;
    let phone = phone.unwrap();
    eprintln!("stored: name {name:?}, phone {phone}, phone_hash {hash:?}");
    assert!(phone.starts_with("gh1:test1:"), "{phone}");
    assert!(!phone.contains("5678"));
    assert_eq!(name, None, "this ticket's caller gave no name");
    let first = Seal::parse(crate::helpers::TEST_KEY).unwrap();
    assert_eq!(
        first
            .open(case_id, "phone", Some(&phone))
            .unwrap()
            .as_deref(),
        Some("13900005678")
    );
    assert_eq!(hash, first.phone_hash(Some("13900005678")));

    // A new key first, the old one still listed; then rotate.
    let new = Seal::new_key_line("test2");
    let keys = env.settings.data_keys_file.clone().unwrap();
    std::fs::write(&keys, format!("{new}\n{}\n", crate::helpers::TEST_KEY)).unwrap();
    let config = env.config_file(&format!(
        "data_keys_file = {:?}\n",
        keys.display().to_string()
    ));
    let output = gridhub()
        .args(["key", "rotate", "--config"])
        .arg(&config)
        .env_remove("GRIDHUB_DATA_KEYS")
        .env("GRIDHUB_DATABASE_URL", &env.database_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("with key test2: reporters 1,"),
        "{printed}"
    );
    // The new key alone opens everything now.
    let only_new = Seal::parse(&new).unwrap();
    let (_, (_, phone, _, hash)) = stored().await;
    let phone = phone.unwrap();
    assert!(phone.starts_with("gh1:test2:"), "{phone}");
    assert_eq!(
        only_new
            .open(case_id, "phone", Some(&phone))
            .unwrap()
            .as_deref(),
        Some("13900005678")
    );
    assert_eq!(hash, only_new.phone_hash(Some("13900005678")));
}

/// Each shared dataset reaches the grid platform (entitled to masked
/// records) with nothing that gives a masked field back: ID numbers keep
/// region and check digit, birth dates their year, phones their ends, and
/// the declared fields (addresses, household and permit numbers) are masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_records_cannot_be_unmasked_per_dataset() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let datasets = [
        (
            "dept-health",
            "resident-population",
            "resident-population/valid/household-of-three-zhongcang.json",
        ),
        (
            "dept-police",
            "floating-population",
            "floating-population/valid/registered-today-liyuan-lucheng.json",
        ),
    ];
    for (connector, message_type, sample) in datasets {
        let body = crate::helpers::sample(connector, sample);
        env.publish(&[outgoing(connector, message_type, body)])
            .await;
    }
    let queue = env.names.outbound_queue("grid-platform");
    wait_until(Duration::from_secs(30), "both datasets shared", || async {
        env.depth(&queue).await >= 2
    })
    .await;
    let events = env.drain(&queue).await;
    for (connector, _, _) in datasets {
        let event = &events
            .iter()
            .find(|(_, e)| e["from"] == connector)
            .unwrap_or_else(|| panic!("{connector}'s records"))
            .1;
        assert_eq!(event["disclosure"], "masked");
        // No ID number or mobile number anywhere in what the grid gets.
        let text = event.to_string();
        let runs: Vec<&str> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .collect();
        for run in runs {
            let id_like = run.len() >= 17;
            let mobile = run.len() == 11 && run.starts_with('1');
            assert!(
                !id_like && !mobile,
                "{connector}: {run} reaches the grid whole"
            );
        }
        let records = event["records"].as_array().unwrap();
        assert!(!records.is_empty());
        for record in records {
            if let Some(id) = record["id_number"].as_str() {
                assert_eq!(id.chars().filter(|c| *c == '*').count(), 11, "{id}");
            }
            if let Some(born) = record["birth_date"].as_str() {
                assert_eq!(born.len(), 4, "only the year: {born}");
            }
            // Addresses down to the community, village or town: no building,
            // unit or room number.
            for address in [
                &record["address"],
                &record["attributes"]["household_address"],
            ] {
                if let Some(value) = address.as_str() {
                    assert!(
                        !value.chars().any(|c| c.is_ascii_digit()),
                        "{connector}: {value} names a door"
                    );
                }
            }
            for code in [
                &record["attributes"]["household_no"],
                &record["attributes"]["residence_permit_no"],
            ] {
                if let Some(value) = code.as_str() {
                    assert!(value.contains('*'), "{connector}: {value} unmasked");
                }
            }
        }
    }
    hub.stop().await;
}
