# grid-platform acceptance -> unified intent "update_case", action "accept"
# (schemas/hub/intent.v1.json).
#
# Input: one acceptance (签收), already valid against
# schemas/grid-platform/acceptance.v1.json. The case is addressed by the
# hub's case number; the unit is left out (the hub records the sender).
# The note says which grid or community signed for it, then the remark.
# The program is pure; error(...) texts are fixed, never values.

def levels: {"GRID": "网格", "COMMUNITY": "社区"};

. as $a
| ((levels[$a.ACCEPT_LEVEL] // error("unknown accept level")) + " " + $a.ACCEPT_ORG_CODE + " 签收"
   + (if $a.REMARK then "：" + $a.REMARK else "" end)) as $note
| {
    kind: "update_case",
    case: {case_no: $a.CASE_NO},
    action: "accept",
    occurred_at: ($a.ACCEPT_TIME | (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00"),
    note: $note
  }
