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
# column name -> position
# Column name -> position (a reduce: to_entries | from_entries costs jaq
# several times as much).
| (reduce range($m.columns | length) as $i ({}; . + {($m.columns[$i]): $i})) as $ix
| {
    kind: "share_records",
    dataset: "resident-population",
    records: ($m.rows | map(
      . as $row
      | def cell($name): $row[$ix[$name]];
      # Cells that may be empty are added only when they are not (cheaper
      # in jq than building every key and dropping the nulls).
      def opt($key; $name): cell($name) as $v | if $v == null then {} else {($key): $v} end;
      {
        record_id: cell("rkbm"),
        name: cell("xm"),
        gender: (genders[cell("xb")] // error("unknown sex label")),
        birth_date: cell("csrq"),
        address: cell("jzdz"),
        street: cell("jdmc"),
        status: (statuses[cell("rkzt")] // error("unknown population status")),
        attributes: ({export_id: $m.export_id}
          + opt("household_type"; "hjxz")
          + opt("household_no"; "hh")
          + opt("relation_to_head"; "yhzgx"))
      }
      + opt("id_number"; "zjhm")
      + opt("phone"; "lxdh")
      + opt("community"; "sqmc")
      + opt("registered_at"; "djrq")))
  }
