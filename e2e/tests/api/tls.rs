//! HTTPS at the edge: the certificate `deploy/local-ca` makes, what the HTTPS server accepts
//! (TLS 1.2 and 1.3, HTTP/2, strong suites only), Strict-Transport-Security on HTTPS only, and
//! the routes to the identity service, over both servers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use reqwest::{Certificate, Client, Version};
use serde_json::{Value, json};

use crate::edge::{Edge, LocalCa, Upstreams, describe, local_ca};
use crate::helpers::{INDEX_HTML, assert_security_headers, header, web_root};

const HSTS: &str = "max-age=31536000; includeSubDomains";

#[tokio::test]
async fn https_answers_over_http2_with_hsts_and_plain_http_without() {
    let ca = LocalCa::create();
    let web = web_root();
    let edge = Edge::start_tls(&Upstreams::nowhere(), web.path(), &[], &ca);

    let response = https_client(&ca)
        .get(format!("{}/health", edge.tls_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(header(&response, "strict-transport-security"), Some(HSTS));
    assert_security_headers(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["service"], "edge");

    // The same paths as plain HTTP: the web app, and FHIR (502 here: no service behind).
    let page = https_client(&ca)
        .get(format!("{}/", edge.tls_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&page, "strict-transport-security"), Some(HSTS));
    assert_security_headers(&page);
    assert_eq!(page.text().await.unwrap(), INDEX_HTML);
    let fhir = https_client(&ca)
        .get(format!("{}/fhir/metadata", edge.tls_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(fhir.status(), 502);
    assert_eq!(header(&fhir, "strict-transport-security"), Some(HSTS));
    assert_security_headers(&fhir);

    let plain = Client::new()
        .get(format!("{}/health", edge.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.version(), Version::HTTP_11);
    assert_eq!(header(&plain, "strict-transport-security"), None);
    assert_security_headers(&plain);

    // Plain HTTP sent to the HTTPS port is told to use HTTPS, without HSTS (it came in clear).
    let mistaken = Client::new()
        .get(format!("http://127.0.0.1:{}/health", edge.tls_port()))
        .send()
        .await
        .unwrap();
    assert_eq!(mistaken.status(), 400);
    assert_eq!(header(&mistaken, "strict-transport-security"), None);
    assert_security_headers(&mistaken);
    let outcome: Value = mistaken.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "security", "{outcome}");
}

#[tokio::test]
async fn the_certificate_verifies_against_the_local_ca_for_localhost_and_127_0_0_1() {
    let ca = LocalCa::create();
    let web = web_root();
    let edge = Edge::start_tls(&Upstreams::nowhere(), web.path(), &[], &ca);
    let port = edge.tls_port();

    for url in [
        format!("https://localhost:{port}/health"),
        format!("https://127.0.0.1:{port}/health"),
    ] {
        let response = https_client(&ca).get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }

    // A client that trusts another CA (another machine's, say) refuses the certificate.
    let other = LocalCa::create();
    let error = https_client(&other)
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{error:?}").contains("UnknownIssuer"),
        "not a certificate error: {error:?}"
    );
}

/// What the README shows: curl trusting the CA with --cacert, and HTTP/2.
#[test]
fn curl_with_the_ca_gets_http2_and_without_it_refuses_the_certificate() {
    let ca = LocalCa::create();
    let web = web_root();
    let edge = Edge::start_tls(&Upstreams::nowhere(), web.path(), &[], &ca);
    let url = format!("{}/health", edge.tls_base());

    let output = curl(&["--cacert", ca.ca_cert().to_str().unwrap(), &url]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "2 200");

    // curl's own trust store does not hold the local CA: exit 60, certificate problem.
    let output = curl(&[&url]);
    assert_eq!(output.status.code(), Some(60), "{}", describe(&output));
}

#[test]
fn tls_1_2_and_1_3_are_accepted_and_older_protocols_and_weak_suites_refused() {
    let ca = LocalCa::create();
    let web = web_root();
    let edge = Edge::start_tls(&Upstreams::nowhere(), web.path(), &[], &ca);

    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let output = handshake(&edge, &ca, &[flag]);
        assert!(output.status.success(), "{flag}: {}", describe(&output));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains(&format!("New, {protocol},")),
            "{flag}: {text}"
        );
        // The certificate verified for localhost against the CA.
        assert!(
            text.contains("Verify return code: 0 (ok)"),
            "{flag}: {text}"
        );
    }

    // OpenSSL's default security level would stop the client from offering TLS 1.0 and 1.1
    // at all; level 0 makes it offer them, so that a refusal is the server's.
    for flag in ["-tls1", "-tls1_1"] {
        let output = handshake(&edge, &ca, &[flag, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        assert!(!output.status.success(), "{flag}: {}", describe(&output));
        assert!(
            describe(&output).contains("alert protocol version"),
            "{flag} was not refused for its protocol version: {}",
            describe(&output)
        );
    }

    // TLS 1.2 with a suite that is neither AEAD nor in the list (CBC with SHA-1), though the
    // certificate's key could serve it.
    let output = handshake(
        &edge,
        &ca,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        describe(&output).contains("handshake failure"),
        "{}",
        describe(&output)
    );
}

#[tokio::test]
async fn auth_and_well_known_go_to_the_identity_service_over_both_servers() {
    let ca = LocalCa::create();
    let web = web_root();
    let upstreams = Upstreams {
        identity: identity_stub().await,
        ..Upstreams::nowhere()
    };
    let edge = Edge::start_tls(&upstreams, web.path(), &[], &ca);
    let https = https_client(&ca);

    for path in [
        "/auth",
        "/auth/authorize?response_type=code&client_id=demo&state=x%2Fy",
        "/.well-known/smart-configuration",
        // A file name the static-file locations would otherwise take for one of the web app's.
        "/.well-known/jwks.json",
    ] {
        let response = https
            .get(format!("{}{path}", edge.tls_base()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(header(&response, "strict-transport-security"), Some(HSTS));
        assert_security_headers(&response);
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["service"], "identity", "{path}");
        assert_eq!(seen["uri"], path, "{path}");
        // What the identity service builds its issuer and redirect URLs from.
        assert_eq!(
            seen["host"],
            format!("localhost:{}", edge.tls_port()),
            "{path}"
        );
        assert_eq!(seen["forwarded_proto"], "https", "{path}");
    }

    // The sign-in form posts to its own page; the token request is a form too.
    let response = Client::new()
        .post(format!("{}/auth/token", edge.base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "strict-transport-security"), None);
    // No form-action in the policy: the browser follows the sign-in form's redirect to the
    // client application, on its own origin.
    let csp = header(&response, "content-security-policy").unwrap();
    assert!(!csp.contains("form-action"), "{csp}");
    let seen: Value = response.json().await.unwrap();
    assert_eq!(
        seen,
        json!({
            "service": "identity",
            "method": "POST",
            "uri": "/auth/token",
            "host": format!("127.0.0.1:{}", edge.port),
            "forwarded_proto": "http",
            "body": "grant_type=authorization_code&code=abc",
        })
    );

    // Only /auth and what lies under it: /authors is a route of the web app.
    let page = Client::new()
        .get(format!("{}/authors", edge.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), INDEX_HTML);
}

#[tokio::test]
async fn an_identity_service_that_does_not_answer_is_an_oauth_error() {
    let web = web_root();
    let edge = Edge::start(&Upstreams::nowhere(), web.path(), &[]);
    for path in ["/auth/token", "/.well-known/openid-configuration"] {
        let response = Client::new()
            .get(format!("{}{path}", edge.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502, "{path}");
        assert_security_headers(&response);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    }
}

#[test]
fn the_local_ca_is_made_once_and_the_certificate_renewed_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();

    // A certificate valid for 10 days: already within the 30 days before renewal.
    let first = local_ca(dir.path(), &["--days", "10"]);
    assert!(first.status.success(), "{}", describe(&first));
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("made a local CA"), "{said}");
    assert!(said.contains("made the server certificate"), "{said}");
    for key in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let (ca, certificate, key) = (read("ca.pem"), read("server.pem"), read("server.key"));

    // The CA is kept; the certificate and its key are made again.
    let second = local_ca(dir.path(), &[]);
    assert!(second.status.success(), "{}", describe(&second));
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(!said.contains("local CA"), "{said}");
    assert!(said.contains("made the server certificate"), "{said}");
    assert_eq!(read("ca.pem"), ca);
    assert_ne!(read("server.pem"), certificate);
    assert_ne!(read("server.key"), key);

    // A year's certificate is left alone.
    let certificate = read("server.pem");
    let third = local_ca(dir.path(), &[]);
    assert!(third.status.success(), "{}", describe(&third));
    assert_eq!(String::from_utf8_lossy(&third.stdout), "");
    assert_eq!(read("server.pem"), certificate);

    // It names localhost and both loopback addresses, nothing else.
    for check in [
        ["-verify_hostname", "localhost"],
        ["-verify_ip", "127.0.0.1"],
        ["-verify_ip", "::1"],
    ] {
        let output = verify(dir.path(), "server.pem", &check);
        assert!(output.status.success(), "{check:?}: {}", describe(&output));
    }
    let output = verify(
        dir.path(),
        "server.pem",
        &["-verify_hostname", "example.com"],
    );
    assert!(!output.status.success(), "{}", describe(&output));

    // The CA vouches for loopback names only: a certificate its key signs for another site
    // does not verify, so trusting the CA in a browser risks nothing else.
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=example.com",
        "-keyout",
        "other.key",
        "-out",
        "other.csr",
    ]);
    std::fs::write(
        dir.path().join("other.cnf"),
        "subjectAltName = DNS:example.com\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "other.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "7",
        "-days",
        "1",
        "-extfile",
        "other.cnf",
        "-out",
        "other.pem",
    ]);
    let output = verify(dir.path(), "other.pem", &[]);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        describe(&output).contains("permitted subtree violation"),
        "{}",
        describe(&output)
    );
}

#[test]
fn without_a_certificate_no_https_server_is_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let render = |options: &[&str]| {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/render"))
            .arg("--web-root")
            .arg(dir.path().join("web"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(options)
            .output()
            .unwrap()
    };
    let output = render(&[]);
    assert!(output.status.success(), "{}", describe(&output));
    let config = String::from_utf8_lossy(&output.stdout);
    assert!(!config.contains(" ssl"), "{config}");
    assert!(!config.contains("ssl_certificate"), "{config}");
    assert!(config.contains("listen 127.0.0.1:8080;"), "{config}");

    // A certificate without its key (or the reverse) is a mistake, not plain HTTP only.
    let output = render(&["--tls-cert", "/nonexistent/server.pem"]);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("go together"),
        "{}",
        describe(&output)
    );
}

/// A client that trusts `ca` and nothing else, speaking HTTP/2 where the server offers it.
fn https_client(ca: &LocalCa) -> Client {
    Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(Certificate::from_pem(&ca.ca_pem()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The identity service's stand-in: answers every request with what it received, as JSON.
async fn identity_stub() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: String) -> axum::Json<Value> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let mut seen = json!({
        "service": "identity",
        "method": method.as_str(),
        "uri": uri.to_string(),
        "host": text("host"),
        "forwarded_proto": text("x-forwarded-proto"),
    });
    if !body.is_empty() {
        seen["body"] = json!(body);
    }
    axum::Json(seen)
}

/// A TLS handshake with the edge by `openssl s_client`, as localhost, verifying the
/// certificate against `ca`; `options` choose the protocol and suites.
fn handshake(edge: &Edge, ca: &LocalCa, options: &[&str]) -> Output {
    Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{}", edge.tls_port()))
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(ca.ca_cert())
        .arg("-verify_return_error")
        .args(options)
        // End of input: s_client closes the connection once the handshake is done.
        .stdin(Stdio::null())
        .output()
        .expect("openssl is not installed")
}

/// `openssl verify` of `certificate` in `dir` against the CA there.
fn verify(dir: &Path, certificate: &str, options: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(["verify", "-CAfile", "ca.pem"])
        .args(options)
        .arg(certificate)
        .output()
        .unwrap()
}

/// curl printing the HTTP version and status of its answer.
fn curl(options: &[&str]) -> Output {
    Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .args(["--max-time", "10"])
        .args(options)
        .output()
        .expect("curl is not installed")
}
