# dept-police camera-alert -> unified intent "open_case"
# (schemas/hub/intent.v1.json).
#
# Input: one alert of the police video surveillance platform, valid against
# schemas/dept-police/camera-alert.v1.json (camelCase names, the alarm time
# as Unix epoch milliseconds, GB/T 28181 device codes).
# Output: an open_case on channel "camera", nature "report"; the category
# comes from the alarm type, the priority from the alarm level, the place is
# the camera's position; the snapshot and video clip become media.
# The program is pure; error(...) texts are fixed, never values.

# alarmType -> [label, dispatch catalogue code].
def alarm_types: {
  "CROWD_GATHERING":     ["人员聚集", "public_order.safety_hazard"],
  "FIGHTING":            ["打架斗殴", "public_order.dispute"],
  "FIRE_SMOKE":          ["烟火识别", "public_order.safety_hazard"],
  "CLIMBING_BARRIER":    ["翻越护栏", "public_order.safety_hazard"],
  "ILLEGAL_PARKING":     ["违法停车", "traffic.illegal_parking"],
  "SIGNAL_FAULT":        ["信号灯故障", "traffic.signal"],
  "GARBAGE_EXPOSED":     ["暴露垃圾", "sanitation.garbage"],
  "STREET_VENDOR":       ["占道经营", "market.unlicensed_vendor"]
};

# alarmLevel (1 highest) -> priority, as [level, priority] pairs compared by
# numeric equality (1 and 1.0 are both valid integers).
def levels: [[1, "emergency"], [2, "urgent"], [3, "general"], [4, "general"]];
def pick($pairs; $code): first($pairs[] | select(.[0] == $code) | .[1]) // null;

def compact: map_values(select(. != null));

. as $a
| (alarm_types[$a.alarmType] // error("unknown alarm type")) as $type
| (pick(levels; $a.alarmLevel) // error("unknown alarm level")) as $priority
# Epoch milliseconds -> RFC 3339 in Beijing time (+08:00), whole seconds.
| (($a.alarmTime / 1000 | floor) + 28800 | todate | sub("Z$"; "+08:00")) as $received_at
| ([{url: $a.snapshotUrl, kind: "photo"}]
   + (if $a.videoUrl then [{url: $a.videoUrl, kind: "video"}] else [] end)) as $media
| {
    kind: "open_case",
    source_ref: $a.alarmId,
    channel: "camera",
    nature: "report",
    category: $type[1],
    priority: $priority,
    title: ("视频告警：" + $type[0] + "（" + $a.device.deviceName + "）"),
    received_at: $received_at,
    place: ({
      address: $a.device.deviceName,
      street: $a.street,
      lon: $a.device.longitude,
      lat: $a.device.latitude
    } | compact),
    attributes: ({
      camera_id: $a.device.deviceId,
      alarm_type: $a.alarmType,
      alarm_level: $a.alarmLevel,
      confidence: $a.confidence,
      police_station: $a.policeStation
    } | compact),
    media: $media
  }
| if $a.remark then . + {description: $a.remark} else . end
