//! Personal data kept to those entitled to it: masking for destinations
//! that may see only part of it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::connector::Disclosure;

/// What kind of personal data a field holds, which says how it is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `张**`: the first character.
    Name,
    /// `138****5678`.
    Phone,
    /// `110101***********4`: region and check digit.
    IdNumber,
    /// `1990`: the year.
    BirthDate,
    /// `中仓街道中山街社区***`: down to the community or village, not the
    /// building, unit or room.
    Address,
    /// `HH********56`: a household, permit or card number, its first and
    /// last two characters.
    Code,
    /// Free text (a confidential complaint's description): runs of seven
    /// or more digits, phone and ID numbers, masked; the words kept.
    Text,
}

impl Kind {
    fn mask(self, text: &str) -> String {
        match self {
            Kind::Name => mask_name(text),
            Kind::Phone => mask_phone(text),
            Kind::IdNumber => mask_id_number(text),
            Kind::BirthDate => birth_year(text),
            Kind::Address => mask_address(text),
            Kind::Code => mask_middle(text, 2, 2),
            Kind::Text => mask_numbers_in(text),
        }
    }
}

/// The personal fields of a record: the four always personal at its top
/// level (`name`, `phone`, `id_number`, `birth_date`) and those a message
/// type declares, as dotted paths (`attributes.household_no`).
#[derive(Debug, Clone, PartialEq)]
pub struct Personal(BTreeMap<String, Node>);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Field(Kind),
    Object(Personal),
}

impl Default for Personal {
    fn default() -> Personal {
        let mut fields = BTreeMap::new();
        for (key, kind) in [
            ("name", Kind::Name),
            ("phone", Kind::Phone),
            ("id_number", Kind::IdNumber),
            ("birth_date", Kind::BirthDate),
        ] {
            fields.insert(key.to_owned(), Node::Field(kind));
        }
        Personal(fields)
    }
}

impl Personal {
    /// The four always personal, built once: what a reporter or a record
    /// with nothing declared is disclosed by.
    pub fn standard() -> &'static Personal {
        static STANDARD: std::sync::LazyLock<Personal> =
            std::sync::LazyLock::new(Personal::default);
        &STANDARD
    }

    /// The defaults and these declared fields.
    pub fn declared<'a>(fields: impl IntoIterator<Item = (&'a str, Kind)>) -> Personal {
        let mut personal = Personal::default();
        for (path, kind) in fields {
            personal.insert(&path.split('.').collect::<Vec<_>>(), kind);
        }
        personal
    }

    fn insert(&mut self, path: &[&str], kind: Kind) {
        match path {
            [] => {}
            [last] => {
                self.0.insert((*last).to_owned(), Node::Field(kind));
            }
            [first, rest @ ..] => {
                let node = self
                    .0
                    .entry((*first).to_owned())
                    .or_insert_with(|| Node::Object(Personal(BTreeMap::new())));
                if let Node::Field(_) = node {
                    *node = Node::Object(Personal(BTreeMap::new()));
                }
                if let Node::Object(inner) = node {
                    inner.insert(rest, kind);
                }
            }
        }
    }

    /// Every declared field, as dotted paths with their kind.
    pub fn fields(&self) -> Vec<(String, Kind)> {
        let mut out = Vec::new();
        for (key, node) in &self.0 {
            match node {
                Node::Field(kind) => out.push((key.clone(), *kind)),
                Node::Object(inner) => out.extend(
                    inner
                        .fields()
                        .into_iter()
                        .map(|(path, kind)| (format!("{key}.{path}"), kind)),
                ),
            }
        }
        out
    }
}

/// `110101199001011234` → `110101***********4`: the region and the check
/// digit. The hidden digits are the birth date and the sequence number; with
/// the birth year beside it (a masked record keeps only the year, see
/// [`birth_year`]) some 33,000 numbers still fit, so no masked record can be
/// turned back into an ID number. (Keeping the last four, as before, left
/// about 33 with the year and one with the whole birth date, which records
/// carried in clear.)
pub fn mask_id_number(text: &str) -> String {
    mask_middle(text, 6, 1)
}

/// `1990-01-01` → `1990`: the year of a birth date, which is what a masked
/// record keeps of it (a whole date would give back the middle of a masked
/// ID number).
pub fn birth_year(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_digit())
        .take(4)
        .collect()
}

/// `13812345678` → `138****5678`.
pub fn mask_phone(text: &str) -> String {
    mask_middle(text, 3, 4)
}

/// `张三丰` → `张**`.
pub fn mask_name(text: &str) -> String {
    mask_middle(text, 1, 0)
}

/// `中仓街道中山街社区3号楼1单元502` → `中仓街道中山街社区***`: what comes
/// after the last community, village or street marker is hidden; without
/// one, all but the first six characters.
pub fn mask_address(text: &str) -> String {
    let cut = ["社区", "村", "街道", "镇", "乡"]
        .iter()
        .filter_map(|marker| text.rfind(marker).map(|at| at + marker.len()))
        .max()
        .unwrap_or_else(|| text.char_indices().nth(6).map_or(text.len(), |(at, _)| at));
    if cut >= text.len() {
        return text.to_owned();
    }
    format!("{}***", &text[..cut])
}

/// Runs of seven or more digits (phone, ID and card numbers) masked in free
/// text, their first three and last two digits kept.
pub fn mask_numbers_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 7 {
            out.push_str(&mask_middle(run, 3, 2));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == 'X' || c == 'x') && !run.is_empty() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn mask_middle(text: &str, keep_start: usize, keep_end: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= keep_start + keep_end {
        return "*".repeat(chars.len().max(1));
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i >= chars.len() - keep_end {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// Applies a disclosure level to the personal fields of a JSON object.
pub fn disclose(
    record: &Map<String, Value>,
    level: Disclosure,
    personal: &Personal,
) -> Map<String, Value> {
    record
        .iter()
        .filter_map(|(key, value)| {
            Some((
                key.clone(),
                shown(key, value, level, personal)?.into_owned(),
            ))
        })
        .collect()
}

/// A JSON object as a destination may see it ([`disclose`]), written as
/// JSON without a disclosed copy being built.
pub struct Disclosed<'a> {
    pub record: &'a Map<String, Value>,
    pub level: Disclosure,
    pub personal: &'a Personal,
}

impl Serialize for Disclosed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.record {
            if let Some(value) = shown(key, value, self.level, self.personal) {
                map.serialize_entry(key, &value)?;
            }
        }
        map.end()
    }
}

/// An entry of an object at a disclosure level: a personal field in full,
/// masked or left out (text only: numbers and nulls stay); an object with
/// personal fields inside, disclosed in turn; anything else as it is.
fn shown<'v>(
    key: &str,
    value: &'v Value,
    level: Disclosure,
    personal: &Personal,
) -> Option<Cow<'v, Value>> {
    match (personal.0.get(key), value) {
        (Some(Node::Field(_)), _) if level == Disclosure::Full => Some(Cow::Borrowed(value)),
        (Some(Node::Field(kind)), Value::String(text)) => match level {
            Disclosure::None => None,
            _ => Some(Cow::Owned(Value::String(kind.mask(text)))),
        },
        (Some(Node::Object(inner)), Value::Object(object)) if level != Disclosure::Full => {
            Some(Cow::Owned(Value::Object(disclose(object, level, inner))))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_id_number("110101199001011234"), "110101***********4");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_phone("12"), "**");
    }

    #[test]
    fn disclosure_levels() {
        let record = json!({"record_id": "r1", "name": "王某某", "id_number": "110101199001011234",
                            "phone": "13812345678", "birth_date": "1990-01-01"});
        let record = record.as_object().unwrap();
        assert_eq!(
            &disclose(record, Disclosure::Full, &Personal::default()),
            record
        );
        let none = disclose(record, Disclosure::None, &Personal::default());
        assert!(
            none.get("name").is_none()
                && none.get("phone").is_none()
                && none.get("id_number").is_none()
                && none.get("birth_date").is_none()
        );
        assert_eq!(none["record_id"], "r1");
        let masked = disclose(record, Disclosure::Masked, &Personal::default());
        assert_eq!(masked["id_number"], "110101***********4");
        assert_eq!(masked["birth_date"], "1990");
        assert_eq!(masked["phone"], "138****5678");
        assert_eq!(masked["name"], "王**");
    }

    #[test]
    fn a_disclosed_record_is_written_as_disclose_makes_it() {
        let record = json!({"record_id": "r1", "name": "王某某", "id_number": null,
                            "phone": "13812345678", "age": 40, "tags": ["a"]});
        let record = record.as_object().unwrap();
        for level in [Disclosure::Full, Disclosure::Masked, Disclosure::None] {
            let personal = Personal::default();
            let written = serde_json::to_value(Disclosed {
                record,
                level,
                personal: &personal,
            })
            .unwrap();
            assert_eq!(
                written,
                Value::Object(disclose(record, level, &personal)),
                "{level:?}"
            );
        }
        let none = disclose(record, Disclosure::None, &Personal::default());
        // Only text is personal data: a null ID number stays null.
        assert_eq!(none.get("id_number"), Some(&Value::Null));
        assert_eq!(none["age"], 40);
    }

    #[test]
    fn declared_fields_are_masked_nested_or_not() {
        let personal = Personal::declared([
            ("address", Kind::Address),
            ("attributes.household_no", Kind::Code),
            ("attributes.note", Kind::Text),
        ]);
        let record = json!({"record_id": "r1", "name": "张某某",
            "address": "中仓街道中山街社区3号楼1单元502",
            "attributes": {"household_no": "HH0001203456", "relation_to_head": "户主",
                           "note": "联系13601234567或身份证110112196804153017"}});
        let record = record.as_object().unwrap();
        let masked = disclose(record, Disclosure::Masked, &personal);
        assert_eq!(masked["address"], "中仓街道中山街社区***");
        assert_eq!(masked["attributes"]["household_no"], "HH********56");
        assert_eq!(masked["attributes"]["relation_to_head"], "户主");
        assert_eq!(
            masked["attributes"]["note"],
            "联系136******67或身份证110*************17"
        );
        let none = disclose(record, Disclosure::None, &personal);
        assert!(none.get("address").is_none());
        assert!(none["attributes"].get("household_no").is_none());
        assert_eq!(none["record_id"], "r1");
        assert_eq!(&disclose(record, Disclosure::Full, &personal), record);
        assert_eq!(
            serde_json::to_value(Disclosed {
                record,
                level: Disclosure::Masked,
                personal: &personal
            })
            .unwrap(),
            Value::Object(masked)
        );
        let paths: Vec<String> = personal.fields().into_iter().map(|(p, _)| p).collect();
        assert!(paths.contains(&"attributes.household_no".to_owned()));
    }

    #[test]
    fn addresses_keep_the_community_not_the_door() {
        assert_eq!(mask_address("玉桥街道玉桥中路某小区5号楼"), "玉桥街道***");
        assert_eq!(mask_address("西集镇某村12号"), "西集镇某村***");
        assert_eq!(mask_address("北京市通州区新华大街"), "北京市通州区***");
        assert_eq!(mask_address("中山街社区"), "中山街社区");
    }
}
