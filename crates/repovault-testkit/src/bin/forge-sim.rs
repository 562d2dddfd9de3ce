//! The forge simulator as a program: builds a fixture, serves it on HTTPS, prints where and
//! with which credentials, and runs until SIGTERM or SIGINT (then stops its git server).
//!
//! `forge-sim --fixture small --listen 127.0.0.1:8443 [--json]`

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use repovault_testkit::forge::{Fixture, ForgeSim, SimOptions};

#[derive(Debug, Parser)]
#[command(
    name = "forge-sim",
    about = "A GitHub REST API simulator with git, LFS and release downloads over HTTPS"
)]
struct Args {
    /// small, large, or org:<repos>[:<issues per repo>[:<pulls per repo>]]
    #[arg(long, default_value = "small")]
    fixture: Fixture,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Length of a primary rate-limit window in seconds (GitHub: 3600).
    #[arg(long, default_value_t = 3600)]
    rate_window_secs: u64,
    /// Lifetime of installation tokens in seconds (GitHub: 3600).
    #[arg(long, default_value_t = 3600)]
    token_lifetime_secs: u64,
    /// Print the start-up facts as one JSON object instead of `key: value` lines.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "forge-sim: refusing to listen on {}: loopback addresses only",
            args.listen
        );
        return ExitCode::from(2);
    }
    let mut opts = SimOptions::new(args.fixture.clone());
    opts.listen = args.listen;
    opts.rate_window = Duration::from_secs(args.rate_window_secs.max(1));
    opts.token_lifetime = Duration::from_secs(args.token_lifetime_secs.max(1));
    eprintln!("forge-sim: building fixture {} ...", args.fixture);
    let mut sim = match ForgeSim::start_with(opts) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("forge-sim: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let info = sim.info();
    if args.json {
        println!("{info}");
    } else {
        eprintln!(
            "forge-sim: fixture {} built in {:.1} s",
            sim.fixture(),
            sim.build_time().as_secs_f64()
        );
        let field = |k: &str| {
            info.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        println!("base_url: {}", field("base_url"));
        println!("api_url: {}", field("api_url"));
        println!("enterprise_api_url: {}", field("enterprise_api_url"));
        println!("token: {}", field("token"));
        println!("token_owner: {}", field("token_owner"));
        println!("ca_path: {}", field("ca_path"));
        if let Some(app) = sim.app() {
            println!("app_id: {}", app.app_id);
            println!("app_client_id: {}", app.client_id);
            println!("app_private_key: {}", app.private_key_path.display());
            for (account, id) in app.installations {
                println!("installation: {account} {id}");
            }
        }
        println!("admin_url: {}/_sim", field("base_url"));
        println!("data_dir: {}", field("data_dir"));
    }
    let _ = std::io::stdout().flush();
    let waited = wait_for_signal();
    eprintln!("forge-sim: stopping (the git server, then the data directory)");
    sim.stop();
    match waited {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forge-sim: waiting for a signal failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    })
}
