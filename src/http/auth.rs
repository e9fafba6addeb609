//! Bearer tokens and roles.

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::settings::Role;

/// Who is calling, as far as the audit trail needs to know.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// How the audit trail names this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }
}

/// The caller, if the request carries a known token with at least `need`:
/// 401 without a token or with an unknown one, 403 with too small a role.
pub fn authorize(state: &AppState, headers: &HeaderMap, need: Role) -> Result<Caller, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    // Compare digests in constant time: neither the length nor a prefix of a
    // token leaks through timing.
    let digest = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for token in &state.tokens {
        let expected = token.digest();
        let same = digest
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && found.is_none() {
            found = Some(token);
        }
    }
    let token = found.ok_or_else(unauthorized)?;
    if token.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("the {} role is needed", need.as_str()),
        ));
    }
    Ok(Caller {
        name: token.name.clone(),
        role: token.role,
    })
}
