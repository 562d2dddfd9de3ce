//! What the simulated forge knows: accounts, repositories and everything in them.
//!
//! The model holds facts only (ids, numbers, names, texts, timestamps as epoch seconds); the
//! JSON shapes GitHub serves are produced from it by `render`. Git data (refs, commits) is read
//! back from the bare repositories after they are built or changed, so the API and git always
//! agree.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::forge::util::Epoch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountKind {
    User,
    Organization,
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: u64,
    pub login: String,
    pub kind: AccountKind,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub blog: String,
    pub location: Option<String>,
    pub bio: Option<String>,
    pub description: Option<String>,
    pub site_admin: bool,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    /// Organizations: logins of members; the first `admins` of them are owners.
    pub members: Vec<String>,
    pub admins: usize,
    pub followers: Vec<String>,
    pub following: Vec<String>,
    /// Users: repositories they starred, as (full name, starred at), oldest first.
    pub starred: Vec<(String, Epoch)>,
    /// Users: repositories they watch, by full name.
    pub watching: Vec<String>,
}

impl Account {
    pub(crate) fn is_org(&self) -> bool {
        self.kind == AccountKind::Organization
    }
}

#[derive(Debug, Clone)]
pub(crate) struct License {
    pub key: &'static str,
    pub name: &'static str,
    pub spdx_id: &'static str,
}

/// Repository settings shown to admins in `GET /repos/{owner}/{repo}`.
#[derive(Debug, Clone)]
pub(crate) struct RepoSettings {
    pub allow_squash_merge: bool,
    pub allow_merge_commit: bool,
    pub allow_rebase_merge: bool,
    pub allow_auto_merge: bool,
    pub delete_branch_on_merge: bool,
    pub allow_update_branch: bool,
    pub use_squash_pr_title_as_default: bool,
    pub squash_merge_commit_title: &'static str,
    pub squash_merge_commit_message: &'static str,
    pub merge_commit_title: &'static str,
    pub merge_commit_message: &'static str,
    pub allow_forking: bool,
    pub web_commit_signoff_required: bool,
}

impl Default for RepoSettings {
    fn default() -> Self {
        RepoSettings {
            allow_squash_merge: true,
            allow_merge_commit: true,
            allow_rebase_merge: true,
            allow_auto_merge: false,
            delete_branch_on_merge: false,
            allow_update_branch: false,
            use_squash_pr_title_as_default: false,
            squash_merge_commit_title: "COMMIT_OR_PR_TITLE",
            squash_merge_commit_message: "COMMIT_MESSAGES",
            merge_commit_title: "MERGE_MESSAGE",
            merge_commit_message: "PR_TITLE",
            allow_forking: true,
            web_commit_signoff_required: false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub topics: Vec<String>,
    pub private: bool,
    /// "public", "private" or "internal".
    pub visibility: &'static str,
    /// Full name of the repository this one was forked from.
    pub fork_of: Option<String>,
    pub archived: bool,
    pub is_template: bool,
    pub has_issues: bool,
    pub has_projects: bool,
    pub has_wiki: bool,
    pub has_pages: bool,
    pub has_discussions: bool,
    pub has_downloads: bool,
    pub language: Option<String>,
    pub license: Option<License>,
    pub default_branch: String,
    pub settings: RepoSettings,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub pushed_at: Option<Epoch>,
    pub stargazers: u64,
    pub watchers: u64,
    /// Whether `<name>.wiki.git` exists (GitHub creates it with the first wiki page).
    pub wiki_exists: bool,
    pub issues: BTreeMap<u64, Issue>,
    pub releases: Vec<Release>,
    pub labels: Vec<Label>,
    pub milestones: Vec<Milestone>,
    pub hooks: Vec<Hook>,
    /// LFS objects this repository's history points to, by oid.
    pub lfs: BTreeMap<String, LfsObject>,
    /// Read from the bare repository: every ref and its object id, and the commits.
    pub git: GitFacts,
}

impl Repo {
    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub(crate) fn open_issues_count(&self) -> usize {
        // GitHub counts open pull requests as open issues here.
        self.issues.values().filter(|i| i.state_open()).count()
    }
}

/// Refs and commits of one bare repository, as git reports them.
#[derive(Debug, Clone, Default)]
pub(crate) struct GitFacts {
    pub refs: BTreeMap<String, String>,
    /// Annotated tags: ref name → the commit the tag object points to.
    pub peeled: BTreeMap<String, String>,
    pub commits: HashMap<String, Arc<CommitInfo>>,
    pub size_kb: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct CommitInfo {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub author_time: Epoch,
    pub committer_name: String,
    pub committer_email: String,
    pub committer_time: Epoch,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssueState {
    Open,
    Closed,
}

#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub user: String,
    pub state: IssueState,
    /// "completed", "not_planned" or "reopened" (null while open and never closed).
    pub state_reason: Option<&'static str>,
    pub locked: bool,
    pub active_lock_reason: Option<&'static str>,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub milestone: Option<u64>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub closed_at: Option<Epoch>,
    pub closed_by: Option<String>,
    pub author_association: &'static str,
    pub comments: Vec<Comment>,
    pub events: Vec<Event>,
    pub pull: Option<Pull>,
}

impl Issue {
    pub(crate) fn state_open(&self) -> bool {
        self.state == IssueState::Open
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Comment {
    pub id: u64,
    pub user: String,
    pub body: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub author_association: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub id: u64,
    pub actor: String,
    /// GitHub's event name: "closed", "reopened", "labeled", "assigned", "milestoned",
    /// "renamed", "merged", "head_ref_force_pushed", "review_requested", ...
    pub event: &'static str,
    pub created_at: Epoch,
    pub commit_id: Option<String>,
    pub label: Option<String>,
    pub assignee: Option<String>,
    pub milestone: Option<String>,
    pub rename: Option<(String, String)>,
    pub requested_reviewer: Option<String>,
}

impl Event {
    pub(crate) fn new(id: u64, actor: &str, event: &'static str, at: Epoch) -> Event {
        Event {
            id,
            actor: actor.to_owned(),
            event,
            created_at: at,
            commit_id: None,
            label: None,
            assignee: None,
            milestone: None,
            rename: None,
            requested_reviewer: None,
        }
    }
}

/// What makes an issue a pull request.
#[derive(Debug, Clone)]
pub(crate) struct Pull {
    pub id: u64,
    pub head_ref: String,
    pub base_ref: String,
    pub draft: bool,
    pub merged_at: Option<Epoch>,
    pub merged_by: Option<String>,
    /// The commit the merge produced on the base branch (squash merges in fixtures).
    pub merge_commit_sha: Option<String>,
    pub requested_reviewers: Vec<String>,
    pub reviews: Vec<Review>,
    pub review_comments: Vec<ReviewComment>,
}

#[derive(Debug, Clone)]
pub(crate) struct Review {
    pub id: u64,
    pub user: String,
    pub body: String,
    /// "APPROVED", "CHANGES_REQUESTED", "COMMENTED" or "DISMISSED".
    pub state: &'static str,
    pub submitted_at: Epoch,
    pub commit_id: String,
    pub author_association: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct ReviewComment {
    pub id: u64,
    pub review_id: Option<u64>,
    pub in_reply_to: Option<u64>,
    pub user: String,
    pub body: String,
    pub path: String,
    pub line: u64,
    pub diff_hunk: String,
    pub commit_id: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub author_association: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct Release {
    pub id: u64,
    pub tag_name: String,
    pub target_commitish: String,
    pub name: Option<String>,
    pub body: Option<String>,
    pub draft: bool,
    pub prerelease: bool,
    pub author: String,
    pub created_at: Epoch,
    pub published_at: Option<Epoch>,
    pub assets: Vec<Asset>,
}

#[derive(Debug, Clone)]
pub(crate) struct Asset {
    pub id: u64,
    pub name: String,
    pub label: Option<String>,
    pub content_type: String,
    pub data: AssetData,
    pub download_count: u64,
    pub uploader: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
}

/// Asset bytes: kept for small fixtures and mutations, generated from a seed for large ones.
#[derive(Debug, Clone)]
pub(crate) enum AssetData {
    Bytes(Arc<Vec<u8>>),
    Seeded { seed: u64, len: usize },
}

impl AssetData {
    pub(crate) fn len(&self) -> usize {
        match self {
            AssetData::Bytes(b) => b.len(),
            AssetData::Seeded { len, .. } => *len,
        }
    }

    pub(crate) fn bytes(&self) -> Arc<Vec<u8>> {
        match self {
            AssetData::Bytes(b) => b.clone(),
            AssetData::Seeded { seed, len } => {
                Arc::new(crate::forge::util::seeded_bytes(*seed, *len))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
    pub default: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Milestone {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub description: Option<String>,
    pub open: bool,
    pub creator: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub closed_at: Option<Epoch>,
    pub due_on: Option<Epoch>,
}

#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub id: u64,
    pub active: bool,
    pub events: Vec<String>,
    pub url: String,
    pub content_type: &'static str,
    pub insecure_ssl: &'static str,
    /// Never served: GitHub masks it as "********".
    pub secret: Option<String>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
}

#[derive(Debug, Clone)]
pub(crate) struct LfsObject {
    pub size: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Gist {
    pub id: String,
    pub owner: String,
    pub description: Option<String>,
    pub public: bool,
    /// (file name, content), sorted by name as GitHub serves them.
    pub files: Vec<(String, String)>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    pub comments: u64,
    /// Logins of users who starred it.
    pub starred_by: Vec<String>,
    pub git: GitFacts,
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub id: u64,
    pub slug: String,
    pub client_id: String,
    pub name: String,
    pub owner: String,
    pub description: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
    /// PEM of the public key that verifies the App's JWTs.
    pub public_key_pem: String,
    pub private_key_path: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct Installation {
    pub id: u64,
    pub app_id: u64,
    pub account: String,
    /// None: all repositories of the account; Some: the selected full names.
    pub repositories: Option<Vec<String>>,
    pub created_at: Epoch,
    pub updated_at: Epoch,
}

/// Everything the simulator serves.
#[derive(Debug, Default)]
pub(crate) struct World {
    /// By lower-case login.
    pub accounts: BTreeMap<String, Account>,
    /// By lower-case full name.
    pub repos: BTreeMap<String, Repo>,
    pub gists: BTreeMap<String, Gist>,
    pub apps: Vec<App>,
    pub installations: Vec<Installation>,
    /// The classic token of each user who has one: (token, login).
    pub user_tokens: Vec<(String, String)>,
    pub ids: IdGen,
}

impl World {
    pub(crate) fn account(&self, login: &str) -> Option<&Account> {
        self.accounts.get(&login.to_ascii_lowercase())
    }

    pub(crate) fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&full_name.to_ascii_lowercase())
    }

    pub(crate) fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full_name.to_ascii_lowercase())
    }

    pub(crate) fn repo_by_id(&self, id: u64) -> Option<&Repo> {
        self.repos.values().find(|r| r.id == id)
    }

    pub(crate) fn account_by_id(&self, id: u64) -> Option<&Account> {
        self.accounts.values().find(|a| a.id == id)
    }

    /// Repositories whose `fork_of` is `full_name`.
    pub(crate) fn forks_of(&self, full_name: &str) -> usize {
        self.repos
            .values()
            .filter(|r| {
                r.fork_of
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(full_name))
            })
            .count()
    }

    /// Whether `login` belongs to organization `org` (`admin`: as an owner).
    pub(crate) fn is_member(&self, org: &str, login: &str, admin: bool) -> bool {
        self.account(org).is_some_and(|o| {
            let members = if admin {
                &o.members[..o.admins.min(o.members.len())]
            } else {
                &o.members[..]
            };
            members.iter().any(|m| m.eq_ignore_ascii_case(login))
        })
    }
}

/// Id counters, one per kind of object, as GitHub's ids are unique per kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdGen {
    next: HashMap<&'static str, u64>,
}

impl IdGen {
    /// The next id of `kind`. Kinds start at different bases so that ids of different kinds
    /// rarely collide, which catches clients that mix them up.
    pub(crate) fn next(&mut self, kind: &'static str) -> u64 {
        let base = match kind {
            "account" => 1_000,
            "repo" => 100_000,
            "issue" => 2_000_000,
            "pull" => 3_000_000,
            "comment" => 4_000_000,
            "event" => 5_000_000,
            "review" => 6_000_000,
            "review_comment" => 7_000_000,
            "release" => 8_000_000,
            "asset" => 9_000_000,
            "label" => 10_000_000,
            "milestone" => 11_000_000,
            "hook" => 12_000_000,
            "installation" => 40_000,
            "app" => 300,
            _ => 90_000_000,
        };
        let n = self.next.entry(kind).or_insert(base);
        *n += 1;
        *n
    }
}
