//! Repository names (`owner/name`). They come from URLs and forges — untrusted input — and they
//! become directory names in caches and restore targets, so they are checked here, once.

use std::fmt;

/// A validated `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid repository name {shown}: {reason}")]
pub struct NameError {
    shown: String,
    reason: &'static str,
}

const MAX_SEGMENT: usize = 200;

impl RepoName {
    pub fn new(owner: &str, name: &str) -> Result<Self, NameError> {
        for seg in [owner, name] {
            check_segment(seg).map_err(|reason| NameError {
                shown: format!("{:?}", format!("{owner}/{name}")),
                reason,
            })?;
        }
        Ok(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Parses `owner/name` as a user types it.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match s.split_once('/') {
            Some((o, n)) => Self::new(o, n),
            None => Err(NameError {
                shown: format!("{s:?}"),
                reason: "expected owner/name",
            }),
        }
    }

    /// The name of a plain git remote: its last two path segments, `.git` stripped; a remote
    /// with a single segment gets the owner `_`.
    pub fn from_url(url: &repovault_git::RemoteUrl) -> Result<Self, NameError> {
        let segs = url.path_segments();
        match segs.as_slice() {
            [] => Err(NameError {
                shown: format!("{:?}", url.to_string()),
                reason: "the URL has no path",
            }),
            [name] => Self::new("_", name),
            [.., owner, name] => Self::new(owner, name),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check_segment(seg: &str) -> Result<(), &'static str> {
    if seg.is_empty() {
        return Err("an empty part");
    }
    if seg == "." || seg == ".." {
        return Err("'.' and '..' are not names");
    }
    if seg.len() > MAX_SEGMENT {
        return Err("a part longer than 200 bytes");
    }
    if seg.contains(['/', '\\']) {
        return Err("a path separator inside a part");
    }
    // Commas would split restic's tag lists; control and bidi characters make names that look
    // like other names in listings.
    if seg.contains(',') {
        return Err("a comma");
    }
    if seg.chars().any(|c| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }) {
        return Err("control or bidirectional-override characters");
    }
    Ok(())
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl From<RepoName> for String {
    fn from(n: RepoName) -> Self {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repovault_git::RemoteUrl;

    #[test]
    fn names_from_urls() {
        for (url, want) in [
            ("https://git.example.com/org/app.git", "org/app"),
            ("ssh://git@host:22/org/lib.git", "org/lib"),
            ("git://host/x/y.git", "x/y"),
            ("/srv/git/z.git", "git/z"),
            ("git://host/solo.git", "_/solo"),
        ] {
            let u = RemoteUrl::parse(url).expect("valid url");
            assert_eq!(RepoName::from_url(&u).expect(url).to_string(), want);
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "../x",
            "a/..",
            "/abs",
            "a/b\u{7}",
            "a/b,c",
            "a/\u{202e}gpj",
            "a/",
            "noslash",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RepoName::parse(&format!("a/{}", "x".repeat(201))).is_err());
        assert!(RepoName::parse("acme/app.rs-ü").is_ok());
    }
}
