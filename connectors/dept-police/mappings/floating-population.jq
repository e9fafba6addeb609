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

def compact: map_values(select(. != null));

# "YYYYMMDD" -> "YYYY-MM-DD".
def iso_date: .[0:4] + "-" + .[4:6] + "-" + .[6:8];

. as $m
| if $m.JLS != ($m.SJ | length) then error("record count JLS differs from the number of records") else . end
| {
    kind: "share_records",
    dataset: "floating-population",
    records: ($m.SJ | map(
      . as $r
      | {
          record_id: $r.RYBH,
          name: $r.XM,
          id_number: $r.GMSFHM,
          phone: $r.LXDH,
          gender: (genders[$r.XB] // error("unknown sex code")),
          birth_date: ($r.CSRQ | iso_date),
          address: $r.XZZ,
          street: $r.SSJD,
          community: $r.SSSQ,
          registered_at: ($r.DJRQ | iso_date),
          status: (statuses[$r.RYZT] // error("unknown person status")),
          attributes: ({
            household_address: $r.HJDZ,
            ethnicity_code: $r.MZ,
            residence_reason: (if $r.JZSY then reasons[$r.JZSY] // error("unknown residence reason") else null end),
            residence_permit_no: $r.JZZBH,
            police_station: $r.SSPCS,
            batch_no: $m.PCH
          } | compact)
        }
      | compact))
  }
