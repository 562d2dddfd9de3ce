//! Exporting one repository's metadata, incrementally.
//!
//! Lists are fetched with `If-None-Match` (a `304` is free); issues, issue comments and review
//! comments use `since` cursors (the newest `updated_at` seen). After a cursor moves, the list is
//! asked again with the new cursor so that the next run's request is conditional too: an
//! unchanged repository then costs only `304`s. Every `full_pass_interval` everything is walked
//! again (still conditionally), which catches deletions and changes that do not move
//! `updated_at`.
//!
//! Events come from the repository-wide list (newest first), not one request per issue.
//!
//! Layout (relative to the sink): `repository.json`, `issues/<n>.json` (issue, comments,
//! events), `pulls/<n>.json` (pull, issue, comments, review_comments, reviews, commits, events),
//! `releases/<id>.json` and `releases/<id>/assets/<asset id>-<name>`, `labels.json`,
//! `milestones.json`, `hooks.json`.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt};
use jiff::Timestamp;
use serde_json::{Map, Value};
use url::Url;

use super::GitHub;
use crate::http::Client;
use crate::{
    ErrorKind, ExportOptions, ForgeError, Identity, MetaOutcome, MetaSink, MetaState, RemoteRepo,
};

mod doc;
mod fetch;

use doc::*;
use fetch::*;

const MAX_PAGES: usize = 10_000;
/// Walks of a `since` list per run: the walk itself and at most two follow-ups to settle the
/// cursor.
const SINCE_ROUNDS: usize = 3;

pub(super) async fn export(
    gh: &GitHub,
    repo: &RemoteRepo,
    options: &ExportOptions,
    state: &mut MetaState,
    sink: &mut dyn MetaSink,
) -> Result<MetaOutcome, ForgeError> {
    let now = Timestamp::now();
    let full = state
        .last_full_pass
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_none_or(|t| now.duration_since(t).unsigned_abs() >= options.full_pass_interval);
    let client = gh.client();
    let mut ex = Exporter {
        client,
        who: client.identity_for_owner(&repo.owner),
        base: format!("repos/{}/{}/", repo.owner, repo.name),
        state,
        sink,
        full,
        touched: BTreeSet::new(),
        out: MetaOutcome {
            full_pass: full,
            ..MetaOutcome::default()
        },
    };
    let c = options.capture;
    ex.repository().await?;
    if c.issues || c.pulls {
        ex.issues_and_pulls(c.issues, c.pulls).await?;
    }
    if c.releases {
        ex.releases().await?;
    }
    if c.labels {
        ex.single_list("labels?per_page=100", "labels.json", "name", "labels")
            .await?;
    }
    if c.milestones {
        ex.single_list(
            "milestones?state=all&per_page=100",
            "milestones.json",
            "number",
            "milestones",
        )
        .await?;
    }
    if c.hooks {
        ex.hooks().await?;
    }
    if full {
        // Everything live was asked for in this pass; ETags of anything else are stale.
        let touched = std::mem::take(&mut ex.touched);
        ex.state.etags.retain(|k, _| touched.contains(k));
        ex.state.last_full_pass = Some(now.to_string());
    }
    ex.count()?;
    Ok(ex.out)
}

struct Exporter<'a> {
    client: &'a Client,
    who: Identity,
    /// `repos/<owner>/<name>/`
    base: String,
    state: &'a mut MetaState,
    sink: &'a mut dyn MetaSink,
    full: bool,
    touched: BTreeSet<String>,
    out: MetaOutcome,
}

/// An issue or pull request document waiting for its pull request resources.
struct Prepared {
    n: u64,
    doc: Map<String, Value>,
    is_pr: bool,
    refresh: bool,
}

/// Pull requests whose reviews, commits and details are fetched at the same time.
const PULLS_AT_ONCE: usize = 4;

/// What to do with one issue or pull request in this run.
#[derive(Default)]
struct Work {
    item: Option<Value>,
    refresh: bool,
    comments: Option<Vec<Value>>,
    new_comments: Vec<Value>,
    events: Option<Vec<Value>>,
    new_events: Vec<Value>,
    review_comments: Option<Vec<Value>>,
    new_review_comments: Vec<Value>,
}

impl Exporter<'_> {
    fn url(&self, rest: &str) -> Result<Url, ForgeError> {
        self.client.url(&format!("{}{rest}", self.base))
    }

    /// One GET, conditional when `conditional` and an ETag is stored. `None`: not modified.
    async fn fetch(
        &mut self,
        url: &Url,
        conditional: bool,
    ) -> Result<(Option<Value>, Option<Url>), ForgeError> {
        let prev = if conditional {
            self.state.etags.get(&self.client.cache_key(url)).cloned()
        } else {
            None
        };
        let (v, next, update) = get(self.client, &self.who, url, prev.as_ref()).await?;
        self.apply(vec![update]);
        Ok((v, next))
    }

    /// Records what requests said about their ETags.
    fn apply(&mut self, updates: Vec<Update>) {
        for u in updates {
            if u.changed {
                match u.page {
                    Some(p) => {
                        self.state.etags.insert(u.key.clone(), p);
                    }
                    None => {
                        self.state.etags.remove(&u.key);
                    }
                }
            }
            self.touched.insert(u.key);
        }
    }

    /// Every page of a list: `Some(items)` for pages that changed, `None` for `304`s.
    async fn walk(
        &mut self,
        first: Url,
        conditional: bool,
    ) -> Result<Vec<Option<Vec<Value>>>, ForgeError> {
        let (pages, updates) = walk(
            self.client,
            &self.who,
            first,
            &self.state.etags,
            conditional,
        )
        .await?;
        self.apply(updates);
        Ok(pages)
    }

    /// The whole list when anything in it changed; `None` when every page was a `304`.
    async fn all_items(
        &mut self,
        rest: &str,
        have: bool,
    ) -> Result<Option<Vec<Value>>, ForgeError> {
        let first = self.url(rest)?;
        let (list, updates) =
            all_items(self.client, &self.who, first, &self.state.etags, have).await?;
        self.apply(updates);
        Ok(list)
    }

    async fn repository(&mut self) -> Result<(), ForgeError> {
        let have = self.sink.read("repository.json")?.is_some();
        let url = self.client.url(self.base.trim_end_matches('/'))?;
        if let (Some(v), _) = self.fetch(&url, have).await? {
            if !v.is_object() {
                return Err(ForgeError::invalid("the repository is not a JSON object"));
            }
            self.write("repository.json", &v)?;
        }
        Ok(())
    }

    fn write(&mut self, rel: &str, v: &Value) -> Result<(), ForgeError> {
        if self.sink.write(rel, v)? {
            self.out.updated += 1;
        }
        Ok(())
    }

    /// Items of a `since` list that are new or changed since the stored cursor; moves the
    /// cursor and leaves the next run's request conditional.
    async fn changed_since(
        &mut self,
        rest: &str,
        key: &str,
        already: Option<&[Value]>,
    ) -> Result<Vec<Value>, ForgeError> {
        let mut cursor = self.state.cursors.get(key).cloned();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        if let Some(items) = already {
            for item in items {
                seen.insert(identity(item), updated_at(item).unwrap_or_default());
                cursor = newest(cursor, updated_at(item));
            }
        }
        let mut changed = Vec::new();
        for _ in 0..SINCE_ROUNDS {
            let url = match &cursor {
                Some(c) => format!("{rest}&since={c}"),
                None => rest.to_owned(),
            };
            let first = self.url(&url)?;
            let pages = self.walk(first, true).await?;
            let mut moved = cursor.clone();
            for item in pages.into_iter().flatten().flatten() {
                let upd = updated_at(&item).unwrap_or_default();
                if seen.get(&identity(&item)) == Some(&upd) {
                    continue;
                }
                seen.insert(identity(&item), upd.clone());
                moved = newest(moved, Some(upd));
                changed.push(item);
            }
            if moved == cursor {
                break;
            }
            cursor = moved;
        }
        match cursor {
            Some(c) => self.state.cursors.insert(key.to_owned(), c),
            None => self.state.cursors.remove(key),
        };
        Ok(changed)
    }

    async fn issues_and_pulls(&mut self, issues: bool, pulls: bool) -> Result<(), ForgeError> {
        const ISSUES: &str = "issues?state=all&sort=updated&direction=asc&per_page=100";
        const COMMENTS: &str = "issues/comments?sort=updated&direction=asc&per_page=100";
        const REVIEW_COMMENTS: &str = "pulls/comments?sort=updated&direction=asc&per_page=100";
        let mut work: BTreeMap<u64, Work> = BTreeMap::new();
        let existing = self.existing_numbers()?;
        let mut full_list = None;
        if self.full {
            let have = !existing.is_empty() || self.state.cursors.contains_key("issues");
            let list = self.all_items(ISSUES, have).await?;
            match &list {
                Some(items) => {
                    let live: BTreeSet<u64> = items.iter().filter_map(number).collect();
                    for n in existing.keys().filter(|n| !live.contains(n)) {
                        self.sink.remove(&doc_path(*n, existing[n]))?;
                        self.out.updated += 1;
                    }
                    for item in items {
                        if let Some(n) = number(item) {
                            let w = work.entry(n).or_default();
                            w.item = Some(item.clone());
                            w.refresh = true;
                        }
                    }
                }
                None => {
                    for n in existing.keys() {
                        work.entry(*n).or_default().refresh = true;
                    }
                }
            }
            full_list = list;
        }
        for item in self
            .changed_since(ISSUES, "issues", full_list.as_deref())
            .await?
        {
            if let Some(n) = number(&item) {
                let w = work.entry(n).or_default();
                w.item = Some(item);
            }
        }
        // Comments of every issue and pull request, repository-wide.
        let full_comments = if self.full {
            let all = self
                .all_items(
                    COMMENTS,
                    self.state.cursors.contains_key("issue_comments") || !existing.is_empty(),
                )
                .await?;
            if let Some(all) = &all {
                let mut by: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
                for c in all {
                    if let Some(n) = parent_number(c, "issue_url") {
                        by.entry(n).or_default().push(c.clone());
                    }
                }
                for (n, w) in work.iter_mut() {
                    w.comments = Some(by.remove(n).unwrap_or_default());
                }
                for (n, list) in by {
                    work.entry(n).or_default().comments = Some(list);
                }
            }
            all
        } else {
            None
        };
        for c in self
            .changed_since(COMMENTS, "issue_comments", full_comments.as_deref())
            .await?
        {
            if let Some(n) = parent_number(&c, "issue_url") {
                work.entry(n).or_default().new_comments.push(c);
            }
        }
        if pulls {
            let full_reviews = if self.full {
                let all = self
                    .all_items(
                        REVIEW_COMMENTS,
                        self.state.cursors.contains_key("review_comments") || !existing.is_empty(),
                    )
                    .await?;
                if let Some(all) = &all {
                    let mut by: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
                    for c in all {
                        if let Some(n) = parent_number(c, "pull_request_url") {
                            by.entry(n).or_default().push(c.clone());
                        }
                    }
                    for (n, w) in work.iter_mut() {
                        w.review_comments = Some(by.remove(n).unwrap_or_default());
                    }
                    for (n, list) in by {
                        work.entry(n).or_default().review_comments = Some(list);
                    }
                }
                all
            } else {
                None
            };
            for c in self
                .changed_since(REVIEW_COMMENTS, "review_comments", full_reviews.as_deref())
                .await?
            {
                if let Some(n) = parent_number(&c, "pull_request_url") {
                    work.entry(n).or_default().new_review_comments.push(c);
                }
            }
        }
        self.events(&mut work, &existing).await?;
        let mut prepared = Vec::new();
        for (n, w) in work {
            if let Some(p) = self
                .prepare_item(n, w, issues, pulls, existing.get(&n).copied())
                .await?
            {
                prepared.push(p);
            }
        }
        // Pull requests' own resources: several pull requests, and their three requests, at
        // once; latency, not bandwidth, is what a backup of many small items waits for.
        let wanted: Vec<(u64, [(bool, bool); 3])> = prepared
            .iter()
            .filter(|p| p.is_pr)
            .map(|p| {
                let want = |key: &str| {
                    (
                        p.refresh || !p.doc.contains_key(key),
                        p.doc.contains_key(key),
                    )
                };
                (p.n, [want("pull"), want("reviews"), want("commits")])
            })
            .collect();
        let fetched: Vec<Result<PullParts, ForgeError>> = {
            let (client, who, base, etags) =
                (self.client, &self.who, &self.base, &self.state.etags);
            stream::iter(wanted)
                .map(|(n, want)| pull_parts(client, who, base, etags, n, want))
                .buffered(PULLS_AT_ONCE)
                .collect()
                .await
        };
        let mut fetched = fetched.into_iter();
        for mut p in prepared {
            if p.is_pr {
                let parts = fetched.next().unwrap_or_else(|| Ok(PullParts::default()))?;
                self.apply(parts.updates);
                if let Some(v) = parts.pull {
                    p.doc.insert("pull".into(), v);
                }
                if let Some(list) = parts.reviews {
                    p.doc.insert("reviews".into(), Value::Array(list));
                }
                if let Some(list) = parts.commits {
                    p.doc.insert("commits".into(), Value::Array(list));
                }
            }
            self.finish_item(p)?;
        }
        Ok(())
    }

    /// Issue and pull request events from the repository-wide list (newest first): one request
    /// per hundred events instead of one per issue. Events never change once created, so an
    /// incremental run reads pages only until it reaches the newest event it already has.
    async fn events(
        &mut self,
        work: &mut BTreeMap<u64, Work>,
        existing: &BTreeMap<u64, bool>,
    ) -> Result<(), ForgeError> {
        const EVENTS: &str = "issues/events?per_page=100";
        const KEY: &str = "issue_events";
        let last: Option<u64> = self.state.cursors.get(KEY).and_then(|s| s.parse().ok());
        let mut newest = last;
        if self.full || last.is_none() {
            let have = last.is_some() || !existing.is_empty();
            let Some(all) = self.all_items(EVENTS, have).await? else {
                return Ok(());
            };
            let mut by: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
            for mut e in all {
                newest = newest.max(e.get("id").and_then(Value::as_u64));
                if let Some(n) = event_issue(&mut e) {
                    by.entry(n).or_default().push(e);
                }
            }
            for n in existing.keys() {
                work.entry(*n).or_default();
            }
            for (n, w) in work.iter_mut() {
                w.events = Some(by.remove(n).unwrap_or_default());
            }
            for (n, list) in by {
                work.entry(n).or_default().events = Some(list);
            }
            // Seen, even when empty: the next run asks conditionally.
            newest = newest.or(Some(0));
        } else {
            let mut next = Some(self.url(EVENTS)?);
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(ForgeError::invalid("a list that does not end"));
                }
                let (page, n) = self.fetch(&url, true).await?;
                // Unchanged first page: nothing happened since the last run.
                let Some(Value::Array(items)) = page else {
                    break;
                };
                let mut reached = false;
                for mut e in items {
                    let id = e.get("id").and_then(Value::as_u64);
                    if id.is_some_and(|id| last.is_some_and(|l| id <= l)) {
                        reached = true;
                        continue;
                    }
                    newest = newest.max(id);
                    if let Some(num) = event_issue(&mut e) {
                        work.entry(num).or_default().new_events.push(e);
                    }
                }
                if reached {
                    break;
                }
                next = n;
            }
        }
        if let Some(id) = newest {
            self.state.cursors.insert(KEY.into(), id.to_string());
        }
        Ok(())
    }

    /// Numbers of stored issues (`false`) and pull requests (`true`).
    fn existing_numbers(&self) -> Result<BTreeMap<u64, bool>, ForgeError> {
        let mut out = BTreeMap::new();
        for (dir, pr) in [("issues", false), ("pulls", true)] {
            for name in self.sink.list(dir)? {
                if let Some(n) = name
                    .strip_suffix(".json")
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    out.insert(n, pr);
                }
            }
        }
        Ok(out)
    }

    /// Builds an item's document from what this run learned; the pull request's own resources
    /// are fetched afterwards for all pull requests together. `None`: not captured.
    async fn prepare_item(
        &mut self,
        n: u64,
        w: Work,
        issues: bool,
        pulls: bool,
        stored_as_pr: Option<bool>,
    ) -> Result<Option<Prepared>, ForgeError> {
        let stored = match stored_as_pr {
            Some(pr) => self.sink.read(&doc_path(n, pr))?,
            None => None,
        };
        let mut doc = match stored {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut refresh = w.refresh;
        if let Some(item) = w.item {
            if doc.get("issue").and_then(updated_at) != updated_at(&item) {
                refresh = true;
            }
            doc.insert("issue".into(), item);
        }
        if !doc.contains_key("issue") {
            // Only comments or events arrived for an issue we do not hold (e.g. its own update
            // was older than the cursor): fetch it.
            let url = self.url(&format!("issues/{n}"))?;
            match self.fetch(&url, false).await {
                Ok((Some(v), _)) => {
                    doc.insert("issue".into(), v);
                    refresh = true;
                }
                Ok((None, _)) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let is_pr = doc
            .get("issue")
            .is_some_and(|i| i.get("pull_request").is_some_and(|p| !p.is_null()));
        if (is_pr && !pulls) || (!is_pr && !issues) {
            return Ok(None);
        }
        if stored_as_pr.is_some_and(|pr| pr != is_pr) {
            self.sink.remove(&doc_path(n, !is_pr))?;
        }
        merge_list(&mut doc, "comments", w.comments, w.new_comments);
        merge_list(&mut doc, "events", w.events, w.new_events);
        if is_pr {
            merge_list(
                &mut doc,
                "review_comments",
                w.review_comments,
                w.new_review_comments,
            );
        }
        Ok(Some(Prepared {
            n,
            doc,
            is_pr,
            refresh,
        }))
    }

    fn finish_item(&mut self, p: Prepared) -> Result<(), ForgeError> {
        let Prepared {
            n, mut doc, is_pr, ..
        } = p;
        for key in ["comments", "events"].into_iter().chain(
            is_pr
                .then_some(["review_comments", "reviews", "commits"])
                .into_iter()
                .flatten(),
        ) {
            doc.entry(key).or_insert_with(|| Value::Array(Vec::new()));
        }
        self.write(&doc_path(n, is_pr), &Value::Object(doc))
    }

    async fn releases(&mut self) -> Result<(), ForgeError> {
        let stored = self.sink.list("releases")?;
        let have = !stored.is_empty()
            || self
                .state
                .etags
                .keys()
                .any(|k| k.ends_with("/releases?per_page=100"));
        let Some(list) = self.all_items("releases?per_page=100", have).await? else {
            return self.check_assets_present().await;
        };
        let mut live = BTreeSet::new();
        for release in &list {
            let id = release
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| ForgeError::invalid("a release without an id"))?;
            live.insert(id.to_string());
            self.write(&format!("releases/{id}.json"), release)?;
            self.release_assets(id, release).await?;
        }
        for name in stored {
            let id = name.strip_suffix(".json").unwrap_or(&name);
            if !live.contains(id) {
                self.sink.remove(&format!("releases/{name}"))?;
                self.out.updated += 1;
            }
        }
        Ok(())
    }

    /// After an unchanged release list: make sure every asset is there (a previous run may
    /// have been stopped while downloading).
    async fn check_assets_present(&mut self) -> Result<(), ForgeError> {
        for name in self.sink.list("releases")? {
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(release) = self.sink.read(&format!("releases/{name}"))? {
                self.release_assets(id, &release).await?;
            }
        }
        Ok(())
    }

    async fn release_assets(&mut self, id: u64, release: &Value) -> Result<(), ForgeError> {
        let dir = format!("releases/{id}/assets");
        let mut want = BTreeSet::new();
        for asset in release
            .get("assets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let aid = asset
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| ForgeError::invalid("a release asset without an id"))?;
            let name = safe_file_name(asset.get("name").and_then(Value::as_str).unwrap_or(""));
            let file = format!("{aid}-{name}");
            let rel = format!("{dir}/{file}");
            want.insert(file);
            let size = asset.get("size").and_then(Value::as_u64);
            let path = self.sink.path(&rel);
            let present = std::fs::metadata(&path)
                .ok()
                .is_some_and(|m| m.is_file() && size.is_none_or(|s| s == m.len()));
            if present {
                continue;
            }
            // Our own URL for the asset, not the one in the JSON: the token goes only here.
            let url = self.url(&format!("releases/assets/{aid}"))?;
            let got = self
                .client
                .download(&url, &self.who, &path)
                .await
                .map_err(|e| e.context(format!("release asset {aid}")))?;
            if size.is_some_and(|s| s != got) {
                let _ = std::fs::remove_file(&path);
                return Err(ForgeError::new(
                    ErrorKind::Invalid,
                    format!(
                        "release asset {aid}: {got} bytes downloaded, the release lists {}",
                        size.unwrap_or(0)
                    ),
                ));
            }
            self.out.assets_downloaded += 1;
            self.out.updated += 1;
        }
        for file in self.sink.list(&dir)? {
            if !want.contains(&file) {
                self.sink.remove(&format!("{dir}/{file}"))?;
            }
        }
        if want.is_empty() {
            self.sink.remove(&format!("releases/{id}"))?;
        }
        Ok(())
    }

    async fn single_list(
        &mut self,
        rest: &str,
        file: &str,
        sort_key: &str,
        what: &str,
    ) -> Result<(), ForgeError> {
        let have = self.sink.read(file)?.is_some();
        match self.all_items(rest, have).await {
            Ok(Some(mut list)) => {
                list.sort_by_key(|v| sort_value(v, sort_key));
                self.write(file, &Value::Array(list))
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e.context(what)),
        }
    }

    async fn hooks(&mut self) -> Result<(), ForgeError> {
        let have = self.sink.read("hooks.json")?.is_some();
        match self.all_items("hooks?per_page=100", have).await {
            Ok(Some(mut list)) => {
                for hook in &mut list {
                    strip_hook_secrets(hook);
                }
                list.sort_by_key(|h| h.get("id").and_then(Value::as_u64));
                self.write("hooks.json", &Value::Array(list))
            }
            Ok(None) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::Forbidden | ErrorKind::NotFound) => {
                self.out
                    .notes
                    .push("hooks: not readable with these credentials (needs admin access to the repository)".into());
                Ok(())
            }
            Err(e) => Err(e.context("hooks")),
        }
    }

    fn count(&mut self) -> Result<(), ForgeError> {
        let numbers = self.existing_numbers()?;
        let pulls = numbers.values().filter(|pr| **pr).count() as u64;
        let counts = &mut self.out.counts;
        counts.insert("issues".into(), numbers.len() as u64 - pulls);
        counts.insert("pulls".into(), pulls);
        let releases = self.sink.list("releases")?;
        let mut n_releases = 0;
        let mut n_assets = 0;
        for name in &releases {
            if name.ends_with(".json") {
                n_releases += 1;
            } else {
                n_assets += self.sink.list(&format!("releases/{name}/assets"))?.len() as u64;
            }
        }
        counts.insert("releases".into(), n_releases);
        counts.insert("assets".into(), n_assets);
        for (key, file) in [
            ("labels", "labels.json"),
            ("milestones", "milestones.json"),
            ("hooks", "hooks.json"),
        ] {
            if let Some(Value::Array(a)) = self.sink.read(file)? {
                self.out.counts.insert(key.into(), a.len() as u64);
            }
        }
        Ok(())
    }
}
