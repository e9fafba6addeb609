# dept-planning grid-boundaries -> unified intent "update_grids"
# (schemas/hub/intent.v1.json).
#
# Input: one part of a grid-division batch, already valid against
# schemas/dept-planning/grid-boundaries.v1.json (a GeoJSON FeatureCollection
# with a batch header and an optional address list).
# Output: exactly one intent. Each feature becomes one grid; its polygon is
# the outer ring (coordinates[0]) as received, holes are not kept. The
# address list is passed on when the part carries one.
# The program is pure; error(...) texts are fixed, never values.

# Street codes that open a grid id -> the street/township they stand for.
def street_codes: {
  "ZC": "中仓街道", "XH": "新华街道", "BY": "北苑街道", "YQ": "玉桥街道",
  "YS": "永顺镇", "LY": "梨园镇", "SZ": "宋庄镇", "HX": "漷县镇",
  "ZJW": "张家湾镇", "MJQ": "马驹桥镇", "XJ": "西集镇", "TH": "台湖镇",
  "YLD": "永乐店镇", "LC": "潞城镇", "YJW": "于家务回族乡"
};

. as $m
| if $m.batch.part > $m.batch.parts
  then error("batch part number is greater than the number of parts")
  else . end
| ($m.features | map(
    . as $f
    | if $f.id != $f.properties.grid_id
      then error("feature id differs from its properties.grid_id")
      else . end
    | if street_codes[$f.properties.grid_id | split("-") | .[0]] != $f.properties.street
      then error("grid id street code does not match the feature's street")
      else . end
    | {
        grid_id: $f.properties.grid_id,
        community: $f.properties.community,
        community_kind: $f.properties.community_kind,
        street: $f.properties.street,
        retired: $f.properties.retired,
        polygon: $f.geometry.coordinates[0]
      }
  )) as $grids
| if ($grids | map(.grid_id) | unique | length) != ($grids | length)
  then error("the same grid id appears twice in one part")
  else . end
| ($m.addresses // []) as $addresses
| if ($grids | length) == 0 and ($addresses | length) == 0
  then error("the part carries neither grids nor addresses")
  else . end
| {kind: "update_grids", grids: $grids}
| if ($addresses | length) > 0 then . + {addresses: $addresses} else . end
