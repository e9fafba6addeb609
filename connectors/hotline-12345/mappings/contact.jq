# hotline-12345 contact -> unified intent "update_case", action "contact"
# (schemas/hub/intent.v1.json).
#
# Input: one 先行联系 record, valid against
# schemas/hotline-12345/contact.v1.json (camelCase, RFC 3339 +08:00,
# Chinese labels): the caller was reached before handling, by the handling
# unit or by the hotline on its behalf. The case is addressed as a callback
# is, by the hotline's own ticket number (source_ref, no connector: the
# sender's ticket). The unit is left out (the hub records the sender); the
# note says who reached the caller and how, then the agent's remark.
# The program is pure; error(...) texts are fixed, never values.

. as $c
| (if $c.contactParty == "承办单位" then
     "承办单位" + (if $c.handlingUnit then "（" + $c.handlingUnit + "）" else "" end)
   elif $c.contactParty == "热线" then "12345热线代承办单位"
   else error("unknown contact party") end) as $who
| {
    kind: "update_case",
    case: {source_ref: $c.ticketNo},
    action: "contact",
    occurred_at: $c.contactTime,
    note: ($who + $c.contactMethod + "联系来电人"
           + (if $c.remark then "；" + $c.remark else "" end))
  }
