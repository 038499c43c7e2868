//! `wardline sandbox create|list|show|reset|delete`, the binary itself against a real command
//! service and identity service: what it prints, its exit status, and every refusal as one line
//! with the status and the server's reasons (a backtrace asked for or not).

use serde_json::json;
use test_support::TestDatabase;

use crate::run::{Run, wardline};
use crate::servers::{Api, command_service};

/// `wardline sandbox <args>` against `api`, with `token`.
async fn sandbox(api: &Api, token: &str, args: &[&str]) -> Run {
    let server = api.server_url();
    wardline(
        &[&["sandbox"], args].concat(),
        &[("WARDLINE_SERVER_URL", &server), ("WARDLINE_TOKEN", token)],
    )
    .await
}

/// Writes a patient to the live record; the position of the write.
pub async fn write_patient(api: &Api, family: &str) -> i64 {
    let response = api
        .client()
        .post(format!("{}/Patient", api.url))
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "name": [{"family": family}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.headers()["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The value after `label` in `details` (`  starts at    position 12`).
pub fn field<'a>(details: &'a str, label: &str) -> &'a str {
    details
        .lines()
        .find_map(|line| line.strip_prefix(&format!("  {label:<12} ")))
        .unwrap_or_else(|| panic!("no {label} in {details}"))
}

/// Signed in as a backend client with its key (as `./deploy/dev` sets the command line up):
/// a sandbox of the present and one of a past position, listed, shown, reset and deleted.
#[tokio::test]
async fn sandboxes_are_created_listed_shown_reset_and_deleted() {
    let database = TestDatabase::create().await;
    let api = command_service(&database).await;
    let first = write_patient(&api, "Early").await;
    let head = write_patient(&api, "Late").await;
    assert!(first < head);

    let client = api.identity.backend_client("system/*.cruds").await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("client.key");
    std::fs::write(&key, &client.private_key_pem).unwrap();
    let server = api.server_url();
    let token_url = api.identity.token_url();
    let key = key.to_str().unwrap();
    let signed_in = [
        ("WARDLINE_SERVER_URL", server.as_str()),
        ("WARDLINE_TOKEN_URL", token_url.as_str()),
        ("WARDLINE_CLIENT_ID", client.client_id.as_str()),
        ("WARDLINE_CLIENT_KEY", key),
    ];
    let run = |args: &'static [&'static str]| wardline(args, &signed_in);

    assert_eq!(
        run(&["sandbox", "list"]).await.ok(),
        "no sandboxes (`wardline sandbox create <name>` makes one)\n"
    );

    // The present, by default.
    let created = run(&[
        "sandbox",
        "create",
        "night-shift",
        "--class",
        "demo",
        "--description",
        "Bay 3 at 02:00",
    ])
    .await;
    let created = created.ok();
    assert!(
        created.starts_with("created sandbox night-shift\n"),
        "{created}"
    );
    let night_base = field(created, "FHIR base").to_owned();
    assert!(
        night_base.ends_with("/sandbox/night-shift/fhir"),
        "{created}"
    );
    assert_eq!(
        field(created, "starts at"),
        format!("position {head}"),
        "{created}"
    );
    assert_eq!(field(created, "class"), "demo");
    assert_eq!(field(created, "description"), "Bay 3 at 02:00");
    assert!(
        field(created, "created").ends_with(&format!(" by {}", client.client_id)),
        "{created}"
    );
    assert_eq!(field(created, "reset"), "never");

    // A past position.
    let at = first.to_string();
    let early = wardline(&["sandbox", "create", "early", "--at", &at], &signed_in).await;
    let early = early.ok();
    assert!(early.starts_with("created sandbox early\n"), "{early}");
    assert_eq!(field(early, "starts at"), format!("position {first}"));
    assert_eq!(field(early, "class"), "-");
    assert!(!early.contains("description"), "{early}");

    // Listed by name, a column each.
    let list = run(&["sandbox", "list"]).await;
    let lines: Vec<&str> = list.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{list:?}");
    let header: Vec<&str> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CLASS",
            "START",
            "FHIR BASE",
            "CREATED BY",
            "CREATED AT",
            "RESET AT"
        ]
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let (early_row, night_row) = (&rows[0], &rows[1]);
    assert_eq!(early_row[..3], ["early", "-", at.as_str()]);
    assert!(early_row[3].ends_with("/sandbox/early/fhir"), "{list:?}");
    assert_eq!(early_row[4], client.client_id);
    assert_eq!(early_row[6], "-");
    let head_text = head.to_string();
    assert_eq!(
        night_row[..4],
        [
            "night-shift",
            "demo",
            head_text.as_str(),
            night_base.as_str()
        ]
    );
    // The columns line up: each starts where its heading does.
    let start_column = lines[0].find("START").unwrap();
    assert_eq!(&lines[1][start_column..start_column + at.len()], at);

    // Shown.
    let shown = run(&["sandbox", "show", "night-shift"]).await;
    let shown = shown.ok();
    assert!(shown.starts_with("sandbox night-shift\n"), "{shown}");
    assert_eq!(field(shown, "FHIR base"), night_base);
    assert_eq!(field(shown, "starts at"), format!("position {head}"));
    let run_before = field(shown, "run").to_owned();

    // Reset: the same start, a new run, and when.
    let reset = run(&["sandbox", "reset", "night-shift"]).await;
    let reset = reset.ok();
    assert!(
        reset.starts_with(&format!("reset sandbox night-shift to position {head}\n")),
        "{reset}"
    );
    assert_ne!(field(reset, "run"), run_before, "{reset}");
    let reset_at = field(reset, "reset");
    assert!(
        chrono::DateTime::parse_from_rfc3339(reset_at).is_ok(),
        "{reset}"
    );
    let list = run(&["sandbox", "list"]).await;
    assert!(
        list.ok()
            .lines()
            .any(|line| line.starts_with("night-shift") && line.ends_with(reset_at)),
        "{list:?}"
    );

    // Deleted: gone from the list, and not found.
    assert_eq!(
        run(&["sandbox", "delete", "early"]).await.ok(),
        "deleted sandbox early\n"
    );
    // An instant: the record as it was then (before anything was written).
    let long_ago = run(&[
        "sandbox",
        "create",
        "long-ago",
        "--at",
        "2000-01-01T00:00:00Z",
    ])
    .await;
    assert_eq!(field(long_ago.ok(), "starts at"), "position 0");
    run(&["sandbox", "delete", "long-ago"]).await.ok();
    let list = run(&["sandbox", "list"]).await;
    let names: Vec<&str> = list
        .ok()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(names, ["night-shift"]);
    assert_eq!(
        run(&["sandbox", "show", "early"]).await.refused(),
        "Error: reading sandbox `early` was refused (404 Not Found): there is no sandbox named \
         `early` (GET /teaching/sandboxes lists them)"
    );
}

/// What the server refuses, each as one line with the status and its reasons, status 1.
#[tokio::test]
async fn refusals_are_one_line_with_the_status_and_the_reason() {
    let database = TestDatabase::create().await;
    let api = command_service(&database).await;
    let token = api.token.clone();

    sandbox(&api, &token, &["create", "ward-7"]).await.ok();
    assert_eq!(
        sandbox(&api, &token, &["create", "ward-7", "--class", "other"])
            .await
            .refused(),
        "Error: creating sandbox `ward-7` was refused (409 Conflict): a sandbox named `ward-7` \
         exists already"
    );

    let bad = sandbox(&api, &token, &["create", "Ward 7!"]).await;
    let bad = bad.refused();
    assert!(
        bad.starts_with("Error: creating sandbox `Ward 7!` was refused (400 Bad Request): "),
        "{bad}"
    );
    assert!(bad.contains("is not a sandbox name"), "{bad}");

    let beyond = sandbox(&api, &token, &["create", "later", "--at", "999999"]).await;
    let beyond = beyond.refused();
    assert!(beyond.contains("(400 Bad Request)"), "{beyond}");
    assert!(
        beyond.contains("start.position must be between 0 and the newest position"),
        "{beyond}"
    );

    let future = sandbox(
        &api,
        &token,
        &["create", "later", "--at", "2999-01-01T00:00:00Z"],
    )
    .await;
    assert_eq!(
        future.refused(),
        "Error: creating sandbox `later` was refused (400 Bad Request): start.instant \
         `2999-01-01T00:00:00Z` is in the future"
    );

    for (command, doing) in [
        ("show", "reading"),
        ("reset", "resetting"),
        ("delete", "deleting"),
    ] {
        assert_eq!(
            sandbox(&api, &token, &[command, "nowhere"]).await.refused(),
            format!(
                "Error: {doing} sandbox `nowhere` was refused (404 Not Found): there is no \
                 sandbox named `nowhere` (GET /teaching/sandboxes lists them)"
            )
        );
    }

    // A nurse may list sandboxes, not make them.
    let nurse = api
        .identity
        .user_token("nurse", "openid fhirUser user/*.cruds", None)
        .await
        .access_token;
    let listed = sandbox(&api, &nurse, &["list"]).await;
    assert!(listed.ok().lines().nth(1).unwrap().starts_with("ward-7 "));
    let forbidden = sandbox(&api, &nurse, &["create", "mine"]).await;
    assert!(
        forbidden
            .refused()
            .starts_with("Error: creating sandbox `mine` was refused (403 Forbidden): "),
        "{forbidden:?}"
    );
    let forbidden = sandbox(&api, &nurse, &["delete", "ward-7"]).await;
    assert!(
        forbidden.refused().contains("(403 Forbidden)"),
        "{forbidden:?}"
    );

    // No token at all.
    let anonymous = sandbox(&api, "not-a-token", &["list"]).await;
    assert!(
        anonymous
            .refused()
            .starts_with("Error: listing sandboxes was refused (401 Unauthorized): "),
        "{anonymous:?}"
    );

    // Nothing was made or removed by what was refused.
    let list = sandbox(&api, &token, &["list"]).await;
    assert_eq!(list.ok().lines().count(), 2, "{list:?}");
}

/// No server there, or nothing to sign in with: one line each, status 1; an `--at` that is
/// neither a position nor an instant is a usage error (status 2), sent nowhere.
#[tokio::test]
async fn no_server_and_no_credentials_are_one_line_too() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");

    let unreachable = wardline(
        &["sandbox", "list"],
        &[("WARDLINE_SERVER_URL", &server), ("WARDLINE_TOKEN", "t")],
    )
    .await;
    let line = unreachable.refused();
    assert!(
        line.starts_with(&format!(
            "Error: cannot reach {server}/teaching/sandboxes: "
        )),
        "{line}"
    );
    assert!(line.contains("Connection refused"), "{line}");

    let no_key = wardline(
        &["sandbox", "show", "ward-7"],
        &[("WARDLINE_SERVER_URL", &server)],
    )
    .await;
    assert_eq!(
        no_key.refused(),
        "Error: cannot sign in: no access token: give --token, or --client-key with the \
         backend client's private key"
    );

    let usage = wardline(
        &["sandbox", "create", "x", "--at", "yesterday"],
        &[("WARDLINE_SERVER_URL", &server), ("WARDLINE_TOKEN", "t")],
    )
    .await;
    assert_eq!(usage.code, Some(2), "{usage:?}");
    assert!(
        usage.stderr.contains("`yesterday` is neither a position"),
        "{usage:?}"
    );
}
