//! Knobs, changes and request accounting, as methods of [`ForgeSim`] (the admin API calls
//! the same functions).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::forge::git::load_facts;
use crate::forge::limits::{FaultScope, LfsBreak, RepoFault, SecondaryLimit};
use crate::forge::log::{RequestKind, RequestRecord, RequestSummary};
use crate::forge::model::{Asset, AssetData, Comment, Event, IssueState, Release, Review};
use crate::forge::state::Shared;
use crate::forge::util::{now, Epoch};
use crate::forge::ForgeSim;
use crate::gitcmd::run;

/// Why a change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no repository {0}")]
    NoRepo(String),
    #[error("no issue or pull request #{1} in {0}")]
    NoIssue(String, u64),
    #[error("#{1} in {0} is not a pull request")]
    NotAPull(String, u64),
    #[error("no branch {1} in {0}")]
    NoBranch(String, String),
    #[error("the token is not known to the simulator")]
    UnknownToken,
    #[error("{0}")]
    Invalid(String),
    #[error("git: {0}")]
    Git(#[from] io::Error),
}

/// An edit of an issue or pull request.
#[derive(Debug, Clone, Default)]
pub struct IssueEdit {
    pub title: Option<String>,
    pub body: Option<String>,
    /// `Some(true)` closes, `Some(false)` reopens.
    pub closed: Option<bool>,
    /// Whether `updated_at` moves (GitHub always moves it; `false` simulates the changes that
    /// do not, which only a full pass can catch).
    pub bump_updated_at: bool,
}

/// A timestamp after `previous` and not before now, so every change is visible to `since`.
fn later(previous: Epoch) -> Epoch {
    now().max(previous + 1)
}

impl Shared {
    fn bare(&self, full_name: &str) -> PathBuf {
        self.repos_root.join(format!("{full_name}.git"))
    }

    fn canonical(&self, full_name: &str) -> Result<String, SimError> {
        self.lock()
            .world
            .repo(full_name)
            .map(|r| r.full_name())
            .ok_or_else(|| SimError::NoRepo(full_name.to_owned()))
    }

    fn main_user(&self) -> String {
        self.lock()
            .world
            .user_tokens
            .first()
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| "ghost".into())
    }

    /// Re-reads a repository's refs and commits after git changed it.
    fn reload_git(&self, full_name: &str) -> Result<(), SimError> {
        let facts = load_facts(self.env.git_isolation(), &self.bare(full_name))?;
        let mut st = self.lock();
        let repo = st
            .world
            .repo_mut(full_name)
            .ok_or_else(|| SimError::NoRepo(full_name.to_owned()))?;
        repo.git = facts;
        Ok(())
    }

    fn git(&self, full_name: &str, args: &[&str]) -> Result<String, SimError> {
        let mut cmd = self.env.git_command(&self.bare(full_name));
        cmd.args(args);
        let out = run(&mut cmd, None)?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    pub(crate) fn add_comment(
        &self,
        repo: &str,
        number: u64,
        user: Option<&str>,
        body: &str,
    ) -> Result<u64, SimError> {
        let user = user.map_or_else(|| self.main_user(), str::to_owned);
        let mut st = self.lock();
        let id = st.world.ids.next("comment");
        let r = st
            .world
            .repo_mut(repo)
            .ok_or_else(|| SimError::NoRepo(repo.to_owned()))?;
        let issue = r
            .issues
            .get_mut(&number)
            .ok_or_else(|| SimError::NoIssue(repo.to_owned(), number))?;
        let at = later(issue.updated_at);
        issue.comments.push(Comment {
            id,
            user,
            body: body.to_owned(),
            created_at: at,
            updated_at: at,
            author_association: "MEMBER",
        });
        issue.updated_at = at;
        r.updated_at = r.updated_at.max(at);
        Ok(id)
    }

    pub(crate) fn edit_issue(
        &self,
        repo: &str,
        number: u64,
        edit: &IssueEdit,
    ) -> Result<(), SimError> {
        let user = self.main_user();
        let mut st = self.lock();
        let event_id = st.world.ids.next("event");
        let state_event_id = st.world.ids.next("event");
        let r = st
            .world
            .repo_mut(repo)
            .ok_or_else(|| SimError::NoRepo(repo.to_owned()))?;
        let issue = r
            .issues
            .get_mut(&number)
            .ok_or_else(|| SimError::NoIssue(repo.to_owned(), number))?;
        let at = later(issue.updated_at);
        if let Some(title) = &edit.title {
            if edit.bump_updated_at {
                let mut e = Event::new(event_id, &user, "renamed", at);
                e.rename = Some((issue.title.clone(), title.clone()));
                issue.events.push(e);
            }
            issue.title = title.clone();
        }
        if let Some(body) = &edit.body {
            issue.body = Some(body.clone());
        }
        match edit.closed {
            Some(true) if issue.state_open() => {
                issue.state = IssueState::Closed;
                issue.closed_at = Some(at);
                issue.closed_by = Some(user.clone());
                issue.state_reason = Some("completed");
                issue
                    .events
                    .push(Event::new(state_event_id, &user, "closed", at));
            }
            Some(false) if !issue.state_open() => {
                issue.state = IssueState::Open;
                issue.closed_at = None;
                issue.closed_by = None;
                issue.state_reason = Some("reopened");
                issue
                    .events
                    .push(Event::new(state_event_id, &user, "reopened", at));
            }
            _ => {}
        }
        if edit.bump_updated_at {
            issue.updated_at = at;
            r.updated_at = r.updated_at.max(at);
        }
        Ok(())
    }

    pub(crate) fn add_review(
        &self,
        repo: &str,
        number: u64,
        user: Option<&str>,
        state: &str,
        body: &str,
    ) -> Result<u64, SimError> {
        let state: &'static str = match state {
            "APPROVED" | "approved" => "APPROVED",
            "CHANGES_REQUESTED" | "changes_requested" => "CHANGES_REQUESTED",
            "COMMENTED" | "commented" => "COMMENTED",
            other => return Err(SimError::Invalid(format!("review state {other:?}"))),
        };
        let user = user.map_or_else(|| self.main_user(), str::to_owned);
        let mut st = self.lock();
        let id = st.world.ids.next("review");
        let r = st
            .world
            .repo_mut(repo)
            .ok_or_else(|| SimError::NoRepo(repo.to_owned()))?;
        let head = r
            .git
            .refs
            .get(&format!("refs/pull/{number}/head"))
            .cloned()
            .unwrap_or_default();
        let issue = r
            .issues
            .get_mut(&number)
            .ok_or_else(|| SimError::NoIssue(repo.to_owned(), number))?;
        let at = later(issue.updated_at);
        let pull = issue
            .pull
            .as_mut()
            .ok_or_else(|| SimError::NotAPull(repo.to_owned(), number))?;
        pull.reviews.push(Review {
            id,
            user,
            body: body.to_owned(),
            state,
            submitted_at: at,
            commit_id: head,
            author_association: "MEMBER",
        });
        issue.updated_at = at;
        r.updated_at = r.updated_at.max(at);
        Ok(id)
    }

    pub(crate) fn add_release(
        &self,
        repo: &str,
        tag: &str,
        assets: &[(String, Vec<u8>)],
    ) -> Result<u64, SimError> {
        let full = self.canonical(repo)?;
        let default_branch = self
            .lock()
            .world
            .repo(&full)
            .map(|r| r.default_branch.clone())
            .unwrap_or_default();
        let tag_ref = format!("refs/tags/{tag}");
        let exists = self
            .git(&full, &["rev-parse", "--verify", "--quiet", &tag_ref])
            .is_ok();
        if !exists {
            let tip = self
                .git(
                    &full,
                    &[
                        "rev-parse",
                        "--verify",
                        &format!("refs/heads/{default_branch}"),
                    ],
                )
                .map_err(|_| SimError::NoBranch(full.clone(), default_branch.clone()))?;
            self.git(&full, &["update-ref", &tag_ref, &tip])?;
            self.reload_git(&full)?;
        }
        let author = self.main_user();
        let mut st = self.lock();
        let release_id = st.world.ids.next("release");
        let mut made = Vec::new();
        for (name, bytes) in assets {
            let id = st.world.ids.next("asset");
            made.push((id, name.clone(), bytes.clone()));
        }
        let r = st
            .world
            .repo_mut(&full)
            .ok_or_else(|| SimError::NoRepo(full.clone()))?;
        let at = later(r.updated_at);
        r.releases.push(Release {
            id: release_id,
            tag_name: tag.to_owned(),
            target_commitish: r.default_branch.clone(),
            name: Some(tag.to_owned()),
            body: Some(format!("Release {tag}")),
            draft: false,
            prerelease: false,
            author: author.clone(),
            created_at: at,
            published_at: Some(at),
            assets: made
                .into_iter()
                .map(|(id, name, bytes)| Asset {
                    id,
                    name,
                    label: None,
                    content_type: "application/octet-stream".into(),
                    data: AssetData::Bytes(std::sync::Arc::new(bytes)),
                    download_count: 0,
                    uploader: author.clone(),
                    created_at: at,
                    updated_at: at,
                })
                .collect(),
        });
        r.updated_at = at;
        Ok(release_id)
    }

    /// After `branch` moved: bump the repository, and the pull requests whose head it is.
    fn branch_moved(&self, full: &str, branch: &str, force: bool) -> Result<(), SimError> {
        let new_tip = self.git(
            full,
            &["rev-parse", "--verify", &format!("refs/heads/{branch}")],
        )?;
        let pulls: Vec<u64> = {
            let st = self.lock();
            let r = st
                .world
                .repo(full)
                .ok_or_else(|| SimError::NoRepo(full.to_owned()))?;
            r.issues
                .values()
                .filter(|i| i.state_open())
                .filter(|i| i.pull.as_ref().is_some_and(|p| p.head_ref == branch))
                .map(|i| i.number)
                .collect()
        };
        for n in &pulls {
            self.git(
                full,
                &["update-ref", &format!("refs/pull/{n}/head"), &new_tip],
            )?;
        }
        self.reload_git(full)?;
        let user = self.main_user();
        let mut st = self.lock();
        let mut event_ids = Vec::new();
        for _ in &pulls {
            event_ids.push(st.world.ids.next("event"));
        }
        let r = st
            .world
            .repo_mut(full)
            .ok_or_else(|| SimError::NoRepo(full.to_owned()))?;
        let at = later(r.updated_at.max(r.pushed_at.unwrap_or(0)));
        r.pushed_at = Some(at);
        r.updated_at = at;
        for (n, eid) in pulls.iter().zip(event_ids) {
            if let Some(issue) = r.issues.get_mut(n) {
                if force {
                    let mut e = Event::new(eid, &user, "head_ref_force_pushed", at);
                    e.commit_id = Some(new_tip.clone());
                    issue.events.push(e);
                }
                issue.updated_at = at;
            }
        }
        Ok(())
    }

    pub(crate) fn push_commit(
        &self,
        repo: &str,
        branch: &str,
        path: &str,
        content: &[u8],
        message: &str,
    ) -> Result<String, SimError> {
        let full = self.canonical(repo)?;
        let sha = crate::upstream::try_commit(
            &self.env,
            &self.bare(&full),
            branch,
            path,
            content,
            message,
        )?;
        self.branch_moved(&full, branch, false)?;
        Ok(sha)
    }

    pub(crate) fn force_push(&self, repo: &str, branch: &str) -> Result<String, SimError> {
        let full = self.canonical(repo)?;
        let exists = self
            .git(
                &full,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("refs/heads/{branch}"),
                ],
            )
            .is_ok();
        if !exists {
            return Err(SimError::NoBranch(full, branch.to_owned()));
        }
        let sha = crate::upstream::try_force_push_rewrite(&self.env, &self.bare(&full), branch)?;
        self.branch_moved(&full, branch, true)?;
        Ok(sha)
    }
}

/// Knobs.
impl ForgeSim {
    /// Sets the remaining primary budget of every user token and installation now (the
    /// window keeps its reset time).
    pub fn set_remaining(&self, remaining: u64) {
        let mut st = self.shared().lock();
        let ids = st.all_identities();
        st.limits.set_remaining(&ids, remaining);
    }

    /// Sets the remaining primary budget of the identity `token` belongs to.
    pub fn set_remaining_for(&self, token: &str, remaining: u64) -> Result<(), SimError> {
        let mut st = self.shared().lock();
        let who = st
            .auth
            .resolve(&st.world, token)
            .map_err(|_| SimError::UnknownToken)?;
        st.limits.set_remaining(&[who.bucket()], remaining);
        Ok(())
    }

    /// The remaining `core` budget of `token`'s identity.
    pub fn remaining(&self, token: &str) -> Option<u64> {
        let mut st = self.shared().lock();
        let who = st.auth.resolve(&st.world, token).ok()?;
        Some(st.limits.bucket(&who.bucket(), "core").remaining())
    }

    /// Length of the primary rate-limit window from now on.
    pub fn set_rate_window(&self, window: Duration) {
        self.shared().lock().limits.set_window(window);
    }

    /// Status of exhausted-budget responses: 403 (default) or 429.
    pub fn set_primary_limit_status(&self, status: u16) {
        self.shared().lock().limits.primary_status = if status == 429 { 429 } else { 403 };
    }

    /// Refuses the next `limit.requests` API requests with a secondary rate limit.
    pub fn secondary_limit(&self, limit: SecondaryLimit) {
        self.shared().lock().limits.secondary = Some(limit);
    }

    /// Answers every `n`-th API request (counting from now) with 500; `None` stops it.
    pub fn fail_every_nth(&self, n: Option<u64>) {
        let mut st = self.shared().lock();
        st.faults.fail_every_nth = n;
        st.faults.api_requests_seen = 0;
    }

    pub fn fail_repo(&self, full_name: &str, fault: RepoFault, scope: FaultScope) {
        self.shared()
            .lock()
            .faults
            .repos
            .insert(full_name.to_ascii_lowercase(), (fault, scope));
    }

    pub fn clear_repo_fault(&self, full_name: &str) {
        self.shared()
            .lock()
            .faults
            .repos
            .remove(&full_name.to_ascii_lowercase());
    }

    /// Delays every response by `delay`.
    pub fn set_slow(&self, delay: Option<Duration>) {
        self.shared().lock().faults.slow = delay;
    }

    /// Lifetime of installation tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared().lock().auth.token_lifetime_secs = lifetime.as_secs().max(1);
    }

    pub fn break_lfs_object(&self, oid: &str, how: LfsBreak) {
        self.shared().lock().faults.lfs.insert(oid.to_owned(), how);
    }

    /// Whether asset downloads raise `download_count` as on GitHub (off by default).
    pub fn count_downloads(&self, on: bool) {
        self.shared().lock().faults.count_downloads = on;
    }

    /// Turns every fault off (not the rate-limit settings).
    pub fn clear_faults(&self) {
        let mut st = self.shared().lock();
        let count = st.faults.count_downloads;
        st.faults = Default::default();
        st.faults.count_downloads = count;
        st.limits.secondary = None;
    }

    /// LFS oids referenced by `full_name`'s history.
    pub fn lfs_oids(&self, full_name: &str) -> Vec<String> {
        let st = self.shared().lock();
        st.world
            .repo(full_name)
            .map(|r| r.lfs.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Changes, as someone using GitHub would make them.
impl ForgeSim {
    /// A new comment on issue or pull request `number` by `user` (default: the token owner).
    pub fn add_comment(
        &self,
        repo: &str,
        number: u64,
        user: Option<&str>,
        body: &str,
    ) -> Result<u64, SimError> {
        self.shared().add_comment(repo, number, user, body)
    }

    pub fn edit_issue(&self, repo: &str, number: u64, edit: &IssueEdit) -> Result<(), SimError> {
        self.shared().edit_issue(repo, number, edit)
    }

    /// A new review on pull request `number`; `state` is APPROVED, CHANGES_REQUESTED or
    /// COMMENTED.
    pub fn add_review(
        &self,
        repo: &str,
        number: u64,
        user: Option<&str>,
        state: &str,
        body: &str,
    ) -> Result<u64, SimError> {
        self.shared().add_review(repo, number, user, state, body)
    }

    /// A new published release of `tag` (created on the default branch if missing).
    pub fn add_release(
        &self,
        repo: &str,
        tag: &str,
        assets: &[(&str, &[u8])],
    ) -> Result<u64, SimError> {
        let assets: Vec<(String, Vec<u8>)> = assets
            .iter()
            .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
            .collect();
        self.shared().add_release(repo, tag, &assets)
    }

    /// A new commit on `branch` (created if missing) setting `path` to `content`.
    pub fn push_commit(
        &self,
        repo: &str,
        branch: &str,
        path: &str,
        content: &[u8],
        message: &str,
    ) -> Result<String, SimError> {
        self.shared()
            .push_commit(repo, branch, path, content, message)
    }

    /// Rewrites the tip of `branch` (see [`crate::upstream::force_push_rewrite`]).
    pub fn force_push(&self, repo: &str, branch: &str) -> Result<String, SimError> {
        self.shared().force_push(repo, branch)
    }
}

/// Request accounting.
impl ForgeSim {
    /// A position in the request log; later calls take it as `since`.
    pub fn mark(&self) -> u64 {
        self.shared().lock().log.mark()
    }

    pub fn requests_since(&self, mark: u64) -> Vec<RequestRecord> {
        self.shared().lock().log.since(mark).to_vec()
    }

    pub fn summary_since(&self, mark: u64) -> RequestSummary {
        RequestSummary::of(self.shared().lock().log.since(mark))
    }

    /// API requests sent without `If-None-Match` / `If-Modified-Since`.
    pub fn non_conditional_since(&self, mark: u64) -> Vec<RequestRecord> {
        self.shared()
            .lock()
            .log
            .since(mark)
            .iter()
            .filter(|r| matches!(r.kind, RequestKind::Api | RequestKind::GraphQl) && !r.conditional)
            .cloned()
            .collect()
    }

    pub fn not_modified_since(&self, mark: u64) -> u64 {
        self.summary_since(mark).not_modified
    }

    pub fn counted_since(&self, mark: u64) -> u64 {
        self.summary_since(mark).counted
    }
}
