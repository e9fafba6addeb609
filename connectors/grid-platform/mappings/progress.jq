# grid-platform progress -> unified intent "update_case", action "progress"
# (schemas/hub/intent.v1.json).
#
# Input: one progress report (办理进展), already valid against
# schemas/grid-platform/progress.v1.json, from the level leading the case
# (grid, community, street sub-centre or district centre). The case is
# addressed by the hub's case number; the unit is left out (the hub records
# the sender). The note is the progress text, with the completion
# percentage when given. Photos become media, kind "photo".
# The program is pure; error(...) texts are fixed, never values.

# "yyyy/MM/dd HH:mm:ss" Beijing time -> RFC 3339 with +08:00.
def rfc3339: (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00";

. as $p
# The schema's "integer" also admits 60.0: floor makes it print as 60.
| (if $p.PROGRESS_PERCENT != null then "【完成约" + ($p.PROGRESS_PERCENT | floor | tostring) + "%】" else "" end) as $percent
| ($p.PHOTOS // [] | map({url: ., kind: "photo"})) as $media
| {
    kind: "update_case",
    case: {case_no: $p.CASE_NO},
    action: "progress",
    occurred_at: ($p.PROGRESS_TIME | rfc3339),
    note: ($percent + $p.PROGRESS_DESC)
  }
| if ($media | length) > 0 then . + {media: $media} else . end
