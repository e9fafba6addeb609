# dept-civil-defense camera-alert -> unified intent "open_case"
# (schemas/hub/intent.v1.json).
#
# Input: one underground space alert, valid against
# schemas/dept-civil-defense/camera-alert.v1.json (nested snake_case
# objects, detection time in UTC with Z, which is kept as it is: RFC 3339).
# Output: an open_case on channel "camera", nature "report"; the category
# comes from the event code, the priority from the severity, the place is
# the space's entrance; the analysis figures go into attributes and the
# snapshots into media.
# The program is pure; error(...) texts are fixed, never values.

# event_code -> [label, dispatch catalogue code].
def events: {
  "RF01": ["违规住人/群租", "public_order.safety_hazard"],
  "RF02": ["积水渗水", "environment.water_pollution"],
  "RF03": ["烟雾明火", "public_order.safety_hazard"],
  "RF04": ["违规存放易燃易爆物品", "public_order.safety_hazard"],
  "RF05": ["非法闯入/人员滞留", "public_order.safety_hazard"],
  "RF06": ["违规经营", "market.unlicensed_vendor"],
  "RF07": ["堆放垃圾杂物", "sanitation.garbage"],
  "RF08": ["防护设备损坏", "other"]
};

# severity -> priority.
def severities: {
  "critical": "emergency",
  "high": "urgent",
  "medium": "general",
  "low": "general"
};

def compact: map_values(select(. != null));

. as $e
| (events[$e.event_code] // error("unknown event code")) as $event
| (severities[$e.severity] // error("unknown severity")) as $priority
| {
    kind: "open_case",
    source_ref: $e.event_id,
    channel: "camera",
    nature: "report",
    category: $event[1],
    priority: $priority,
    title: ("地下空间告警：" + $event[0] + "（" + $e.space.name + "）"),
    received_at: $e.detected_at,
    place: ({
      address: $e.space.address,
      street: $e.space.street,
      community: $e.space.community,
      lon: $e.space.entrance.lon,
      lat: $e.space.entrance.lat
    } | compact),
    attributes: ({
      event_code: $e.event_code,
      event_name: $event[0],
      severity: $e.severity,
      project_no: $e.space.project_no,
      space_kind: $e.space.kind,
      floor: $e.space.floor,
      camera_id: $e.camera.id,
      camera_position: $e.camera.position,
      people_count: $e.analysis.people_count,
      water_depth_cm: $e.analysis.water_depth_cm,
      confidence: $e.analysis.confidence
    } | compact),
    media: ($e.snapshots | map({url: ., kind: "photo"}))
  }
| if $e.summary then . + {description: $e.summary} else . end
