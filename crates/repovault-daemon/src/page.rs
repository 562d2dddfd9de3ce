//! The status page: plain HTML with inline CSS, no scripts and nothing loaded from elsewhere,
//! readable on a phone (tables turn into cards on narrow screens). Every value shown is escaped:
//! repository names and error messages come from remotes and forges.

use std::fmt::Write;

use jiff::Timestamp;
use repovault_core::report::{human_bytes, RepoStatus};

use crate::runner::Outcome;
use crate::status::Status;

const CSS: &str = r#"
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--fg:#1f2328;--mute:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--ok:#3fb950;--bad:#f85149;--warn:#d29922;--fg:#e6edf3;--mute:#9198a1;--line:#3d444d;--bg:#0d1117;--soft:#151b23}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:72rem;margin:0 auto}
h1{font-size:1.4rem;margin:0 0 .25rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.meta,small{color:var(--mute)}
.meta{margin:.25rem 0;font-size:.85rem;overflow-wrap:anywhere}
.overall{font-size:1.1rem;font-weight:600;padding:.6rem .8rem;border-radius:.4rem;border:1px solid var(--line);background:var(--soft)}
.overall.ok{border-left:.4rem solid var(--ok)}
.overall.bad{border-left:.4rem solid var(--bad)}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid var(--line)}
th{font-size:.8rem;color:var(--mute);font-weight:600}
td.num{white-space:nowrap}
.badge{display:inline-block;font-size:.75rem;font-weight:700;padding:.1rem .45rem;border-radius:1rem;color:#fff;white-space:nowrap}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}.badge.mute{background:var(--mute)}
tr.failed td{background:color-mix(in srgb,var(--bad) 8%,transparent)}
.error{color:var(--bad);overflow-wrap:anywhere;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
.stale{color:var(--warn);font-weight:600}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
.empty{color:var(--mute);font-style:italic}
@media (max-width:700px){
 body{padding:.6rem}
 table,thead,tbody,tr,th,td{display:block}
 thead{display:none}
 tr{border:1px solid var(--line);border-radius:.4rem;margin:0 0 .6rem;padding:.3rem .5rem}
 td{border:0;padding:.2rem 0 .2rem 7rem;position:relative;min-height:1.6rem}
 td::before{content:attr(data-label);position:absolute;left:0;top:.25rem;width:6.5rem;color:var(--mute);font-size:.8rem}
 td:empty{display:none}
}
"#;

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn outcome_badge(o: Outcome) -> String {
    let class = match o {
        Outcome::Success => "ok",
        Outcome::Failure | Outcome::Interrupted => "bad",
        Outcome::Skipped => "warn",
        Outcome::Running => "mute",
    };
    format!(
        "<span class=\"badge {class}\">{}</span>",
        o.as_str().to_uppercase()
    )
}

/// A snapshot older than this is shown as stale: a daily backup has missed a day.
const STALE_SECONDS: i64 = 48 * 3600;

pub fn render(s: &Status) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let (class, headline) = if s.totals.failed > 0 {
        (
            "bad",
            format!(
                "{} of {} repositories failing",
                s.totals.failed, s.totals.repositories
            ),
        )
    } else if s.totals.repositories == 0 {
        ("ok", "No repository backed up yet".to_string())
    } else {
        (
            "ok",
            format!("All {} repositories backed up", s.totals.repositories),
        )
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"60\">\
<title>repovault: {title} · {host}</title><style>{CSS}</style></head><body><main>\
<h1>repovault</h1>\
<p class=\"overall {class}\" id=\"overall\">{headline}</p>\
<p class=\"meta\">{host} · store <code>{store}</code>{size} · version {version} · {state} · updated {now}</p>",
        title = esc(&headline),
        host = esc(&s.host),
        store = esc(&s.store),
        size = s
            .store_size_bytes
            .map(|b| format!(" ({})", human_bytes(b)))
            .unwrap_or_default(),
        version = esc(s.version),
        state = if s.stopping {
            "stopping"
        } else if s.ready {
            "running"
        } else {
            "starting"
        },
        now = when(s.now),
    );

    h.push_str("<h2>Repositories</h2>");
    if s.repositories.is_empty() {
        h.push_str("<p class=\"empty\">No backup has run yet.</p>");
    } else {
        h.push_str(
            "<table id=\"repositories\"><thead><tr><th>Status</th><th>Repository</th>\
<th>Last snapshot</th><th>Age</th><th>Added</th><th>Last error</th></tr></thead><tbody>",
        );
        for view in &s.repositories {
            let r = &view.state;
            let failed = r.status == RepoStatus::Failed;
            let (snap, age) = match (&r.latest_snapshot, view.age_seconds) {
                (Some(snap), Some(age)) => (
                    format!(
                        "<code>{}</code><br><small>{}</small>",
                        esc(&snap.id[..snap.id.len().min(8)]),
                        when(snap.time)
                    ),
                    format!(
                        "<span class=\"{}\">{}</span>",
                        if age > STALE_SECONDS { "stale" } else { "" },
                        ago(age)
                    ),
                ),
                _ => ("<span class=\"empty\">none</span>".into(), String::new()),
            };
            let error = r
                .error
                .as_ref()
                .map(|e| {
                    format!(
                        "<span class=\"error\">{}: {}</span><br><small>failing since {}</small>",
                        esc(&e.kind),
                        esc(&e.message),
                        when(e.since)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr class=\"repo {cls}\" data-repo=\"{name}\"><td data-label=\"Status\">{badge}</td>\
<td data-label=\"Repository\"><b>{name}</b><br><small>{source} · {host}</small></td>\
<td data-label=\"Last snapshot\">{snap}</td><td data-label=\"Age\" class=\"num\">{age}</td>\
<td data-label=\"Added\" class=\"num\">{added}</td><td data-label=\"Last error\">{error}</td></tr>",
                cls = if failed { "failed" } else { "ok" },
                name = esc(&r.repo),
                badge = if failed {
                    "<span class=\"badge bad\">FAILED</span>"
                } else {
                    "<span class=\"badge ok\">OK</span>"
                },
                source = esc(&r.source),
                host = esc(&r.host),
                added = human_bytes(r.bytes_added),
            );
        }
        h.push_str("</tbody></table>");
    }

    h.push_str("<h2>Schedules</h2>");
    if s.tasks.is_empty() {
        h.push_str("<p class=\"empty\">No [[schedule]] in the config: nothing runs.</p>");
    } else {
        h.push_str(
            "<table id=\"schedules\"><thead><tr><th>Job</th><th>When</th><th>Next run</th>\
<th>Last run</th></tr></thead><tbody>",
        );
        for t in &s.tasks {
            let last = match &t.last_run {
                Some(r) => format!(
                    "{} <small>{}</small>",
                    outcome_badge(r.outcome),
                    when(r.started)
                ),
                None => "<span class=\"empty\">never</span>".into(),
            };
            let _ = write!(
                h,
                "<tr data-task=\"{name}\"><td data-label=\"Job\"><b>{name}</b>{running}</td>\
<td data-label=\"When\"><code>{cron}</code>{jitter}</td><td data-label=\"Next run\">{next}</td>\
<td data-label=\"Last run\">{last}</td></tr>",
                name = esc(&t.name),
                running = if t.running {
                    " <span class=\"badge mute\">RUNNING</span>"
                } else {
                    ""
                },
                cron = esc(&t.cron),
                jitter = if t.jitter == "0s" {
                    String::new()
                } else {
                    format!(" <small>+ up to {}</small>", esc(&t.jitter))
                },
                next = t.next_run.map(when).unwrap_or_default(),
            );
        }
        h.push_str("</tbody></table>");
    }

    h.push_str("<h2>Recent runs</h2>");
    if s.runs.is_empty() {
        h.push_str("<p class=\"empty\">No run yet.</p>");
    } else {
        h.push_str(
            "<table id=\"runs\"><thead><tr><th>Started</th><th>Job</th><th>Outcome</th>\
<th>Took</th><th>Summary</th></tr></thead><tbody>",
        );
        for r in s.runs.iter().take(200) {
            let took = r
                .finished
                .map(|f| ago(f.as_second() - r.started.as_second()))
                .unwrap_or_default();
            let error = match &r.error {
                Some(e) if *e != r.summary => {
                    format!("<br><span class=\"error\">{}</span>", esc(e))
                }
                _ => String::new(),
            };
            let _ = write!(
                h,
                "<tr class=\"run {o}\"><td data-label=\"Started\">{started}</td><td data-label=\"Job\">{task}</td>\
<td data-label=\"Outcome\">{badge}</td><td data-label=\"Took\" class=\"num\">{took}</td>\
<td data-label=\"Summary\">{summary}{error}</td></tr>",
                o = r.outcome.as_str(),
                started = when(r.started),
                task = esc(&r.task),
                badge = outcome_badge(r.outcome),
                summary = esc(&r.summary),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str(
        "<p class=\"meta\">Also: <a href=\"/api/status\">/api/status</a> (JSON) · \
<a href=\"/metrics\">/metrics</a> · refreshes every minute</p></main></body></html>\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(ago(59), "59s");
        assert_eq!(ago(3_660), "1h 1m");
        assert_eq!(ago(90_000), "1d 1h");
        assert_eq!(human_bytes(2048), "2.0 KiB");
    }
}
