# hotline-12345 callback -> unified intent "update_case", action "callback"
# (schemas/hub/intent.v1.json).
#
# Input: one callback (回访) result, valid against
# schemas/hotline-12345/callback.v1.json (camelCase, RFC 3339 +08:00,
# Chinese labels). The case is addressed by the hotline's own ticket number
# (source_ref, no connector: the sender's ticket). contacted is true when the
# call got through (已接通); solved and satisfaction only exist then.
# The note is the callback method and outcome, then the agent's remark.
# The program is pure; error(...) texts are fixed, never values.

# 满意度 -> intent satisfaction.
def satisfactions: {
  "满意": "satisfied",
  "基本满意": "basically_satisfied",
  "不满意": "unsatisfied"
};

# 是否解决 -> solved (not a lookup with //, which would drop false).
def solved_of($status):
  if $status == "已解决" then true
  elif $status == "未解决" then false
  else error("unknown resolve status") end;

. as $c
| ($c.contactResult == "已接通") as $contacted
| {
    kind: "update_case",
    case: {source_ref: $c.ticketNo},
    action: "callback",
    occurred_at: $c.callbackTime,
    contacted: $contacted
  }
| if $c.resolveStatus then . + {solved: solved_of($c.resolveStatus)} else . end
| if $c.satisfaction
  then . + {satisfaction: (satisfactions[$c.satisfaction] // error("unknown satisfaction"))}
  else . end
| . + {note: ($c.callbackMethod + "回访结果：" + $c.contactResult
               + (if $c.remark then "；" + $c.remark else "" end))}
