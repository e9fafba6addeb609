//! Bearer tokens and roles.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::dlq::Filter;
use crate::settings::Role;
use crate::store::audit::Actor;

/// Who is calling, as far as the audit trail needs to know.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// The connectors a department's token is for; `None`: every one.
    pub scope: Option<Vec<String>>,
}

impl Caller {
    /// How the audit trail names this caller, and where the request came
    /// from: the peer's address, and what a proxy says it forwarded for.
    pub fn actor(&self, peer: SocketAddr, headers: &HeaderMap) -> Actor {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                crate::message::printable(&v.chars().take(200).collect::<String>()).into_owned()
            });
        Actor {
            name: format!("token:{}", self.name),
            origin: Some(match forwarded {
                Some(client) => format!("{} (forwarded for {client})", peer.ip()),
                None => peer.ip().to_string(),
            }),
        }
    }

    /// Whether this caller may see what concerns `connector`.
    pub fn sees(&self, connector: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|scope| scope.iter().any(|c| c == connector))
    }

    /// 403 unless the caller sees `connector`.
    pub fn may_see(&self, connector: &str) -> Result<(), ApiError> {
        match self.sees(connector) {
            true => Ok(()),
            false => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this token is not for {connector}"),
            )),
        }
    }

    /// The filter narrowed to the caller's connectors: 403 if it names
    /// another.
    pub fn narrow(&self, mut filter: Filter) -> Result<Filter, ApiError> {
        if let Some(connector) = &filter.connector {
            self.may_see(connector)?;
        }
        filter.within = self.scope.clone();
        Ok(filter)
    }

    /// 403 for a department's token: what the whole district shares.
    pub fn district_wide(&self, what: &str) -> Result<(), ApiError> {
        match self.scope {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{what} is the district's: this token is for its connectors only"),
            )),
        }
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
        scope: (!token.connectors.is_empty()).then(|| token.connectors.clone()),
    })
}
