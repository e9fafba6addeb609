# dept-urban-management result -> unified intent "update_case", action
# "respond" (schemas/hub/intent.v1.json).
#
# Input: one result (办结反馈), valid against
# schemas/dept-urban-management/result.v1.json. The note starts with the
# handling result's label, then the description, then the penalty decision
# number when the case ended in an administrative penalty.
# The program is pure; error(...) texts are fixed, never values.

# "yyyy-MM-ddTHH:mm:ss[.fffffff]" Beijing time (.NET DateTime, no zone) ->
# RFC 3339 with +08:00; the fraction of a second is dropped.
def rfc3339: .[0:19] + "+08:00";

# HandleResult -> label at the head of the note.
def results: {
  "Solved": "已解决",
  "PartlySolved": "部分解决",
  "Unsolvable": "无法解决",
  "Explained": "已解释说明"
};

. as $m
| (results[$m.HandleResult] // error("unknown handle result")) as $tag
| {
    kind: "update_case",
    case: {case_no: $m.CaseNo},
    action: "respond",
    occurred_at: ($m.FinishTime | rfc3339),
    note: ("【" + $tag + "】" + $m.ResultDesc
           + (if $m.Penalty then "（处罚决定书 " + $m.Penalty.DecisionNo + "）" else "" end))
  }
