//! Secrets from the config or the environment: inline, a file, a command or a variable.
//! Values are wrapped in [`SecretString`] at once and never appear in errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use secrecy::SecretString;

#[derive(Debug, Clone)]
pub enum SecretSource {
    Inline(String),
    File(PathBuf),
    Command(String),
    Env(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret command {command:?} failed: {reason}")]
    Command { command: String, reason: String },
    #[error("environment variable {0} is not set")]
    Env(String),
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    pub fn from_options(
        inline: Option<&str>,
        file: Option<&Path>,
        command: Option<&str>,
        env: Option<&str>,
    ) -> Option<Self> {
        inline
            .map(|s| Self::Inline(s.to_owned()))
            .or_else(|| file.map(|p| Self::File(p.to_owned())))
            .or_else(|| command.map(|c| Self::Command(c.to_owned())))
            .or_else(|| env.map(|e| Self::Env(e.to_owned())))
    }

    fn describe(&self) -> String {
        match self {
            Self::Inline(_) => "the config".into(),
            Self::File(p) => p.display().to_string(),
            Self::Command(c) => format!("command {c:?}"),
            Self::Env(v) => format!("${v}"),
        }
    }

    pub fn resolve(&self) -> Result<SecretString, SecretError> {
        let value = match self {
            Self::Inline(s) => s.clone(),
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
            }
            Self::Command(command) => {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| SecretError::Command {
                        command: command.clone(),
                        reason: e.to_string(),
                    })?;
                if !out.status.success() {
                    return Err(SecretError::Command {
                        command: command.clone(),
                        reason: format!("exited with {}", out.status),
                    });
                }
                String::from_utf8(out.stdout).map_err(|_| SecretError::Command {
                    command: command.clone(),
                    reason: "printed something that is not UTF-8".into(),
                })?
            }
            Self::Env(var) => std::env::var(var).map_err(|_| SecretError::Env(var.clone()))?,
        };
        // Files and commands usually end with a newline that is not part of the secret.
        let trimmed = value.trim_end_matches(['\n', '\r']).to_owned();
        if trimmed.is_empty() {
            return Err(SecretError::Empty(self.describe()));
        }
        Ok(SecretString::from(trimmed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_and_command_are_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("pw");
        std::fs::write(&f, "hunter2\n").expect("write");
        assert_eq!(
            SecretSource::File(f).resolve().expect("ok").expose_secret(),
            "hunter2"
        );
        let c = SecretSource::Command("printf 'abc\\n'".into());
        assert_eq!(c.resolve().expect("ok").expose_secret(), "abc");
        let e = SecretSource::Command("exit 3".into())
            .resolve()
            .expect_err("fails");
        assert!(e.to_string().contains("exited"));
        assert!(SecretSource::Inline(String::new()).resolve().is_err());
    }
}
