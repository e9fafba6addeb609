# dept-urban-management postpone -> unified intent "update_case", action
# "request_extension" (延期申请) or "request_suspension" (挂起申请)
# (schemas/hub/intent.v1.json).
#
# Input: one request, valid against
# schemas/dept-urban-management/postpone.v1.json. The centre grants or
# declines it at its desk; the team hears case.extended, case.suspended or
# case.request_rejected.
# The program is pure; error(...) texts are fixed, never values.

# "yyyy-MM-ddTHH:mm:ss[.fffffff]" Beijing time (.NET DateTime, no zone) ->
# RFC 3339 with +08:00; the fraction of a second is dropped.
def rfc3339: .[0:19] + "+08:00";

. as $m
| {
    kind: "update_case",
    case: {case_no: $m.CaseNo},
    occurred_at: ($m.ApplyTime | rfc3339),
    reason: $m.ApplyReason,
    note: ($m.HandleOrg.OrgName + (if $m.ApplyType == "Extension" then " 延期申请" else " 挂起申请" end))
  }
| if $m.ApplyType == "Extension" then
    . + {action: "request_extension", days: $m.ExtensionDays}
  elif $m.ApplyType == "Suspension" then
    . + {action: "request_suspension"}
  else error("unknown apply type") end
