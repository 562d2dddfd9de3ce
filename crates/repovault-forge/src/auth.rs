//! Who a request is made as: a personal or fine-grained token, or a GitHub App.
//!
//! An App signs a short JWT (RS256) with its private key and trades it for an installation
//! access token per installation. Installation tokens live an hour; they are renewed when less
//! than a quarter of their lifetime is left (at most ten minutes before expiry), so a long run
//! never sends an expired one and a short test lifetime still gets renewed in time.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::ForgeError;

/// How the client authenticates.
#[derive(Clone, Default)]
pub enum Credentials {
    /// Public data only, at the low anonymous rate limit.
    #[default]
    Anonymous,
    Token(SecretString),
    App(AppCredentials),
}

#[derive(Clone)]
pub struct AppCredentials {
    /// The App's id (or client id): the JWT's issuer.
    pub app_id: String,
    /// The App's private key, PEM.
    pub private_key_pem: SecretString,
    /// Installations to use; empty: discover every installation of the App.
    pub installation_ids: Vec<u64>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Token(_) => f.write_str("Token(***)"),
            Self::App(a) => write!(
                f,
                "App(id={}, installations={:?}, key=***)",
                a.app_id, a.installation_ids
            ),
        }
    }
}

/// Who one request is made as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// The App itself (JWT): installations and token exchange only.
    App,
    /// One App installation's token.
    Installation(u64),
    /// The configured token, or for an App the first installation.
    Default,
}

/// An installation token and when to renew it.
#[derive(Clone)]
pub(crate) struct InstallationToken {
    pub token: SecretString,
    pub renew_at: SystemTime,
}

impl InstallationToken {
    pub fn new(token: SecretString, expires_at: SystemTime) -> Self {
        let now = SystemTime::now();
        let lifetime = expires_at.duration_since(now).unwrap_or_default();
        let margin = (lifetime / 4).min(Duration::from_secs(600));
        Self {
            token,
            renew_at: expires_at.checked_sub(margin).unwrap_or(now),
        }
    }

    pub fn fresh(&self) -> bool {
        SystemTime::now() < self.renew_at
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

/// The App side of the credentials: the signing key and the token cache.
pub(crate) struct AppAuth {
    app_id: String,
    key: EncodingKey,
    pub configured: Vec<u64>,
    pub tokens: tokio::sync::Mutex<HashMap<u64, InstallationToken>>,
    /// Account login (lower case) → installation, filled when installations are listed.
    pub owners: std::sync::Mutex<HashMap<String, u64>>,
}

impl AppAuth {
    pub fn new(c: &AppCredentials) -> Result<Self, ForgeError> {
        let key = EncodingKey::from_rsa_pem(c.private_key_pem.expose_secret().as_bytes()).map_err(
            |e| ForgeError::local(format!("the App private key is not an RSA PEM key: {e}")),
        )?;
        Ok(Self {
            app_id: c.app_id.clone(),
            key,
            configured: c.installation_ids.clone(),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            owners: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A JWT valid for nine minutes, issued a minute in the past against clock drift (GitHub
    /// refuses lifetimes over ten minutes).
    pub fn jwt(&self) -> Result<SecretString, ForgeError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iat: now.saturating_sub(60),
            exp: now + 540,
            iss: &self.app_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| ForgeError::local(format!("signing the App JWT: {e}")))
    }

    pub fn owner_installation(&self, owner: &str) -> Option<u64> {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&owner.to_ascii_lowercase())
            .copied()
    }

    pub fn remember_owner(&self, owner: &str, id: u64) {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(owner.to_ascii_lowercase(), id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_with_a_relative_margin() {
        let t = InstallationToken::new(
            SecretString::from("x"),
            SystemTime::now() + Duration::from_secs(3600),
        );
        let margin = SystemTime::now() + Duration::from_secs(3600) - Duration::from_secs(600);
        assert!(t.renew_at <= margin && t.fresh());
        let short = InstallationToken::new(
            SecretString::from("x"),
            SystemTime::now() + Duration::from_secs(8),
        );
        assert!(short.fresh());
        assert!(short.renew_at <= SystemTime::now() + Duration::from_secs(7));
        let expired = InstallationToken::new(SecretString::from("x"), SystemTime::now());
        assert!(!expired.fresh());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::Token(SecretString::from("ghp_secret"));
        assert!(!format!("{c:?}").contains("ghp_secret"));
    }
}
