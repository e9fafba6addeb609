# dept-housing feedback v2 -> unified intent "update_case"
# (schemas/hub/intent.v1.json). Published with the AMQP type property v2.
#
# Input: one 案件反馈, valid against schemas/dept-housing/feedback.v2.json.
# As v1 (mappings/feedback.jq), but CLSJ is ISO 8601 with its offset, to the
# second, and passes as it is; a progress (03) or finished (04) step may
# carry photos and files (FJ), which become the step's media.
# The program is pure; error(...) texts are fixed, never values.

# 环节代码 -> [step name, intent action].
def steps: {
  "01": ["签收", "accept"],
  "02": ["退回", "return"],
  "03": ["进展", "progress"],
  "04": ["办结", "respond"],
  "05": ["延期申请", "request_extension"],
  "06": ["挂起申请", "request_suspension"],
  "07": ["先行联系", "contact"]
};

# 退回类型 THLX -> label.
def return_types: {
  "1": "非本单位职责",
  "2": "诉求信息不全",
  "3": "重复派单",
  "4": "已进入司法程序",
  "9": "其他"
};

# 联系方式 LXFS -> how the reporter was reached.
def contact_ways: {
  "1": "电话",
  "2": "上门",
  "3": "短信"
};

# 文件类型 WJLX -> media kind.
def file_kinds: {
  "1": "photo",
  "2": "video",
  "3": "document"
};

# 办结结果 BJJG -> label.
def results: {
  "1": "已解决",
  "2": "未解决",
  "3": "反映不属实"
};

.body as $b
| (steps[$b.HJDM] // error("unknown step code")) as $step
| if $step[0] != $b.HJMC then error("step name does not match step code") else . end
| $b.CLSJ as $at
| (if $b.YJWCSJ then "，预计 " + $b.YJWCSJ + " 前完成" else "" end) as $plan
| {
    kind: "update_case",
    case: {case_no: $b.AJBH},
    action: $step[1],
    occurred_at: $at
  }
| if $b.FJ then
    . + {media: [$b.FJ[] | {url: .WJDZ, kind: (file_kinds[.WJLX] // error("unknown file type"))}]}
  else . end
| if $b.HJDM == "01" then
    . + {note: ($b.CLDW + " 签收" + $plan + (if $b.CLYJ then "：" + $b.CLYJ else "" end))}
  elif $b.HJDM == "02" then
    . + {
      reason: ((return_types[$b.THLX] // error("unknown return type")) + "：" + $b.THYY),
      note: ($b.CLDW + " 退回")
    }
  elif $b.HJDM == "05" then
    . + {days: $b.YQTS, reason: $b.SQLY, note: ($b.CLDW + " 延期申请")}
  elif $b.HJDM == "06" then
    . + {reason: $b.SQLY, note: ($b.CLDW + " 挂起申请")}
  elif $b.HJDM == "07" then
    . + {note: ($b.CLDW + " " + (contact_ways[$b.LXFS] // error("unknown contact way")) + "联系诉求人：" + $b.CLYJ)}
  elif $b.HJDM == "03" then
    . + {note: ($b.CLYJ + (if $b.YJWCSJ then "（预计 " + $b.YJWCSJ + " 前完成）" else "" end))}
  else
    . + {note: ("【" + (results[$b.BJJG] // error("unknown result code")) + "】" + $b.CLYJ)}
  end
