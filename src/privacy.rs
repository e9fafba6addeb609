//! Personal data kept to those entitled to it: masking for destinations
//! that may see only part of it.

use serde_json::{Map, Value};

use crate::connector::Disclosure;

/// Keys of a record or reporter that hold personal data.
pub const PERSONAL: [&str; 3] = ["name", "id_number", "phone"];

/// `110101199001011234` → `110101********1234`.
pub fn mask_id_number(text: &str) -> String {
    mask_middle(text, 6, 4)
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
    let mut out = record.clone();
    for key in PERSONAL {
        let Some(Value::String(text)) = record.get(key) else {
            continue;
        };
        match level {
            Disclosure::Full => {}
            Disclosure::None => {
                out.remove(key);
            }
            Disclosure::Masked => {
                let masked = match key {
                    "name" => mask_name(text),
                    "id_number" => mask_id_number(text),
                    _ => mask_phone(text),
                };
                out.insert(key.to_owned(), Value::String(masked));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_id_number("110101199001011234"), "110101********1234");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_phone("12"), "**");
    }

    #[test]
    fn disclosure_levels() {
        let record = json!({"record_id": "r1", "name": "王某某", "id_number": "110101199001011234", "phone": "13812345678"});
        let record = record.as_object().unwrap();
        assert_eq!(&disclose(record, Disclosure::Full), record);
        let none = disclose(record, Disclosure::None);
        assert!(
            none.get("name").is_none()
                && none.get("phone").is_none()
                && none.get("id_number").is_none()
        );
        assert_eq!(none["record_id"], "r1");
        let masked = disclose(record, Disclosure::Masked);
        assert_eq!(masked["id_number"], "110101********1234");
        assert_eq!(masked["phone"], "138****5678");
        assert_eq!(masked["name"], "王**");
    }
}
