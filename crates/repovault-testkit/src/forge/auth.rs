//! Who is asking: credentials as GitHub accepts them, App JWTs, installation tokens.
//!
//! The REST API takes `Authorization: token X`, `Bearer X` or Basic with the token as the
//! password (any user name) or as the user name (`TOKEN:x-oauth-basic`). Git over HTTPS takes
//! Basic only. A JWT signed with an App's private key (RS256, `iss` = App id or client id,
//! `exp` at most ten minutes ahead) authenticates as the App, which may exchange it for an
//! installation token with an `expires_at`; expired tokens get 401 like unknown ones.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::forge::model::World;
use crate::forge::util::{now, sign, Epoch};

/// The authenticated principal of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    Anonymous,
    /// A user's classic token.
    User(String),
    /// An installation token; `repos` narrows it to those repositories (lower-case full names).
    Installation {
        id: u64,
        repos: Option<Vec<String>>,
    },
    /// A JWT of the App with this id.
    App(u64),
}

impl Identity {
    /// The rate-limit bucket this identity spends from.
    pub(crate) fn bucket(&self) -> String {
        match self {
            Identity::Anonymous => "anonymous".into(),
            Identity::User(login) => format!("user:{}", login.to_ascii_lowercase()),
            Identity::Installation { id, .. } => format!("installation:{id}"),
            Identity::App(id) => format!("app:{id}"),
        }
    }
}

/// Credentials found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    None,
    Token(String),
    Jwt(String),
    /// Present but unusable (unknown scheme, undecodable Basic).
    Malformed,
}

/// Reads an API `Authorization` header.
pub(crate) fn api_credential(header: Option<&str>) -> Credential {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Credential::None;
    };
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "token" | "bearer" if looks_like_jwt(rest) => Credential::Jwt(rest.to_owned()),
        "token" | "bearer" if !rest.is_empty() => Credential::Token(rest.to_owned()),
        "basic" => match basic_pair(rest) {
            Some((user, pass)) => Credential::Token(pick_basic_token(&user, &pass)),
            None => Credential::Malformed,
        },
        _ => Credential::Malformed,
    }
}

/// Reads a git-over-HTTPS `Authorization` header: Basic only; the token may be the password
/// (user `x-access-token`, `oauth2`, anything) or the user name (`TOKEN:x-oauth-basic`).
pub(crate) fn git_credential(header: Option<&str>) -> Credential {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Credential::None;
    };
    match h.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
            match basic_pair(rest.trim()) {
                Some((user, pass)) => Credential::Token(pick_basic_token(&user, &pass)),
                None => Credential::Malformed,
            }
        }
        _ => Credential::Malformed,
    }
}

fn basic_pair(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':').unwrap_or((&text, ""));
    Some((user.to_owned(), pass.to_owned()))
}

/// Which half of a Basic pair is the token: GitHub accepts either, and only one of them
/// looks like one ("x-oauth-basic", "x-access-token" and empty strings never do).
fn pick_basic_token(user: &str, pass: &str) -> String {
    const PLACEHOLDERS: [&str; 4] = ["", "x-oauth-basic", "x-access-token", "oauth2"];
    if PLACEHOLDERS.contains(&pass) && !PLACEHOLDERS.contains(&user) {
        user.to_owned()
    } else {
        pass.to_owned()
    }
}

fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

/// An installation token handed out by `POST /app/installations/{id}/access_tokens`.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    pub token: String,
    pub installation: u64,
    pub expires_at: Epoch,
    pub repos: Option<Vec<String>>,
}

/// Tokens issued so far and how long new ones live.
#[derive(Debug)]
pub(crate) struct AuthState {
    pub issued: Vec<IssuedToken>,
    /// Lifetime of new installation tokens (GitHub: one hour).
    pub token_lifetime_secs: u64,
    secret: [u8; 32],
    counter: u64,
}

/// Why a credential was refused: the 401 message GitHub sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthError(pub String);

impl AuthError {
    fn bad_credentials() -> AuthError {
        AuthError("Bad credentials".into())
    }
}

#[derive(Debug, Deserialize)]
struct JwtClaims {
    #[serde(default)]
    iss: Value,
    #[serde(default)]
    iat: Value,
    #[serde(default)]
    exp: Value,
}

/// GitHub refuses App JWTs that expire more than ten minutes after they are checked.
const JWT_MAX_LIFETIME: i64 = 600;
/// Clock drift GitHub tolerates on `iat` and `exp`.
const JWT_LEEWAY: i64 = 60;

impl AuthState {
    pub(crate) fn new(secret: [u8; 32]) -> AuthState {
        AuthState {
            issued: Vec::new(),
            token_lifetime_secs: 3600,
            secret,
            counter: 0,
        }
    }

    /// Resolves a token to the user or installation it belongs to.
    pub(crate) fn resolve(&self, world: &World, token: &str) -> Result<Identity, AuthError> {
        if let Some((_, login)) = world.user_tokens.iter().find(|(t, _)| t == token) {
            return Ok(Identity::User(login.clone()));
        }
        if let Some(t) = self.issued.iter().find(|t| t.token == token) {
            if now() >= t.expires_at {
                return Err(AuthError::bad_credentials());
            }
            return Ok(Identity::Installation {
                id: t.installation,
                repos: t.repos.clone(),
            });
        }
        Err(AuthError::bad_credentials())
    }

    /// Checks an App JWT and returns the App's id.
    pub(crate) fn verify_jwt(&self, world: &World, jwt: &str) -> Result<u64, AuthError> {
        let undecodable = || AuthError("A JSON web token could not be decoded".into());
        let claims: JwtClaims = jsonwebtoken::dangerous::insecure_decode(jwt)
            .map_err(|_| undecodable())?
            .claims;
        let iss = match &claims.iss {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                return Err(AuthError(
                    "'Issuer' claim ('iss') must be an Integer".into(),
                ))
            }
        };
        let app = world
            .apps
            .iter()
            .find(|a| a.id.to_string() == iss || a.client_id == iss)
            .ok_or_else(|| AuthError("Integration not found".into()))?;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes())
            .map_err(|_| undecodable())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = JWT_LEEWAY as u64;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<JwtClaims>(jwt, &key, &validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError(
                    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".into(),
                ),
                _ => undecodable(),
            }
        })?;
        let t = now();
        let exp = claims.exp.as_i64().ok_or_else(undecodable)?;
        if exp > t + JWT_MAX_LIFETIME + JWT_LEEWAY {
            return Err(AuthError(
                "'Expiration time' claim ('exp') is too far in the future".into(),
            ));
        }
        match claims.iat.as_i64() {
            Some(iat) if iat <= t + JWT_LEEWAY => Ok(app.id),
            _ => Err(AuthError(
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".into(),
            )),
        }
    }

    /// A new installation token (`ghs_…`), valid for the configured lifetime.
    pub(crate) fn issue(&mut self, installation: u64, repos: Option<Vec<String>>) -> IssuedToken {
        self.counter += 1;
        let body = sign(
            &self.secret,
            &format!("installation/{installation}/{}", self.counter),
        );
        let token = IssuedToken {
            token: format!("ghs_{}", &body[..36]),
            installation,
            expires_at: now() + self.token_lifetime_secs as i64,
            repos,
        };
        self.issued.push(token.clone());
        token
    }

    /// `DELETE /installation/token`.
    pub(crate) fn revoke(&mut self, token: &str) {
        self.issued.retain(|t| t.token != token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn api_credentials_in_every_accepted_form() {
        let t = |s: &str| Credential::Token(s.to_owned());
        assert_eq!(api_credential(Some("token abc")), t("abc"));
        assert_eq!(api_credential(Some("Bearer abc")), t("abc"));
        assert_eq!(api_credential(Some(&basic("abc:x-oauth-basic"))), t("abc"));
        assert_eq!(api_credential(Some(&basic("x-access-token:abc"))), t("abc"));
        assert_eq!(api_credential(Some(&basic("someone:abc"))), t("abc"));
        assert_eq!(api_credential(None), Credential::None);
        assert_eq!(api_credential(Some("Digest x")), Credential::Malformed);
        assert!(matches!(
            api_credential(Some("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")),
            Credential::Jwt(_)
        ));
    }

    #[test]
    fn git_takes_basic_only() {
        assert_eq!(
            git_credential(Some(&basic("abc:x-oauth-basic"))),
            Credential::Token("abc".into())
        );
        assert_eq!(git_credential(Some("token abc")), Credential::Malformed);
    }
}
