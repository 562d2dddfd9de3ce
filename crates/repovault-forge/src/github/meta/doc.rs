//! The stored documents: where each item goes, how changed entries merge into a document, and
//! what is cleaned out of forge JSON before it is stored.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value};
use url::Url;

/// The issue number of a repository-wide event, which embeds its issue; the stored event has
/// the shape of the per-issue list (without the embedded copy, which would go stale).
pub(super) fn event_issue(e: &mut Value) -> Option<u64> {
    let n = e.get("issue").and_then(number);
    if let Some(o) = e.as_object_mut() {
        o.remove("issue");
    }
    n
}

pub(super) fn doc_path(n: u64, pr: bool) -> String {
    if pr {
        format!("pulls/{n}.json")
    } else {
        format!("issues/{n}.json")
    }
}

pub(super) fn number(v: &Value) -> Option<u64> {
    v.get("number").and_then(Value::as_u64)
}

pub(super) fn updated_at(v: &Value) -> Option<String> {
    v.get("updated_at")
        .and_then(Value::as_str)
        .filter(|s| s.parse::<Timestamp>().is_ok())
        .map(str::to_owned)
}

/// A list item's identity for de-duplication within a run.
pub(super) fn identity(v: &Value) -> String {
    v.get("id")
        .map(Value::to_string)
        .or_else(|| number(v).map(|n| format!("#{n}")))
        .unwrap_or_default()
}

pub(super) fn newest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (ta, tb) = (a.parse::<Timestamp>().ok(), b.parse::<Timestamp>().ok());
            if tb > ta {
                Some(b)
            } else {
                Some(a)
            }
        }
        (a, b) => a.or(b),
    }
}

/// The issue or pull number a comment belongs to, from the last segment of its `field` URL.
pub(super) fn parent_number(c: &Value, field: &str) -> Option<u64> {
    c.get(field)
        .and_then(Value::as_str)
        .and_then(|u| u.rsplit('/').next())
        .and_then(|s| s.parse().ok())
}

/// Replaces a document's list (full pass) or merges changed entries into it by id.
pub(super) fn merge_list(
    doc: &mut Map<String, Value>,
    key: &str,
    all: Option<Vec<Value>>,
    changed: Vec<Value>,
) {
    if all.is_none() && changed.is_empty() {
        return;
    }
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    let base = match all {
        Some(list) => list,
        None => doc
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    for c in base.into_iter().chain(changed) {
        by_id.insert(identity(&c), c);
    }
    let mut list: Vec<Value> = by_id.into_values().collect();
    list.sort_by(|a, b| {
        let ka = (
            a.get("created_at").and_then(Value::as_str),
            a.get("id").and_then(Value::as_u64),
        );
        let kb = (
            b.get("created_at").and_then(Value::as_str),
            b.get("id").and_then(Value::as_u64),
        );
        ka.cmp(&kb)
    });
    doc.insert(key.into(), Value::Array(list));
}

pub(super) fn sort_value(v: &Value, key: &str) -> (Option<u64>, String) {
    let field = v.get(key);
    (
        field.and_then(Value::as_u64),
        field.and_then(Value::as_str).unwrap_or_default().to_owned(),
    )
}

/// Webhook secrets never leave the forge (GitHub masks them; drop the field anyway), nor do
/// credentials inside a hook's target URL.
pub(super) fn strip_hook_secrets(hook: &mut Value) {
    let Some(config) = hook.get_mut("config").and_then(Value::as_object_mut) else {
        return;
    };
    config.retain(|k, _| {
        let k = k.to_ascii_lowercase();
        !(k.contains("secret") || k.contains("token") || k.contains("password"))
    });
    if let Some(Value::String(u)) = config.get_mut("url") {
        if let Ok(mut parsed) = Url::parse(u) {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                *u = parsed.to_string();
            }
        }
    }
}

/// An asset name as one safe path component.
pub(super) fn safe_file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .take(150)
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() {
        "asset".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_by_id_in_creation_order() {
        let mut doc = Map::new();
        doc.insert(
            "comments".into(),
            json!([{"id": 1, "created_at": "2024-01-01T00:00:00Z", "body": "a"}]),
        );
        merge_list(
            &mut doc,
            "comments",
            None,
            vec![
                json!({"id": 2, "created_at": "2024-01-02T00:00:00Z", "body": "b"}),
                json!({"id": 1, "created_at": "2024-01-01T00:00:00Z", "body": "a2"}),
            ],
        );
        assert_eq!(
            doc["comments"],
            json!([
                {"id": 1, "created_at": "2024-01-01T00:00:00Z", "body": "a2"},
                {"id": 2, "created_at": "2024-01-02T00:00:00Z", "body": "b"}
            ])
        );
    }

    #[test]
    fn hook_secrets_and_names() {
        let mut h = json!({"id": 1, "config": {"url": "https://u:p@h/x", "secret": "********", "content_type": "json"}});
        strip_hook_secrets(&mut h);
        assert_eq!(
            h["config"],
            json!({"url": "https://h/x", "content_type": "json"})
        );
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name(""), "asset");
        assert_eq!(
            parent_number(
                &json!({"issue_url": "https://x/repos/a/b/issues/12"}),
                "issue_url"
            ),
            Some(12)
        );
        assert_eq!(
            newest(
                Some("2024-01-02T00:00:00Z".into()),
                Some("2024-01-01T00:00:00Z".into())
            )
            .as_deref(),
            Some("2024-01-02T00:00:00Z")
        );
    }
}
