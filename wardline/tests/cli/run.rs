//! Running the `wardline` binary itself: what it printed, and how it ended.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// What a run of the binary printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Succeeded; its output.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:?}");
        assert!(self.stderr.is_empty(), "{self:?}");
        &self.stdout
    }

    /// Failed with status 1 and one line; that line.
    pub fn refused(&self) -> &str {
        assert_eq!(self.code, Some(1), "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:?}");
        let line = self.stderr.trim_end();
        assert!(line.starts_with("Error: "), "{self:?}");
        line
    }
}

/// Runs `wardline` with `args`, and no settings but `env` (none from the environment running
/// the tests, which may point at a development server).
pub async fn wardline(args: &[&str], env: &[(&str, &str)]) -> Run {
    wardline_reading(args, env, None).await
}

/// [`wardline`], with `stdin` on its standard input (none: nothing, closed).
pub async fn wardline_reading(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wardline"));
    command
        .args(args)
        .kill_on_drop(true)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WARDLINE_") {
            command.env_remove(name);
        }
    }
    // A refusal stays one line even when a backtrace is asked for.
    command.env("RUST_BACKTRACE", "1").envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(stdin) = stdin {
        input.write_all(stdin).await.unwrap();
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("wardline ran for a minute")
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}
