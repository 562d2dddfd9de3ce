//! The status page as a person sees it: headless Debian Chromium driven through chromedriver
//! (WebDriver), on a desktop-sized and a phone-sized window. Screenshots are kept as test
//! artifacts in `target/test-artifacts/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use fantoccini::{ClientBuilder, Locator};
use repovault_testkit::{free_port, TestEnv};

use crate::daemon::{good_and_gone, repo, Daemon};
use crate::receiver::eventually;
use crate::support::*;

/// Flags that work on the build machines (no sandbox, no GPU, nothing fetched from the network).
const CHROME_ARGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// chromedriver on a free loopback port, in its own process group so that stopping it (by its
/// PID, as the group leader) also ends the browser it started.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(log: &std::path::Path) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect(
                "chromedriver runs (scripts/test-deps.sh installs chromium and chromium-driver)",
            );
        eventually(30, "chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Self { child, port }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn artifacts() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|t| t.join("test-artifacts"))
        .unwrap_or_else(|| PathBuf::from("test-artifacts"));
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

#[test]
fn the_status_page_shows_a_failed_repository_as_failed_with_its_error() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let (good, gone) = good_and_gone(&env);
    let port = free_port();
    let config = rv.config(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[schedule]]\njob = \"backup\"\ncron = \"*/2 * * * * *\"\n\
         [[source]]\nname = \"local\"\nkind = \"git\"\nurls = [\"{}\", \"{}\"]\n",
        good.display(),
        gone.display()
    ));
    let mut daemon = Daemon::start(&rv, &config, port);
    eventually(60, "a finished backup", || {
        let s = daemon.status();
        (s["totals"]["repositories"] == 2).then_some(s)
    });
    // The page is read as it is after the first run; stop scheduling more.
    assert_eq!(daemon.stop(), 0);
    let config = rv.config(&format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut daemon = Daemon::start(&rv, &config, port);
    let status = daemon.status();
    let error = repo(&status, "acme/gone")["error"]["message"]
        .as_str()
        .expect("an error message")
        .to_owned();

    let driver = ChromeDriver::start(&env.root().join("chromedriver.log"));
    let profile = env.fresh_dir("chrome-profile");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let shots = artifacts();
    rt.block_on(async {
        let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session");
        let url = format!("http://127.0.0.1:{port}/");

        client.set_window_size(1280, 1000).await.expect("resize");
        client.goto(&url).await.expect("page loads");
        let title = client.title().await.expect("title");
        assert!(title.contains("1 of 2 repositories failing"), "{title}");
        let overall = client
            .find(Locator::Id("overall"))
            .await
            .expect("headline")
            .text()
            .await
            .expect("text");
        assert_eq!(overall, "1 of 2 repositories failing");
        let failed = client
            .find(Locator::Css("tr.repo.failed"))
            .await
            .expect("a failed row");
        let text = failed.text().await.expect("row text");
        assert!(text.contains("acme/gone"), "{text}");
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("not-found"), "{text}");
        assert!(text.contains(&error[..40.min(error.len())]), "{text}");
        let badge = failed.find(Locator::Css(".badge")).await.expect("badge");
        assert!(badge.is_displayed().await.expect("displayed"));
        let ok = client
            .find(Locator::Css("tr.repo.ok"))
            .await
            .expect("an ok row")
            .text()
            .await
            .expect("text");
        assert!(ok.contains("acme/app") && ok.contains("OK"), "{ok}");
        assert!(!ok.contains("FAILED"), "{ok}");
        // The failed repository is listed first.
        let rows = client
            .find_all(Locator::Css("#repositories tbody tr"))
            .await
            .expect("rows");
        assert_eq!(rows.len(), 2);
        assert!(rows[0].text().await.expect("text").contains("acme/gone"));
        let runs = client
            .find(Locator::Css("#runs"))
            .await
            .expect("runs table")
            .text()
            .await
            .expect("text");
        assert!(
            runs.contains("FAILURE") && runs.contains("acme/gone (not-found)"),
            "{runs}"
        );
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(shots.join("status-page.png"), png).expect("save screenshot");

        // A phone: tables become cards; the header row is gone, the error is still there.
        client.set_window_size(390, 844).await.expect("resize");
        client.goto(&url).await.expect("page loads");
        let head = client
            .find(Locator::Css("#repositories thead"))
            .await
            .expect("thead");
        assert!(!head.is_displayed().await.expect("displayed"));
        let failed = client
            .find(Locator::Css("tr.repo.failed"))
            .await
            .expect("a failed row");
        assert!(failed.is_displayed().await.expect("displayed"));
        let width: f64 = client
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .expect("width")
            .as_f64()
            .unwrap_or(f64::MAX);
        assert!(
            width <= 390.0,
            "the page is wider than the phone: {width}px"
        );
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(shots.join("status-page-phone.png"), png).expect("save screenshot");
        client.close().await.expect("close session");
    });
    assert_eq!(daemon.stop(), 0);
}
