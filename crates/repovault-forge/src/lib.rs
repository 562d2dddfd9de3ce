//! Forge API clients. One HTTP layer ([`http::Client`]) handles authentication, pagination,
//! conditional requests, rate limits and retries for every request; adapters (GitHub and GitHub
//! Enterprise today) sit on top of it behind the [`Forge`] trait.
//!
//! Everything a forge sends is untrusted: names are checked, links must stay on the API's origin,
//! and file paths handed to a [`MetaSink`] are built only from numbers and sanitised names.
//! Nothing here prints or logs a token.

mod auth;
mod error;
mod export;
pub mod github;
pub mod http;
mod limits;

pub use auth::{AppCredentials, Credentials, Identity};
pub use error::{ErrorKind, ForgeError};
pub use export::{
    CachedList, CachedPage, ExportOptions, ListCache, MetaCapture, MetaOutcome, MetaSink, MetaState,
};
pub use limits::{ApiStats, RetryPolicy};

use secrecy::SecretString;

/// Which repositories a source asks for.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub orgs: Vec<String>,
    pub users: Vec<String>,
    pub starred_by: Vec<String>,
    /// `owner/name`.
    pub repos: Vec<String>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
            && self.users.is_empty()
            && self.starred_by.is_empty()
            && self.repos.is_empty()
    }
}

/// A repository as the forge lists it. `owner` and `name` are checked to be plain names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRepo {
    pub owner: String,
    pub name: String,
    /// HTTPS clone URL, on the forge's own host.
    pub clone_url: String,
    pub fork: bool,
    pub archived: bool,
    pub private: bool,
    pub has_wiki: bool,
}

impl RemoteRepo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The wiki's git URL (`….wiki.git`); it exists only once the wiki has a page.
    pub fn wiki_url(&self) -> String {
        let base = self
            .clone_url
            .strip_suffix(".git")
            .unwrap_or(&self.clone_url);
        format!("{base}.wiki.git")
    }
}

/// A gist of a listed user.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteGist {
    pub id: String,
    pub owner: String,
    pub git_url: String,
    /// The gist as listed (description, files, timestamps).
    pub raw: serde_json::Value,
}

/// What listing a source found; a target (org, user, repository) that failed does not stop
/// the others.
#[derive(Debug, Default)]
pub struct Discovery {
    pub repos: Vec<RemoteRepo>,
    pub failures: Vec<(String, ForgeError)>,
}

/// Credentials for git over HTTPS to the forge.
#[derive(Clone)]
pub struct GitToken {
    pub username: String,
    pub token: SecretString,
}

impl std::fmt::Debug for GitToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitToken({}, ***)", self.username)
    }
}

/// One forge: discovery, git credentials, metadata export and request figures.
#[async_trait::async_trait]
pub trait Forge: Send + Sync + std::fmt::Debug {
    /// `github`, …
    fn kind(&self) -> &'static str;
    /// The host snapshots are filed under (the forge's web host).
    fn host(&self) -> &str;
    /// Lists the selected repositories; `cache` keeps listing pages for conditional requests.
    async fn discover(&self, selection: &Selection, cache: &mut ListCache) -> Discovery;
    async fn gists(&self, user: &str, cache: &mut ListCache)
        -> Result<Vec<RemoteGist>, ForgeError>;
    /// A token for git, current at the time of asking (App tokens are renewed).
    async fn git_token(&self, owner: &str) -> Result<Option<GitToken>, ForgeError>;
    /// Exports a repository's metadata into `sink`, updating `state`.
    async fn export(
        &self,
        repo: &RemoteRepo,
        options: &ExportOptions,
        state: &mut MetaState,
        sink: &mut dyn MetaSink,
    ) -> Result<MetaOutcome, ForgeError>;
    fn stats(&self) -> ApiStats;
}
