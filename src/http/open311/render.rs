//! Open311's two formats from one tree: JSON, and the XML it is the Spark
//! mapping of (a list is an element holding one element per item, named in
//! the singular: `services`/`service`, `errors`/`error`).
//!
//! The XML is written here rather than with an XML crate: Open311's XML is
//! schemaless, a fixed shape of elements without attributes or namespaces,
//! so the one thing to get right is text, and [`escape`] does it in one
//! place: the five markup characters as entities, and every character XML
//! 1.0 cannot carry at all (most control characters) left out, since a
//! reference to one (`&#1;`) is no better formed than the character.

use std::fmt::Write;

/// A document: what one answer holds, in the order Open311 lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Null,
    Text(String),
    Number(f64),
    Int(i64),
    Bool(bool),
    /// A list, and the name of its items' elements in XML.
    List(&'static str, Vec<Doc>),
    /// Named fields, in order.
    Record(Vec<(&'static str, Doc)>),
}

impl Doc {
    pub fn text(text: impl Into<String>) -> Doc {
        Doc::Text(text.into())
    }

    /// Text, or null.
    pub fn maybe(text: Option<impl Into<String>>) -> Doc {
        text.map_or(Doc::Null, |t| Doc::Text(t.into()))
    }
}

/// The response format, from the resource's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `name.json` or `name.xml`: the name and the format.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        let (name, suffix) = file.rsplit_once('.')?;
        let format = match suffix {
            "json" => Format::Json,
            "xml" => Format::Xml,
            _ => return None,
        };
        (!name.is_empty()).then_some((name, format))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }

    /// `doc` in this format; `root` names the XML document's element.
    pub fn render(self, root: &'static str, doc: &Doc) -> String {
        match self {
            Format::Json => json(doc),
            Format::Xml => xml(root, doc),
        }
    }
}

/// The JSON text of a document.
pub fn json(doc: &Doc) -> String {
    let mut out = String::new();
    write_json(&mut out, doc);
    out
}

fn write_json(out: &mut String, doc: &Doc) {
    match doc {
        Doc::Null => out.push_str("null"),
        Doc::Text(text) => out.push_str(&serde_json::Value::from(text.as_str()).to_string()),
        Doc::Number(n) => out.push_str(&number(*n)),
        Doc::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::List(_, items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Doc::Record(fields) => {
            out.push('{');
            for (n, (name, value)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(*name).to_string());
                out.push(':');
                write_json(out, value);
            }
            out.push('}');
        }
    }
}

/// A finite number as JSON writes it; anything else (never produced) as null.
fn number(n: f64) -> String {
    serde_json::Number::from_f64(n).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// The XML text of a document whose element is `root`, with the XML
/// declaration Open311 asks for.
pub fn xml(root: &'static str, doc: &Doc) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    write_xml(&mut out, root, doc);
    out.push('\n');
    out
}

fn write_xml(out: &mut String, name: &str, doc: &Doc) {
    match doc {
        Doc::Null => {
            let _ = write!(out, "<{name}/>");
        }
        Doc::Text(text) => {
            let _ = write!(out, "<{name}>{}</{name}>", escape(text));
        }
        Doc::Number(n) => {
            let _ = write!(out, "<{name}>{}</{name}>", number(*n));
        }
        Doc::Int(n) => {
            let _ = write!(out, "<{name}>{n}</{name}>");
        }
        Doc::Bool(b) => {
            let _ = write!(out, "<{name}>{b}</{name}>");
        }
        Doc::List(item, items) => {
            let _ = write!(out, "<{name}>");
            for value in items {
                write_xml(out, item, value);
            }
            let _ = write!(out, "</{name}>");
        }
        Doc::Record(fields) => {
            let _ = write!(out, "<{name}>");
            for (field, value) in fields {
                write_xml(out, field, value);
            }
            let _ = write!(out, "</{name}>");
        }
    }
}

/// Text as XML 1.0 character data: `& < > " '` as entities; the characters
/// XML 1.0 does not allow at all (controls other than tab, newline and
/// carriage return; U+FFFE, U+FFFF) left out.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Open311's error document: one error, its code the HTTP status.
pub fn errors(code: u16, description: &str) -> Doc {
    Doc::List(
        "error",
        vec![Doc::Record(vec![
            ("code", Doc::Int(i64::from(code))),
            ("description", Doc::text(description)),
        ])],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_an_array_in_json_and_singular_elements_in_xml() {
        let doc = Doc::List(
            "request",
            vec![Doc::Record(vec![
                ("service_request_id", Doc::text("TZ2612060000042")),
                ("lat", Doc::Number(39.8953)),
                ("media_url", Doc::Null),
            ])],
        );
        assert_eq!(
            json(&doc),
            r#"[{"service_request_id":"TZ2612060000042","lat":39.8953,"media_url":null}]"#
        );
        assert_eq!(
            xml("service_requests", &doc),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_requests><request>\
             <service_request_id>TZ2612060000042</service_request_id><lat>39.8953</lat>\
             <media_url/></request></service_requests>\n"
        );
    }

    #[test]
    fn text_cannot_break_out_of_its_element() {
        let hostile = "</description><x a=\"1\">&amp;'\u{0}\u{1b}[31m\u{FFFF}\t中文\n";
        let written = xml("d", &Doc::text(hostile));
        assert_eq!(
            written,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d>&lt;/description&gt;&lt;x a=&quot;1&quot;&gt;\
             &amp;amp;&apos;[31m\t中文\n</d>\n"
        );
        // JSON escapes what it must, and keeps the rest.
        assert_eq!(
            serde_json::from_str::<String>(&json(&Doc::text(hostile))).unwrap(),
            hostile
        );
    }

    #[test]
    fn errors_follow_the_spec() {
        let doc = errors(403, "invalid api_key");
        assert_eq!(
            json(&doc),
            r#"[{"code":403,"description":"invalid api_key"}]"#
        );
        assert_eq!(
            xml("errors", &doc),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<errors><error><code>403</code>\
             <description>invalid api_key</description></error></errors>\n"
        );
    }

    #[test]
    fn the_suffix_names_the_format() {
        assert_eq!(
            Format::split("services.json"),
            Some(("services", Format::Json))
        );
        assert_eq!(
            Format::split("road.pothole.xml"),
            Some(("road.pothole", Format::Xml))
        );
        assert_eq!(Format::split("services.html"), None);
        assert_eq!(Format::split(".json"), None);
        assert_eq!(Format::split("services"), None);
    }
}
