# dept-urban-management progress -> unified intent "update_case", action
# "progress" (schemas/hub/intent.v1.json).
#
# Input: one progress report (办理进展), valid against
# schemas/dept-urban-management/progress.v1.json. The note is the progress
# text, with the completion percentage when given. Attachments stay in the
# 城管 system (update_case carries no media).
# The program is pure; error(...) texts are fixed, never values.

# "yyyy-MM-ddTHH:mm:ss[.fffffff]" Beijing time (.NET DateTime, no zone) ->
# RFC 3339 with +08:00; the fraction of a second is dropped.
def rfc3339: .[0:19] + "+08:00";

. as $m
| {
    kind: "update_case",
    case: {case_no: $m.CaseNo},
    action: "progress",
    occurred_at: ($m.ReportTime | rfc3339),
    note: ((if $m.ProgressPercent != null then "【完成约" + ($m.ProgressPercent | tostring) + "%】" else "" end)
           + $m.ProgressDesc)
  }
