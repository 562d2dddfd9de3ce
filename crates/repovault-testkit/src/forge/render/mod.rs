//! GitHub's JSON shapes, produced from the model.
//!
//! Field sets follow GitHub's REST reference (API version 2022-11-28): the "simple user",
//! "public user", "organization full", "minimal repository" (lists) and "full repository"
//! (`GET /repos/{owner}/{repo}`) schemas, and in the submodules issues, pulls, releases and
//! the rest. URLs use the API prefix the request came in on, so a client that talks to
//! `/api/v3` gets Enterprise-style URLs and one that talks to the root gets api.github.com-style
//! URLs, on the same port.

mod issues;
mod misc;
mod pulls;

pub(crate) use issues::{comment, event, issue, label, milestone, timeline};
pub(crate) use misc::{app, app_permissions, asset, gist, hook, installation, release};
pub(crate) use pulls::{commits_of, pr_commit, pull, review, review_comment};

use serde_json::{json, Value};

use crate::forge::model::{Account, AccountKind, Repo, World};
use crate::forge::util::{iso, node_id};

/// The base URLs responses are rendered with.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    /// `https://127.0.0.1:PORT`: html_url, clone URLs, downloads.
    pub web: String,
    /// The API root: `web` itself (api.github.com style) or `web/api/v3` (Enterprise style).
    pub api: String,
    /// `127.0.0.1`, for `git@host:` and `git://host/` URLs.
    pub hostname: String,
    pub enterprise: bool,
}

impl Urls {
    pub(crate) fn new(web: &str, hostname: &str, enterprise: bool) -> Urls {
        let web = web.trim_end_matches('/').to_owned();
        let api = if enterprise {
            format!("{web}/api/v3")
        } else {
            web.clone()
        };
        Urls {
            web,
            api,
            hostname: hostname.to_owned(),
            enterprise,
        }
    }

    pub(crate) fn repo_api(&self, r: &Repo) -> String {
        format!("{}/repos/{}/{}", self.api, r.owner, r.name)
    }

    pub(crate) fn repo_web(&self, r: &Repo) -> String {
        format!("{}/{}/{}", self.web, r.owner, r.name)
    }

    pub(crate) fn uploads(&self) -> String {
        if self.enterprise {
            format!("{}/api/uploads", self.web)
        } else {
            format!("{}/uploads", self.web)
        }
    }
}

/// What the viewer may do with a repository (the `permissions` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Perms {
    pub admin: bool,
    pub maintain: bool,
    pub push: bool,
    pub triage: bool,
    pub pull: bool,
}

impl Perms {
    pub(crate) const READ: Perms = Perms {
        admin: false,
        maintain: false,
        push: false,
        triage: false,
        pull: true,
    };
    pub(crate) const WRITE: Perms = Perms {
        admin: false,
        maintain: false,
        push: true,
        triage: true,
        pull: true,
    };
    pub(crate) const ADMIN: Perms = Perms {
        admin: true,
        maintain: true,
        push: true,
        triage: true,
        pull: true,
    };

    fn json(&self) -> Value {
        json!({
            "admin": self.admin, "maintain": self.maintain, "push": self.push,
            "triage": self.triage, "pull": self.pull,
        })
    }
}

/// A rendering context: the model and the URLs of this request.
#[derive(Clone, Copy)]
pub(crate) struct R<'a> {
    pub u: &'a Urls,
    pub w: &'a World,
}

impl<'a> R<'a> {
    /// The "simple user" object for `login`; unknown logins render as GitHub's `ghost`.
    pub(crate) fn user(&self, login: &str) -> Value {
        match self.w.account(login) {
            Some(a) => self.simple_user(a),
            None => ghost(self.u),
        }
    }

    pub(crate) fn opt_user(&self, login: Option<&str>) -> Value {
        login.map_or(Value::Null, |l| self.user(l))
    }

    pub(crate) fn simple_user(&self, a: &Account) -> Value {
        let u = self.u;
        let api = format!("{}/users/{}", u.api, a.login);
        json!({
            "login": a.login,
            "id": a.id,
            "node_id": node_id(kind_name(a.kind), a.id),
            "avatar_url": avatar(u, a.id),
            "gravatar_id": "",
            "url": api,
            "html_url": format!("{}/{}", u.web, a.login),
            "followers_url": format!("{api}/followers"),
            "following_url": format!("{api}/following{{/other_user}}"),
            "gists_url": format!("{api}/gists{{/gist_id}}"),
            "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{api}/subscriptions"),
            "organizations_url": format!("{api}/orgs"),
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events{{/privacy}}"),
            "received_events_url": format!("{api}/received_events"),
            "type": kind_name(a.kind),
            "user_view_type": "public",
            "site_admin": a.site_admin,
        })
    }

    /// `GET /users/{username}` ("public user"); for organizations GitHub serves the same shape
    /// with `type: "Organization"`. `private` adds the fields `GET /user` shows its owner.
    pub(crate) fn public_user(&self, a: &Account, private: bool) -> Value {
        let mut v = self.simple_user(a);
        let public_repos = self
            .w
            .repos
            .values()
            .filter(|r| r.owner.eq_ignore_ascii_case(&a.login) && !r.private)
            .count();
        let public_gists = self
            .w
            .gists
            .values()
            .filter(|g| g.owner.eq_ignore_ascii_case(&a.login) && g.public)
            .count();
        extend(
            &mut v,
            json!({
                "name": a.name, "company": a.company, "blog": a.blog, "location": a.location,
                "email": a.email, "hireable": null, "bio": a.bio, "twitter_username": null,
                "notification_email": a.email,
                "public_repos": public_repos, "public_gists": public_gists,
                "followers": a.followers.len(), "following": a.following.len(),
                "created_at": iso(a.created_at), "updated_at": iso(a.updated_at),
            }),
        );
        if private {
            let private_repos = self
                .w
                .repos
                .values()
                .filter(|r| r.owner.eq_ignore_ascii_case(&a.login) && r.private)
                .count();
            let private_gists = self
                .w
                .gists
                .values()
                .filter(|g| g.owner.eq_ignore_ascii_case(&a.login) && !g.public)
                .count();
            extend(
                &mut v,
                json!({
                    "private_gists": private_gists,
                    "total_private_repos": private_repos,
                    "owned_private_repos": private_repos,
                    "disk_usage": 0,
                    "collaborators": 0,
                    "two_factor_authentication": true,
                    "plan": {"name": "pro", "space": 976_562_499, "private_repos": 9999, "collaborators": 0},
                }),
            );
        }
        v
    }

    /// `GET /orgs/{org}` ("organization full"); `member` adds what members see.
    pub(crate) fn org(&self, a: &Account, member: bool) -> Value {
        let u = self.u;
        let api = format!("{}/orgs/{}", u.api, a.login);
        let public_repos = self
            .w
            .repos
            .values()
            .filter(|r| r.owner.eq_ignore_ascii_case(&a.login) && !r.private)
            .count();
        let mut v = json!({
            "login": a.login,
            "id": a.id,
            "node_id": node_id("Organization", a.id),
            "url": api,
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events"),
            "hooks_url": format!("{api}/hooks"),
            "issues_url": format!("{api}/issues"),
            "members_url": format!("{api}/members{{/member}}"),
            "public_members_url": format!("{api}/public_members{{/member}}"),
            "avatar_url": avatar(u, a.id),
            "description": a.description,
            "name": a.name,
            "company": a.company,
            "blog": a.blog,
            "location": a.location,
            "email": a.email,
            "twitter_username": null,
            "is_verified": false,
            "has_organization_projects": true,
            "has_repository_projects": true,
            "public_repos": public_repos,
            "public_gists": 0,
            "followers": a.followers.len(),
            "following": 0,
            "html_url": format!("{}/{}", u.web, a.login),
            "created_at": iso(a.created_at),
            "updated_at": iso(a.updated_at),
            "archived_at": null,
            "type": "Organization",
        });
        if member {
            let private_repos = self
                .w
                .repos
                .values()
                .filter(|r| r.owner.eq_ignore_ascii_case(&a.login) && r.private)
                .count();
            extend(
                &mut v,
                json!({
                    "total_private_repos": private_repos,
                    "owned_private_repos": private_repos,
                    "private_gists": 0,
                    "disk_usage": 0,
                    "collaborators": 0,
                    "billing_email": a.email,
                    "default_repository_permission": "write",
                    "members_can_create_repositories": true,
                    "two_factor_requirement_enabled": false,
                    "members_allowed_repository_creation_type": "all",
                    "members_can_create_public_repositories": true,
                    "members_can_create_private_repositories": true,
                    "members_can_create_internal_repositories": false,
                    "members_can_fork_private_repositories": false,
                    "web_commit_signoff_required": false,
                    "plan": {"name": "team", "space": 976_562_499, "private_repos": 999_999, "filled_seats": a.members.len(), "seats": a.members.len()},
                }),
            );
        }
        v
    }

    /// The repository object of lists ("minimal repository"); `full` gives the shape of
    /// `GET /repos/{owner}/{repo}` (settings for writers, parent and source of forks, the
    /// owning organization, network and subscriber counts).
    pub(crate) fn repo(&self, r: &Repo, perms: Option<Perms>, full: bool) -> Value {
        let u = self.u;
        let api = u.repo_api(r);
        let web = u.repo_web(r);
        let owner = self.user(&r.owner);
        let forks = self.w.forks_of(&r.full_name());
        let open_issues = r.open_issues_count();
        let mut v = json!({
            "id": r.id,
            "node_id": node_id("Repository", r.id),
            "name": r.name,
            "full_name": r.full_name(),
            "private": r.private,
            "owner": owner,
            "html_url": web,
            "description": r.description,
            "fork": r.fork_of.is_some(),
            "url": api,
            "forks_url": format!("{api}/forks"),
            "keys_url": format!("{api}/keys{{/key_id}}"),
            "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
            "teams_url": format!("{api}/teams"),
            "hooks_url": format!("{api}/hooks"),
            "issue_events_url": format!("{api}/issues/events{{/number}}"),
            "events_url": format!("{api}/events"),
            "assignees_url": format!("{api}/assignees{{/user}}"),
            "branches_url": format!("{api}/branches{{/branch}}"),
            "tags_url": format!("{api}/tags"),
            "blobs_url": format!("{api}/git/blobs{{/sha}}"),
            "git_tags_url": format!("{api}/git/tags{{/sha}}"),
            "git_refs_url": format!("{api}/git/refs{{/sha}}"),
            "trees_url": format!("{api}/git/trees{{/sha}}"),
            "statuses_url": format!("{api}/statuses/{{sha}}"),
            "languages_url": format!("{api}/languages"),
            "stargazers_url": format!("{api}/stargazers"),
            "contributors_url": format!("{api}/contributors"),
            "subscribers_url": format!("{api}/subscribers"),
            "subscription_url": format!("{api}/subscription"),
            "commits_url": format!("{api}/commits{{/sha}}"),
            "git_commits_url": format!("{api}/git/commits{{/sha}}"),
            "comments_url": format!("{api}/comments{{/number}}"),
            "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
            "contents_url": format!("{api}/contents/{{+path}}"),
            "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
            "merges_url": format!("{api}/merges"),
            "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
            "downloads_url": format!("{api}/downloads"),
            "issues_url": format!("{api}/issues{{/number}}"),
            "pulls_url": format!("{api}/pulls{{/number}}"),
            "milestones_url": format!("{api}/milestones{{/number}}"),
            "notifications_url": format!("{api}/notifications{{?since,all,participating}}"),
            "labels_url": format!("{api}/labels{{/name}}"),
            "releases_url": format!("{api}/releases{{/id}}"),
            "deployments_url": format!("{api}/deployments"),
            "created_at": iso(r.created_at),
            "updated_at": iso(r.updated_at),
            "pushed_at": r.pushed_at.map(iso),
            "git_url": format!("git://{}/{}.git", u.hostname, r.full_name()),
            "ssh_url": format!("git@{}:{}.git", u.hostname, r.full_name()),
            "clone_url": format!("{web}.git"),
            "svn_url": web,
            "homepage": r.homepage,
            "size": r.git.size_kb,
            "stargazers_count": r.stargazers,
            "watchers_count": r.stargazers,
            "language": r.language,
            "has_issues": r.has_issues,
            "has_projects": r.has_projects,
            "has_downloads": r.has_downloads,
            "has_wiki": r.has_wiki,
            "has_pages": r.has_pages,
            "has_discussions": r.has_discussions,
            "forks_count": forks,
            "mirror_url": null,
            "archived": r.archived,
            "disabled": false,
            "open_issues_count": open_issues,
            "license": r.license.as_ref().map(|l| json!({
                "key": l.key, "name": l.name, "spdx_id": l.spdx_id,
                "url": format!("{}/licenses/{}", u.api, l.key),
                "node_id": node_id("License", l.key.len()),
            })),
            "allow_forking": r.settings.allow_forking,
            "is_template": r.is_template,
            "web_commit_signoff_required": r.settings.web_commit_signoff_required,
            "topics": r.topics,
            "visibility": r.visibility,
            "forks": forks,
            "open_issues": open_issues,
            "watchers": r.stargazers,
            "default_branch": r.default_branch,
        });
        if let Some(p) = perms {
            extend(&mut v, json!({ "permissions": p.json() }));
        }
        if !full {
            return v;
        }
        let s = &r.settings;
        extend(
            &mut v,
            json!({
                "temp_clone_token": if r.private { Value::String(String::new()) } else { Value::Null },
                "network_count": self.network_count(r),
                "subscribers_count": r.watchers,
                "custom_properties": {},
            }),
        );
        if perms.is_some_and(|p| p.push) {
            extend(
                &mut v,
                json!({
                    "allow_squash_merge": s.allow_squash_merge,
                    "allow_merge_commit": s.allow_merge_commit,
                    "allow_rebase_merge": s.allow_rebase_merge,
                    "allow_auto_merge": s.allow_auto_merge,
                    "delete_branch_on_merge": s.delete_branch_on_merge,
                    "allow_update_branch": s.allow_update_branch,
                    "use_squash_pr_title_as_default": s.use_squash_pr_title_as_default,
                    "squash_merge_commit_title": s.squash_merge_commit_title,
                    "squash_merge_commit_message": s.squash_merge_commit_message,
                    "merge_commit_title": s.merge_commit_title,
                    "merge_commit_message": s.merge_commit_message,
                }),
            );
        }
        if perms.is_some_and(|p| p.admin) {
            let disabled = json!({"status": "disabled"});
            extend(
                &mut v,
                json!({ "security_and_analysis": {
                    "secret_scanning": disabled,
                    "secret_scanning_push_protection": disabled,
                    "dependabot_security_updates": disabled,
                    "secret_scanning_non_provider_patterns": disabled,
                    "secret_scanning_validity_checks": disabled,
                }}),
            );
        }
        if let Some(org) = self.w.account(&r.owner).filter(|a| a.is_org()) {
            extend(&mut v, json!({ "organization": self.simple_user(org) }));
        }
        if let Some(parent) = r.fork_of.as_deref().and_then(|p| self.w.repo(p)) {
            let source = self.source_of(parent);
            extend(
                &mut v,
                json!({
                    "parent": self.repo(parent, Some(Perms::READ), false),
                    "source": self.repo(source, Some(Perms::READ), false),
                }),
            );
        }
        v
    }

    /// The root of a fork network.
    fn source_of(&self, mut r: &'a Repo) -> &'a Repo {
        // Bounded: a cycle in the fixture must not hang a request.
        for _ in 0..32 {
            match r.fork_of.as_deref().and_then(|p| self.w.repo(p)) {
                Some(parent) => r = parent,
                None => break,
            }
        }
        r
    }

    fn network_count(&self, r: &Repo) -> usize {
        let root = self.source_of(r).full_name();
        self.w
            .repos
            .values()
            .filter(|other| {
                other.fork_of.is_some()
                    && self
                        .source_of(other)
                        .full_name()
                        .eq_ignore_ascii_case(&root)
            })
            .count()
    }
}

fn kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "User",
        AccountKind::Organization => "Organization",
    }
}

fn avatar(u: &Urls, id: u64) -> String {
    if u.enterprise {
        format!("{}/avatars/u/{id}", u.web)
    } else {
        format!("{}/avatars/u/{id}?v=4", u.web)
    }
}

/// GitHub's placeholder for deleted accounts.
fn ghost(u: &Urls) -> Value {
    let api = format!("{}/users/ghost", u.api);
    json!({
        "login": "ghost", "id": 10137, "node_id": node_id("User", 10137),
        "avatar_url": avatar(u, 10137), "gravatar_id": "", "url": api,
        "html_url": format!("{}/ghost", u.web),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User", "user_view_type": "public", "site_admin": false,
    })
}

/// Adds `extra`'s fields to the object `v`.
pub(crate) fn extend(v: &mut Value, extra: Value) {
    if let (Value::Object(map), Value::Object(more)) = (v, extra) {
        map.extend(more);
    }
}

/// The `reactions` rollup every issue and comment carries (the simulator has no reactions).
pub(crate) fn reactions(url: &str) -> Value {
    json!({
        "url": format!("{url}/reactions"), "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
        "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
    })
}

/// Percent-encodes a path segment (label names may hold spaces and slashes).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
