//! The simulator's shared state: the model, tokens, limits, faults and the request log behind
//! one lock, plus what the server needs to reach the git server and the files on disk.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::forge::auth::{AuthState, Identity};
use crate::forge::limits::{Faults, Limits};
use crate::forge::log::RequestLog;
use crate::forge::model::{Repo, World};
use crate::forge::render::Perms;
use crate::TestEnv;

#[derive(Debug)]
pub(crate) struct SimState {
    pub world: World,
    pub auth: AuthState,
    pub limits: Limits,
    pub faults: Faults,
    pub log: RequestLog,
    /// Signs download URLs (release assets, LFS objects).
    pub secret: [u8; 32],
}

impl SimState {
    /// The rate-limit identities tests usually mean by "the budget": every user token and
    /// every installation.
    pub(crate) fn all_identities(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .world
            .user_tokens
            .iter()
            .map(|(_, login)| Identity::User(login.clone()).bucket())
            .collect();
        ids.extend(self.world.installations.iter().map(|i| {
            Identity::Installation {
                id: i.id,
                repos: None,
            }
            .bucket()
        }));
        ids.push(Identity::Anonymous.bucket());
        ids
    }
}

/// What `identity` may do with `repo`; `None` when it may not see it (GitHub then says 404).
pub(crate) fn repo_perms(world: &World, identity: &Identity, repo: &Repo) -> Option<Perms> {
    let public = !repo.private;
    let perms = match identity {
        Identity::User(login) => {
            if repo.owner.eq_ignore_ascii_case(login) || world.is_member(&repo.owner, login, true) {
                Some(Perms::ADMIN)
            } else if world.is_member(&repo.owner, login, false) {
                Some(Perms::WRITE)
            } else {
                None
            }
        }
        Identity::Installation { id, repos } => {
            installation_covers(world, *id, repos.as_deref(), repo).then_some(Perms::READ)
        }
        Identity::Anonymous | Identity::App(_) => None,
    };
    perms.or(public.then_some(Perms::READ))
}

/// Whether installation `id` (narrowed to `narrowed`, lower-case full names, if given) is
/// installed on `repo`: the repository belongs to its account and to its selection.
pub(crate) fn installation_covers(
    world: &World,
    id: u64,
    narrowed: Option<&[String]>,
    repo: &Repo,
) -> bool {
    let Some(inst) = world.installations.iter().find(|i| i.id == id) else {
        return false;
    };
    let full = repo.full_name().to_ascii_lowercase();
    inst.account.eq_ignore_ascii_case(&repo.owner)
        && inst
            .repositories
            .as_ref()
            .is_none_or(|sel| sel.iter().any(|s| s.eq_ignore_ascii_case(&full)))
        && narrowed.is_none_or(|sel| sel.contains(&full))
}

/// Whether `identity` may read `repo`'s webhooks (admins; installations with
/// `repository_hooks: read`).
pub(crate) fn can_read_hooks(world: &World, identity: &Identity, repo: &Repo) -> bool {
    match identity {
        Identity::User(_) => repo_perms(world, identity, repo).is_some_and(|p| p.admin),
        Identity::Installation { .. } => repo_perms(world, identity, repo).is_some(),
        Identity::Anonymous | Identity::App(_) => false,
    }
}

/// Everything the request handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<SimState>,
    /// `https://127.0.0.1:PORT`.
    pub web: String,
    pub hostname: String,
    /// Bare repositories: `<owner>/<name>.git`, `<owner>/<name>.wiki.git`, `gist/<id>.git`.
    pub repos_root: PathBuf,
    /// LFS objects: `<oid>`.
    pub lfs_root: PathBuf,
    /// The git server behind the proxy.
    pub git_port: u16,
    pub git_basic: String,
    /// Isolated git environment for changes made to the repositories (mutations).
    pub env: TestEnv,
    /// What `/_sim/info` answers: URLs, token, CA and App credentials' paths.
    pub info: serde_json::Value,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves the state as consistent as its last write;
        // keep serving rather than failing every later request.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
