//! Which repositories a source covers: orgs, users, stars, explicit names, or everything an
//! App installation can see; and the gists of listed users.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use super::{plain_name, web_host, GitHub};
use crate::export::CachedList;
use crate::{
    Discovery, ErrorKind, ForgeError, Identity, ListCache, RemoteGist, RemoteRepo, Selection,
};

/// Pages one listing may have; far beyond any real org (100 per page).
const MAX_PAGES: usize = 10_000;

pub(super) async fn discover(gh: &GitHub, sel: &Selection, cache: &mut ListCache) -> Discovery {
    let mut out = Discovery::default();
    let mut found: BTreeMap<String, RemoteRepo> = BTreeMap::new();
    let mut add = |items: Vec<Value>, target: &str, out: &mut Discovery| {
        for item in items {
            match parse_repo(gh, &item) {
                Ok(r) => {
                    found.entry(r.full_name().to_ascii_lowercase()).or_insert(r);
                }
                Err(e) => out.failures.push((target.to_owned(), e)),
            }
        }
    };
    let client = gh.client();
    let mut installations = Vec::new();
    if client.is_app() {
        match client.installations().await {
            Ok(list) => installations = list,
            Err(e) => {
                out.failures.push((
                    "App installations".into(),
                    e.context("listing App installations"),
                ));
                return out;
            }
        }
    }
    if sel.is_empty() {
        for (id, login) in &installations {
            let target = format!("installation {id} ({login})");
            let result = list(
                gh,
                "installation/repositories?per_page=100",
                &Identity::Installation(*id),
                cache,
            )
            .await;
            match result {
                Ok(items) => add(items, &target, &mut out),
                Err(e) => out.failures.push((target.clone(), e.context(&target))),
            }
        }
    }
    // Owners' listings differ only in their path: an org's repositories, a user's own, a
    // user's stars.
    let owner_lists = [
        (&sel.orgs, "org", "orgs/{}/repos?type=all&per_page=100"),
        (&sel.users, "user", "users/{}/repos?type=owner&per_page=100"),
        (&sel.starred_by, "stars of", "users/{}/starred?per_page=100"),
    ];
    for (owners, label, path) in owner_lists {
        for owner in owners {
            let target = format!("{label} {owner}");
            let result = match checked(owner) {
                Ok(()) => {
                    list(
                        gh,
                        &path.replace("{}", owner),
                        &client.identity_for_owner(owner),
                        cache,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(items) => add(items, &target, &mut out),
                Err(e) => out
                    .failures
                    .push((target.clone(), e.context(format!("listing {target}")))),
            }
        }
    }
    for full in &sel.repos {
        let target = format!("repository {full}");
        let result = async {
            let (owner, name) = full
                .split_once('/')
                .ok_or_else(|| ForgeError::local(format!("{full:?} is not owner/name")))?;
            checked(owner)?;
            checked(name)?;
            list(
                gh,
                &format!("repos/{owner}/{name}"),
                &client.identity_for_owner(owner),
                cache,
            )
            .await
        }
        .await;
        match result {
            Ok(items) => add(items, &target, &mut out),
            Err(e) => out.failures.push((target.clone(), e.context(&target))),
        }
    }
    out.repos = found.into_values().collect();
    out
}

fn checked(name: &str) -> Result<(), ForgeError> {
    if plain_name(name) {
        Ok(())
    } else {
        Err(ForgeError::local(format!(
            "{name:?} is not a valid GitHub owner or repository name"
        )))
    }
}

pub(super) async fn gists(
    gh: &GitHub,
    user: &str,
    cache: &mut ListCache,
) -> Result<Vec<RemoteGist>, ForgeError> {
    checked(user)?;
    let client = gh.client();
    let items = list(
        gh,
        &format!("users/{user}/gists?per_page=100"),
        &client.identity_for_owner(user),
        cache,
    )
    .await
    .map_err(|e| e.context(format!("listing gists of {user}")))?;
    let mut out = Vec::new();
    for raw in items {
        let id = raw
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .ok_or_else(|| ForgeError::invalid("a gist without a valid id"))?
            .to_owned();
        let git_url = raw
            .get("git_pull_url")
            .and_then(Value::as_str)
            .ok_or_else(|| ForgeError::invalid(format!("gist {id} has no git_pull_url")))?;
        check_git_url(gh, git_url, true)?;
        out.push(RemoteGist {
            id,
            owner: user.to_owned(),
            git_url: git_url.to_owned(),
            raw,
        });
    }
    Ok(out)
}

/// Every item of a listing (an array, or an object with `repositories`, or one object), with
/// conditional requests against `cache`.
async fn list(
    gh: &GitHub,
    path: &str,
    who: &Identity,
    cache: &mut ListCache,
) -> Result<Vec<Value>, ForgeError> {
    let client = gh.client();
    let mut items = Vec::new();
    let mut next = Some(client.url(path)?);
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ForgeError::invalid("the listing does not end"));
        }
        let key = client.cache_key(&url);
        let cached = cache.pages.get(&key);
        let resp = client
            .get(&url, who, cached.map(|c| c.etag.as_str()))
            .await?;
        if resp.not_modified() {
            let Some(c) = cached else {
                return Err(ForgeError::invalid(
                    "304 for a request that was not conditional",
                ));
            };
            items.extend(c.items.iter().cloned());
            next = c.next.as_deref().and_then(|n| Url::parse(n).ok());
            continue;
        }
        let v = resp.json()?;
        let page: Vec<Value> = match v {
            Value::Array(a) => a,
            Value::Object(ref o) if o.contains_key("repositories") => o
                .get("repositories")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            obj @ Value::Object(_) => vec![obj],
            _ => return Err(ForgeError::invalid("a listing that is not a list")),
        };
        match &resp.etag {
            Some(etag) => {
                cache.pages.insert(
                    key,
                    CachedList {
                        etag: etag.clone(),
                        next: resp.next.as_ref().map(Url::to_string),
                        items: page.clone(),
                    },
                );
            }
            None => {
                cache.pages.remove(&key);
            }
        }
        items.extend(page);
        next = resp.next;
    }
    Ok(items)
}

fn parse_repo(gh: &GitHub, v: &Value) -> Result<RemoteRepo, ForgeError> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let owner = v
        .get("owner")
        .and_then(|o| o.get("login"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = s("name").unwrap_or_default();
    if !plain_name(owner) || !plain_name(name) {
        return Err(ForgeError::invalid(format!(
            "the forge listed a repository with an invalid name {:?}",
            format!("{owner}/{name}")
                .chars()
                .take(120)
                .collect::<String>()
        )));
    }
    let clone_url = s("clone_url")
        .ok_or_else(|| ForgeError::invalid(format!("{owner}/{name} has no clone_url")))?;
    check_git_url(gh, clone_url, false)?;
    Ok(RemoteRepo {
        owner: owner.to_owned(),
        name: name.to_owned(),
        clone_url: clone_url.to_owned(),
        fork: b("fork"),
        archived: b("archived"),
        private: b("private") || s("visibility").is_some_and(|x| x != "public"),
        has_wiki: b("has_wiki"),
    })
}

/// Git URLs get the token, so they must point at the forge itself: the API's scheme and port,
/// and its host (or, for `api.<host>`, `<host>`; gists also `gist.<host>`).
fn check_git_url(gh: &GitHub, url: &str, gist: bool) -> Result<(), ForgeError> {
    let api = gh.client().api();
    let bad = || {
        ForgeError::new(
            ErrorKind::Invalid,
            format!(
                "the forge gave a git URL on another host ({}); refusing to send credentials there",
                Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "unparsable".into())
            ),
        )
    };
    let u = Url::parse(url).map_err(|_| bad())?;
    let api_host = api.host_str().unwrap_or_default();
    let web = web_host(api_host);
    let host = u.host_str().unwrap_or_default();
    let host_ok =
        host == api_host || host == web || (gist && host.strip_prefix("gist.") == Some(web));
    if u.scheme() != api.scheme()
        || !host_ok
        || u.port_or_known_default() != api.port_or_known_default()
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return Err(bad());
    }
    Ok(())
}
