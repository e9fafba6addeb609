# hotline-12345 ticket -> unified intent "open_case" (schemas/hub/intent.v1.json).
#
# Input: one ticket already valid against schemas/hotline-12345/ticket.v1.json.
# Output: exactly one intent object. Optional keys are left out, never null,
# when the ticket lacks them. The program is pure: no clock, no environment.
# Messages passed to error(...) are fixed text: never personal data or values.

# 诉求类型 (Chinese label) -> intent nature.
def natures: {
  "咨询": "consultation",
  "求助": "help",
  "投诉": "complaint",
  "举报": "report",
  "建议": "suggestion",
  "表扬": "praise",
  "其他": "other"
};

# 紧急程度 (Chinese label) -> intent priority.
def priorities: {
  "紧急": "emergency",
  "加急": "urgent",
  "一般": "general",
  "复杂": "complex"
};

# The 12345 platform's 4-digit problem categories -> district dispatch catalogue.
def categories: {
  "0101": "road.pothole",                   # 道路破损
  "0102": "road.manhole",                   # 井盖缺失/破损
  "0201": "sanitation.garbage",             # 垃圾清运
  "0202": "sanitation.public_toilet",       # 公厕管理
  "0301": "noise.construction",             # 施工噪声
  "0302": "noise.commercial",               # 商业经营噪声
  "0401": "environment.air_pollution",      # 大气污染
  "0402": "environment.water_pollution",    # 水污染
  "0501": "utility.water",                  # 供水
  "0502": "utility.power",                  # 供电
  "0503": "utility.gas",                    # 燃气
  "0504": "utility.heating",                # 供暖
  "0601": "traffic.illegal_parking",        # 违章停车
  "0602": "traffic.signal",                 # 交通信号灯
  "0701": "greening.tree",                  # 树木绿化
  "0801": "housing.property_management",    # 物业管理
  "0802": "housing.illegal_construction",   # 违法建设
  "0901": "market.food_safety",             # 食品安全
  "0902": "market.unlicensed_vendor",       # 无照经营/占道经营
  "1001": "public_order.dispute",           # 邻里纠纷
  "1002": "public_order.safety_hazard",     # 安全隐患
  "1101": "social.elderly_care",            # 养老服务
  "1102": "social.assistance",              # 社会救助
  "1103": "social.employment",              # 就业服务
  "1201": "health.epidemic",                # 疫情防控
  "1301": "education.school",               # 教育入学
  "9999": "other"                           # 其他
};

# Attachment type -> intent media kind.
def media_kinds: {
  "image": "photo",
  "audio": "audio",
  "video": "video",
  "file": "document"
};


. as $t
| (natures[$t.appealType] // error("unknown appeal type")) as $nature
| (priorities[$t.urgency] // error("unknown urgency")) as $priority
| (categories[$t.category.code] // error("unknown category code")) as $category
# Place: whatever the ticket has; left out entirely when it has nothing.
| ({}
   + (if $t.address == null then {} else {address: $t.address} end)
   + (if $t.street == null then {} else {street: $t.street} end)
   + (if $t.community == null then {} else {community: $t.community} end)
   + (if $t.location == null then {} else {lon: $t.location.lng, lat: $t.location.lat} end)
  ) as $place
# Reporter: an anonymous caller's name and ID number are not passed on even
# when the platform filled them in; the number stays for the callback.
| ({anonymous: $t.anonymous, confidential: $t.confidential, callback_consent: $t.callbackRequired}
   + (if $t.anonymous or $t.callerName == null then {} else {name: $t.callerName} end)
   + (if $t.callerPhone == null then {} else {phone: $t.callerPhone} end)
   + (if $t.anonymous or $t.callerIdNo == null then {} else {id_number: $t.callerIdNo} end)
  ) as $reporter
| ({source_category_code: $t.category.code, source_category_name: $t.category.name,
    appeal_type: $t.appealType, urgency: $t.urgency}
   + (if $t.acceptChannel == null then {} else {accept_channel: $t.acceptChannel} end)
  ) as $attributes
| ($t.attachments // []
   | map({url: .url, kind: (media_kinds[.type] // error("unknown attachment type"))})) as $media
| {
    kind: "open_case",
    source_ref: $t.ticketNo,
    channel: "12345",
    nature: $nature,
    category: $category,
    priority: $priority,
    title: $t.title,
    description: $t.content,
    received_at: $t.acceptTime,
    reporter: $reporter,
    attributes: $attributes
  }
| if ($place | length) > 0 then . + {place: $place} else . end
| if ($media | length) > 0 then . + {media: $media} else . end
