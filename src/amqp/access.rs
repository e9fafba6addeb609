//! Who may do what on the broker: a user per connector with least
//! privilege, and the hub's own user, derived from the connectors and
//! exported with the topology as RabbitMQ definitions.
//!
//! A connector's user (each name in its `publishers`, or its id):
//!
//! - configures nothing;
//! - writes only to `<ns>.in`, and there only with routing keys
//!   `<connector>.*` (a topic permission, which the broker checks at
//!   publish);
//! - reads only its own `<ns>.out.<connector>`.
//!
//! The command centre's user reads `<ns>.out.<centre>`. The hub's user
//! configures, writes and reads every `<ns>.` resource: it alone writes to
//! `<ns>.out` and `<ns>.dlx` and reads the inbound queues and the DLQs.
//! RabbitMQ's built-in `guest` is never written: a hub that runs as guest
//! (development) keeps guest as it is.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Names;
use crate::connector::Registry;

/// What one broker user may do, as RabbitMQ regular expressions over
/// resource names (and routing keys, for the topic permission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub configure: String,
    pub write: String,
    pub read: String,
    /// On the inbound exchange: the routing keys it may publish with.
    pub publish_keys: Option<String>,
}

/// Every grant of one virtual host.
#[derive(Debug, Clone)]
pub struct Access {
    pub vhost: String,
    pub grants: Vec<Grant>,
    inbound_exchange: String,
}

/// Matches nothing: RabbitMQ reads an empty pattern as "no resource".
const NOTHING: &str = "";

impl Access {
    /// The grants for the connectors, the centre and the hub's own user.
    pub fn new(
        names: &Names,
        registry: &Registry,
        hub_user: &str,
        centre: &str,
        vhost: &str,
    ) -> Access {
        // A user may stand for several connectors: gather what it stands for.
        let mut stands_for: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for connector in registry.connectors.values() {
            let id = connector.id().to_owned();
            let users = connector
                .config
                .publishers
                .clone()
                .unwrap_or_else(|| vec![id.clone()]);
            for user in users {
                stands_for.entry(user).or_default().push(id.clone());
            }
        }
        stands_for.entry(centre.to_owned()).or_default();
        stands_for.remove(hub_user);
        let mut grants: Vec<Grant> = stands_for
            .into_iter()
            .map(|(user, connectors)| {
                let mut outs: Vec<String> = connectors
                    .iter()
                    .map(|id| names.outbound_queue(id))
                    .collect();
                if user == centre {
                    outs.push(names.outbound_queue(centre));
                }
                Grant {
                    configure: NOTHING.to_owned(),
                    write: match connectors.is_empty() {
                        true => NOTHING.to_owned(),
                        false => exactly(&[names.inbound_exchange()]),
                    },
                    read: exactly(&outs),
                    publish_keys: (!connectors.is_empty()).then(|| {
                        let ids: Vec<String> = connectors.iter().map(|c| escape(c)).collect();
                        format!("^({})\\.[^.]+$", ids.join("|"))
                    }),
                    user,
                }
            })
            .collect();
        if hub_user != "guest" {
            let everything = format!("^{}\\.", escape(&names.namespace));
            grants.push(Grant {
                user: hub_user.to_owned(),
                configure: everything.clone(),
                write: everything.clone(),
                read: everything,
                publish_keys: None,
            });
        }
        Access {
            vhost: vhost.to_owned(),
            grants,
            inbound_exchange: names.inbound_exchange(),
        }
    }

    /// The `users`, `permissions` and `topic_permissions` of RabbitMQ
    /// definitions. Without passwords a user has none (`password_hash`
    /// empty): it cannot log in until one is set.
    pub fn definitions(&self, passwords: Option<&Passwords>) -> (Value, Value, Value) {
        let users: Vec<Value> = self
            .grants
            .iter()
            .map(|grant| {
                let hash = passwords
                    .and_then(|p| p.get(&grant.user))
                    .map(|password| rabbit_hash(password, &salt()))
                    .unwrap_or_default();
                json!({"name": grant.user, "password_hash": hash,
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
            })
            .collect();
        let permissions: Vec<Value> = self
            .grants
            .iter()
            .map(|grant| {
                json!({"user": grant.user, "vhost": self.vhost, "configure": grant.configure,
                       "write": grant.write, "read": grant.read})
            })
            .collect();
        let topic_permissions: Vec<Value> = self
            .grants
            .iter()
            .filter_map(|grant| {
                let keys = grant.publish_keys.as_ref()?;
                Some(json!({"user": grant.user, "vhost": self.vhost,
                            "exchange": self.inbound_exchange, "write": keys, "read": NOTHING}))
            })
            .collect();
        (
            Value::Array(users),
            Value::Array(permissions),
            Value::Array(topic_permissions),
        )
    }

    /// The users, in order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.grants.iter().map(|g| g.user.as_str())
    }
}

/// A pattern that matches exactly these names.
fn exactly(names: &[String]) -> String {
    if names.is_empty() {
        return NOTHING.to_owned();
    }
    let names: Vec<String> = names.iter().map(|n| escape(n)).collect();
    format!("^({})$", names.join("|"))
}

/// `name` with the regular expressions' special characters escaped.
fn escape(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        if "\\.+*?()|[]{}^$-#&~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Four random bytes (from a v4 UUID: the operating system's generator).
fn salt() -> [u8; 4] {
    let random = uuid::Uuid::new_v4();
    let bytes = random.as_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// RabbitMQ's `rabbit_password_hashing_sha256`: base64 of the salt
/// followed by SHA-256 of the salt and the password.
pub fn rabbit_hash(password: &str, salt: &[u8; 4]) -> String {
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(password.as_bytes());
    let mut salted = salt.to_vec();
    salted.extend_from_slice(&hash.finalize());
    base64::engine::general_purpose::STANDARD.encode(salted)
}

/// The broker users' passwords: a file of `user password` lines, readable
/// by its owner only, that the operator hands out (each department gets
/// its own line).
#[derive(Debug, Default)]
pub struct Passwords {
    by_user: BTreeMap<String, String>,
}

impl Passwords {
    /// Reads the file (if it exists), adds a new password for each user
    /// that has none, and writes it back, owner-only. Returns the
    /// passwords and the users that got a new one.
    pub fn load_or_create<'a>(
        path: &Path,
        users: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<(Passwords, Vec<String>)> {
        let mut by_user = BTreeMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let Some((user, password)) = line.split_once(char::is_whitespace) else {
                        anyhow::bail!("{}:{}: expected `user password`", path.display(), n + 1);
                    };
                    by_user.insert(user.to_owned(), password.trim().to_owned());
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => anyhow::bail!("{}: {error}", path.display()),
        }
        let mut created = Vec::new();
        for user in users {
            if !by_user.contains_key(user) {
                let password = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                by_user.insert(user.to_owned(), password);
                created.push(user.to_owned());
            }
        }
        if !created.is_empty() {
            let mut text = String::from(
                "# Broker users and their passwords (gridhub topology --passwords).\n\
                 # Hand each department its own line only.\n",
            );
            for (user, password) in &by_user {
                text.push_str(&format!("{user} {password}\n"));
            }
            write_owner_only(path, text.as_bytes())?;
        }
        Ok((Passwords { by_user }, created))
    }

    pub fn get(&self, user: &str) -> Option<&str> {
        self.by_user.get(user).map(String::as_str)
    }
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| anyhow::anyhow!("{}: {e}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let registry =
            Registry::load(&root.join("connectors"), &root.join("schemas")).expect("connectors");
        Access::new(
            &Names::new("gridhub"),
            &registry,
            "gridhub",
            "command-centre",
            "/",
        )
    }

    fn grant<'a>(access: &'a Access, user: &str) -> &'a Grant {
        access.grants.iter().find(|g| g.user == user).unwrap()
    }

    /// As RabbitMQ reads a permission: an empty pattern matches nothing.
    fn matches(pattern: &str, name: &str) -> bool {
        !pattern.is_empty() && regex::Regex::new(pattern).unwrap().is_match(name)
    }

    #[test]
    fn a_department_publishes_as_itself_and_reads_only_its_own_queue() {
        let access = access();
        let health = grant(&access, "dept-health");
        assert_eq!(health.configure, "");
        assert!(matches(&health.write, "gridhub.in"));
        assert!(!matches(&health.write, "gridhub.out"));
        assert!(!matches(&health.write, "gridhub.dlx"));
        assert!(matches(&health.read, "gridhub.out.dept-health"));
        for other in [
            "gridhub.out.dept-urban-management",
            "gridhub.dlq.dept-health",
            "gridhub.in.dept-health",
            "gridhub.in.hotline-12345",
            "gridhub.out.dept-health-x",
        ] {
            assert!(!matches(&health.read, other), "{other}");
        }
        let keys = health.publish_keys.as_deref().unwrap();
        assert!(matches(keys, "dept-health.resident-population"));
        assert!(!matches(keys, "dept-police.floating-population"));
        assert!(!matches(keys, "dept-healthy.x"));
    }

    #[test]
    fn the_hub_alone_reads_dead_letters_and_the_centre_reads_its_feed() {
        let access = access();
        let hub = grant(&access, "gridhub");
        assert!(matches(&hub.read, "gridhub.dlq.dept-health"));
        assert!(matches(&hub.write, "gridhub.out"));
        let centre = grant(&access, "command-centre");
        assert!(matches(&centre.read, "gridhub.out.command-centre"));
        assert_eq!(centre.write, "");
        assert!(centre.publish_keys.is_none());
        for grant in access.grants.iter().filter(|g| g.user != "gridhub") {
            assert!(
                !matches(&grant.read, "gridhub.dlq.dept-health"),
                "{grant:?}"
            );
            assert!(!matches(&grant.write, "gridhub.dlx"), "{grant:?}");
            assert!(!matches(&grant.write, "gridhub.out"), "{grant:?}");
        }
    }

    #[test]
    fn guest_is_never_written() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let registry =
            Registry::load(&root.join("connectors"), &root.join("schemas")).expect("connectors");
        let access = Access::new(&Names::new("gridhub"), &registry, "guest", "c", "/");
        assert!(access.users().all(|u| u != "guest"));
    }

    #[test]
    fn passwords_hash_as_rabbitmq_does() {
        // RabbitMQ's own example: salt 908D C60A, password "test12".
        let hash = rabbit_hash("test12", &[0x90, 0x8d, 0xc6, 0x0a]);
        assert_eq!(hash, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR");
    }
}
