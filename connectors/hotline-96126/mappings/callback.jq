# hotline-96126 callback -> unified intent "update_case", action "callback"
# (schemas/hub/intent.v1.json).
#
# Input: one callback record, valid against
# schemas/hotline-96126/callback.v1.json (snake_case, letter codes, compact
# local time "YYYYMMDDHHMMSS"). The case is addressed by the hotline's own
# case id (source_ref, no connector: the sender's case). contacted is result
# R (reached); resolved and rating only exist then.
# The program is pure; error(...) texts are fixed, never values.

# result letter -> label for the note.
def outcomes: {"R": "已接通", "N": "无人接听", "D": "拒绝回访", "W": "号码有误"};

# rating letter -> intent satisfaction.
def ratings: {"S": "satisfied", "B": "basically_satisfied", "U": "unsatisfied"};

. as $c
| (outcomes[$c.result] // error("unknown callback result")) as $outcome
| {
    kind: "update_case",
    case: {source_ref: $c.case_id},
    action: "callback",
    occurred_at: ($c.callback_time
      | .[0:4] + "-" + .[4:6] + "-" + .[6:8] + "T"
        + .[8:10] + ":" + .[10:12] + ":" + .[12:14] + "+08:00"),
    contacted: ($c.result == "R")
  }
| if $c.resolved then . + {solved: ($c.resolved == "Y")} else . end
| if $c.rating then . + {satisfaction: (ratings[$c.rating] // error("unknown rating"))} else . end
| . + {note: ("回访结果：" + $outcome + (if $c.remark then "；" + $c.remark else "" end))}
