# dept-health resident-population -> unified intent "share_records",
# dataset "resident-population" (schemas/hub/intent.v1.json).
#
# Input: one page of the population base export, valid against
# schemas/dept-health/resident-population.v1.json: a fixed column list and
# rows of cells in that order (null for an empty cell). Cells are read by
# column name, so the program does not depend on positions.
# Output: one person_record per row; null cells are left out.
# The program is pure; error(...) texts are fixed, never values.

# 性别 xb -> gender.
def genders: {"男": "male", "女": "female", "未知": "unknown"};

# 人口状态 rkzt -> status.
def statuses: {
  "常住": "resident",
  "暂离": "temporarily_away",
  "迁出": "moved_out",
  "死亡": "deceased"
};

. as $m
| if $m.page.no > $m.page.total then error("page number is greater than the number of pages") else . end
# Column name -> position (a reduce: to_entries | from_entries costs jaq
# several times as much), then each column's position as a variable, once a
# page: a row's cells are read by position, which costs jaq about a fifth
# less than a lookup by name (a function call) for every cell of every row.
| (reduce range($m.columns | length) as $i ({}; . + {($m.columns[$i]): $i})) as $ix
| $ix.rkbm as $rkbm | $ix.xm as $xm | $ix.zjhm as $zjhm | $ix.xb as $xb
| $ix.csrq as $csrq | $ix.lxdh as $lxdh | $ix.jzdz as $jzdz | $ix.jdmc as $jdmc
| $ix.sqmc as $sqmc | $ix.djrq as $djrq | $ix.rkzt as $rkzt | $ix.hjxz as $hjxz
| $ix.hh as $hh | $ix.yhzgx as $yhzgx
| {
    kind: "share_records",
    dataset: "resident-population",
    records: ($m.rows | map(
      # Cells that may be empty are added only when they are not (cheaper
      # in jq than building every key and dropping the nulls).
      {
        record_id: .[$rkbm],
        name: .[$xm],
        gender: (genders[.[$xb]] // error("unknown sex label")),
        birth_date: .[$csrq],
        address: .[$jzdz],
        street: .[$jdmc],
        status: (statuses[.[$rkzt]] // error("unknown population status")),
        attributes: ({export_id: $m.export_id}
          + (if .[$hjxz] == null then {} else {household_type: .[$hjxz]} end)
          + (if .[$hh] == null then {} else {household_no: .[$hh]} end)
          + (if .[$yhzgx] == null then {} else {relation_to_head: .[$yhzgx]} end))
      }
      + (if .[$zjhm] == null then {} else {id_number: .[$zjhm]} end)
      + (if .[$lxdh] == null then {} else {phone: .[$lxdh]} end)
      + (if .[$sqmc] == null then {} else {community: .[$sqmc]} end)
      + (if .[$djrq] == null then {} else {registered_at: .[$djrq]} end)))
  }
