//! repovault's daemon: runs the config's `[[schedule]]` entries, serves `/healthz`, `/readyz`,
//! `/metrics`, `/api/status` and a status page, keeps its state across restarts, and sends
//! notifications. The jobs themselves are run by the binary through [`JobRunner`].
//!
//! The metrics, notification and Pushgateway parts are also used by one-shot commands.

mod http;
pub mod metrics;
pub mod notify;
mod page;
pub mod push;
pub mod runner;
mod service;
pub mod state;
mod status;

pub use runner::{JobOutcome, JobRunner, Outcome, RunRecord, Task};
pub use service::{run, DaemonError, Options};
pub use status::Status;
