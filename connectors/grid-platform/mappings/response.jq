# grid-platform response -> unified intent "update_case", action "respond"
# (schemas/hub/intent.v1.json).
#
# Input: one response (办结反馈), already valid against
# schemas/grid-platform/response.v1.json, from the level that led the case
# (grid, community, street sub-centre or district centre). The note starts
# with the handling result's label, then what was done, then the department
# that did the work when the district centre reports for a department whose
# own system is not connected yet (承办部门). Photos become media, kind
# "photo".
# The program is pure; error(...) texts are fixed, never values.

# "yyyy/MM/dd HH:mm:ss" Beijing time -> RFC 3339 with +08:00.
def rfc3339: (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00";

# HANDLE_RESULT -> label at the head of the note.
def results: {
  "SOLVED": "已解决",
  "PARTLY_SOLVED": "部分解决",
  "EXPLAINED": "已解释说明",
  "UNSOLVABLE": "无法解决"
};

. as $r
| (results[$r.HANDLE_RESULT] // error("unknown handle result")) as $tag
| ($r.PHOTOS // [] | map({url: ., kind: "photo"})) as $media
| {
    kind: "update_case",
    case: {case_no: $r.CASE_NO},
    action: "respond",
    occurred_at: ($r.RESPONSE_TIME | rfc3339),
    note: ("【" + $tag + "】" + $r.RESULT_DESC
           + (if $r.HANDLING_DEPT then "（承办部门：" + $r.HANDLING_DEPT + "）" else "" end))
  }
| if ($media | length) > 0 then . + {media: $media} else . end
