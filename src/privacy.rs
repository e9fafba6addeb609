//! Personal data kept to those entitled to it: masking for destinations
//! that may see only part of it.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::connector::Disclosure;

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

/// Applies a disclosure level to the personal keys of a JSON object.
pub fn disclose(record: &Map<String, Value>, level: Disclosure) -> Map<String, Value> {
    record
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), shown(key, value, level)?.into_owned())))
        .collect()
}

/// A JSON object as a destination may see it ([`disclose`]), written as
/// JSON without a disclosed copy being built.
pub struct Disclosed<'a> {
    pub record: &'a Map<String, Value>,
    pub level: Disclosure,
}

impl Serialize for Disclosed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.record {
            if let Some(value) = shown(key, value, self.level) {
                map.serialize_entry(key, &value)?;
            }
        }
        map.end()
    }
}

/// An entry of an object at a disclosure level: the text of a key that
/// holds personal data (`name`, `id_number`, `phone`, `birth_date`) in
/// full, masked or left out; anything else as it is.
fn shown<'v>(key: &str, value: &'v Value, level: Disclosure) -> Option<Cow<'v, Value>> {
    let Value::String(text) = value else {
        return Some(Cow::Borrowed(value));
    };
    let masked = match key {
        "name" => mask_name,
        "id_number" => mask_id_number,
        "phone" => mask_phone,
        "birth_date" => birth_year,
        _ => return Some(Cow::Borrowed(value)),
    };
    match level {
        Disclosure::Full => Some(Cow::Borrowed(value)),
        Disclosure::None => None,
        Disclosure::Masked => Some(Cow::Owned(Value::String(masked(text)))),
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
        assert_eq!(&disclose(record, Disclosure::Full), record);
        let none = disclose(record, Disclosure::None);
        assert!(
            none.get("name").is_none()
                && none.get("phone").is_none()
                && none.get("id_number").is_none()
                && none.get("birth_date").is_none()
        );
        assert_eq!(none["record_id"], "r1");
        let masked = disclose(record, Disclosure::Masked);
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
            let written = serde_json::to_value(Disclosed { record, level }).unwrap();
            assert_eq!(written, Value::Object(disclose(record, level)), "{level:?}");
        }
        let none = disclose(record, Disclosure::None);
        // Only text is personal data: a null ID number stays null.
        assert_eq!(none.get("id_number"), Some(&Value::Null));
        assert_eq!(none["age"], 40);
    }
}
