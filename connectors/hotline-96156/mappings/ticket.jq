# hotline-96156 ticket -> unified intent "open_case" (schemas/hub/intent.v1.json).
#
# Input: one ticket already valid against schemas/hotline-96156/ticket.v1.json
# (pinyin-abbreviated field names, numeric codes, local time without zone).
# Output: exactly one intent object. Optional keys are left out, never null,
# when the ticket lacks them. The program is pure: no clock, no environment.
# Messages passed to error(...) are fixed text: never personal data or values.

# Numeric codes are looked up in [code, value] pairs by numeric equality, so
# that 3 and 3.0 (both valid JSON Schema integers) find the same entry.
def pick($pairs; $code): first($pairs[] | select(.[0] == $code) | .[1]) // null;

# 诉求类型 sqlx -> intent nature.
def natures: [
  [1, "consultation"],   # 咨询
  [2, "help"],           # 求助
  [3, "complaint"],      # 投诉
  [4, "report"],         # 举报
  [5, "suggestion"],     # 建议
  [6, "praise"],         # 表扬
  [9, "other"]           # 其他
];

# 紧急程度 jjcd -> intent priority.
def priorities: [
  [1, "emergency"],      # 紧急
  [2, "urgent"],         # 加急
  [3, "general"],        # 一般
  [4, "complex"]         # 复杂
];

# 业务类别 ywlb -> district dispatch catalogue.
def categories: {
  "YL-01": "social.elderly_care",            # 居家养老服务
  "YL-02": "social.elderly_care",            # 老年餐桌/助餐
  "JZ-01": "social.assistance",              # 困难救助
  "JY-01": "social.employment",              # 就业服务
  "JX-01": "education.school",               # 入学入托
  "WS-01": "health.epidemic",                # 卫生防疫
  "WY-01": "housing.property_management",    # 物业服务
  "WY-02": "housing.illegal_construction",   # 私搭乱建
  "HJ-01": "sanitation.garbage",             # 垃圾清运
  "HJ-02": "sanitation.public_toilet",       # 公厕
  "HJ-03": "environment.air_pollution",      # 烟尘异味
  "SS-01": "utility.water",                  # 供水
  "SS-02": "utility.power",                  # 供电
  "SS-03": "utility.gas",                    # 燃气
  "SS-04": "utility.heating",                # 供暖
  "SS-05": "road.pothole",                   # 道路破损
  "SS-06": "road.manhole",                   # 井盖
  "SQ-01": "public_order.dispute",           # 邻里纠纷
  "SQ-02": "public_order.safety_hazard",     # 安全隐患
  "SQ-03": "noise.commercial",               # 噪声扰民 (商户/生活)
  "SQ-04": "traffic.illegal_parking",        # 小区周边停车
  "SQ-05": "greening.tree",                  # 绿化
  "SP-01": "market.food_safety",             # 食品安全
  "QT-99": "other"                           # 其他
};

# Drop keys whose value is null, so absent source fields stay absent.
. as $t
| (pick(natures; $t.sqlx) // error("unknown nature code")) as $nature
| (pick(priorities; $t.jjcd) // error("unknown urgency code")) as $priority
| (categories[$t.ywlb] // error("unknown category code")) as $category
# ldsj "YYYY-MM-DD HH:MM:SS" is Beijing time: put the T in and the offset on.
| ($t.ldsj[0:10] + "T" + $t.ldsj[11:19] + "+08:00") as $received_at
| ($t.lxr.nm == 1) as $anonymous
# Optional keys are added only when the ticket has them (cheaper in jq than
# building every key and dropping the nulls).
| ({street: $t.dz.jd}
   + (if $t.dz.xxdz == null then {} else {address: $t.dz.xxdz} end)
   + (if $t.dz.sq == null then {} else {community: $t.dz.sq} end)
  ) as $place
# Reporter: an anonymous caller's name and ID number are not passed on even
# when the system filled them in; the number stays for the callback.
| ({phone: $t.lxr.dh, anonymous: $anonymous, confidential: ($t.lxr.bm == 1),
    callback_consent: ($t.lxr.hf == 1)}
   + (if $anonymous or $t.lxr.xm == null then {} else {name: $t.lxr.xm} end)
   + (if $anonymous or $t.lxr.sfzh == null then {} else {id_number: $t.lxr.sfzh} end)
  ) as $reporter
| ({source_category_code: $t.ywlb, appeal_type_code: $t.sqlx, urgency_code: $t.jjcd}
   + (if $t.ywlbmc == null then {} else {source_category_name: $t.ywlbmc} end)
   + (if $t.zxgh == null then {} else {operator_no: $t.zxgh} end)
  ) as $attributes
| {
    kind: "open_case",
    source_ref: $t.gdbh,
    channel: "96156",
    nature: $nature,
    category: $category,
    priority: $priority,
    title: $t.bt,
    description: $t.nr,
    received_at: $received_at,
    place: $place,
    reporter: $reporter,
    attributes: $attributes
  }
