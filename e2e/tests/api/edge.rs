//! The edge as the tests run it: nginx, a child process of the test, with the configuration
//! `deploy/nginx/render` writes (the script `./deploy/dev up` runs) in a temporary directory;
//! for HTTPS, a certificate from a CA that `deploy/local-ca` (which `up` runs too) makes there.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the edge sends each kind of request.
pub struct Upstreams {
    pub command: u16,
    pub query: u16,
    pub notifier: u16,
    pub identity: u16,
}

impl Upstreams {
    /// Ports nothing listens on: for what the edge answers by itself.
    pub fn nowhere() -> Upstreams {
        Upstreams {
            command: test_support::free_port(),
            query: test_support::free_port(),
            notifier: test_support::free_port(),
            identity: test_support::free_port(),
        }
    }
}

/// A local CA and a server certificate for localhost, 127.0.0.1 and ::1 signed by it, made by
/// `deploy/local-ca` in a temporary directory.
pub struct LocalCa {
    dir: tempfile::TempDir,
}

impl LocalCa {
    pub fn create() -> LocalCa {
        let dir = tempfile::tempdir().unwrap();
        let output = local_ca(dir.path(), &[]);
        assert!(output.status.success(), "{}", describe(&output));
        LocalCa { dir }
    }

    /// The CA's certificate, PEM: what clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_cert()).unwrap()
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// Runs `deploy/local-ca --dir dir` with `options`.
pub fn local_ca(dir: &Path, options: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-ca");
    Command::new(&script)
        .arg("--dir")
        .arg(dir)
        .args(options)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()))
}

/// A command's exit status and output, for assertion messages.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A running nginx; stopped (and its workers with it) when dropped.
pub struct Edge {
    pub port: u16,
    /// The HTTPS port, when started with a certificate.
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    child: Child,
}

impl Edge {
    /// Renders the configuration for `upstreams` and `web_root`, with `options` added to the
    /// renderer's command line, and starts nginx on a free port.
    pub fn start(upstreams: &Upstreams, web_root: &Path, options: &[&str]) -> Edge {
        Edge::launch(upstreams, web_root, options, None, None)
    }

    /// As `start`, on the port `reserved` is bound to: for a test whose services must know the
    /// edge's address before it starts (the web app's tokens name the edge's origin as their
    /// audience). The reservation is let go just before nginx binds the port.
    pub fn start_on(
        reserved: TcpListener,
        upstreams: &Upstreams,
        web_root: &Path,
        options: &[&str],
    ) -> Edge {
        Edge::launch(upstreams, web_root, options, None, Some(reserved))
    }

    /// As `start`, with an HTTPS server too, on another free port, serving `ca`'s certificate.
    pub fn start_tls(
        upstreams: &Upstreams,
        web_root: &Path,
        options: &[&str],
        ca: &LocalCa,
    ) -> Edge {
        Edge::launch(upstreams, web_root, options, Some(ca), None)
    }

    fn launch(
        upstreams: &Upstreams,
        web_root: &Path,
        options: &[&str],
        tls: Option<&LocalCa>,
        mut reserved: Option<TcpListener>,
    ) -> Edge {
        let nginx = nginx_binary();
        let fixed = reserved.is_some();
        // Another process can take the free ports before nginx binds them: try a few.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = match &reserved {
                Some(listener) => listener.local_addr().unwrap().port(),
                None => test_support::free_port(),
            };
            let tls_port = tls.map(|_| test_support::free_port());
            let mut options: Vec<String> = options.iter().map(|&option| option.into()).collect();
            if let (Some(ca), Some(tls_port)) = (tls, tls_port) {
                options.extend([
                    "--tls-listen".into(),
                    format!("127.0.0.1:{tls_port}"),
                    "--tls-cert".into(),
                    ca.server_cert().display().to_string(),
                    "--tls-key".into(),
                    ca.server_key().display().to_string(),
                ]);
            }
            render(dir.path(), port, upstreams, web_root, &options);
            drop(reserved.take());
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
            let mut edge = Edge {
                port,
                tls_port,
                dir,
                child,
            };
            if edge.wait_until_listening() {
                return edge;
            }
            let log = edge.error_log();
            assert!(
                log.contains("Address already in use"),
                "nginx did not start:\n{log}"
            );
            assert!(
                !fixed,
                "another process took the reserved port {port} before nginx bound it"
            );
        }
        panic!("nginx found no free port in five tries");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `https://localhost:<tls port>`, the name the certificate is for.
    pub fn tls_base(&self) -> String {
        format!("https://localhost:{}", self.tls_port())
    }

    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("the edge was started without TLS")
    }

    /// The access log so far: one JSON object per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }

    /// True once nginx accepts connections (on both ports with TLS); false if it exited first.
    fn wait_until_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let ports: Vec<u16> = [Some(self.port), self.tls_port]
            .into_iter()
            .flatten()
            .collect();
        loop {
            if ports
                .iter()
                .all(|&port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
            {
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
fn render(dir: &Path, port: u16, upstreams: &Upstreams, web_root: &Path, options: &[String]) {
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
        .arg("--identity")
        .arg(format!("127.0.0.1:{}", upstreams.identity))
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
