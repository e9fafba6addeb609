//! Personal data at rest: reporters' name, phone and ID number, a
//! confidential complainant's description, events waiting in the outbox
//! and dead letters' bodies are sealed with AES-256-GCM before they are
//! stored, and opened when the hub needs them.
//!
//! A sealed text value is `gh1:<key id>:<base64 of nonce and ciphertext>`
//! (`seal`); bytes are sealed by `seal_bytes`, their key id kept beside
//! them. The associated data binds a value to its row and field (a case's
//! id and the field's name, an event's id, a dead letter's id), so a sealed
//! value copied elsewhere does not open. Values stored before a key
//! was configured (no `gh1:` prefix) are read as they are; `gridhub key
//! rotate` seals them.
//!
//! Keys come from a file (`data_keys_file`) or `GRIDHUB_DATA_KEYS`: one
//! `<id> <64 hex digits>` line per key, the first the current one (new
//! values are sealed with it), the others still opened. `gridhub key new`
//! prints a line.
//!
//! Finding earlier cases from the same caller needs no plaintext:
//! `phone_hash` is an HMAC-SHA256 of the digits of the phone under a key
//! derived from the current key, so equal phones have equal hashes and the
//! hash alone gives nothing back.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::intent::Reporter;

const PREFIX: &str = "gh1:";

/// The keys personal data is sealed with; `Seal::default()` seals nothing.
#[derive(Clone, Default)]
pub struct Seal(Option<Arc<Keys>>);

struct Keys {
    /// The first: new values are sealed with it.
    keys: Vec<(String, Aes256Gcm)>,
    hash_key: [u8; 32],
}

/// Why a stored value does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("sealed value is damaged or belongs to another row")]
    Damaged,
    #[error("personal data is sealed, but no key is configured")]
    NoKeys,
}

impl Seal {
    /// Reads `<id> <64 hex digits>` lines (blank lines and `#` comments
    /// ignored); the first key is the current one.
    pub fn parse(text: &str) -> anyhow::Result<Seal> {
        let mut keys = Vec::new();
        let mut current = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, hex) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| anyhow::anyhow!("line {}: expected `<id> <hex key>`", n + 1))?;
            let hex = hex.trim();
            if id.contains(':') || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!("line {}: a key id without `:` and 64 hex digits", n + 1);
            }
            let mut key = [0u8; 32];
            for (i, byte) in key.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
            }
            if keys.iter().any(|(k, _)| k == id) {
                anyhow::bail!("line {}: key {id} given twice", n + 1);
            }
            current.get_or_insert(key);
            keys.push((id.to_owned(), Aes256Gcm::new(&key.into())));
        }
        let Some(current) = current else {
            anyhow::bail!("no key");
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&current).expect("any key length");
        mac.update(b"gridhub phone hash v1");
        let hash_key = mac.finalize().into_bytes().into();
        Ok(Seal(Some(Arc::new(Keys { keys, hash_key }))))
    }

    /// A new key line: `<id> <64 hex digits>` (random from the operating
    /// system, through v4 UUIDs).
    pub fn new_key_line(id: &str) -> String {
        let mut hex = String::with_capacity(64);
        for _ in 0..2 {
            for b in uuid::Uuid::new_v4().as_bytes() {
                hex.push_str(&format!("{b:02x}"));
            }
        }
        format!("{id} {hex}")
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The current key's id.
    pub fn current(&self) -> Option<&str> {
        self.0.as_ref().map(|k| k.keys[0].0.as_str())
    }

    /// `value` sealed for this case's `field` (as it is, without keys).
    pub fn seal(&self, case_id: Uuid, field: &str, value: Option<&str>) -> Option<String> {
        let value = value?;
        let Some((id, bytes)) = self.seal_bytes(&associated(case_id, field), value.as_bytes())
        else {
            return Some(value.to_owned());
        };
        Some(format!(
            "{PREFIX}{id}:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        ))
    }

    /// A stored value opened: sealed ones with their key, others as they are.
    pub fn open(
        &self,
        case_id: Uuid,
        field: &str,
        stored: Option<&str>,
    ) -> Result<Option<String>, SealError> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(Some(stored.to_owned()));
        };
        let (id, encoded) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Damaged)?;
        let plain = self.open_bytes(id, &associated(case_id, field), &bytes)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| SealError::Damaged)
    }

    /// `value` sealed with the current key, bound to `aad`: the key's id and
    /// the nonce followed by the ciphertext. `None` without keys.
    pub fn seal_bytes(&self, aad: &[u8], value: &[u8]) -> Option<(&str, Vec<u8>)> {
        let (id, cipher) = &self.0.as_ref()?.keys[0];
        // 96 random bits: a v4 UUID's bytes (its version bits fixed) are
        // 122 random bits from the operating system.
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..12]);
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: value, aad })
            .expect("AES-GCM seals any length the store holds");
        let mut bytes = Vec::with_capacity(nonce.len() + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Some((id.as_str(), bytes))
    }

    /// What `seal_bytes` sealed with key `key_id` and `aad`, opened.
    pub fn open_bytes(&self, key_id: &str, aad: &[u8], bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let keys = self.0.as_ref().ok_or(SealError::NoKeys)?;
        let (_, cipher) = keys
            .keys
            .iter()
            .find(|(k, _)| k == key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        if bytes.len() < 12 {
            return Err(SealError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Damaged)?;
        cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
            .map_err(|_| SealError::Damaged)
    }

    /// Whether a stored value is sealed at all (plaintext from before keys,
    /// or a value never sealed, is not).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Whether a stored value is sealed with the current key.
    pub fn is_current(&self, stored: &str) -> bool {
        match (self.current(), stored.strip_prefix(PREFIX)) {
            (Some(current), Some(rest)) => {
                rest.split_once(':').is_some_and(|(id, _)| id == current)
            }
            _ => false,
        }
    }

    /// The keyed hash of a phone number's digits (`None` without keys or
    /// digits).
    pub fn phone_hash(&self, phone: Option<&str>) -> Option<String> {
        let keys = self.0.as_ref()?;
        let digits: String = phone?.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&keys.hash_key).expect("any key length");
        mac.update(digits.as_bytes());
        Some(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl Seal {
    /// A reporter as stored: name, phone and ID number sealed.
    pub fn seal_reporter(&self, case_id: Uuid, reporter: &Reporter) -> Reporter {
        Reporter {
            name: self.seal(case_id, "name", reporter.name.as_deref()),
            phone: self.seal(case_id, "phone", reporter.phone.as_deref()),
            id_number: self.seal(case_id, "id_number", reporter.id_number.as_deref()),
            anonymous: reporter.anonymous,
            confidential: reporter.confidential,
            callback_consent: reporter.callback_consent,
        }
    }

    /// A stored reporter opened. A field that does not open is left out
    /// and the failure logged (without the value): the case goes on
    /// without it rather than stopping its batch.
    pub fn open_reporter(&self, case_id: Uuid, stored: Reporter) -> Reporter {
        let open = |field: &str, value: Option<&str>| match self.open(case_id, field, value) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(case_id = %case_id, field, error = %error, "cannot open a reporter's field");
                None
            }
        };
        Reporter {
            name: open("name", stored.name.as_deref()),
            phone: open("phone", stored.phone.as_deref()),
            id_number: open("id_number", stored.id_number.as_deref()),
            ..stored
        }
    }
}

fn associated(case_id: Uuid, field: &str) -> Vec<u8> {
    let mut aad = case_id.as_bytes().to_vec();
    aad.extend_from_slice(field.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(lines: &str) -> Seal {
        Seal::parse(lines).unwrap()
    }

    const K1: &str = "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    #[test]
    fn sealed_values_open_only_in_their_row_and_field() {
        let seal = seal(K1);
        let case = Uuid::new_v4();
        let sealed = seal.seal(case, "phone", Some("13900005678")).unwrap();
        assert!(sealed.starts_with("gh1:k1:"), "{sealed}");
        assert!(!sealed.contains("13900005678"));
        assert_eq!(
            seal.open(case, "phone", Some(&sealed)),
            Ok(Some("13900005678".into()))
        );
        assert_eq!(
            seal.open(Uuid::new_v4(), "phone", Some(&sealed)),
            Err(SealError::Damaged)
        );
        assert_eq!(
            seal.open(case, "name", Some(&sealed)),
            Err(SealError::Damaged)
        );
        // Each sealing draws its own nonce.
        assert_ne!(
            seal.seal(case, "phone", Some("13900005678")).unwrap(),
            sealed
        );
    }

    #[test]
    fn an_older_key_still_opens_and_the_current_one_seals() {
        let case = Uuid::new_v4();
        let old = seal(K1).seal(case, "name", Some("测试某")).unwrap();
        let both = seal(&format!("{K2}\n{K1}"));
        assert_eq!(
            both.open(case, "name", Some(&old)),
            Ok(Some("测试某".into()))
        );
        assert!(!both.is_current(&old));
        let new = both.seal(case, "name", Some("测试某")).unwrap();
        assert!(both.is_current(&new));
        assert_eq!(
            seal(K1).open(case, "name", Some(&new)),
            Err(SealError::UnknownKey("k2".into()))
        );
    }

    #[test]
    fn plaintext_from_before_keys_is_read_as_it_is() {
        let case = Uuid::new_v4();
        assert_eq!(
            seal(K1).open(case, "phone", Some("13900005678")),
            Ok(Some("13900005678".into()))
        );
        assert_eq!(
            Seal::default().seal(case, "phone", Some("1")),
            Some("1".into())
        );
    }

    #[test]
    fn equal_phones_hash_alike_and_reveal_nothing() {
        let seal = seal(K1);
        let a = seal.phone_hash(Some("139-0000-5678")).unwrap();
        assert_eq!(Some(a.clone()), seal.phone_hash(Some("13900005678")));
        assert_ne!(Some(a.clone()), seal.phone_hash(Some("13900005679")));
        assert!(!a.contains("5678"));
        assert_eq!(Seal::default().phone_hash(Some("13900005678")), None);
    }

    #[test]
    fn key_files_are_checked() {
        assert!(Seal::parse("").is_err());
        assert!(Seal::parse("k1 00").is_err());
        assert!(Seal::parse(&format!("{K1}\n{K1}")).is_err());
        let line = Seal::new_key_line("2026-12");
        assert!(Seal::parse(&line).is_ok());
    }
}
