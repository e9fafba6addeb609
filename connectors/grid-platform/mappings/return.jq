# grid-platform return -> unified intent "update_case", action "return"
# (schemas/hub/intent.v1.json).
#
# Input: one return (退单), already valid against
# schemas/grid-platform/return.v1.json: the level a case was dispatched to
# (grid, community, street sub-centre or district centre) sends it back for
# re-dispatch (改派). The reason is the return type's label, the level's
# explanation and, when given, the unit it suggests; the note names the
# level and the organisation that returned the case.
# The program is pure; error(...) texts are fixed, never values.

# "yyyy/MM/dd HH:mm:ss" Beijing time -> RFC 3339 with +08:00.
def rfc3339: (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00";

# RETURN_LEVEL -> name of the level in the note.
def levels: {
  "GRID": "网格",
  "COMMUNITY": "社区",
  "STREET": "街乡镇分中心",
  "DISTRICT": "区指挥中心"
};

# RETURN_TYPE -> label used in the reason.
def return_types: {
  "NOT_OUR_DUTY": "非本级职责",
  "BEYOND_POWER": "超出处置权限",
  "OUT_OF_JURISDICTION": "非本辖区",
  "ADDRESS_UNCLEAR": "地址不详",
  "DUPLICATE": "重复派单",
  "ALREADY_HANDLED": "已处置完毕",
  "OTHER": "其他"
};

. as $r
| (levels[$r.RETURN_LEVEL] // error("unknown return level")) as $level
| (return_types[$r.RETURN_TYPE] // error("unknown return type")) as $tag
| {
    kind: "update_case",
    case: {case_no: $r.CASE_NO},
    action: "return",
    occurred_at: ($r.RETURN_TIME | rfc3339),
    reason: ($tag + "：" + $r.RETURN_REASON
             + (if $r.SUGGESTED_UNIT then "（建议改派：" + $r.SUGGESTED_UNIT + "）" else "" end)),
    note: ($level + " " + $r.RETURN_ORG_CODE + " 退单")
  }
