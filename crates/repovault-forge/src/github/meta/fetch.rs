//! Conditional GETs for the export: one request against a stored ETag, every page of a list,
//! and a pull request's own resources at once. None of them touches the export state, so they can
//! run at the same time; the caller applies what they return.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use super::MAX_PAGES;
use crate::http::Client;
use crate::{CachedPage, ForgeError, Identity};

/// What one request said about its ETag: `changed` with the page to keep (or none), or a 304.
pub(super) struct Update {
    pub(super) key: String,
    pub(super) changed: bool,
    pub(super) page: Option<CachedPage>,
}

/// One GET against the stored ETag `prev`, without touching the export state (so requests can
/// run at the same time). `None`: not modified.
pub(super) async fn get(
    client: &Client,
    who: &Identity,
    url: &Url,
    prev: Option<&CachedPage>,
) -> Result<(Option<Value>, Option<Url>, Update), ForgeError> {
    let key = client.cache_key(url);
    let resp = client.get(url, who, prev.map(|p| p.etag.as_str())).await?;
    if resp.not_modified() {
        let next = match prev.and_then(|p| p.next.as_deref()) {
            Some(n) => Some(client.check_same_origin(
                &Url::parse(n).map_err(|_| ForgeError::invalid("a stored link is not a URL"))?,
            )?),
            None => None,
        };
        let update = Update {
            key,
            changed: false,
            page: None,
        };
        return Ok((None, next, update));
    }
    let v = resp.json()?;
    let page = resp.etag.as_ref().map(|etag| CachedPage {
        etag: etag.clone(),
        next: resp.next.as_ref().map(Url::to_string),
    });
    Ok((
        Some(v),
        resp.next,
        Update {
            key,
            changed: true,
            page,
        },
    ))
}

/// Every page of a list: `Some(items)` for pages that changed, `None` for `304`s.
pub(super) async fn walk(
    client: &Client,
    who: &Identity,
    first: Url,
    etags: &BTreeMap<String, CachedPage>,
    conditional: bool,
) -> Result<(Vec<Option<Vec<Value>>>, Vec<Update>), ForgeError> {
    let mut pages = Vec::new();
    let mut updates = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next.take() {
        if pages.len() >= MAX_PAGES {
            return Err(ForgeError::invalid("a list that does not end"));
        }
        let prev = if conditional {
            etags.get(&client.cache_key(&url))
        } else {
            None
        };
        let (v, n, update) = get(client, who, &url, prev).await?;
        updates.push(update);
        pages.push(match v {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(_) => return Err(ForgeError::invalid("expected a JSON list")),
        });
        next = n;
    }
    Ok((pages, updates))
}

/// The whole list when anything in it changed; `None` when every page was a `304`.
pub(super) async fn all_items(
    client: &Client,
    who: &Identity,
    first: Url,
    etags: &BTreeMap<String, CachedPage>,
    have: bool,
) -> Result<(Option<Vec<Value>>, Vec<Update>), ForgeError> {
    let (pages, mut updates) = walk(client, who, first.clone(), etags, have).await?;
    if pages.iter().all(Option::is_none) {
        return Ok((None, updates));
    }
    let pages = if pages.iter().all(Option::is_some) {
        pages
    } else {
        // Some pages changed, some did not: fetch the unchanged ones' content too.
        let (pages, more) = walk(client, who, first, etags, false).await?;
        updates.extend(more);
        pages
    };
    Ok((
        Some(pages.into_iter().flatten().flatten().collect()),
        updates,
    ))
}

/// A pull request's own resources, fetched at the same time.
#[derive(Default)]
pub(super) struct PullParts {
    pub(super) pull: Option<Value>,
    pub(super) reviews: Option<Vec<Value>>,
    pub(super) commits: Option<Vec<Value>>,
    pub(super) updates: Vec<Update>,
}

/// Fetches what `want` names (`pull`, `reviews`, `commits`, each with whether it is held) of
/// pull request `n`, the three requests at once.
pub(super) async fn pull_parts(
    client: &Client,
    who: &Identity,
    base: &str,
    etags: &BTreeMap<String, CachedPage>,
    n: u64,
    want: [(bool, bool); 3],
) -> Result<PullParts, ForgeError> {
    let url = |rest: String| client.url(&format!("{base}{rest}"));
    let pull_url = url(format!("pulls/{n}"))?;
    let reviews_url = url(format!("pulls/{n}/reviews?per_page=100"))?;
    let commits_url = url(format!("pulls/{n}/commits?per_page=100"))?;
    let [(want_pull, have_pull), (want_reviews, have_reviews), (want_commits, have_commits)] = want;
    let pull = async {
        if !want_pull {
            return Ok(None);
        }
        let prev = if have_pull {
            etags.get(&client.cache_key(&pull_url))
        } else {
            None
        };
        get(client, who, &pull_url, prev).await.map(Some)
    };
    let reviews = async {
        if want_reviews {
            all_items(client, who, reviews_url, etags, have_reviews)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let commits = async {
        if want_commits {
            all_items(client, who, commits_url, etags, have_commits)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (pull, reviews, commits) = tokio::join!(pull, reviews, commits);
    let mut out = PullParts::default();
    if let Some((v, _, update)) = pull? {
        out.pull = v;
        out.updates.push(update);
    }
    if let Some((list, updates)) = reviews? {
        out.reviews = list;
        out.updates.extend(updates);
    }
    if let Some((list, updates)) = commits? {
        out.commits = list;
        out.updates.extend(updates);
    }
    Ok(out)
}
