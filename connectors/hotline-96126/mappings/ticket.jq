# hotline-96126 case -> unified intent "open_case" (schemas/hub/intent.v1.json).
#
# Input: one case already valid against schemas/hotline-96126/ticket.v1.json
# (snake_case names, letter codes, compact local time without zone).
# Output: exactly one intent object. Optional keys are left out, never null,
# when the case lacks them; the one exception is "category", which is null
# when the operator gave no business code (as the intent schema documents).
# The program is pure: no clock, no environment.
# Messages passed to error(...) are fixed text: never personal data or values.

# nature letter -> intent nature.
def natures: {
  "C": "consultation",   # 咨询
  "H": "help",           # 求助
  "P": "complaint",      # 投诉
  "R": "report",         # 举报
  "S": "suggestion",     # 建议
  "K": "praise",         # 表扬
  "O": "other"           # 其他
};

# priority letter -> intent priority.
def priorities: {
  "E": "emergency",      # 紧急
  "U": "urgent",         # 加急
  "G": "general",        # 一般
  "X": "complex"         # 复杂
};

# The vendor's business codes -> district dispatch catalogue.
def categories: {
  "SZ0101": "road.pothole",                  # 市政: 道路坑槽
  "SZ0102": "road.manhole",                  # 市政: 井盖
  "HW0201": "sanitation.garbage",            # 环卫: 垃圾堆放
  "HW0202": "sanitation.public_toilet",      # 环卫: 公厕
  "ZS0301": "noise.construction",            # 噪声: 施工噪声
  "ZS0302": "noise.commercial",              # 噪声: 社会生活/商业噪声
  "HB0401": "environment.air_pollution",     # 环保: 大气/烟尘
  "HB0402": "environment.water_pollution",   # 环保: 水体污染
  "GY0501": "utility.water",                 # 公用: 供水
  "GY0502": "utility.power",                 # 公用: 供电
  "GY0503": "utility.gas",                   # 公用: 燃气
  "GY0504": "utility.heating",               # 公用: 供热
  "JT0601": "traffic.illegal_parking",       # 交通: 违法停车
  "JT0602": "traffic.signal",                # 交通: 信号灯
  "YL0701": "greening.tree",                 # 园林: 树木
  "WJ0801": "housing.illegal_construction",  # 违建
  "WY0802": "housing.property_management",   # 物业
  "SC0901": "market.food_safety",            # 市场: 食品安全
  "SC0902": "market.unlicensed_vendor",      # 市场: 游商/无照经营
  "AQ1001": "public_order.safety_hazard",    # 安全隐患
  "TJ1002": "public_order.dispute",          # 调解: 矛盾纠纷
  "MZ1101": "social.elderly_care",           # 民政: 养老
  "MZ1102": "social.assistance",             # 民政: 救助
  "QT9999": "other"                          # 其他
};

# Drop keys whose value is null, so absent source fields stay absent.
. as $t
| (natures[$t.nature] // error("unknown nature code")) as $nature
| (priorities[$t.priority] // error("unknown priority code")) as $priority
| (if $t.biz_code == null then null
   else categories[$t.biz_code] // error("unknown category code")
   end) as $category
# call_time "YYYYMMDDHHMMSS" is Beijing time: slice it into RFC 3339.
| ($t.call_time
   | .[0:4] + "-" + .[4:6] + "-" + .[6:8] + "T"
     + .[8:10] + ":" + .[10:12] + ":" + .[12:14] + "+08:00") as $received_at
# Optional keys are added only when the ticket has them (cheaper in jq than
# building every key and dropping the nulls).
| ({}
   + (if $t.addr == null then {} else {address: $t.addr} end)
   + (if $t.town == null then {} else {street: $t.town} end)
   + (if $t.community == null then {} else {community: $t.community} end)
   + (if $t.position == null then {}
      else {lon: $t.position.longitude, lat: $t.position.latitude} end)
  ) as $place
# Reporter: an anonymous caller's name and ID number are not passed on even
# when the system filled them in; the number stays for the callback.
| $t.reporter as $r
| ({anonymous: $r.anonymous, confidential: $r.keep_secret, callback_consent: $r.accept_callback}
   + (if $r.anonymous or $r.name == null then {} else {name: $r.name} end)
   + (if $r.mobile == null then {} else {phone: $r.mobile} end)
   + (if $r.anonymous or $r.id_card == null then {} else {id_number: $r.id_card} end)
  ) as $reporter
| ({source_nature: $t.nature, source_priority: $t.priority}
   + (if $t.biz_code == null then {} else {source_category_code: $t.biz_code} end)
   + (if $t.biz_name == null then {} else {source_category_name: $t.biz_name} end)
   + (if $t.operator_id == null then {} else {operator_id: $t.operator_id} end)
   + (if ($t.tags // []) == [] then {} else {tags: ($t.tags | join(","))} end)
  ) as $attributes
| {
    kind: "open_case",
    source_ref: $t.case_id,
    channel: "96126",
    nature: $nature,
    category: $category,
    priority: $priority,
    title: $t.subject,
    description: $t.detail,
    received_at: $received_at,
    reporter: $reporter,
    attributes: $attributes
  }
| if ($place | length) > 0 then . + {place: $place} else . end
