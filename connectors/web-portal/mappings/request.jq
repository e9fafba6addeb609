# web-portal request -> unified intent "open_case" (schemas/hub/intent.v1.json).
#
# Input: one Open311 service request as the hub's Open311 endpoint publishes
# it, already valid against schemas/web-portal/request.v1.json. Output:
# exactly one intent. Optional keys are left out, never null. Messages
# passed to error(...) are fixed text.
#
# The service definitions (deploy/open311.toml) ask what this mapping reads
# from `attributes`: each answer that makes a matter more pressing raises
# its priority.

. as $m
| ($m.attributes // {}) as $a
# A matter nobody can wait for: gas smelt now. Urgent: an open manhole,
# building work at night, a hazard named.
| (if $a.smell_now == "yes" then "emergency"
   elif $a.cover == "missing" or $a.night_work == "yes" or (($a.hazards // []) | length) > 0
   then "urgent"
   else "general" end) as $priority
# Noise is a complaint against someone (投诉); everything else asks the
# district to fix something (求助).
| (if ($m.service_code | startswith("noise.")) then "complaint" else "help" end) as $nature
| (($m.description // "") | split("\n") | map(select(length > 0)) | .[0] // "") as $first
| (if $first == "" then $m.service_name
   else $m.service_name + "：" + ($first | explode | .[0:60] | implode) end) as $title
| ({}
   + (if $m.address_string == null then {} else {address: $m.address_string} end)
   + (if $m.lat == null then {} else {lon: $m.long, lat: $m.lat} end)
  ) as $place
# The reporter: a name (family name first) and a phone, sealed at rest like
# every connector's. Email, device and account ids are not kept. Nobody
# calls a web reporter back: the app reads the status.
| ([$m.last_name, $m.first_name] | map(select(. != null)) | join("")) as $name
| ({anonymous: ($name == "" and $m.phone == null), confidential: false, callback_consent: false}
   + (if $name == "" then {} else {name: $name} end)
   + (if $m.phone == null then {} else {phone: $m.phone} end)
  ) as $reporter
| ({source_service_code: $m.service_code}
   + (if $m.address_id == null then {} else {address_id: $m.address_id} end)
   + (if $a.night_work == null then {} else {night_work: $a.night_work} end)
   + (if $a.smell_now == null then {} else {smell_now: $a.smell_now} end)
   + (if $a.cover == null then {} else {cover: $a.cover} end)
   + (if $a.hazards == null then {} else {hazards: ($a.hazards | join(","))} end)
  ) as $attributes
| {
    kind: "open_case",
    source_ref: $m.token,
    channel: "web",
    nature: $nature,
    category: $m.service_code,
    priority: $priority,
    title: $title,
    received_at: $m.received_at,
    reporter: $reporter,
    attributes: $attributes
  }
| if ($m.description // "") == "" then . else . + {description: $m.description} end
| if ($place | length) > 0 then . + {place: $place} else . end
| if $m.media_url == null then . else . + {media: [{url: $m.media_url, kind: "photo"}]} end
