//! Credentials for git child processes, passed only through their environment.
//!
//! Tokens go into an `http.<origin>.extraHeader` set by `GIT_CONFIG_COUNT`/`KEY`/`VALUE`
//! variables, scoped to the remote's origin so a redirect elsewhere never receives them; SSH uses
//! an explicit key and known_hosts with strict checking. Nothing lands in argv, in the URL or in
//! a config file.

use std::path::PathBuf;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::{RemoteUrl, Transport};

/// How to authenticate to one remote.
#[derive(Clone, Default)]
pub enum GitAuth {
    #[default]
    None,
    /// HTTP basic auth with a token as the password (what GitHub, GitLab, Gitea and Bitbucket
    /// accept for git over HTTPS).
    HttpToken {
        username: String,
        token: SecretString,
    },
    /// An SSH private key and the known_hosts file to verify the server against.
    Ssh {
        key_file: PathBuf,
        known_hosts: PathBuf,
    },
    /// A forge over HTTPS: a token when there is one (basic auth, like `HttpToken`) and the CA
    /// bundle to trust for that origin (`http.<origin>.sslCAInfo`, which git-lfs honours too).
    Forge {
        username: String,
        token: Option<SecretString>,
        ca_bundle: Option<PathBuf>,
    },
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::HttpToken { username, .. } => write!(f, "HttpToken({username}, ***)"),
            Self::Forge {
                username,
                token,
                ca_bundle,
            } => write!(
                f,
                "Forge({username}, {}, ca={:?})",
                if token.is_some() { "***" } else { "no token" },
                ca_bundle
            ),
            Self::Ssh {
                key_file,
                known_hosts,
            } => write!(
                f,
                "Ssh(key={}, known_hosts={})",
                key_file.display(),
                known_hosts.display()
            ),
        }
    }
}

impl GitAuth {
    /// Environment variables that make git authenticate to `url`.
    pub(crate) fn env_for(&self, url: &RemoteUrl) -> Vec<(String, String)> {
        let mut config: Vec<(String, String)> = vec![
            // Give up on a stalled transfer instead of hanging a whole run.
            ("http.lowSpeedLimit".into(), "1000".into()),
            ("http.lowSpeedTime".into(), "120".into()),
        ];
        let mut env = Vec::new();
        match (self, url.transport()) {
            (Self::HttpToken { username, token }, Transport::Http) => {
                if let Some(origin) = url.http_origin() {
                    let basic = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", token.expose_secret()));
                    config.push((
                        format!("http.{origin}.extraHeader"),
                        format!("Authorization: Basic {basic}"),
                    ));
                }
            }
            (
                Self::Forge {
                    username,
                    token,
                    ca_bundle,
                },
                Transport::Http,
            ) => {
                if let Some(origin) = url.http_origin() {
                    if let Some(token) = token {
                        let basic = base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:{}", token.expose_secret()));
                        config.push((
                            format!("http.{origin}.extraHeader"),
                            format!("Authorization: Basic {basic}"),
                        ));
                    }
                    if let Some(ca) = ca_bundle {
                        config.push((format!("http.{origin}.sslCAInfo"), ca.display().to_string()));
                    }
                }
            }
            (
                Self::Ssh {
                    key_file,
                    known_hosts,
                },
                Transport::Ssh,
            ) => {
                env.push((
                    "GIT_SSH_COMMAND".into(),
                    format!(
                        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
                        shell_quote(&key_file.display().to_string()),
                        shell_quote(&known_hosts.display().to_string())
                    ),
                ));
            }
            _ => {}
        }
        if url.transport() == Transport::Ssh && !env.iter().any(|(k, _)| k == "GIT_SSH_COMMAND") {
            // Without a configured key, still never prompt.
            env.push((
                "GIT_SSH_COMMAND".into(),
                "ssh -o BatchMode=yes -o ConnectTimeout=30".into(),
            ));
        }
        env.push(("GIT_CONFIG_COUNT".into(), config.len().to_string()));
        for (i, (k, v)) in config.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}"), k));
            env.push((format!("GIT_CONFIG_VALUE_{i}"), v));
        }
        env
    }
}

/// Quotes for the POSIX shell git runs `GIT_SSH_COMMAND` with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_scoped_to_origin_and_absent_from_debug() {
        let auth = GitAuth::HttpToken {
            username: "x".into(),
            token: SecretString::from("s3cr3t"),
        };
        let url = RemoteUrl::parse("https://h.example:8443/a/b.git").expect("valid");
        let env = auth.env_for(&url);
        assert!(env
            .iter()
            .any(|(_, v)| v == "http.https://h.example:8443/.extraHeader"));
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        // Not sent over a different transport.
        let ssh = RemoteUrl::parse("ssh://h/a/b.git").expect("valid");
        assert!(!auth
            .env_for(&ssh)
            .iter()
            .any(|(_, v)| v.contains("Authorization")));
    }

    #[test]
    fn forge_auth_scopes_token_and_ca_to_the_origin() {
        let auth = GitAuth::Forge {
            username: "x-access-token".into(),
            token: Some(SecretString::from("ghs_abc")),
            ca_bundle: Some(PathBuf::from("/tmp/ca.pem")),
        };
        let url = RemoteUrl::parse("https://127.0.0.1:9/a/b.git").expect("valid");
        let env = auth.env_for(&url);
        assert!(env
            .iter()
            .any(|(_, v)| v == "http.https://127.0.0.1:9/.sslCAInfo"));
        assert!(env
            .iter()
            .any(|(_, v)| v.starts_with("Authorization: Basic ")));
        assert!(!format!("{auth:?}").contains("ghs_abc"));
    }

    #[test]
    fn quotes_paths_for_the_shell() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
