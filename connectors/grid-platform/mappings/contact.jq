# grid-platform contact -> unified intent "update_case", action "contact"
# (schemas/hub/intent.v1.json).
#
# Input: one 先行联系, already valid against
# schemas/grid-platform/contact.v1.json, from the level leading the case
# (grid, community, street sub-centre or district centre): it reached the
# reporter before handling. The case is addressed by the hub's case number;
# the unit is left out (the hub records the sender). The note says which
# level reached the reporter and how, then what was said.
# The program is pure; error(...) texts are fixed, never values.

# "yyyy/MM/dd HH:mm:ss" Beijing time -> RFC 3339 with +08:00.
def rfc3339: (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00";

def levels: {
  "GRID": "网格",
  "COMMUNITY": "社区",
  "STREET": "街乡镇分中心",
  "DISTRICT": "区指挥中心"
};

# CONTACT_WAY -> how the reporter was reached.
def ways: {
  "PHONE": "电话",
  "VISIT": "上门",
  "SMS": "短信"
};

. as $c
| {
    kind: "update_case",
    case: {case_no: $c.CASE_NO},
    action: "contact",
    occurred_at: ($c.CONTACT_TIME | rfc3339),
    note: ((levels[$c.CONTACT_LEVEL] // error("unknown contact level")) + " " + $c.CONTACT_ORG_CODE
           + " " + (ways[$c.CONTACT_WAY] // error("unknown contact way")) + "联系诉求人"
           + (if $c.CONTACT_DESC then "：" + $c.CONTACT_DESC else "" end))
  }
