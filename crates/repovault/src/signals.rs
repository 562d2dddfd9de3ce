//! SIGTERM and SIGINT: the first asks the running job to stop after the repositories in flight
//! (their snapshots are written, nothing else is started); a second one exits at once. The
//! store stays consistent either way: a snapshot becomes visible only once it is complete.

use tokio::signal::unix::{signal, Signal, SignalKind};

use repovault_core::Cancel;

/// Exit code after a second signal: 128 + SIGINT, as shells report an interrupted command.
const FORCED_EXIT: i32 = 130;

pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers; must run inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }

    /// Resolves on the first signal; from then on a second one exits the process.
    pub async fn stop_requested(mut self) {
        self.next().await;
        tracing::warn!(
            "stop requested: finishing the repositories in flight, then exiting (signal again to exit now)"
        );
        tokio::spawn(async move {
            self.next().await;
            tracing::error!(
                "second stop signal: exiting now; repositories in flight are not stored"
            );
            std::process::exit(FORCED_EXIT);
        });
    }
}

/// For one-shot commands: a thread that sets `cancel` on the first signal. Returns once the
/// handlers are installed.
pub fn cancel_on_signal(cancel: Cancel) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let signals = match Signals::install() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                signals.stop_requested().await;
                cancel.cancel();
                // Keep the runtime (and the second-signal handler) alive until the process ends.
                std::future::pending::<()>().await;
            });
        });
    let installed = match spawned {
        Ok(_) => ready_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended"))),
        Err(e) => Err(e),
    };
    if let Err(e) = installed {
        tracing::warn!("cannot watch for SIGTERM/SIGINT: {e}");
    }
}
