//! The endpoint's services: the dispatch catalogue, with the definitions
//! (attributes) `deploy/open311.toml` gives some of them, and what its
//! discovery document says.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::render::Doc;
use crate::routing::Routing;

/// `deploy/open311.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    /// When the file last changed (sortable).
    pub changeset: String,
    pub contact: String,
    pub key_service: String,
    #[serde(default)]
    pub services: Vec<Definition>,
}

/// A service's definition: what it asks besides a place and a description.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// A catalogue code.
    pub code: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

/// One question of a definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// `attribute[code]` in a POST.
    pub code: String,
    pub datatype: Datatype,
    #[serde(default)]
    pub required: bool,
    pub order: u32,
    pub description: String,
    #[serde(default)]
    pub datatype_description: Option<String>,
    #[serde(default)]
    pub values: Vec<Value>,
}

/// Open311's attribute datatypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    String,
    Number,
    Datetime,
    Text,
    Singlevaluelist,
    Multivaluelist,
}

impl Datatype {
    fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::Singlevaluelist => "singlevaluelist",
            Datatype::Multivaluelist => "multivaluelist",
        }
    }

    pub fn is_list(self) -> bool {
        matches!(self, Datatype::Singlevaluelist | Datatype::Multivaluelist)
    }
}

/// One choice of a list attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Value {
    pub key: String,
    pub name: String,
}

/// One service: a catalogue entry, with its definition if it has one.
#[derive(Debug, Clone)]
pub struct Service {
    pub code: String,
    pub name: String,
    pub group: String,
    pub definition: Option<Definition>,
}

/// The services and the discovery facts, checked.
#[derive(Debug, Clone)]
pub struct Services {
    pub file: ServicesFile,
    pub by_code: BTreeMap<String, Service>,
}

impl Services {
    /// Reads the file and joins it to the catalogue; every problem named.
    pub fn load(path: &Path, routing: &Routing) -> anyhow::Result<Services> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let file: ServicesFile =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Services::new(file, routing)
            .map_err(|problems| anyhow::anyhow!("{}:\n  {}", path.display(), problems.join("\n  ")))
    }

    pub fn new(file: ServicesFile, routing: &Routing) -> Result<Services, Vec<String>> {
        let mut problems = Vec::new();
        let mut by_code: BTreeMap<String, Service> = routing
            .file
            .catalogue
            .iter()
            .map(|entry| {
                let service = Service {
                    code: entry.code.clone(),
                    name: entry.name.clone(),
                    group: entry.code.split('.').next().unwrap_or_default().to_owned(),
                    definition: None,
                };
                (entry.code.clone(), service)
            })
            .collect();
        for definition in &file.services {
            let code = &definition.code;
            let mut seen = std::collections::BTreeSet::new();
            for attribute in &definition.attributes {
                let valid = !attribute.code.is_empty()
                    && attribute.code.len() <= 32
                    && attribute
                        .code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_');
                if !valid {
                    problems.push(format!(
                        "service {code}: attribute code {:?} is not lowercase letters and _",
                        attribute.code
                    ));
                }
                if !seen.insert(&attribute.code) {
                    problems.push(format!(
                        "service {code}: attribute {} twice",
                        attribute.code
                    ));
                }
                if attribute.datatype.is_list() == attribute.values.is_empty() {
                    problems.push(format!(
                        "service {code}: attribute {}: a list has values, nothing else does",
                        attribute.code
                    ));
                }
            }
            match by_code.get_mut(code) {
                Some(service) if service.definition.is_none() => {
                    service.definition = Some(definition.clone())
                }
                Some(_) => problems.push(format!("service {code}: defined twice")),
                None => problems.push(format!("service {code}: not in the dispatch catalogue")),
            }
        }
        match problems.is_empty() {
            true => Ok(Services { file, by_code }),
            false => Err(problems),
        }
    }

    pub fn get(&self, code: &str) -> Option<&Service> {
        self.by_code.get(code)
    }

    /// GET services: every service, in catalogue code order.
    pub fn list(&self) -> Doc {
        let services = self
            .by_code
            .values()
            .map(|service| {
                let keywords = service
                    .definition
                    .as_ref()
                    .map(|d| d.keywords.join(", "))
                    .filter(|k| !k.is_empty());
                Doc::Record(vec![
                    ("service_code", Doc::text(&service.code)),
                    ("service_name", Doc::text(&service.name)),
                    ("description", Doc::text(&service.name)),
                    ("metadata", Doc::Bool(service.definition.is_some())),
                    // The case number comes later, from the token.
                    ("type", Doc::text("batch")),
                    ("keywords", Doc::maybe(keywords)),
                    ("group", Doc::text(&service.group)),
                ])
            })
            .collect();
        Doc::List("service", services)
    }

    /// GET services/{code}: the service's definition (no attributes for a
    /// service without one).
    pub fn definition(&self, service: &Service) -> Doc {
        let attributes = service
            .definition
            .iter()
            .flat_map(|d| &d.attributes)
            .map(|a| {
                Doc::Record(vec![
                    ("variable", Doc::Bool(true)),
                    ("code", Doc::text(&a.code)),
                    ("datatype", Doc::text(a.datatype.as_str())),
                    ("required", Doc::Bool(a.required)),
                    (
                        "datatype_description",
                        Doc::maybe(a.datatype_description.clone()),
                    ),
                    ("order", Doc::Int(i64::from(a.order))),
                    ("description", Doc::text(&a.description)),
                    (
                        "values",
                        Doc::List(
                            "value",
                            a.values
                                .iter()
                                .map(|v| {
                                    Doc::Record(vec![
                                        ("key", Doc::text(&v.key)),
                                        ("name", Doc::text(&v.name)),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        Doc::Record(vec![
            ("service_code", Doc::text(&service.code)),
            ("attributes", Doc::List("attribute", attributes)),
        ])
    }

    /// The discovery document, for an endpoint at `url`.
    pub fn discovery(&self, url: &str) -> Doc {
        Doc::Record(vec![
            ("changeset", Doc::text(&self.file.changeset)),
            ("contact", Doc::text(&self.file.contact)),
            ("key_service", Doc::text(&self.file.key_service)),
            (
                "endpoints",
                Doc::List(
                    "endpoint",
                    vec![Doc::Record(vec![
                        ("specification", Doc::text(super::SPECIFICATION)),
                        ("url", Doc::text(url)),
                        ("changeset", Doc::text(&self.file.changeset)),
                        ("type", Doc::text("production")),
                        (
                            "formats",
                            Doc::List(
                                "format",
                                vec![Doc::text("text/xml"), Doc::text("application/json")],
                            ),
                        ),
                    ])],
                ),
            ),
        ])
    }
}
