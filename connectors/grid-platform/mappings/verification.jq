# grid-platform verification -> unified intent "update_case", action "verify"
# (schemas/hub/intent.v1.json).
#
# Input: one on-site verification (核查), already valid against
# schemas/grid-platform/verification.v1.json. VERIFY_RESULT TG (通过) means
# passed, BTG (不通过) not passed; the verifier's opinion becomes the note.
# Photos stay on the grid platform (update_case carries no media).
# The program is pure; error(...) texts are fixed, never values.

. as $v
# (Not a lookup with //: that would treat false as missing.)
| (if $v.VERIFY_RESULT == "TG" then true
   elif $v.VERIFY_RESULT == "BTG" then false
   else error("unknown verify result") end) as $passed
| {
    kind: "update_case",
    case: {case_no: $v.CASE_NO},
    action: "verify",
    occurred_at: ($v.VERIFY_TIME | (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00"),
    passed: $passed
  }
| if $v.VERIFY_OPINION then . + {note: $v.VERIFY_OPINION} else . end
