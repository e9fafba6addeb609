# hotline-96156 callback -> unified intent "update_case", action "callback"
# (schemas/hub/intent.v1.json).
#
# Input: one 回访 result, valid against schemas/hotline-96156/callback.v1.json
# (pinyin abbreviations, numeric codes, local time "YYYY-MM-DD HH:MM:SS").
# The case is addressed by the hotline's own ticket number gdbh (source_ref,
# no connector: the sender's ticket). contacted is hfjg 1 (已接通); sfjj and
# myd only exist then. The note is the outcome, then the callback notes.
# The program is pure; error(...) texts are fixed, never values.

# Numeric codes are looked up in [code, value] pairs by numeric equality, so
# that 1 and 1.0 (both valid JSON Schema integers) find the same entry.
def pick($pairs; $code): first($pairs[] | select(.[0] == $code) | .[1]) // null;

# 回访结果 hfjg -> label for the note.
def outcomes: [[1, "已接通"], [2, "无人接听"], [3, "拒绝回访"], [4, "号码错误"]];

# 满意度 myd -> intent satisfaction.
def satisfactions: [[1, "satisfied"], [2, "basically_satisfied"], [3, "unsatisfied"]];

. as $c
| (pick(outcomes; $c.hfjg) // error("unknown callback outcome")) as $outcome
| {
    kind: "update_case",
    case: {source_ref: $c.gdbh},
    action: "callback",
    occurred_at: ($c.hfsj[0:10] + "T" + $c.hfsj[11:19] + "+08:00"),
    contacted: ($c.hfjg == 1)
  }
| if $c.sfjj != null then . + {solved: ($c.sfjj == 1)} else . end
| if $c.myd != null
  then . + {satisfaction: (pick(satisfactions; $c.myd) // error("unknown satisfaction code"))}
  else . end
| . + {note: ("回访结果：" + $outcome + (if $c.hfnr then "；" + $c.hfnr else "" end))}
