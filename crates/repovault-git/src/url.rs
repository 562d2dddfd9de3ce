//! Remote URLs as configured by users: validated, never carrying secrets, and displayed safely.

use std::fmt;

use crate::GitError;

/// How a remote is reached; decides which credentials apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Http,
    Ssh,
    GitDaemon,
    Local,
}

/// A git remote URL without embedded passwords.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RemoteUrl {
    url: String,
    transport: Transport,
}

impl RemoteUrl {
    /// Accepts `https://`, `http://`, `ssh://`, `git://`, `file://`, scp-like `user@host:path` and
    /// local paths. A password or token inside the URL is refused, because it would end up in
    /// process listings and logs; configure it as a token instead.
    pub fn parse(url: &str) -> Result<Self, GitError> {
        let invalid = |reason: &str| GitError::InvalidUrl {
            url: crate::redact(url),
            reason: reason.to_owned(),
        };
        if url.is_empty() {
            return Err(invalid("it is empty"));
        }
        if url.chars().any(char::is_control) {
            return Err(invalid("it contains control characters"));
        }
        // git would treat a leading dash as an option.
        if url.starts_with('-') {
            return Err(invalid("it starts with '-'"));
        }
        let transport = if let Some((scheme, rest)) = url.split_once("://") {
            let authority = rest.split('/').next().unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if userinfo.contains(':') {
                    return Err(invalid(
                        "it contains a password; put the token in the source's token/token_file instead",
                    ));
                }
            }
            match scheme {
                "http" | "https" => Transport::Http,
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                "git" => Transport::GitDaemon,
                "file" => Transport::Local,
                _ => return Err(invalid("unsupported scheme")),
            }
        } else if url.starts_with('/') || url.starts_with('.') {
            Transport::Local
        } else if is_scp_like(url) {
            Transport::Ssh
        } else {
            return Err(invalid(
                "not a URL git understands (expected https://, ssh://, git://, user@host:path or a path)",
            ));
        };
        Ok(Self {
            url: url.to_owned(),
            transport,
        })
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The URL as git needs it. It holds no secret (see [`RemoteUrl::parse`]).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `scheme://host[:port]/` for http(s) URLs: the scope an auth header is limited to, so a
    /// redirect to another host never receives it.
    pub fn http_origin(&self) -> Option<String> {
        if self.transport != Transport::Http {
            return None;
        }
        let (scheme, rest) = self.url.split_once("://")?;
        let authority = rest.split('/').next()?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        Some(format!("{scheme}://{host}/"))
    }

    /// The host (with port when given) the remote lives on; `None` for local paths.
    pub fn host(&self) -> Option<String> {
        if self.transport == Transport::Local {
            return None;
        }
        let authority = match self.url.split_once("://") {
            Some((_, rest)) => rest.split('/').next().unwrap_or_default(),
            None => self.url.split_once(':').map_or("", |(h, _)| h),
        };
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (!host.is_empty()).then(|| host.to_owned())
    }

    /// The path segments after the host, `.git` stripped from the last, empty ones dropped.
    pub fn path_segments(&self) -> Vec<String> {
        let path = match self.transport {
            Transport::Local => self.url.strip_prefix("file://").unwrap_or(&self.url),
            _ if self.url.contains("://") => {
                let rest = self.url.split_once("://").map_or("", |(_, r)| r);
                rest.split_once('/').map_or("", |(_, p)| p)
            }
            _ => self.url.split_once(':').map_or("", |(_, p)| p),
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let mut segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(last) = segs.last_mut() {
            if let Some(stripped) = last.strip_suffix(".git") {
                *last = stripped.to_owned();
            }
        }
        segs
    }
}

fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, path)) => !host.is_empty() && !host.contains('/') && !path.is_empty(),
        None => false,
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact(&self.url))
    }
}

impl fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_and_segments() {
        let cases = [
            (
                "https://git.example.com/org/app.git",
                Transport::Http,
                "org/app",
            ),
            ("ssh://git@host:22/org/lib.git", Transport::Ssh, "org/lib"),
            ("git://host/x/y.git", Transport::GitDaemon, "x/y"),
            ("/srv/git/z.git", Transport::Local, "srv/git/z"),
            ("git@github.com:acme/tool.git", Transport::Ssh, "acme/tool"),
            ("file:///srv/a/b", Transport::Local, "srv/a/b"),
        ];
        for (url, t, segs) in cases {
            let u = RemoteUrl::parse(url).expect(url);
            assert_eq!(u.transport(), t, "{url}");
            assert_eq!(u.path_segments().join("/"), segs, "{url}");
            assert_eq!(u.host().is_none(), t == Transport::Local, "{url}");
        }
    }

    #[test]
    fn refuses_passwords_and_option_injection() {
        assert!(RemoteUrl::parse("https://u:tok@h/a/b.git").is_err());
        assert!(RemoteUrl::parse("--upload-pack=evil").is_err());
        assert!(RemoteUrl::parse("ftp://h/a").is_err());
        assert!(RemoteUrl::parse("https://h/a\nb").is_err());
        assert!(RemoteUrl::parse("https://user@h/a/b.git").is_ok());
    }

    #[test]
    fn http_origin_scopes_to_host() {
        let u = RemoteUrl::parse("https://user@git.example.com:8443/a/b.git").expect("valid");
        assert_eq!(
            u.http_origin().as_deref(),
            Some("https://git.example.com:8443/")
        );
    }
}
