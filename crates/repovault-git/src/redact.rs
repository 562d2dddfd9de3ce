//! Removing secrets from text that came from git or from users before it is logged or shown.

/// Replaces the user-info part of every URL in `text` (`scheme://user:secret@host`) with `***`,
/// and hides the value of any `Authorization:` header.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_headers(&out)
}

fn redact_headers(text: &str) -> String {
    text.lines()
        .map(
            |line| match line.to_ascii_lowercase().find("authorization:") {
                Some(i) => format!("{}Authorization: ***", &line[..i]),
                None => line.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn hides_userinfo_and_headers() {
        let s = "fatal: unable to access 'https://bob:ghp_SECRET@github.com/a/b.git/': x\nAuthorization: Basic QUJD";
        let r = redact(s);
        assert!(!r.contains("SECRET") && !r.contains("QUJD"), "{r}");
        assert!(r.contains("https://***@github.com/a/b.git/"));
        assert_eq!(redact("plain git://h/x"), "plain git://h/x");
    }
}
