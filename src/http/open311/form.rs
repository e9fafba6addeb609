//! A POSTed service request (`application/x-www-form-urlencoded`, UTF-8) to
//! the message the endpoint publishes: pure, so that every rule is tested
//! without a server.
//!
//! What is checked here is what Open311 itself says (a service code, a
//! location, lat with long, the service definition's attributes); the
//! connector's schema checks the rest (lengths, patterns) when the message
//! is prepared, before it is published.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::services::{Datatype, Service};

/// Most fields one form may have.
const MAX_FIELDS: usize = 64;

/// The form's plain fields, in the message's order, under their Open311 names.
const FIELDS: [&str; 12] = [
    "address_string",
    "address_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "device_id",
    "account_id",
    "description",
    "media_url",
    "lat",
    "long",
];

/// Why a form is refused (400), in words for the client; never a value
/// from the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

fn problem(text: impl Into<String>) -> Problem {
    Problem(text.into())
}

/// A form, taken apart. No `Debug`: it holds the reporter's personal data.
pub struct Posted {
    pub api_key: Option<String>,
    pub service_code: Option<String>,
    fields: BTreeMap<&'static str, String>,
    /// `attribute[code]` and `attribute[code][]`, by code.
    attributes: BTreeMap<String, Vec<String>>,
}

/// Takes a form body apart. Empty fields count as absent (Open311's
/// "optional" rule); unknown fields (`jurisdiction_id`, extensions) are
/// ignored.
pub fn parse(body: &[u8]) -> Result<Posted, Problem> {
    if std::str::from_utf8(body).is_err() {
        return Err(problem("the form is not UTF-8"));
    }
    let mut posted = Posted {
        api_key: None,
        service_code: None,
        fields: BTreeMap::new(),
        attributes: BTreeMap::new(),
    };
    let mut seen = 0;
    for (name, value) in form_urlencoded::parse(body) {
        seen += 1;
        if seen > MAX_FIELDS {
            return Err(problem(format!("more than {MAX_FIELDS} fields")));
        }
        // Percent-decoded bytes that are not UTF-8 come back replaced.
        if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
            return Err(problem("a field is not UTF-8"));
        }
        let value = value.replace("\r\n", "\n");
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let allowed = |c: char| !c.is_control() || (name == "description" && c == '\n');
        if !value.chars().all(allowed) {
            return Err(problem(format!(
                "{}: control characters are not allowed",
                clip(&name)
            )));
        }
        if let Some(code) = attribute_code(&name) {
            let (code, many) = code;
            let values = posted.attributes.entry(code.to_owned()).or_default();
            if !many && !values.is_empty() {
                return Err(problem(format!("attribute[{code}] given twice")));
            }
            values.push(value.to_owned());
            continue;
        }
        let slot = match &*name {
            "api_key" => &mut posted.api_key,
            "service_code" => &mut posted.service_code,
            other => match FIELDS.iter().find(|f| **f == other) {
                Some(field) => {
                    if posted.fields.insert(*field, value.to_owned()).is_some() {
                        return Err(problem(format!("{field} given twice")));
                    }
                    continue;
                }
                None => continue,
            },
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(problem(format!("{name} given twice")));
        }
    }
    Ok(posted)
}

/// `attribute[code]` or `attribute[code][]`: the code and whether it is
/// one of several values.
fn attribute_code(name: &str) -> Option<(&str, bool)> {
    let inner = name.strip_prefix("attribute[")?;
    let (code, many) = match inner.strip_suffix("][]") {
        Some(code) => (code, true),
        None => (inner.strip_suffix(']')?, false),
    };
    let valid = !code.is_empty()
        && code.len() <= 32
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then_some((code, many))
}

/// A name from the form as a message may show it.
fn clip(name: &str) -> String {
    crate::message::printable(&name.chars().take(40).collect::<String>()).into_owned()
}

impl Posted {
    /// The message for `service`, under `token`, taken at `received_at`.
    pub fn message(
        &self,
        service: &Service,
        token: &str,
        received_at: DateTime<Utc>,
    ) -> Result<Value, Problem> {
        let mut message = Map::new();
        message.insert("token".into(), token.into());
        message.insert(
            "received_at".into(),
            received_at
                .to_rfc3339_opts(SecondsFormat::Secs, true)
                .into(),
        );
        message.insert("service_code".into(), service.code.clone().into());
        message.insert("service_name".into(), service.name.clone().into());
        let has = |field: &str| self.fields.contains_key(field);
        if has("lat") != has("long") {
            return Err(problem("lat and long go together"));
        }
        if !has("lat") && !has("address_string") && !has("address_id") {
            return Err(problem(
                "a location is required: lat and long, address_string or address_id",
            ));
        }
        for (field, value) in &self.fields {
            let value = match *field {
                "lat" | "long" => match value.parse::<f64>() {
                    Ok(n) if n.is_finite() => Value::from(n),
                    _ => return Err(problem(format!("{field} is not a number"))),
                },
                _ => Value::from(value.as_str()),
            };
            message.insert((*field).into(), value);
        }
        let attributes = self.attributes(service)?;
        if !attributes.is_empty() {
            message.insert("attributes".into(), Value::Object(attributes));
        }
        Ok(Value::Object(message))
    }

    /// The answers to the service's definition, checked against it.
    fn attributes(&self, service: &Service) -> Result<Map<String, Value>, Problem> {
        let asked = service
            .definition
            .as_ref()
            .map(|d| d.attributes.as_slice())
            .unwrap_or_default();
        let mut answers = Map::new();
        for code in self.attributes.keys() {
            if !asked.iter().any(|a| &a.code == code) {
                return Err(problem(format!(
                    "service {} has no attribute {code}",
                    service.code
                )));
            }
        }
        for attribute in asked {
            let code = &attribute.code;
            let Some(given) = self.attributes.get(code) else {
                if attribute.required {
                    return Err(problem(format!(
                        "attribute[{code}] is required: {}",
                        attribute.description
                    )));
                }
                continue;
            };
            if attribute.datatype != Datatype::Multivaluelist && given.len() > 1 {
                return Err(problem(format!("attribute[{code}] takes one value")));
            }
            let known = |v: &String| attribute.values.iter().any(|k| &k.key == v);
            let answer = match attribute.datatype {
                Datatype::Singlevaluelist | Datatype::Multivaluelist => {
                    if !given.iter().all(known) {
                        return Err(problem(format!(
                            "attribute[{code}]: not one of the definition's keys"
                        )));
                    }
                    let mut unique = given.clone();
                    unique.sort();
                    unique.dedup();
                    if unique.len() != given.len() {
                        return Err(problem(format!("attribute[{code}]: a key given twice")));
                    }
                    match attribute.datatype {
                        Datatype::Multivaluelist => Value::from(given.clone()),
                        _ => Value::from(given[0].as_str()),
                    }
                }
                Datatype::Number => match given[0].parse::<f64>() {
                    Ok(n) if n.is_finite() => Value::from(n),
                    _ => return Err(problem(format!("attribute[{code}] is not a number"))),
                },
                Datatype::Datetime => match DateTime::parse_from_rfc3339(&given[0]) {
                    Ok(_) => Value::from(given[0].as_str()),
                    Err(_) => {
                        return Err(problem(format!(
                            "attribute[{code}] is not a date and time (ISO 8601 with a zone)"
                        )));
                    }
                },
                Datatype::String | Datatype::Text => Value::from(given[0].as_str()),
            };
            answers.insert(code.clone(), answer);
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::services::{Attribute, Definition, Value as Choice};
    use super::*;

    fn noise() -> Service {
        Service {
            code: "noise.construction".into(),
            name: "施工噪声".into(),
            group: "noise".into(),
            definition: Some(Definition {
                code: "noise.construction".into(),
                keywords: Vec::new(),
                attributes: vec![Attribute {
                    code: "night_work".into(),
                    datatype: Datatype::Singlevaluelist,
                    required: true,
                    order: 1,
                    description: "夜间施工？".into(),
                    datatype_description: None,
                    values: vec![
                        Choice {
                            key: "yes".into(),
                            name: "是".into(),
                        },
                        Choice {
                            key: "no".into(),
                            name: "否".into(),
                        },
                    ],
                }],
            }),
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-12-06T14:05:31.25Z".parse().unwrap()
    }

    fn message(body: &str) -> Result<Value, Problem> {
        parse(body.as_bytes())?.message(&noise(), "5b1f0c9e2a7d4e6f8a3b1c2d3e4f5a6b", at())
    }

    #[test]
    fn a_form_becomes_the_connectors_message() {
        let body = "api_key=k&jurisdiction_id=tz.example&service_code=noise.construction\
                    &lat=39.8953&long=116.6752&address_string=%E7%8E%89%E6%A1%A5%E4%B8%AD%E8%B7%AF\
                    &first_name=%E5%B0%8F%E6%98%8E&last_name=%E7%8E%8B&email=w%40example.com\
                    &phone=13911112222&device_id=&description=line+one%0D%0Aline+two\
                    &attribute[night_work]=yes&unknown_extension=1";
        let posted = parse(body.as_bytes()).unwrap();
        assert_eq!(posted.api_key.as_deref(), Some("k"));
        assert_eq!(posted.service_code.as_deref(), Some("noise.construction"));
        assert_eq!(
            posted
                .message(&noise(), "5b1f0c9e2a7d4e6f8a3b1c2d3e4f5a6b", at())
                .unwrap(),
            serde_json::json!({
                "token": "5b1f0c9e2a7d4e6f8a3b1c2d3e4f5a6b",
                "received_at": "2026-12-06T14:05:31Z",
                "service_code": "noise.construction",
                "service_name": "施工噪声",
                "lat": 39.8953, "long": 116.6752,
                "address_string": "玉桥中路",
                "first_name": "小明", "last_name": "王",
                "email": "w@example.com", "phone": "13911112222",
                "description": "line one\nline two",
                "attributes": {"night_work": "yes"}
            })
        );
    }

    #[test]
    fn what_open311_requires_is_checked_with_a_reason() {
        let refused = |body: &str| message(body).unwrap_err().0;
        assert!(refused("service_code=x&attribute[night_work]=yes").contains("location"));
        assert!(refused("lat=39.9&attribute[night_work]=yes").contains("go together"));
        assert!(refused("lat=NaN&long=1&attribute[night_work]=yes").contains("not a number"));
        assert!(refused("address_id=A1").contains("attribute[night_work] is required"));
        assert!(refused("address_id=A1&attribute[night_work]=maybe").contains("keys"));
        assert!(
            refused("address_id=A1&attribute[night_work][]=yes&attribute[night_work][]=no")
                .contains("one value")
        );
        assert!(
            refused("address_id=A1&attribute[night_work]=yes&attribute[colour]=red")
                .contains("no attribute colour")
        );
        assert!(refused("address_id=A1&address_id=A2&attribute[night_work]=yes").contains("twice"));
        assert!(refused("address_id=A%01&attribute[night_work]=yes").contains("control"));
        assert!(refused("address_id=%FF&attribute[night_work]=yes").contains("UTF-8"));
        let many = "x=1&".repeat(MAX_FIELDS + 1);
        assert!(refused(&many).contains("fields"));
        // Empty is absent.
        assert!(message("address_id=A1&attribute[night_work]=yes&phone=").is_ok());
    }

    #[test]
    fn refusals_never_quote_the_form() {
        let secret = "13911112222";
        for body in [
            format!("phone={secret}&phone={secret}"),
            format!("lat={secret}x&long=1"),
            format!("address_id=A1&attribute[night_work]={secret}"),
        ] {
            let refused = message(&body).unwrap_err().0;
            assert!(!refused.contains(secret), "{refused}");
        }
    }
}
