# dept-urban-management sign-for -> unified intent "update_case", action
# "accept" (schemas/hub/intent.v1.json).
#
# Input: one sign-for (签收), valid against
# schemas/dept-urban-management/sign-for.v1.json. The case is addressed by
# the hub's case number; the unit is left out (the hub records the sender).
# The note names the signing team and carries the remark.
# The program is pure; error(...) texts are fixed, never values.

# "yyyy-MM-ddTHH:mm:ss[.fffffff]" Beijing time (.NET DateTime, no zone) ->
# RFC 3339 with +08:00; the fraction of a second is dropped.
def rfc3339: .[0:19] + "+08:00";

. as $m
| {
    kind: "update_case",
    case: {case_no: $m.CaseNo},
    action: "accept",
    occurred_at: ($m.SignTime | rfc3339),
    note: ($m.HandleOrg.OrgName + " 签收"
           + (if $m.PlannedFinishTime then "，计划 " + ($m.PlannedFinishTime | .[0:10]) + " 前办结" else "" end)
           + (if $m.Remark then "：" + $m.Remark else "" end))
  }
