//! The unified intent: what a mapping turns a message into.
//!
//! The only way to get an [`Intent`] is [`crate::pipeline::prepare`], which
//! validates the mapping's output against `schemas/hub/intent.v1.json` first;
//! the types below only give that validated JSON a shape.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One thing a message asks the hub to do.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// An intent lives for one message; boxing the larger variants would cost
// an allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Intent {
    OpenCase(OpenCase),
    UpdateCase(UpdateCase),
    ShareRecords(ShareRecords),
    UpdateGrids(UpdateGrids),
}

/// Which case an update is about.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CaseRef {
    #[serde(default)]
    pub case_no: Option<String>,
    #[serde(default)]
    pub source_ref: Option<String>,
    /// Connector whose ticket id `source_ref` is; default the sender.
    #[serde(default)]
    pub connector: Option<String>,
}

/// A lifecycle step of a case, reported by a unit, the grid platform or a hotline.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UpdateCase {
    pub case: CaseRef,
    pub action: Action,
    pub occurred_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// Photos and files of what was done (progress, respond).
    #[serde(default)]
    pub media: Vec<Media>,
    #[serde(default)]
    pub reason: Option<String>,
    /// dispatch, approve_return: the assisting units (协办), by unit id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assist: Vec<String>,
    #[serde(default)]
    pub passed: Option<bool>,
    #[serde(default)]
    pub contacted: Option<bool>,
    #[serde(default)]
    pub solved: Option<bool>,
    #[serde(default)]
    pub satisfaction: Option<String>,
    /// request_extension, extend: how many days the deadline moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u16>,
    /// merge: the case number of the case it becomes part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
}

/// The lifecycle steps an update may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 签收: the unit takes the case.
    Accept,
    /// 退单: the unit sends it back, with a reason.
    Return,
    /// 办理进展: handling goes on.
    Progress,
    /// 先行联系: the lead unit, or the hotline for it, reached the reporter
    /// before handling. The assessment's 响应率 counts the first one.
    Contact,
    /// 反馈: the unit reports the result.
    Respond,
    /// 核查: the grid checks the result on site.
    Verify,
    /// 回访: the hotline called the reporter back.
    Callback,
    /// 结案: the centre closes the case.
    Close,
    /// 重启: the centre reopens a closed case.
    Reopen,
    /// 派单 / 改派: the centre's dispatcher sends the case to a chosen unit
    /// (`unit`, with `assist`), first or again.
    Dispatch,
    /// The centre approves a unit's return (退单审核): dispatched again, to
    /// `unit` or the rule's `on_return`, with a new deadline.
    ApproveReturn,
    /// The centre rejects a unit's return: back to the unit, its deadline kept.
    RejectReturn,
    /// 催办 by hand.
    Remind,
    /// 督办 by hand.
    Supervise,
    /// 延期申请: the lead unit asks for `days` more (working days when the
    /// rules have a calendar), with a reason.
    RequestExtension,
    /// 挂起申请: the lead unit asks for the clock to stop while something
    /// outside its hands holds the case (a court ruling, an owner abroad).
    RequestSuspension,
    /// 延期: the centre moves the deadline by `days`, or by the days the
    /// unit asked for.
    Extend,
    /// 挂起: the centre stops the case's clock.
    Suspend,
    /// 恢复: the centre starts a suspended case's clock again; the deadline
    /// moves by the time it stood.
    Resume,
    /// The centre declines the unit's extension or suspension request.
    RejectRequest,
    /// 并单 by hand: the case becomes part of the open case `into`.
    Merge,
    /// 拆单: a case merged into another goes on on its own, dispatched to
    /// `unit` or as the routing rules say.
    Split,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Return => "return",
            Action::Progress => "progress",
            Action::Contact => "contact",
            Action::Respond => "respond",
            Action::Verify => "verify",
            Action::Callback => "callback",
            Action::Close => "close",
            Action::Reopen => "reopen",
            Action::Dispatch => "dispatch",
            Action::ApproveReturn => "approve_return",
            Action::RejectReturn => "reject_return",
            Action::Remind => "remind",
            Action::Supervise => "supervise",
            Action::RequestExtension => "request_extension",
            Action::RequestSuspension => "request_suspension",
            Action::Extend => "extend",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::RejectRequest => "reject_request",
            Action::Merge => "merge",
            Action::Split => "split",
        }
    }

    /// An action only the district centre's dispatchers take (at the desk).
    pub fn is_centres(self) -> bool {
        matches!(
            self,
            Action::Dispatch
                | Action::ApproveReturn
                | Action::RejectReturn
                | Action::Remind
                | Action::Supervise
                | Action::Extend
                | Action::Suspend
                | Action::Resume
                | Action::RejectRequest
                | Action::Merge
                | Action::Split
        )
    }

    /// A request a lead unit makes of the centre (延期申请, 挂起申请).
    pub fn is_request(self) -> bool {
        matches!(self, Action::RequestExtension | Action::RequestSuspension)
    }
}

/// Population or other reference records a department shares onward.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ShareRecords {
    pub dataset: String,
    pub records: Vec<Map<String, Value>>,
}

/// The district's grid division, or part of it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UpdateGrids {
    pub grids: Vec<GridRecord>,
    #[serde(default)]
    pub addresses: Vec<KnownAddress>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GridRecord {
    pub grid_id: String,
    pub community: String,
    #[serde(default)]
    pub community_kind: Option<String>,
    pub street: String,
    #[serde(default)]
    pub retired: bool,
    /// Outer ring, `[lon, lat]` pairs.
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct KnownAddress {
    pub address: String,
    pub grid_id: String,
}

/// A closed set of values that travel as strings (the intent schema's
/// enums, the store's text columns): parsed at the edge, written back as
/// the same strings.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the schema's order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// `None` for a string outside the set.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set!(
    /// Where a request came in.
    Channel {
        Hotline12345 = "12345",
        Hotline96156 = "96156",
        Hotline96126 = "96126",
        Grid = "grid",
        Department = "department",
        Camera = "camera",
        Web = "web",
    }
);

closed_set!(
    /// The nature of a request (诉求性质).
    Nature {
        Consultation = "consultation",
        Help = "help",
        Complaint = "complaint",
        Report = "report",
        Suggestion = "suggestion",
        Praise = "praise",
        Other = "other",
    }
);

closed_set!(
    /// How fast a case must be handled; each has its deadline in the
    /// routing rules.
    Priority {
        Emergency = "emergency",
        Urgent = "urgent",
        General = "general",
        Complex = "complex",
    }
);

/// Open a unified case from a source's ticket or report.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct OpenCase {
    /// The source system's own ticket id.
    pub source_ref: String,
    pub channel: Channel,
    pub nature: Nature,
    #[serde(default)]
    pub category: Option<String>,
    pub priority: Priority,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub received_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub place: Place,
    #[serde(default)]
    pub reporter: Option<Reporter>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub media: Vec<Media>,
}

/// Where the matter is, as the source gave it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Place {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub community: Option<String>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
    /// Grid, when the source already knows it (grid workers' reports).
    #[serde(default)]
    pub grid_id: Option<String>,
}

/// Who reported it: personal data, stored apart from the case.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Reporter {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub confidential: bool,
    #[serde(default)]
    pub callback_consent: bool,
}

/// Debug output never shows personal data.
impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("name", &self.name.as_ref().map(|_| "<hidden>"))
            .field("phone", &self.phone.as_ref().map(|_| "<hidden>"))
            .field("id_number", &self.id_number.as_ref().map(|_| "<hidden>"))
            .field("anonymous", &self.anonymous)
            .field("confidential", &self.confidential)
            .field("callback_consent", &self.callback_consent)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Media {
    pub url: String,
    #[serde(default)]
    pub kind: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The closed sets are the intent schema's enums, value for value.
    #[test]
    fn closed_sets_are_the_schemas_enums() {
        let schema: Value =
            serde_json::from_str(include_str!("../../schemas/hub/intent.v1.json")).unwrap();
        let open = &schema["$defs"]["open_case"]["properties"];
        let values = |field: &str| -> Vec<String> {
            open[field]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{field} has an enum"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let texts = |all: Vec<&'static str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            values("channel"),
            texts(Channel::ALL.iter().map(|c| c.as_str()).collect())
        );
        assert_eq!(
            values("nature"),
            texts(Nature::ALL.iter().map(|n| n.as_str()).collect())
        );
        assert_eq!(
            values("priority"),
            texts(Priority::ALL.iter().map(|p| p.as_str()).collect())
        );
        for nature in Nature::ALL {
            assert_eq!(Nature::parse(nature.as_str()), Some(*nature));
            assert_eq!(json!(nature), json!(nature.as_str()));
        }
        assert_eq!(Channel::parse("12345"), Some(Channel::Hotline12345));
        assert_eq!(Priority::parse("soon"), None);
    }

    #[test]
    fn reporter_debug_hides_personal_data() {
        let reporter = Reporter {
            name: Some("张三".into()),
            phone: Some("13800000000".into()),
            id_number: Some("110112199001011234".into()),
            ..Reporter::default()
        };
        let text = format!("{reporter:?}");
        assert!(
            !text.contains("张三") && !text.contains("13800000000") && !text.contains("1101121990")
        );
    }

    #[test]
    fn open_case_reads_from_json() {
        let intent: Intent = serde_json::from_value(json!({
            "kind": "open_case", "source_ref": "A1", "channel": "12345", "nature": "complaint",
            "priority": "general", "title": "t", "received_at": "2026-11-28T09:15:00+08:00"
        }))
        .unwrap();
        let Intent::OpenCase(case) = intent else {
            panic!("not open_case")
        };
        assert_eq!(case.received_at.to_rfc3339(), "2026-11-28T09:15:00+08:00");
        assert!(case.reporter.is_none());
    }
}
