//! The demo's units: they answer the hub as the departments, the grid
//! platform and the hotlines would, so that the demo's cases go round the
//! closed loop (signed for, handled, verified on site, called back, closed)
//! instead of waiting at `dispatched`.
//!
//! Before it answers, the lead unit tells the hub it reached the reporter
//! (先行联系) for most cases, usually soon after signing for them, for some
//! only late, and for some never: the assessment's 响应率 is not 100%.
//!
//! A unit listens on its own event queue, as a real one would; each reply
//! is one of its connector's samples with the case it names replaced by the
//! case at hand (the case number, or the hotline's own ticket number), sent
//! after a pause. A reply the pipeline would refuse is not sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Player;

/// One reply to an event: a sample of a connector's message type.
#[derive(PartialEq)]
struct Reply {
    connector: &'static str,
    message_type: &'static str,
    /// The sample's file name, without `.json`, under `valid/`.
    sample: &'static str,
    /// Pause after the event.
    after: Duration,
}

const fn reply(
    connector: &'static str,
    message_type: &'static str,
    sample: &'static str,
    after_secs: u64,
) -> Reply {
    Reply {
        connector,
        message_type,
        sample,
        after: Duration::from_secs(after_secs),
    }
}

/// Who answers what: (destination queue, event, replies). The levels of
/// the grid system (grid, community, street, the district centre for the
/// departments not connected yet) sign for their cases, report progress and
/// respond through the grid platform, as the departments do on their own
/// queues.
const SCRIPT: &[(&str, &str, &[Reply])] = &[
    (
        "grid-platform",
        "case.dispatched",
        &[
            reply("grid-platform", "acceptance", "grid-yuqiao-with-remark", 4),
            reply("grid-platform", "progress", "mediating-dispute-yuqiao", 9),
            reply("grid-platform", "response", "solved-dispute-yuqiao", 15),
        ],
    ),
    (
        "grid-platform",
        "case.verify_requested",
        &[reply(
            "grid-platform",
            "verification",
            "passed-minimal-community",
            5,
        )],
    ),
    (
        "dept-urban-management",
        "case.dispatched",
        &[
            reply(
                "dept-urban-management",
                "sign-for",
                "yuqiao-with-plan-and-remark",
                3,
            ),
            reply(
                "dept-urban-management",
                "progress",
                "garbage-half-done-yuqiao",
                8,
            ),
            reply(
                "dept-urban-management",
                "result",
                "solved-garbage-yuqiao",
                14,
            ),
        ],
    ),
    (
        "dept-housing",
        "case.dispatched",
        &[
            reply("dept-housing", "feedback", "01-sign-for-elevator-yuqiao", 3),
            reply("dept-housing", "feedback", "04-solved-elevator", 14),
        ],
    ),
];

/// Callbacks (回访), by the hotline the case came from, when the centre
/// hears the hotline is asked for one; for one case in eight, early: while
/// the grid still verifies (the hub keeps such a callback and applies it
/// when the verification passes).
const CALLBACKS: &[Reply] = &[
    reply(
        "hotline-12345",
        "callback",
        "reached-solved-satisfied-pothole",
        6,
    ),
    reply(
        "hotline-96156",
        "callback",
        "reached-solved-elderly-yuqiao",
        6,
    ),
    reply(
        "hotline-96126",
        "callback",
        "reached-solved-pothole-xinhua",
        6,
    ),
];

/// Extension requests (延期申请): for one dispatched case in six, the lead
/// unit asks the centre for more days before it answers; the request waits
/// in the case view for a dispatcher, until the unit's result makes it moot.
const EXTENSIONS: &[Reply] = &[
    reply(
        "dept-urban-management",
        "postpone",
        "extension-awaiting-survey-yuqiao",
        6,
    ),
    reply(
        "dept-housing",
        "feedback",
        "05-extension-scaffold-facade",
        6,
    ),
];

/// 先行联系: the lead unit reports that it reached the reporter, on its own
/// queue (the grid platform's `contact`, the housing commission's step 07);
/// for a unit whose system has no such step (城管), the 12345 hotline
/// records it when the case came from there, addressed by its own ticket.
/// `after` is the usual pause: soon after the sign-for.
const CONTACTS: &[Reply] = &[
    reply(
        "grid-platform",
        "contact",
        "phone-dispute-community-yuqiao",
        6,
    ),
    reply(
        "dept-housing",
        "feedback",
        "07-contact-by-phone-elevator",
        5,
    ),
    reply("hotline-12345", "contact", "unit-phoned-pothole-xinhua", 5),
];

/// Lead units whose own system reports no contact: the hotline the case
/// came from records it for them.
const CONTACTED_FOR_BY_HOTLINE: &[&str] = &["dept-urban-management"];

/// The pause before a late contact: after the unit's response.
const LATE_CONTACT: Duration = Duration::from_secs(20);

/// Whether a case is one of every `n`, by its number (the same case always).
fn one_in(case_no: &str, n: u32) -> bool {
    case_no.bytes().map(u32::from).sum::<u32>() % n == 0
}

/// When the reporter of a case is reached, if at all: never for one case
/// in ten, late (after the response) for three in twenty, else after the
/// usual pause. By the case number (the same case always), hashed so as to
/// fall independently of [`one_in`].
fn contact_after(case_no: &str, usual: Duration) -> Option<Duration> {
    let lot = case_no.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    match lot % 20 {
        0 | 1 => None,
        2..=4 => Some(LATE_CONTACT),
        _ => Some(usual),
    }
}

/// A reply ready to fill in: the sample's text and the reference to replace.
struct Template {
    reply: &'static Reply,
    body: String,
    /// The case number or ticket number the sample names.
    names: String,
}

/// Loads every reply's sample; a sample that is missing or does not name
/// its case where it can be replaced is left out, with a warning.
fn templates(player: &Player) -> Vec<Template> {
    // The samples `gridhub check` runs, each with its expected intent.
    let samples: Vec<crate::check::Sample> = player
        .registry
        .connectors
        .values()
        .flat_map(|connector| crate::check::samples(connector).0)
        .collect();
    let replies = SCRIPT
        .iter()
        .flat_map(|(_, _, replies)| replies.iter())
        .chain(CALLBACKS)
        .chain(EXTENSIONS)
        .chain(CONTACTS);
    replies
        .filter_map(|reply| {
            let sample = samples.iter().find(|s| {
                s.connector == reply.connector
                    && s.message_type == reply.message_type
                    && s.path.file_stem().is_some_and(|stem| stem == reply.sample)
            });
            let (body, expect) = match sample {
                Some(sample) => match &sample.expect {
                    crate::check::Expectation::Intent(expect) => {
                        (std::fs::read_to_string(&sample.path).ok(), Some(expect))
                    }
                    crate::check::Expectation::Refusal(_) => (None, None),
                },
                None => (None, None),
            };
            let names = expect.and_then(|e| {
                e.pointer("/case/case_no")
                    .or_else(|| e.pointer("/case/source_ref"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            match (body, names) {
                (Some(body), Some(names))
                    if body.contains(&names) && player.registry.get(reply.connector).is_some() =>
                {
                    Some(Template { reply, body, names })
                }
                _ => {
                    tracing::warn!(
                        connector = reply.connector,
                        sample = reply.sample,
                        "demo reply left out: no such sample, or its case cannot be replaced"
                    );
                    None
                }
            }
        })
        .collect()
}

/// Runs the units until stopped.
pub(super) async fn run(player: Arc<Player>, run: String, stop: CancellationToken) {
    let templates = Arc::new(templates(&player));
    let sent = Arc::new(AtomicU64::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    let mut destinations: Vec<&str> = SCRIPT.iter().map(|(d, _, _)| *d).collect();
    destinations.push(&player.centre);
    // The hotlines that record a contact for a unit hear its dispatch.
    destinations.extend(
        CONTACTS
            .iter()
            .filter(|r| {
                player
                    .registry
                    .is(r.connector, crate::connector::Kind::Hotline)
            })
            .map(|r| r.connector),
    );
    destinations.sort_unstable();
    destinations.dedup();
    for destination in destinations {
        let queue = player.names.outbound_queue(destination);
        let Some(consumer) = player.bus.consume(&queue) else {
            continue;
        };
        let (player, templates, sent, run, stop) = (
            player.clone(),
            templates.clone(),
            sent.clone(),
            run.clone(),
            stop.clone(),
        );
        let destination = destination.to_owned();
        listeners.spawn(async move {
            loop {
                let delivery = tokio::select! {
                    _ = stop.cancelled() => return,
                    delivery = consumer.next() => delivery,
                };
                consumer.ack(delivery.tag, false);
                let Ok(event) = serde_json::from_slice::<Value>(&delivery.message.body) else {
                    continue;
                };
                let name = delivery
                    .message
                    .routing_key
                    .split_once('.')
                    .map_or("", |(_, e)| e);
                for (template, target, after) in
                    answers(&templates, &destination, name, &event, &player)
                {
                    let (player, sent, run) = (player.clone(), sent.clone(), run.clone());
                    let body = template.body.replace(&template.names, &target);
                    let reply = template.reply;
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        player.answer(
                            reply.connector,
                            reply.message_type,
                            &format!("{run}-u-{n}"),
                            body,
                        );
                    });
                }
            }
        });
    }
    while listeners.join_next().await.is_some() {}
}

/// The replies to one event, each with the reference that names the case
/// and the pause before it.
fn answers<'a>(
    templates: &'a [Template],
    destination: &str,
    event_name: &str,
    event: &Value,
    player: &Player,
) -> Vec<(&'a Template, String, Duration)> {
    let case_no = event["case_no"].as_str().unwrap_or_default().to_owned();
    if destination == player.centre {
        let early = one_in(&case_no, 8);
        let calls_back = match event_name {
            "case.callback_requested" => !early,
            "case.verifying" => early,
            _ => false,
        };
        if !calls_back {
            return Vec::new();
        }
        // The first hotline the case came from calls back, by its own ticket.
        let Some((hotline, ticket)) = event["sources"].as_array().and_then(|sources| {
            sources.iter().find_map(|s| {
                let connector = s["connector"].as_str()?;
                let ticket = s["ticket_id"].as_str()?;
                CALLBACKS
                    .iter()
                    .any(|r| r.connector == connector)
                    .then(|| (connector.to_owned(), ticket.to_owned()))
            })
        }) else {
            return Vec::new();
        };
        return templates
            .iter()
            .filter(|t| t.reply.message_type == "callback" && t.reply.connector == hotline)
            .map(|t| (t, ticket.clone(), t.reply.after))
            .collect();
    }
    // A hotline hears its ticket's case dispatched: it records the contact
    // for a unit that reports none itself, by its own ticket.
    if player
        .registry
        .is(destination, crate::connector::Kind::Hotline)
    {
        let for_unit = event["lead_unit"]
            .as_str()
            .is_some_and(|unit| CONTACTED_FOR_BY_HOTLINE.contains(&unit));
        let ticket = event["source"]["ticket_id"].as_str();
        let (true, Some(ticket)) = (event_name == "case.dispatched" && for_unit, ticket) else {
            return Vec::new();
        };
        return contacts(templates, destination, &case_no)
            .into_iter()
            .map(|(t, after)| (t, ticket.to_owned(), after))
            .collect();
    }
    // Only the lead unit answers a dispatch; assisting units do not sign for it.
    if event_name == "case.dispatched" && event["role"] != "lead" {
        return Vec::new();
    }
    let Some((_, _, replies)) = SCRIPT
        .iter()
        .find(|(d, e, _)| *d == destination && *e == event_name)
    else {
        return Vec::new();
    };
    let asks = EXTENSIONS
        .iter()
        .filter(|r| event_name == "case.dispatched" && r.connector == destination)
        .filter(|_| one_in(&case_no, 6));
    let contact = contacts(templates, destination, &case_no)
        .into_iter()
        .filter(|_| event_name == "case.dispatched")
        .map(|(t, after)| (t, case_no.clone(), after));
    replies
        .iter()
        .chain(asks)
        .filter_map(|reply| templates.iter().find(|t| std::ptr::eq(t.reply, reply)))
        .map(|t| (t, case_no.clone(), t.reply.after))
        .chain(contact)
        .collect()
}

/// The contact a connector reports about a case, with its pause, if the
/// case is one whose reporter is reached.
fn contacts<'a>(
    templates: &'a [Template],
    connector: &str,
    case_no: &str,
) -> Vec<(&'a Template, Duration)> {
    templates
        .iter()
        .filter(|t| t.reply.connector == connector && CONTACTS.contains(t.reply))
        .filter_map(|t| Some((t, contact_after(case_no, t.reply.after)?)))
        .collect()
}

impl Player {
    /// Publishes a unit's reply, if the pipeline would accept it.
    fn answer(&self, connector: &str, message_type: &str, message_id: &str, body: String) {
        let routing_key = format!("{connector}.{message_type}");
        let Some(body) = self.accepted(connector, &routing_key, body.into_bytes()) else {
            tracing::debug!(
                connector,
                message_type,
                "demo reply not sent: it would be refused"
            );
            return;
        };
        if let Err(error) = self.publish(
            connector,
            &routing_key,
            message_id,
            "application/json",
            &body,
        ) {
            tracing::warn!(error = %error, "demo reply not sent");
        }
    }
}
