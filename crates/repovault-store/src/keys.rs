//! The store's keys: each key file holds the store's master key encrypted with one password,
//! so several passwords open the same store and one can be changed without re-encrypting data.

use jiff::Timestamp;
use rustic_core::repofile::{KeyFile, KeyId};
use rustic_core::{KeyOptions, OpenStatus, Repository};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::{StoreError, StoreLocation};

/// Options for a new key: this host unless told otherwise, and the creation time, so that
/// `key list` can tell keys apart.
pub(crate) fn new_key_options(host: Option<String>, user: Option<String>) -> KeyOptions {
    let host = host.or_else(|| Some(gethostname::gethostname().to_string_lossy().into_owned()));
    KeyOptions::default()
        .hostname(host)
        .username(user)
        .with_created(true)
}

/// A key as `key list` shows it (no secret in it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    /// The key this command opened the store with.
    pub current: bool,
    pub host: Option<String>,
    pub user: Option<String>,
    pub created: Option<Timestamp>,
}

/// A store opened to manage its keys.
pub struct KeyStore {
    repo: Repository<OpenStatus>,
    location: StoreLocation,
    password: SecretString,
}

impl KeyStore {
    pub(crate) fn new(
        repo: Repository<OpenStatus>,
        location: StoreLocation,
        password: SecretString,
    ) -> Self {
        Self {
            repo,
            location,
            password,
        }
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn current(&self) -> Option<KeyId> {
        *self.repo.key_id()
    }

    /// All keys, oldest first (keys without a creation time last).
    pub fn list(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let current = self.current();
        let ids = self
            .repo
            .list::<KeyId>()
            .map_err(|e| StoreError::rustic("listing keys", &e))?;
        let mut keys = Vec::new();
        for id in ids {
            let file: KeyFile = self
                .repo
                .get_file(&id)
                .map_err(|e| StoreError::rustic("reading a key", &e))?;
            keys.push(KeyInfo {
                id: id.to_hex().as_str().to_owned(),
                current: Some(id) == current,
                host: file.hostname.filter(|h| !h.is_empty()),
                user: file.username.filter(|u| !u.is_empty()),
                created: file.created.map(|c| c.timestamp()),
            });
        }
        keys.sort_by(|a, b| {
            (a.created.is_none(), a.created, &a.id).cmp(&(b.created.is_none(), b.created, &b.id))
        });
        Ok(keys)
    }

    /// Adds a key for `password`; returns its id.
    pub fn add(
        &self,
        password: &SecretString,
        host: Option<String>,
        user: Option<String>,
    ) -> Result<String, StoreError> {
        let opts = new_key_options(host, user);
        let id = self
            .repo
            .add_key(password.expose_secret(), &opts)
            .map_err(|e| StoreError::rustic("adding a key", &e))?;
        Ok(id.to_hex().as_str().to_owned())
    }

    fn resolve(&self, prefix: &str) -> Result<KeyId, StoreError> {
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::KeyNotFound(prefix.to_owned()));
        }
        let ids = self
            .repo
            .list::<KeyId>()
            .map_err(|e| StoreError::rustic("listing keys", &e))?;
        let mut matching = ids
            .into_iter()
            .filter(|id| id.to_hex().as_str().starts_with(prefix));
        match (matching.next(), matching.next()) {
            (Some(id), None) => Ok(id),
            (Some(_), Some(_)) => Err(StoreError::KeyAmbiguous(prefix.to_owned())),
            (None, _) => Err(StoreError::KeyNotFound(prefix.to_owned())),
        }
    }

    /// Removes the key `prefix` names. The key in use cannot be removed, so a store always
    /// keeps at least one.
    pub fn remove(&self, prefix: &str) -> Result<String, StoreError> {
        let id = self.resolve(prefix)?;
        let hex = id.to_hex().as_str().to_owned();
        if Some(id) == self.current() {
            return Err(StoreError::KeyInUse(hex));
        }
        self.repo
            .delete_key(&id)
            .map_err(|e| StoreError::rustic("removing a key", &e))?;
        Ok(hex)
    }

    /// Replaces the key in use by one for `password`: the new key is written first, then the
    /// old one removed (through the store opened with the new password, since the key a
    /// handle was opened with cannot be removed through it). Returns (new id, removed id).
    pub fn change_password(&self, password: &SecretString) -> Result<(String, String), StoreError> {
        if password.expose_secret() == self.password.expose_secret() {
            return Err(StoreError::rustic_input(
                "the new password is the same as the current one".into(),
            ));
        }
        let old = self.current().ok_or_else(|| StoreError::Backend {
            operation: "changing the password".into(),
            message: "the store was not opened with a key".into(),
            retryable: false,
        })?;
        let (host, user) = self
            .repo
            .get_file::<KeyFile>(&old)
            .map(|f| (f.hostname, f.username))
            .unwrap_or_default();
        let new = self.add(password, host, user)?;
        let (with_new, _) = crate::open_with(&self.location, password, crate::Access::Keys)?;
        with_new
            .delete_key(&old)
            .map_err(|e| StoreError::rustic("removing the old key", &e))?;
        Ok((new, old.to_hex().as_str().to_owned()))
    }
}
