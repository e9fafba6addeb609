//! The case lifecycle in one place: statuses, the steps that move a case
//! between them, and the rule for updates that arrive out of order.
//!
//! ```text
//! registered ─► dispatched ─► accepted ─► in_progress ─► responded ─► verifying ─► callback ─► closed
//!      │            │  ▲          │                          ▲            │  fail          │ unsolved
//!      │            ▼  │ 改派      ▼                          │            ▼                ▼
//!      │         returned ◄───────┘                        rework ◄───────┘             reopened ─► dispatched
//!      ├─► merged (duplicate of an open case)
//!      └─► answered (answered directly, no dispatch)
//!
//! dispatched, accepted, in_progress, rework ─► suspended ─► (back where it was, the deadline moved
//!                                              挂起           by the time it stood)
//! ```
//!
//! A lead unit may ask for more time (延期申请) or for the clock to stop
//! (挂起申请); the request waits on the case until the centre grants it
//! (`extend`, `suspend`) or declines it (`reject_request`).
//!
//! [`apply`] is a pure function of the case's current state and one update;
//! the store runs it inside the transaction that records the result.

use serde::{Deserialize, Serialize};

use crate::intent::Action;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Recorded, not yet dispatched (awaiting triage when it could not be routed).
    Registered,
    /// 派单: sent to its lead unit.
    Dispatched,
    /// 签收: the lead unit took it.
    Accepted,
    /// 办理中.
    InProgress,
    /// 反馈: the unit reported its result.
    Responded,
    /// 核查: the grid checks the result on site.
    Verifying,
    /// 回访: the hotline calls the reporter back.
    Callback,
    /// 办结.
    Closed,
    /// 退单: sent back by the unit, to be dispatched again.
    Returned,
    /// 退单待审: a unit's return waiting for the centre to approve it (and
    /// dispatch again) or reject it (back to the unit, deadline kept).
    ReturnPending,
    /// 返工: verification failed; the unit handles it again.
    Rework,
    /// 重启: a closed case opened again.
    Reopened,
    /// 并单: a duplicate of an open case, which carries it.
    Merged,
    /// Not a matter for the district (kept for the record).
    Rejected,
    /// 挂起: the centre stopped the case's clock; `resume` restarts it.
    Suspended,
    /// 直接答复: answered at intake, never dispatched.
    Answered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Registered => "registered",
            Status::Dispatched => "dispatched",
            Status::Accepted => "accepted",
            Status::InProgress => "in_progress",
            Status::Responded => "responded",
            Status::Verifying => "verifying",
            Status::Callback => "callback",
            Status::Closed => "closed",
            Status::Returned => "returned",
            Status::ReturnPending => "return_pending",
            Status::Rework => "rework",
            Status::Reopened => "reopened",
            Status::Merged => "merged",
            Status::Rejected => "rejected",
            Status::Suspended => "suspended",
            Status::Answered => "answered",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        ALL.iter().copied().find(|s| s.as_str() == text)
    }

    /// Position in one handling cycle; the out-of-order rule compares these.
    fn rank(self) -> u8 {
        match self {
            Status::Registered | Status::Returned | Status::ReturnPending | Status::Reopened => 0,
            Status::Dispatched => 1,
            Status::Accepted => 2,
            Status::InProgress | Status::Rework | Status::Suspended => 3,
            Status::Responded => 4,
            Status::Verifying => 5,
            Status::Callback => 6,
            Status::Closed | Status::Merged | Status::Rejected | Status::Answered => 7,
        }
    }

    /// Still being handled: deadlines run and duplicates merge into it.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            Status::Closed | Status::Merged | Status::Rejected | Status::Answered
        )
    }
}

const ALL: [Status; 16] = [
    Status::Registered,
    Status::Dispatched,
    Status::Accepted,
    Status::InProgress,
    Status::Responded,
    Status::Verifying,
    Status::Callback,
    Status::Closed,
    Status::Returned,
    Status::ReturnPending,
    Status::Rework,
    Status::Reopened,
    Status::Merged,
    Status::Rejected,
    Status::Suspended,
    Status::Answered,
];

/// Statuses in which the handling deadline runs (a return waiting for
/// review too: rejected, the case keeps its deadline).
pub const HANDLING: [Status; 6] = [
    Status::Dispatched,
    Status::Accepted,
    Status::InProgress,
    Status::Rework,
    Status::Returned,
    Status::ReturnPending,
];

/// Statuses in which the lead unit works on the case: it may ask for more
/// time or a suspension, and the centre may suspend it.
const WORKING: [Status; 4] = [
    Status::Dispatched,
    Status::Accepted,
    Status::InProgress,
    Status::Rework,
];

/// What the lifecycle needs to know about a case.
#[derive(Debug, Clone)]
pub struct CaseState {
    pub status: Status,
    /// A grid located the case: verification happens on site.
    pub located: bool,
    /// A source of the case is a hotline whose reporter agreed to a callback.
    pub callback_wanted: bool,
    /// At `return_pending` or `suspended`: the status the case left for it
    /// (where a rejected return or a resumption brings it back).
    pub before: Option<Status>,
}

/// Who sent an update, relative to the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sender {
    /// The connector of the unit the case is dispatched to.
    pub lead_unit: bool,
    /// The grid platform: verification, and the district centre's desk.
    pub grid_platform: bool,
    /// A connector the case came from (its hotline).
    pub source: bool,
    /// A dispatcher at the district centre's desk.
    pub centre: bool,
}

impl Sender {
    /// Nobody the case knows.
    pub const OTHER: Sender = Sender {
        lead_unit: false,
        grid_platform: false,
        source: false,
        centre: false,
    };
    pub const LEAD_UNIT: Sender = Sender {
        lead_unit: true,
        ..Sender::OTHER
    };
    pub const GRID_PLATFORM: Sender = Sender {
        grid_platform: true,
        ..Sender::OTHER
    };
    pub const SOURCE: Sender = Sender {
        source: true,
        ..Sender::OTHER
    };
    pub const CENTRE: Sender = Sender {
        centre: true,
        ..Sender::OTHER
    };
}

/// What follows from an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The case moves through `steps` (each recorded as an event, in order);
    /// the last one is its new status.
    Moved {
        steps: Vec<Status>,
        effects: Vec<Effect>,
    },
    /// The update is behind the case (it arrived after a later step):
    /// recorded as a late event, nothing changes.
    Late,
    /// Recorded without a status change (a callback that did not reach the caller).
    Noted,
    /// A callback that arrives while the grid still verifies the result on
    /// site (the hotline does not know about verification: a race, not an
    /// error). The store keeps it and applies it when the verification
    /// passes; a failed verification drops it, and the hotline is asked
    /// again after the next response.
    Held,
}

/// Work the store does after a move, inside the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Dispatch again: to the next unit after a return (改派), to the lead unit after a reopen.
    Redispatch,
    /// Ask the grid platform to verify on site.
    RequestVerification,
    /// Ask the source hotline to call the reporter back.
    RequestCallback,
    /// Tell the lead unit that verification failed.
    Rework,
    /// Count a rework.
    CountRework,
    /// Count a return.
    CountReturn,
    /// Stop the case's clock (挂起).
    StopClock,
    /// Start it again: the deadline moves by the time it stood.
    RestartClock,
    /// Make the case part of the one the update names (并单).
    Merge,
    /// Let a merged case go on its own (拆单). After `Redispatch`, which
    /// may still refuse: nothing is written before a refusal.
    Split,
}

/// Why an update is refused. The reason names the current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed(pub String);

/// What an update reports: its action with the data that action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Accept,
    Return,
    Progress,
    /// 先行联系: recorded on the case, its status unchanged.
    Contact,
    Respond,
    /// 核查: whether the result passed the on-site check.
    Verify {
        passed: bool,
    },
    /// 回访: whether the reporter was reached, and whether they say the
    /// matter is solved.
    Callback {
        contacted: bool,
        solved: bool,
    },
    Close,
    Reopen,
    Dispatch,
    ApproveReturn,
    RejectReturn,
    Remind,
    Supervise,
    /// 延期申请: how many days more the unit asks for.
    RequestExtension {
        days: u16,
    },
    RequestSuspension,
    Extend,
    Suspend,
    Resume,
    RejectRequest,
    Merge,
    Split,
}

impl Report {
    /// The report an update makes. A verification must say whether it
    /// passed; a callback that does not say is taken as the reporter
    /// reached and the matter solved.
    pub fn of(update: &crate::intent::UpdateCase) -> Result<Report, NotAllowed> {
        Ok(match update.action {
            Action::Accept => Report::Accept,
            Action::Return => Report::Return,
            Action::Progress => Report::Progress,
            Action::Contact => Report::Contact,
            Action::Respond => Report::Respond,
            Action::Verify => Report::Verify {
                passed: update
                    .passed
                    .ok_or_else(|| NotAllowed("verify needs passed".to_owned()))?,
            },
            Action::Callback => Report::Callback {
                contacted: update.contacted.unwrap_or(true),
                solved: update.solved.unwrap_or(true),
            },
            Action::Close => Report::Close,
            Action::Reopen => Report::Reopen,
            Action::Dispatch => Report::Dispatch,
            Action::ApproveReturn => Report::ApproveReturn,
            Action::RejectReturn => Report::RejectReturn,
            Action::Remind => Report::Remind,
            Action::Supervise => Report::Supervise,
            Action::RequestExtension => Report::RequestExtension {
                days: update
                    .days
                    .ok_or_else(|| NotAllowed("request_extension needs days".to_owned()))?,
            },
            Action::RequestSuspension => Report::RequestSuspension,
            Action::Extend => Report::Extend,
            Action::Suspend => Report::Suspend,
            Action::Resume => Report::Resume,
            Action::RejectRequest => Report::RejectRequest,
            Action::Merge => Report::Merge,
            Action::Split => Report::Split,
        })
    }

    pub fn action(self) -> Action {
        match self {
            Report::Accept => Action::Accept,
            Report::Return => Action::Return,
            Report::Progress => Action::Progress,
            Report::Contact => Action::Contact,
            Report::Respond => Action::Respond,
            Report::Verify { .. } => Action::Verify,
            Report::Callback { .. } => Action::Callback,
            Report::Close => Action::Close,
            Report::Reopen => Action::Reopen,
            Report::Dispatch => Action::Dispatch,
            Report::ApproveReturn => Action::ApproveReturn,
            Report::RejectReturn => Action::RejectReturn,
            Report::Remind => Action::Remind,
            Report::Supervise => Action::Supervise,
            Report::RequestExtension { .. } => Action::RequestExtension,
            Report::RequestSuspension => Action::RequestSuspension,
            Report::Extend => Action::Extend,
            Report::Suspend => Action::Suspend,
            Report::Resume => Action::Resume,
            Report::RejectRequest => Action::RejectRequest,
            Report::Merge => Action::Merge,
            Report::Split => Action::Split,
        }
    }
}

/// Applies one update to a case.
///
/// The out-of-order rule: an update that is allowed moves the case (a
/// forward step may imply the skipped sign-for: a result reported on a case
/// not yet signed for is taken as signed for and answered). An update that
/// is not allowed, but whose step is behind the case's current position in
/// the handling cycle (a sign-for arriving after the result, say), is
/// recorded as late and changes nothing. Any other update is refused, naming
/// the current status. So the same set of updates ends in the same status
/// whatever order several consumers deliver them in.
pub fn apply(case: &CaseState, report: Report, sender: Sender) -> Result<Outcome, NotAllowed> {
    use Status::*;
    let current = case.status;
    let action = report.action();
    let refuse = |why: &str| {
        Err(NotAllowed(format!(
            "{} not allowed in status {}{why}",
            action.as_str(),
            current.as_str()
        )))
    };

    // Who may report what.
    let allowed_role = match action {
        Action::Accept
        | Action::Return
        | Action::Progress
        | Action::Respond
        | Action::RequestExtension
        | Action::RequestSuspension => sender.lead_unit,
        Action::Verify => sender.grid_platform,
        Action::Contact => sender.lead_unit || sender.source,
        Action::Close | Action::Reopen => sender.grid_platform || sender.centre,
        Action::Callback => sender.source,
        a if a.is_centres() => sender.centre,
        _ => false,
    };
    if !allowed_role {
        return Err(NotAllowed(format!(
            "{} may only come from {}",
            action.as_str(),
            match action {
                Action::Verify => "the grid platform",
                Action::Close | Action::Reopen => "the grid platform or the centre's desk",
                Action::Callback => "a hotline the case came from",
                Action::Contact => "the case's lead unit or a hotline it came from",
                a if a.is_centres() => "the district centre's desk",
                _ => "the case's lead unit",
            }
        )));
    }

    let after_response = |case: &CaseState| -> (Vec<Status>, Vec<Effect>) {
        if case.located {
            (
                vec![Responded, Verifying],
                vec![Effect::RequestVerification],
            )
        } else if case.callback_wanted {
            (vec![Responded, Callback], vec![Effect::RequestCallback])
        } else {
            (vec![Responded, Closed], vec![])
        }
    };
    let moved = |steps: Vec<Status>, effects: Vec<Effect>| Ok(Outcome::Moved { steps, effects });

    let target = match action {
        Action::Accept => Accepted,
        Action::Return => Returned,
        Action::Progress => InProgress,
        Action::Respond => Responded,
        Action::Verify => Verifying,
        Action::Callback => Callback,
        Action::Close => Closed,
        Action::Reopen => Reopened,
        Action::Dispatch | Action::ApproveReturn => Dispatched,
        Action::Suspend => Suspended,
        Action::Merge => Merged,
        Action::Split => Dispatched,
        Action::Resume => case.before.unwrap_or(Accepted),
        Action::Contact
        | Action::RejectReturn
        | Action::Remind
        | Action::Supervise
        | Action::RequestExtension
        | Action::RequestSuspension
        | Action::Extend
        | Action::RejectRequest => current,
    };
    match (action, current) {
        (Action::Accept, Dispatched) => moved(vec![Accepted], vec![]),
        // A return waits for the centre's review (退单审核).
        (Action::Return, Dispatched | Accepted) => {
            moved(vec![ReturnPending], vec![Effect::CountReturn])
        }
        (
            Action::Dispatch,
            Registered | Dispatched | Accepted | InProgress | Rework | Returned | ReturnPending
            | Reopened | Suspended,
        ) => moved(vec![Dispatched], vec![Effect::Redispatch]),
        (Action::ApproveReturn, ReturnPending) => {
            moved(vec![Returned, Dispatched], vec![Effect::Redispatch])
        }
        (Action::RejectReturn, ReturnPending) => {
            moved(vec![case.before.unwrap_or(Dispatched)], vec![])
        }
        (Action::Remind | Action::Supervise, s) if HANDLING.contains(&s) => Ok(Outcome::Noted),
        // Reaching the reporter changes nothing but the record, whenever it
        // is reported (a suspended case's unit may call too); the
        // assessment judges whether it was in time.
        (Action::Contact, _) => Ok(Outcome::Noted),
        // A request waits on the case (the store keeps it) for the centre.
        (Action::RequestExtension | Action::RequestSuspension, s) if WORKING.contains(&s) => {
            Ok(Outcome::Noted)
        }
        (Action::Extend | Action::RejectRequest, s) if WORKING.contains(&s) || s == Suspended => {
            Ok(Outcome::Noted)
        }
        (Action::Suspend, s) if WORKING.contains(&s) => {
            moved(vec![Suspended], vec![Effect::StopClock])
        }
        (Action::Resume, Suspended) => moved(vec![target], vec![Effect::RestartClock]),
        (Action::Merge, s) if s.is_open() => moved(vec![Merged], vec![Effect::Merge]),
        (Action::Split, Merged) => moved(vec![Dispatched], vec![Effect::Redispatch, Effect::Split]),
        // The centre's own actions are never late: refused unless allowed.
        (a, _) if a.is_centres() => refuse(""),
        (Action::Progress, Dispatched) => moved(vec![Accepted, InProgress], vec![]),
        (Action::Progress, Accepted | InProgress | Rework) => moved(vec![InProgress], vec![]),
        (Action::Respond, Dispatched) => {
            let (steps, effects) = after_response(case);
            moved([vec![Accepted], steps].concat(), effects)
        }
        (Action::Respond, Accepted | InProgress | Rework) => {
            let (steps, effects) = after_response(case);
            moved(steps, effects)
        }
        (Action::Verify, Verifying) => match report {
            Report::Verify { passed: true } if case.callback_wanted => {
                moved(vec![Callback], vec![Effect::RequestCallback])
            }
            Report::Verify { passed: true } => moved(vec![Closed], vec![]),
            _ => moved(vec![Rework], vec![Effect::CountRework, Effect::Rework]),
        },
        (Action::Callback, Responded | Verifying) => Ok(Outcome::Held),
        // About a result that failed verification since: the hotline is
        // asked again after the next response.
        (Action::Callback, Rework) => Ok(Outcome::Late),
        (Action::Callback, Callback | Closed) => match report {
            Report::Callback {
                contacted: false, ..
            } => Ok(Outcome::Noted),
            Report::Callback { solved: false, .. } => {
                moved(vec![Reopened, Dispatched], vec![Effect::Redispatch])
            }
            _ if current == Closed => Ok(Outcome::Noted),
            _ => moved(vec![Closed], vec![]),
        },
        // Suspended, the unit waits for the centre to resume the case: its
        // steps are refused (to be replayed after), never taken as late.
        (_, Suspended) if sender.lead_unit => {
            refuse(": the case is suspended until the centre resumes it")
        }
        (Action::Close, s) if s.is_open() => moved(vec![Closed], vec![]),
        (Action::Reopen, Closed) => moved(vec![Reopened, Dispatched], vec![Effect::Redispatch]),
        _ if target.rank() < current.rank()
            && !matches!(action, Action::Reopen | Action::Close) =>
        {
            Ok(Outcome::Late)
        }
        _ => refuse(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn case(status: Status) -> CaseState {
        CaseState {
            status,
            located: true,
            callback_wanted: true,
            before: None,
        }
    }

    fn steps(outcome: Outcome) -> Vec<Status> {
        match outcome {
            Outcome::Moved { steps, .. } => steps,
            other => panic!("not a move: {other:?}"),
        }
    }

    /// The action, passed, solved and the reporter reached, 5 days asked for.
    fn report(action: Action) -> Report {
        let update = serde_json::json!({
            "case": {"case_no": "TZ2612060000001"},
            "action": action,
            "occurred_at": "2026-12-06T10:00:00+08:00",
            "passed": true,
            "contacted": true,
            "solved": true,
            "days": 5,
        });
        Report::of(&serde_json::from_value(update).unwrap()).unwrap()
    }

    fn run(status: Status, action: Action, role: Sender) -> Result<Outcome, NotAllowed> {
        apply(&case(status), report(action), role)
    }

    #[test]
    fn the_case_schema_lists_every_status() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/hub/case.v1.json")).unwrap();
        let listed: Vec<&str> = schema["properties"]["status"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        for status in ALL {
            assert!(
                listed.contains(&status.as_str()),
                "{} missing",
                status.as_str()
            );
        }
    }

    #[test]
    fn statuses_round_trip() {
        for status in ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn the_whole_loop() {
        assert_eq!(
            steps(run(Dispatched, Action::Accept, Sender::LEAD_UNIT).unwrap()),
            [Accepted]
        );
        assert_eq!(
            steps(run(Accepted, Action::Progress, Sender::LEAD_UNIT).unwrap()),
            [InProgress]
        );
        assert_eq!(
            steps(run(InProgress, Action::Respond, Sender::LEAD_UNIT).unwrap()),
            [Responded, Verifying]
        );
        assert_eq!(
            steps(run(Verifying, Action::Verify, Sender::GRID_PLATFORM).unwrap()),
            [Callback]
        );
        assert_eq!(
            steps(run(Callback, Action::Callback, Sender::SOURCE).unwrap()),
            [Closed]
        );
    }

    #[test]
    fn a_return_waits_for_review_then_goes_again_or_back() {
        let outcome = run(Accepted, Action::Return, Sender::LEAD_UNIT).unwrap();
        assert_eq!(
            outcome,
            Outcome::Moved {
                steps: vec![ReturnPending],
                effects: vec![Effect::CountReturn]
            }
        );
        // Approved: dispatched again, with a new deadline.
        assert_eq!(
            run(ReturnPending, Action::ApproveReturn, Sender::CENTRE).unwrap(),
            Outcome::Moved {
                steps: vec![Returned, Dispatched],
                effects: vec![Effect::Redispatch]
            }
        );
        // Rejected: back where the unit returned it from, nothing restarted.
        let pending = CaseState {
            before: Some(Accepted),
            ..case(ReturnPending)
        };
        assert_eq!(
            apply(&pending, Report::RejectReturn, Sender::CENTRE).unwrap(),
            Outcome::Moved {
                steps: vec![Accepted],
                effects: vec![]
            }
        );
        // Only the centre reviews; the unit cannot act on it meanwhile.
        assert!(run(ReturnPending, Action::ApproveReturn, Sender::LEAD_UNIT).is_err());
        assert!(run(ReturnPending, Action::Accept, Sender::LEAD_UNIT).is_err());
        assert!(run(Accepted, Action::ApproveReturn, Sender::CENTRE).is_err());
    }

    #[test]
    fn the_centre_dispatches_presses_closes_and_reopens() {
        for status in [
            Registered,
            Dispatched,
            Accepted,
            InProgress,
            Rework,
            ReturnPending,
            Reopened,
        ] {
            assert_eq!(
                run(status, Action::Dispatch, Sender::CENTRE).unwrap(),
                Outcome::Moved {
                    steps: vec![Dispatched],
                    effects: vec![Effect::Redispatch]
                },
                "{status:?}"
            );
        }
        for status in [Responded, Verifying, Callback, Closed, Merged, Answered] {
            assert!(
                run(status, Action::Dispatch, Sender::CENTRE).is_err(),
                "{status:?}"
            );
        }
        for action in [Action::Remind, Action::Supervise] {
            assert_eq!(
                run(InProgress, action, Sender::CENTRE).unwrap(),
                Outcome::Noted
            );
            assert!(
                run(Callback, action, Sender::CENTRE).is_err(),
                "not the unit's to do"
            );
            assert!(run(InProgress, action, Sender::GRID_PLATFORM).is_err());
        }
        assert_eq!(
            steps(run(InProgress, Action::Close, Sender::CENTRE).unwrap()),
            [Closed]
        );
        assert_eq!(
            steps(run(Closed, Action::Reopen, Sender::CENTRE).unwrap()),
            [Reopened, Dispatched]
        );
        // No connector takes the centre's actions, however its mapping is written.
        for sender in [Sender::LEAD_UNIT, Sender::GRID_PLATFORM, Sender::SOURCE] {
            let error = run(Dispatched, Action::Dispatch, sender).unwrap_err();
            assert!(
                error.0.contains("the district centre's desk"),
                "{}",
                error.0
            );
        }
    }

    #[test]
    fn a_unit_asks_for_time_and_the_centre_grants_or_declines() {
        for status in [Dispatched, Accepted, InProgress, Rework] {
            for action in [Action::RequestExtension, Action::RequestSuspension] {
                assert_eq!(
                    run(status, action, Sender::LEAD_UNIT).unwrap(),
                    Outcome::Noted,
                    "{status:?} {action:?}"
                );
                assert!(run(status, action, Sender::CENTRE).is_err());
                assert!(run(status, action, Sender::SOURCE).is_err());
            }
            for action in [Action::Extend, Action::RejectRequest] {
                assert_eq!(run(status, action, Sender::CENTRE).unwrap(), Outcome::Noted);
                assert!(run(status, action, Sender::LEAD_UNIT).is_err());
            }
        }
        // Nothing to ask once the unit has answered or handed the case back.
        for status in [ReturnPending, Responded, Verifying, Callback, Closed] {
            let error = run(status, Action::RequestExtension, Sender::LEAD_UNIT).unwrap_err();
            assert!(error.0.contains(status.as_str()), "{}", error.0);
        }
        let bare: crate::intent::UpdateCase = serde_json::from_value(serde_json::json!({
            "case": {"case_no": "TZ2026120600001"},
            "action": "request_extension",
            "occurred_at": "2026-12-06T10:00:00+08:00"
        }))
        .unwrap();
        assert!(Report::of(&bare).is_err(), "an extension names its days");
    }

    #[test]
    fn a_suspension_stops_the_clock_and_resumes_where_it_was() {
        for status in [Dispatched, Accepted, InProgress, Rework] {
            assert_eq!(
                run(status, Action::Suspend, Sender::CENTRE).unwrap(),
                Outcome::Moved {
                    steps: vec![Suspended],
                    effects: vec![Effect::StopClock]
                }
            );
        }
        assert!(run(ReturnPending, Action::Suspend, Sender::CENTRE).is_err());
        assert!(run(Accepted, Action::Suspend, Sender::LEAD_UNIT).is_err());
        let suspended = CaseState {
            before: Some(InProgress),
            ..case(Suspended)
        };
        assert_eq!(
            apply(&suspended, Report::Resume, Sender::CENTRE).unwrap(),
            Outcome::Moved {
                steps: vec![InProgress],
                effects: vec![Effect::RestartClock]
            }
        );
        assert!(run(Accepted, Action::Resume, Sender::CENTRE).is_err());
        // Suspended, the unit waits: its steps are refused, even a sign-for
        // (late by rank, it would be lost), to be replayed after.
        for action in [Action::Accept, Action::Return, Action::Respond] {
            let error = run(Suspended, action, Sender::LEAD_UNIT).unwrap_err();
            assert!(error.0.contains("the case is suspended"), "{}", error.0);
        }
        // The centre may still extend, re-dispatch or close it.
        assert_eq!(
            run(Suspended, Action::Extend, Sender::CENTRE).unwrap(),
            Outcome::Noted
        );
        assert_eq!(
            steps(run(Suspended, Action::Dispatch, Sender::CENTRE).unwrap()),
            [Dispatched]
        );
        assert_eq!(
            steps(run(Suspended, Action::Close, Sender::CENTRE).unwrap()),
            [Closed]
        );
        assert!(!HANDLING.contains(&Suspended), "no deadline runs");
        assert!(Suspended.is_open());
    }

    #[test]
    fn the_centre_merges_open_cases_and_splits_merged_ones() {
        for status in [
            Registered, Dispatched, InProgress, Suspended, Verifying, Callback,
        ] {
            assert_eq!(
                run(status, Action::Merge, Sender::CENTRE).unwrap(),
                Outcome::Moved {
                    steps: vec![Merged],
                    effects: vec![Effect::Merge]
                },
                "{status:?}"
            );
        }
        for status in [Merged, Closed, Answered] {
            assert!(run(status, Action::Merge, Sender::CENTRE).is_err());
        }
        assert_eq!(
            run(Merged, Action::Split, Sender::CENTRE).unwrap(),
            Outcome::Moved {
                steps: vec![Dispatched],
                effects: vec![Effect::Redispatch, Effect::Split]
            }
        );
        assert!(run(Dispatched, Action::Split, Sender::CENTRE).is_err());
        assert!(run(Dispatched, Action::Merge, Sender::LEAD_UNIT).is_err());
    }

    #[test]
    fn failed_verification_is_rework() {
        let outcome = apply(
            &case(Verifying),
            Report::Verify { passed: false },
            Sender::GRID_PLATFORM,
        )
        .unwrap();
        assert_eq!(steps(outcome), [Rework]);
        assert_eq!(
            steps(run(Rework, Action::Respond, Sender::LEAD_UNIT).unwrap()),
            [Responded, Verifying]
        );
    }

    #[test]
    fn a_case_without_grid_or_callback_closes_on_response() {
        let state = CaseState {
            status: Accepted,
            located: false,
            callback_wanted: false,
            before: None,
        };
        let outcome = apply(&state, Report::Respond, Sender::LEAD_UNIT).unwrap();
        assert_eq!(steps(outcome), [Responded, Closed]);
    }

    #[test]
    fn unsolved_callback_reopens() {
        let outcome = apply(
            &case(Callback),
            Report::Callback {
                contacted: true,
                solved: false,
            },
            Sender::SOURCE,
        )
        .unwrap();
        assert_eq!(steps(outcome), [Reopened, Dispatched]);
        let unreachable = apply(
            &case(Callback),
            Report::Callback {
                contacted: false,
                solved: true,
            },
            Sender::SOURCE,
        )
        .unwrap();
        assert_eq!(unreachable, Outcome::Noted);
    }

    #[test]
    fn late_updates_change_nothing_and_illegal_ones_are_refused() {
        assert_eq!(
            run(Verifying, Action::Accept, Sender::LEAD_UNIT).unwrap(),
            Outcome::Late
        );
        assert_eq!(
            run(Responded, Action::Progress, Sender::LEAD_UNIT).unwrap(),
            Outcome::Late
        );
        assert_eq!(
            run(Closed, Action::Verify, Sender::GRID_PLATFORM).unwrap(),
            Outcome::Late
        );
        let error = run(Dispatched, Action::Verify, Sender::GRID_PLATFORM).unwrap_err();
        assert_eq!(error.0, "verify not allowed in status dispatched");
        let error = run(Registered, Action::Respond, Sender::LEAD_UNIT).unwrap_err();
        assert!(error.0.contains("status registered"), "{}", error.0);
    }

    #[test]
    fn order_does_not_change_the_end() {
        // Sign-for and result delivered in either order end in the same status.
        let in_order = steps(run(Dispatched, Action::Accept, Sender::LEAD_UNIT).unwrap());
        let then = steps(
            run(
                *in_order.last().unwrap(),
                Action::Respond,
                Sender::LEAD_UNIT,
            )
            .unwrap(),
        );
        let reversed = steps(run(Dispatched, Action::Respond, Sender::LEAD_UNIT).unwrap());
        assert_eq!(then.last(), reversed.last());
        assert_eq!(
            run(*reversed.last().unwrap(), Action::Accept, Sender::LEAD_UNIT).unwrap(),
            Outcome::Late
        );
    }

    #[test]
    fn a_contact_is_noted_from_the_lead_unit_or_a_source_in_any_status() {
        // The reporter reached (先行联系): recorded, the status unchanged,
        // before handling, during it, after it, and while the clock stands.
        for status in [
            Dispatched, Accepted, InProgress, Rework, Suspended, Verifying, Callback, Closed,
        ] {
            for sender in [Sender::LEAD_UNIT, Sender::SOURCE] {
                assert_eq!(
                    run(status, Action::Contact, sender).unwrap(),
                    Outcome::Noted,
                    "{status:?} {sender:?}"
                );
            }
        }
        let suspended = CaseState {
            before: Some(Accepted),
            ..case(Suspended)
        };
        assert_eq!(
            apply(&suspended, Report::Contact, Sender::LEAD_UNIT).unwrap(),
            Outcome::Noted,
            "a suspended case's unit may still call the reporter"
        );
        // Another connector, the grid platform verifying another unit's
        // case, or the centre's desk may not report it.
        for sender in [Sender::OTHER, Sender::GRID_PLATFORM, Sender::CENTRE] {
            let error = run(Accepted, Action::Contact, sender).unwrap_err();
            assert!(
                error
                    .0
                    .contains("the case's lead unit or a hotline it came from"),
                "{}",
                error.0
            );
        }
    }

    #[test]
    fn only_the_right_sender_may_report_a_step() {
        assert!(run(Dispatched, Action::Accept, Sender::OTHER).is_err());
        assert!(run(Verifying, Action::Verify, Sender::LEAD_UNIT).is_err());
        assert!(run(Callback, Action::Callback, Sender::LEAD_UNIT).is_err());
    }

    #[test]
    fn a_callback_during_verification_is_held_and_after_a_failure_is_late() {
        assert_eq!(
            run(Verifying, Action::Callback, Sender::SOURCE).unwrap(),
            Outcome::Held
        );
        assert_eq!(
            run(Responded, Action::Callback, Sender::SOURCE).unwrap(),
            Outcome::Held
        );
        assert_eq!(
            run(Rework, Action::Callback, Sender::SOURCE).unwrap(),
            Outcome::Late
        );
        // Only from a hotline the case came from, and not before a response.
        assert!(run(Verifying, Action::Callback, Sender::GRID_PLATFORM).is_err());
        assert!(run(Accepted, Action::Callback, Sender::SOURCE).is_err());
    }
}
