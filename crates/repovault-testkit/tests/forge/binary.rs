//! The `forge-sim` program: prints how to connect, serves, and stops everything on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use repovault_testkit::pid_exists;
use serde_json::Value;

#[test]
fn the_binary_serves_until_sigterm_and_stops_its_children() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge-sim"))
        .args(["--fixture", "small", "--listen", "127.0.0.1:0", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting forge-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading forge-sim's output");
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let pem = std::fs::read(info["ca_path"].as_str().expect("ca_path")).expect("CA");
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .build()
        .expect("client");
    let token = info["token"].as_str().expect("token");
    let repo: Value = client
        .get(format!(
            "{}/repos/acme/widgets",
            info["enterprise_api_url"].as_str().expect("url")
        ))
        .header("authorization", format!("token {token}"))
        .header("user-agent", "repovault-testkit-tests")
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    assert_eq!(repo["full_name"], "acme/widgets");
    let app = &info["app"];
    assert!(app["app_id"].is_u64() && app["private_key_path"].is_string());
    let pids: Vec<u32> = info["git_server_pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(|p| p.as_u64().map(|p| p as u32))
        .collect();
    assert!(!pids.is_empty() && pids.iter().all(|p| pid_exists(*p)));
    let data_dir = std::path::PathBuf::from(info["data_dir"].as_str().expect("data_dir"));
    assert!(data_dir.exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("waiting for forge-sim") {
            break s;
        }
        assert!(Instant::now() < deadline, "forge-sim ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    assert!(
        pids.iter().all(|p| !pid_exists(*p)),
        "git server processes left behind"
    );
    assert!(!data_dir.exists(), "data dir left behind");
}
