//! The edge as the tests run it: nginx, a child process of the test, with the configuration
//! `deploy/nginx/render` writes (the script `./deploy/dev up` runs) in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the edge sends each kind of request.
pub struct Upstreams {
    pub command: u16,
    pub query: u16,
    pub notifier: u16,
}

impl Upstreams {
    /// Ports nothing listens on: for what the edge answers by itself.
    pub fn nowhere() -> Upstreams {
        Upstreams {
            command: test_support::free_port(),
            query: test_support::free_port(),
            notifier: test_support::free_port(),
        }
    }
}

/// A running nginx; stopped (and its workers with it) when dropped.
pub struct Edge {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Edge {
    /// Renders the configuration for `upstreams` and `web_root`, with `options` added to the
    /// renderer's command line, and starts nginx on a free port.
    pub fn start(upstreams: &Upstreams, web_root: &Path, options: &[&str]) -> Edge {
        let nginx = nginx_binary();
        // Another process can take the free port before nginx binds it: try a few.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = test_support::free_port();
            render(dir.path(), port, upstreams, web_root, options);
            let child = Command::new(&nginx)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .arg("-e")
                .arg(dir.path().join("logs/error.log"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| panic!("cannot run {}: {error}", nginx.display()));
            let mut edge = Edge { port, dir, child };
            if edge.wait_until_listening() {
                return edge;
            }
            let log = edge.error_log();
            assert!(
                log.contains("Address already in use"),
                "nginx did not start:\n{log}"
            );
        }
        panic!("nginx found no free port in five tries");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access log so far: one JSON object per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    /// True once nginx accepts connections; false if it exited first.
    fn wait_until_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, nginx's fast shutdown, which also stops its workers (a SIGKILL of the master
    /// would leave them serving the port); SIGKILL if it takes too long.
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `deploy/nginx/render` into `dir/nginx.conf`.
fn render(dir: &Path, port: u16, upstreams: &Upstreams, web_root: &Path, options: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/render");
    let output = Command::new(&script)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--command")
        .arg(format!("127.0.0.1:{}", upstreams.command))
        .arg("--query")
        .arg(format!("127.0.0.1:{}", upstreams.query))
        .arg("--notifier")
        .arg(format!("127.0.0.1:{}", upstreams.notifier))
        .arg("--web-root")
        .arg(web_root)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--out")
        .arg(dir.join("nginx.conf"))
        .args(options)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "deploy/nginx/render failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `NGINX_BIN`, else `nginx` on the PATH, else Debian's /usr/sbin/nginx (which is not on an
/// ordinary user's PATH).
fn nginx_binary() -> PathBuf {
    let from_env = std::env::var_os("NGINX_BIN").map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_env
        .into_iter()
        .chain(on_path)
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .expect(
            "nginx is not installed (looked at NGINX_BIN, the PATH and /usr/sbin/nginx): \
             run the tests with ./deploy/dev test, which installs it",
        )
}
