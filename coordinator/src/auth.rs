//! Bearer-token authentication: roles, what each may do, and the per-route guard.
//!
//! Tokens are compared in constant time (on their SHA-256, so the length does not leak either)
//! and never logged. With no token configured the service trusts only loopback peers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::ExtensionRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// What a token lets its holder be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uploads blobs, submits builds, reads.
    Client,
    /// Leases work and reports results (and so reads inputs and uploads outputs).
    Worker,
    /// Reads the cache only.
    Reader,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses `client`, `worker`, `reader` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "client" => Some(Role::Client),
            "worker" => Some(Role::Worker),
            "reader" => Some(Role::Reader),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role may do `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Client => matches!(p, Read | Upload | Submit),
            Role::Worker => matches!(p, Read | Upload | Work),
            Role::Reader => matches!(p, Read),
        }
    }
}

/// What an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read blobs, the action cache and the status.
    Read,
    /// Upload blobs.
    Upload,
    /// Submit builds and pin blobs for them.
    Submit,
    /// Lease actions and report results.
    Work,
    /// Administer the service.
    Admin,
}

/// The configured tokens, kept only as hashes.
pub struct Auth {
    tokens: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth {{ {} tokens }}", self.tokens.len())
    }
}

impl Auth {
    /// Builds the token table; an empty list means loopback-only access.
    pub fn new(tokens: &[(Role, String)]) -> Auth {
        Auth {
            tokens: tokens
                .iter()
                .map(|(role, t)| (Sha256::digest(t.as_bytes()).into(), *role))
                .collect(),
        }
    }

    /// Whether no tokens are configured (and so only loopback peers are served).
    pub fn loopback_only(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The role of a presented token, comparing against every configured token in constant time.
    fn role_of(&self, presented: &str) -> Option<Role> {
        let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (stored, role) in &self.tokens {
            // No early exit: every token is compared whatever matched.
            if bool::from(stored.ct_eq(&h)) && found.is_none() {
                found = Some(*role);
            }
        }
        found
    }

    /// Decides a request: its `Authorization` header value and peer address against `need`.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        peer: Option<SocketAddr>,
        need: Permission,
    ) -> Result<Role, ApiError> {
        if self.loopback_only() {
            return match peer {
                Some(addr) if addr.ip().is_loopback() => Ok(Role::Admin),
                _ => Err(ApiError::Forbidden(
                    "no tokens are configured, so this coordinator accepts only loopback connections".into(),
                )),
            };
        }
        let Some(value) = authorization else {
            return Err(ApiError::Unauthorized("missing bearer token".into()));
        };
        let token = std::str::from_utf8(value)
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        let role = self
            .role_of(token)
            .ok_or_else(|| ApiError::Unauthorized("invalid token".into()))?;
        if role.allows(need) {
            Ok(role)
        } else {
            Err(ApiError::Forbidden(
                format!("the {role:?} role may not do this ({need:?} required)").to_lowercase(),
            ))
        }
    }
}

/// State of one route's guard: the token table and what the route needs.
#[derive(Clone)]
pub struct Guard {
    /// The token table.
    pub auth: Arc<Auth>,
    /// The permission the guarded routes require.
    pub need: Permission,
}

/// Middleware: lets the request through only if it may do `guard.need`.
pub async fn require(
    State(guard): State<Guard>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // The extractor also finds the address that `MockConnectInfo` provides in tests.
    let peer = peer.ok().map(|c| c.0);
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    guard.auth.check(authz, peer, guard.need)?;
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4]) -> Option<SocketAddr> {
        Some(SocketAddr::from((ip, 40000)))
    }

    #[test]
    fn loopback_only_without_tokens() {
        let auth = Auth::new(&[]);
        assert!(auth.loopback_only());
        assert_eq!(
            auth.check(None, peer([127, 0, 0, 1]), Permission::Admin)
                .ok(),
            Some(Role::Admin)
        );
        assert!(matches!(
            auth.check(None, peer([10, 0, 0, 2]), Permission::Read),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            auth.check(None, None, Permission::Read),
            Err(ApiError::Forbidden(_))
        ));
        let v6 = Some("[::1]:5".parse().unwrap_or_else(|e| panic!("{e}")));
        assert!(auth.check(None, v6, Permission::Upload).is_ok());
    }

    #[test]
    fn roles_and_tokens() {
        let auth = Auth::new(&[
            (Role::Client, "c".into()),
            (Role::Reader, "r".into()),
            (Role::Worker, "w".into()),
        ]);
        let local = peer([127, 0, 0, 1]);
        assert!(
            matches!(
                auth.check(None, local, Permission::Read),
                Err(ApiError::Unauthorized(_))
            ),
            "tokens apply to loopback too"
        );
        assert!(matches!(
            auth.check(Some(b"Bearer nope"), local, Permission::Read),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            auth.check(Some(b"Basic Yzpj"), local, Permission::Read),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            auth.check(Some(&[0xff, 0xfe]), local, Permission::Read),
            Err(ApiError::Unauthorized(_))
        ));
        assert_eq!(
            auth.check(Some(b"Bearer c"), local, Permission::Upload)
                .ok(),
            Some(Role::Client)
        );
        assert!(matches!(
            auth.check(Some(b"Bearer r"), local, Permission::Upload),
            Err(ApiError::Forbidden(_))
        ));
        assert!(auth
            .check(Some(b"Bearer r"), peer([8, 8, 8, 8]), Permission::Read)
            .is_ok());
        assert!(matches!(
            auth.check(Some(b"Bearer c"), local, Permission::Work),
            Err(ApiError::Forbidden(_))
        ));
        assert!(auth
            .check(Some(b"Bearer w"), local, Permission::Work)
            .is_ok());
        assert!(matches!(
            auth.check(Some(b"Bearer w"), local, Permission::Submit),
            Err(ApiError::Forbidden(_))
        ));
    }
}
