//! GitHub and GitHub Enterprise Server.
//!
//! The API base is `https://api.github.com` or `https://<host>/api/v3`; clone URLs must be on the
//! API's host or, for github.com, on the host without `api.`.

mod discover;
mod meta;

use secrecy::SecretString;

use crate::http::{Client, ClientConfig};
use crate::{
    Discovery, ExportOptions, Forge, ForgeError, GitToken, ListCache, MetaOutcome, MetaSink,
    MetaState, RemoteGist, RemoteRepo, Selection,
};

#[derive(Debug)]
pub struct GitHub {
    client: Client,
    host: String,
}

impl GitHub {
    pub fn new(config: ClientConfig) -> Result<Self, ForgeError> {
        let client = Client::new(config)?;
        let api_host = client.api().host_str().unwrap_or_default().to_owned();
        let host = match client.api().port() {
            Some(p) => format!("{}:{p}", web_host(&api_host)),
            None => web_host(&api_host).to_owned(),
        };
        Ok(Self { client, host })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// `api.github.com` → `github.com`; Enterprise hosts serve both from one name.
fn web_host(api_host: &str) -> &str {
    api_host.strip_prefix("api.").unwrap_or(api_host)
}

/// GitHub's own rule for owner and repository names, which also keeps them safe in URL paths.
pub(crate) fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[async_trait::async_trait]
impl Forge for GitHub {
    fn kind(&self) -> &'static str {
        "github"
    }

    fn host(&self) -> &str {
        &self.host
    }

    async fn discover(&self, selection: &Selection, cache: &mut ListCache) -> Discovery {
        discover::discover(self, selection, cache).await
    }

    async fn gists(
        &self,
        user: &str,
        cache: &mut ListCache,
    ) -> Result<Vec<RemoteGist>, ForgeError> {
        discover::gists(self, user, cache).await
    }

    async fn git_token(&self, owner: &str) -> Result<Option<GitToken>, ForgeError> {
        let token: Option<SecretString> = self.client.git_token(owner).await?;
        Ok(token.map(|token| GitToken {
            // GitHub takes any user name with a token; App tokens document this one.
            username: "x-access-token".into(),
            token,
        }))
    }

    async fn export(
        &self,
        repo: &RemoteRepo,
        options: &ExportOptions,
        state: &mut MetaState,
        sink: &mut dyn MetaSink,
    ) -> Result<MetaOutcome, ForgeError> {
        meta::export(self, repo, options, state, sink).await
    }

    fn stats(&self) -> crate::ApiStats {
        self.client.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hosts() {
        assert!(plain_name("acme.app-1_x"));
        assert!(!plain_name(".."));
        assert!(!plain_name("a/b"));
        assert!(!plain_name("a%2e"));
        assert_eq!(web_host("api.github.com"), "github.com");
        assert_eq!(web_host("ghe.example.com"), "ghe.example.com");
    }
}
