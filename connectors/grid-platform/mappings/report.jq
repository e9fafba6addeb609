# grid-platform report -> unified intent "open_case" (schemas/hub/intent.v1.json).
#
# Input: one grid worker's report, already valid against
# schemas/grid-platform/report.v1.json (UPPER_SNAKE_CASE names, local time
# "yyyy/MM/dd HH:mm:ss", terminal GPS position, the grid already known).
# Output: exactly one intent; optional keys are left out when absent.
# The reporter is the grid worker (name and phone only, when given).
# The program is pure; error(...) texts are fixed, never values.

# 上报类型 REPORT_KIND -> intent nature.
def natures: {
  "SB": "report",        # 上报 (problem found on patrol)
  "QZ": "help",          # 求助 (a resident's request passed on by the worker)
  "JY": "suggestion",    # 建议
  "ZX": "consultation",  # 咨询
  "QT": "other"          # 其他
};

# 紧急程度 URGENT_LEVEL (Ⅰ-Ⅳ级) -> intent priority.
def priorities: {
  "I": "emergency",      # Ⅰ级 特急
  "II": "urgent",        # Ⅱ级 紧急
  "III": "general",      # Ⅲ级 一般
  "IV": "complex"        # Ⅳ级 复杂/疑难
};

# 事项编码 EVENT_TYPE (business area letter + 4 digits) -> dispatch catalogue.
def categories: {
  "A0101": "social.elderly_care",            # 社会服务: 养老服务
  "A0102": "social.assistance",              # 社会服务: 困难救助
  "A0103": "social.employment",              # 社会服务: 就业服务
  "A0201": "education.school",               # 社会服务: 学校及周边
  "A0301": "health.epidemic",                # 社会服务: 卫生防疫
  "C0101": "public_order.dispute",           # 综治维稳: 矛盾纠纷
  "D0101": "public_order.safety_hazard",     # 公共安全: 安全隐患
  "D0102": "utility.gas",                    # 公共安全: 燃气安全
  "E0101": "road.pothole",                   # 城市管理: 道路破损
  "E0102": "road.manhole",                   # 城市管理: 井盖缺损
  "E0201": "sanitation.garbage",             # 城市管理: 暴露垃圾
  "E0202": "sanitation.public_toilet",       # 城市管理: 公厕
  "E0301": "noise.construction",             # 城市管理: 施工噪声
  "E0302": "noise.commercial",               # 城市管理: 商业/生活噪声
  "E0401": "housing.illegal_construction",   # 城市管理: 违法建设
  "E0402": "housing.property_management",    # 城市管理: 物业管理
  "E0501": "traffic.illegal_parking",        # 城市管理: 乱停乱放
  "E0502": "traffic.signal",                 # 城市管理: 信号灯
  "E0601": "greening.tree",                  # 城市管理: 树木绿化
  "E0701": "environment.air_pollution",      # 城市管理: 大气污染
  "E0702": "environment.water_pollution",    # 城市管理: 水体污染
  "E0801": "utility.water",                  # 城市管理: 供水
  "E0802": "utility.power",                  # 城市管理: 供电
  "E0803": "utility.heating",                # 城市管理: 供热
  "F0101": "market.unlicensed_vendor",       # 经济管理: 无照/占道经营
  "F0102": "market.food_safety",             # 经济管理: 食品安全
  "Z9999": "other"                           # 其他
};

# Street codes that open a grid id -> the street/township they stand for.
def street_codes: {
  "ZC": "中仓街道", "XH": "新华街道", "BY": "北苑街道", "YQ": "玉桥街道",
  "YS": "永顺镇", "LY": "梨园镇", "SZ": "宋庄镇", "HX": "漷县镇",
  "ZJW": "张家湾镇", "MJQ": "马驹桥镇", "XJ": "西集镇", "TH": "台湖镇",
  "YLD": "永乐店镇", "LC": "潞城镇", "YJW": "于家务回族乡"
};

# Drop keys whose value is null, so absent source fields stay absent.
# "yyyy/MM/dd HH:mm:ss" Beijing time -> RFC 3339 with +08:00.
def rfc3339: (.[0:10] | gsub("/"; "-")) + "T" + .[11:19] + "+08:00";

. as $r
| (natures[$r.REPORT_KIND] // error("unknown report kind")) as $nature
| (priorities[$r.URGENT_LEVEL] // error("unknown urgent level")) as $priority
| (categories[$r.EVENT_TYPE] // error("unknown event type code")) as $category
| if street_codes[$r.GRID_CODE | split("-") | .[0]] != $r.STREET_NAME
  then error("grid code street code does not match STREET_NAME")
  else . end
# Optional keys are added only when the report has them (cheaper in jq than
# building every key and dropping the nulls).
| ({street: $r.STREET_NAME, community: $r.COMMUNITY_NAME, lon: $r.LONGITUDE,
    lat: $r.LATITUDE, grid_id: $r.GRID_CODE}
   + (if $r.ADDRESS == null then {} else {address: $r.ADDRESS} end)
  ) as $place
| ({}
   + (if $r.WORKER_NAME == null then {} else {name: $r.WORKER_NAME} end)
   + (if $r.WORKER_PHONE == null then {} else {phone: $r.WORKER_PHONE} end)
  ) as $reporter
| ({worker_id: $r.WORKER_ID, terminal_id: $r.TERMINAL_ID, event_type_code: $r.EVENT_TYPE,
    event_type_name: $r.EVENT_TYPE_NAME, report_kind: $r.REPORT_KIND,
    urgent_level: $r.URGENT_LEVEL, self_handled: $r.SELF_HANDLED}
   + (if $r.GPS_ACCURACY_M == null then {} else {gps_accuracy_m: $r.GPS_ACCURACY_M} end)
  ) as $attributes
| ($r.PHOTOS // [] | map({url: ., kind: "photo"})) as $media
| {
    kind: "open_case",
    source_ref: $r.EVENT_NO,
    channel: "grid",
    nature: $nature,
    category: $category,
    priority: $priority,
    title: $r.TITLE,
    received_at: ($r.REPORT_TIME | rfc3339),
    place: $place,
    attributes: $attributes
  }
| if $r.DESCRIPTION then . + {description: $r.DESCRIPTION} else . end
| if ($reporter | length) > 0 then . + {reporter: $reporter} else . end
| if ($media | length) > 0 then . + {media: $media} else . end
