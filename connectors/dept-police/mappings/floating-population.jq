# dept-police floating-population -> unified intent "share_records",
# dataset "floating-population" (schemas/hub/intent.v1.json).
#
# Input: one push of 流动人口 records, valid against
# schemas/dept-police/floating-population.v1.json (public-security style:
# uppercase pinyin-initial field names as in the GA data element standards,
# GB/T 2261.1 sex codes, dates YYYYMMDD). JLS (record count) must equal the
# number of records in SJ, or the push is refused as incomplete.
# Output: one person_record per record; absent fields stay absent.
# The program is pure; error(...) texts are fixed, never values.

# 性别 XB (GB/T 2261.1) -> gender.
def genders: {"0": "unknown", "1": "male", "2": "female", "9": "unknown"};

# 人员状态 RYZT -> status.
def statuses: {"1": "active", "2": "left", "3": "cancelled"};

# 居住事由 JZSY -> label kept as an attribute.
def reasons: {"01": "务工", "02": "经商", "03": "就学", "04": "投靠亲属", "05": "婚嫁", "99": "其他"};

# "YYYYMMDD" -> "YYYY-MM-DD".
def iso_date: .[0:4] + "-" + .[4:6] + "-" + .[6:8];

. as $m
| if $m.JLS != ($m.SJ | length) then error("record count JLS differs from the number of records") else . end
| {
    kind: "share_records",
    dataset: "floating-population",
    records: ($m.SJ | map(
      . as $r
      # Optional fields are added only when the record has them (cheaper in
      # jq than building every key and dropping the nulls).
      | {
          record_id: $r.RYBH,
          name: $r.XM,
          id_number: $r.GMSFHM,
          gender: (genders[$r.XB] // error("unknown sex code")),
          birth_date: ($r.CSRQ | iso_date),
          address: $r.XZZ,
          street: $r.SSJD,
          registered_at: ($r.DJRQ | iso_date),
          status: (statuses[$r.RYZT] // error("unknown person status")),
          attributes: ({batch_no: $m.PCH}
            + (if $r.HJDZ == null then {} else {household_address: $r.HJDZ} end)
            + (if $r.MZ == null then {} else {ethnicity_code: $r.MZ} end)
            + (if $r.JZSY == null then {}
               else {residence_reason: (reasons[$r.JZSY] // error("unknown residence reason"))} end)
            + (if $r.JZZBH == null then {} else {residence_permit_no: $r.JZZBH} end)
            + (if $r.SSPCS == null then {} else {police_station: $r.SSPCS} end))
        }
        + (if $r.LXDH == null then {} else {phone: $r.LXDH} end)
        + (if $r.SSSQ == null then {} else {community: $r.SSSQ} end)))
  }
