# dept-urban-management return -> unified intent "update_case", action
# "return" (schemas/hub/intent.v1.json).
#
# Input: one return (退单), valid against
# schemas/dept-urban-management/return.v1.json. The reason is the return
# type's label, the team's explanation and, when given, the unit it suggests
# the case be re-dispatched to (改派).
# The program is pure; error(...) texts are fixed, never values.

# "yyyy-MM-ddTHH:mm:ss[.fffffff]" Beijing time (.NET DateTime, no zone) ->
# RFC 3339 with +08:00; the fraction of a second is dropped.
def rfc3339: .[0:19] + "+08:00";

# ReturnType -> label used in the reason.
def return_types: {
  "NotOurDuty": "非城管职责",
  "OutOfJurisdiction": "非本辖区",
  "AddressUnclear": "地址不详",
  "Duplicate": "重复派单",
  "AlreadyHandled": "已处置完毕",
  "Other": "其他"
};

. as $m
| (return_types[$m.ReturnType] // error("unknown return type")) as $tag
| {
    kind: "update_case",
    case: {case_no: $m.CaseNo},
    action: "return",
    occurred_at: ($m.ReturnTime | rfc3339),
    reason: ($tag + "：" + $m.ReturnReason
             + (if $m.SuggestedDept then "（建议改派：" + $m.SuggestedDept + "）" else "" end)),
    note: ($m.HandleOrg.OrgName + " 退单")
  }
