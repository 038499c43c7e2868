//! `wardline scenario record|list|export|import|play|pause|seek|stop|status` and `wardline
//! sandbox create --scenario`, the binary itself against a real command service and identity
//! service: what it prints, its exit status, and every refusal as one line with the status and
//! the server's reasons.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::TestDatabase;

use crate::run::{Run, wardline, wardline_reading};
use crate::sandbox::field;
use crate::servers::{Api, command_service, command_service_on, projection_on};

/// `wardline <args>` against `api`, signed in with its backend client's token.
async fn run(api: &Api, args: &[&str]) -> Run {
    let server = api.server_url();
    wardline(
        args,
        &[
            ("WARDLINE_SERVER_URL", &server),
            ("WARDLINE_TOKEN", &api.token),
        ],
    )
    .await
}

/// A hand-made scenario file: one patient, four observations over five minutes (at 30 s,
/// 90 s, 150 s and 210 s) and a correction of the first at 270 s. Lines are written by hand,
/// keys in no particular order, as a person (or another tool) would.
fn scenario_file(name: &str, version: i64, title: Option<&str>) -> String {
    let mut manifest = json!({"type": "manifest", "format": "wardline-scenario/1", "name": name,
        "version": version, "durationMs": 300_000, "windowStart": "2026-01-01T02:00:00Z",
        "cohort": {"patients": ["sc-p1"]}});
    if let Some(title) = title {
        manifest["title"] = json!(title);
    }
    let observation = |n: i64, value: f64| {
        json!({"resourceType": "Observation", "id": format!("sc-o-{n}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/sc-p1"},
            "effectiveDateTime": format!("2026-01-01T02:0{}:{:02}Z", (30 + n * 60) / 60, (30 + n * 60) % 60),
            "valueQuantity": {"value": value, "unit": "/min",
                "system": "http://unitsofmeasure.org", "code": "/min"}})
    };
    let mut lines = vec![
        manifest.to_string(),
        r#"{"resource": {"resourceType": "Patient", "id": "sc-p1", "name": [{"family": "Tanaka"}], "birthDate": "1950-03-04"}, "type": "start"}"#.to_owned(),
    ];
    for n in 0..4 {
        lines.push(
            json!({"type": "event", "offsetMs": 30_000 + n * 60_000, "kind": "create",
                "resource": observation(n, 70.0 + n as f64)})
            .to_string(),
        );
    }
    lines.push(
        json!({"offsetMs": 270_000, "type": "event", "kind": "update",
            "resource": observation(0, 140.0)})
        .to_string(),
    );
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// The lines of an NDJSON file, each as JSON.
fn parsed(file: &str) -> Vec<Value> {
    file.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A table's rows, each cell under its heading (the columns start where their headings do).
fn rows(table: &str) -> Vec<HashMap<String, String>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut rest = header;
    while let Some(at) = rest.find(|c: char| c != ' ') {
        let offset = header.len() - rest.len() + at;
        let heading = header[offset..].split("  ").next().unwrap();
        starts.push((offset, heading));
        rest = &header[offset + heading.len()..];
    }
    lines
        .map(|line| {
            starts
                .iter()
                .enumerate()
                .map(|(index, (start, heading))| {
                    let end = starts.get(index + 1).map_or(line.len(), |(next, _)| *next);
                    let cell = line.get(*start..end.min(line.len())).unwrap_or("").trim();
                    ((*heading).to_owned(), cell.to_owned())
                })
                .collect()
        })
        .collect()
}

/// Imports, lists, exports: a refused file names its line and leaves nothing behind; a good
/// one comes back out as it went in; versions are listed each on a row.
#[tokio::test]
async fn scenario_files_are_imported_listed_and_exported_as_they_came() {
    let database = TestDatabase::create().await;
    let api = command_service(&database).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    assert_eq!(
        run(&api, &["scenario", "list"]).await.ok(),
        "no scenarios (`wardline scenario record` or `wardline scenario import` makes one)\n"
    );

    // A file whose fourth line is cut short: refused, naming the line (once), nothing kept.
    let file = scenario_file("night-obs", 1, Some("Bay 3 at night"));
    let mut broken: Vec<&str> = file.lines().collect();
    broken[3] = r#"{"type": "event", "offsetMs": 90000, "kind": "create""#;
    let broken_path = path("broken.ndjson");
    std::fs::write(&broken_path, broken.join("\n")).unwrap();
    let refused = run(&api, &["scenario", "import", &broken_path]).await;
    let refused = refused.refused();
    assert!(
        refused.starts_with(&format!(
            "Error: importing `{broken_path}` was refused (400 Bad Request): the scenario file \
             is refused, nothing was imported: line 4: not JSON: "
        )),
        "{refused}"
    );
    assert_eq!(refused.matches("line 4").count(), 1, "{refused}");
    assert!(
        run(&api, &["scenario", "list"])
            .await
            .ok()
            .starts_with("no scenarios")
    );

    // The good file.
    let good_path = path("night-obs.ndjson");
    std::fs::write(&good_path, &file).unwrap();
    let imported = run(&api, &["scenario", "import", &good_path]).await;
    let imported = imported.ok();
    assert!(
        imported.starts_with("imported scenario night-obs v1\n"),
        "{imported}"
    );
    assert_eq!(field(imported, "title"), "Bay 3 at night");
    assert_eq!(field(imported, "patients"), "sc-p1");
    // As the server writes instants (the file keeps it as it was written).
    assert_eq!(field(imported, "window from"), "2026-01-01T02:00:00.000Z");
    assert_eq!(field(imported, "duration"), "05:00");
    assert_eq!(field(imported, "start state"), "1 resource");
    assert_eq!(field(imported, "events"), "5 changes");

    // The same name and version again: a conflict.
    let again = run(&api, &["scenario", "import", &good_path]).await;
    assert_eq!(
        again.refused(),
        format!(
            "Error: importing `{good_path}` was refused (409 Conflict): version 1 of the \
             scenario `night-obs` exists already: give the file another version"
        )
    );

    // Version 2, from standard input.
    let second = scenario_file("night-obs", 2, None);
    let server = api.server_url();
    let env = [
        ("WARDLINE_SERVER_URL", server.as_str()),
        ("WARDLINE_TOKEN", api.token.as_str()),
    ];
    let from_stdin =
        wardline_reading(&["scenario", "import", "-"], &env, Some(second.as_bytes())).await;
    let from_stdin = from_stdin.ok();
    assert!(
        from_stdin.starts_with("imported scenario night-obs v2\n"),
        "{from_stdin}"
    );
    assert_eq!(field(from_stdin, "title"), "-");
    let nothing = wardline_reading(&["scenario", "import", "-"], &env, Some(b"")).await;
    assert!(
        nothing.refused().starts_with(
            "Error: importing standard input was refused (400 Bad Request): the scenario file \
             is refused, nothing was imported: line 1: the file is empty"
        ),
        "{nothing:?}"
    );

    // Listed: a row a version, every column.
    let list = run(&api, &["scenario", "list"]).await;
    let table = list.ok();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "VERSION",
            "TITLE",
            "PATIENTS",
            "DURATION",
            "EVENTS",
            "CREATED BY",
            "CREATED AT"
        ]
    );
    let listed = rows(table);
    assert_eq!(listed.len(), 2, "{table}");
    for (row, (version, title)) in listed.iter().zip([("1", "Bay 3 at night"), ("2", "-")]) {
        assert_eq!(row["NAME"], "night-obs", "{table}");
        assert_eq!(row["VERSION"], version, "{table}");
        assert_eq!(row["TITLE"], title, "{table}");
        assert_eq!(row["PATIENTS"], "1", "{table}");
        assert_eq!(row["DURATION"], "05:00", "{table}");
        assert_eq!(row["EVENTS"], "5", "{table}");
        assert!(row["CREATED BY"].starts_with("test-backend-"), "{table}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(&row["CREATED AT"]).is_ok(),
            "{table}"
        );
    }

    // Exported: the newest by default, to standard output, line for line what was imported.
    let newest = run(&api, &["scenario", "export", "night-obs"]).await;
    assert_eq!(parsed(newest.ok()), parsed(&second));
    // A version to a file: the same bytes as on standard output.
    let out = path("out.ndjson");
    let written = run(
        &api,
        &[
            "scenario",
            "export",
            "night-obs",
            "--version",
            "1",
            "--output",
            &out,
        ],
    )
    .await;
    assert_eq!(
        written.ok(),
        format!("exported scenario night-obs to {out} (7 lines)\n")
    );
    let exported = std::fs::read_to_string(&out).unwrap();
    assert_eq!(parsed(&exported), parsed(&file));
    let printed = run(&api, &["scenario", "export", "night-obs", "--version", "1"]).await;
    assert_eq!(printed.ok(), exported);
    // What was exported imports again as another version.
    let third = exported.replacen("\"version\":1", "\"version\":3", 1);
    assert_ne!(third, exported);
    let reimported =
        wardline_reading(&["scenario", "import", "-"], &env, Some(third.as_bytes())).await;
    assert!(
        reimported
            .ok()
            .starts_with("imported scenario night-obs v3\n")
    );

    // What is not there.
    let unknown = run(&api, &["scenario", "export", "no-such"]).await;
    let unknown = unknown.refused();
    assert!(
        unknown.starts_with("Error: exporting scenario `no-such` was refused (404 Not Found): "),
        "{unknown}"
    );
    assert!(unknown.contains("`no-such`"), "{unknown}");
    assert_eq!(
        run(&api, &["scenario", "export", "night-obs", "--version", "9"])
            .await
            .refused(),
        "Error: exporting version 9 of scenario `night-obs` was refused (404 Not Found): there \
         is no version 9 of the scenario `night-obs` (GET /teaching/scenarios lists them)"
    );
    let missing = path("missing.ndjson");
    let not_a_file = run(&api, &["scenario", "import", &missing]).await;
    assert!(
        not_a_file
            .refused()
            .starts_with(&format!("Error: cannot read {missing}: ")),
        "{not_a_file:?}"
    );

    // A nurse may list and export, not import.
    let nurse = api
        .identity
        .user_token("nurse", "openid fhirUser user/*.cruds", None)
        .await
        .access_token;
    let as_nurse = [
        ("WARDLINE_SERVER_URL", server.as_str()),
        ("WARDLINE_TOKEN", nurse.as_str()),
    ];
    assert_eq!(
        rows(wardline(&["scenario", "list"], &as_nurse).await.ok()).len(),
        3
    );
    let forbidden = wardline(&["scenario", "import", &good_path], &as_nurse).await;
    assert!(
        forbidden.refused().starts_with(&format!(
            "Error: importing `{good_path}` was refused (403 Forbidden): "
        )),
        "{forbidden:?}"
    );
}

/// Writes `resource` to the live record with its id; the position of the write.
async fn put(api: &Api, resource: &Value) -> i64 {
    let url = format!(
        "{}/{}/{}",
        api.url,
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let response = api
        .client()
        .put(url)
        .header("content-type", "application/fhir+json")
        .body(resource.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    response.headers()["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn heart_rate(id: &str, patient: &str, value: f64) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-01-01T02:00:00Z",
        "valueQuantity": {"value": value, "unit": "/min",
            "system": "http://unitsofmeasure.org", "code": "/min"}})
}

/// Recorded from data written through the command service: the cohort's patient as it stood
/// at --from, then its changes up to --to (another patient's are left out); each recording of
/// a name is its next version.
#[tokio::test]
async fn a_scenario_is_recorded_from_the_live_record_in_versions() {
    let database = TestDatabase::create().await;
    // A recording reads the index of the past: the projection runs.
    let (stream, subject_prefix) = test_support::unique_stream();
    let api = command_service_on(&database, &stream, &subject_prefix).await;
    projection_on(&api, &database, &stream, &subject_prefix).await;
    let from = put(
        &api,
        &json!({"resourceType": "Patient", "id": "rec-p1", "name": [{"family": "Okafor"}]}),
    )
    .await;
    put(
        &api,
        &json!({"resourceType": "Patient", "id": "rec-other", "name": [{"family": "Else"}]}),
    )
    .await;
    put(&api, &heart_rate("rec-o1", "rec-p1", 88.0)).await;
    put(&api, &heart_rate("rec-x1", "rec-other", 60.0)).await;
    let second = put(&api, &heart_rate("rec-o2", "rec-p1", 96.0)).await;
    let head = put(&api, &heart_rate("rec-o1", "rec-p1", 92.0)).await;
    let from_text = from.to_string();
    let second_text = second.to_string();

    let recorded = run(
        &api,
        &[
            "scenario",
            "record",
            "ward-obs",
            "--patient",
            "rec-p1",
            "--from",
            &from_text,
            "--title",
            "Ward round",
            "--description",
            "Heart rates going up",
        ],
    )
    .await;
    let recorded = recorded.ok();
    assert!(
        recorded.starts_with("recorded scenario ward-obs v1\n"),
        "{recorded}"
    );
    assert_eq!(field(recorded, "title"), "Ward round");
    assert_eq!(field(recorded, "description"), "Heart rates going up");
    assert_eq!(field(recorded, "patients"), "rec-p1");
    assert_eq!(field(recorded, "start state"), "1 resource");
    assert_eq!(field(recorded, "events"), "3 changes");
    assert_eq!(
        field(recorded, "source"),
        format!("the live record, positions {from} to {head}")
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(field(recorded, "window from")).is_ok(),
        "{recorded}"
    );

    // Again, to an earlier end and with both patients: the next version.
    let again = run(
        &api,
        &[
            "scenario",
            "record",
            "ward-obs",
            "--patient",
            "rec-p1,rec-other",
            "--from",
            &from_text,
            "--to",
            &second_text,
        ],
    )
    .await;
    let again = again.ok();
    assert!(
        again.starts_with("recorded scenario ward-obs v2\n"),
        "{again}"
    );
    assert_eq!(field(again, "patients"), "rec-p1, rec-other");
    assert_eq!(field(again, "title"), "-");
    // The other patient (written after --from), both observations, the second.
    assert_eq!(field(again, "events"), "4 changes", "{again}");

    let list = run(&api, &["scenario", "list"]).await;
    let listed = rows(list.ok());
    let versions: Vec<(&str, &str, &str, &str)> = listed
        .iter()
        .map(|row| {
            (
                row["NAME"].as_str(),
                row["VERSION"].as_str(),
                row["PATIENTS"].as_str(),
                row["EVENTS"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [("ward-obs", "1", "1", "3"), ("ward-obs", "2", "2", "4")]
    );
    // The recording exports as a file that imports elsewhere.
    let exported = run(&api, &["scenario", "export", "ward-obs", "--version", "1"]).await;
    let lines = parsed(exported.ok());
    assert_eq!(lines[0]["type"], "manifest");
    assert_eq!(lines[0]["version"], 1);
    assert_eq!(lines[1]["resource"]["id"], "rec-p1");
    assert_eq!(lines.len(), 5);

    // Refusals.
    let bad_name = run(
        &api,
        &[
            "scenario",
            "record",
            "Ward Obs",
            "--patient",
            "p",
            "--from",
            "0",
        ],
    )
    .await;
    assert_eq!(
        bad_name.refused(),
        "Error: recording scenario `Ward Obs` was refused (400 Bad Request): `Ward Obs` is not \
         a scenario name: 1 to 63 lower-case letters, digits and `-`"
    );
    let beyond = run(
        &api,
        &[
            "scenario",
            "record",
            "ward-obs",
            "--patient",
            "p",
            "--from",
            "999999",
        ],
    )
    .await;
    let beyond = beyond.refused();
    assert!(beyond.contains("(400 Bad Request)"), "{beyond}");
    assert!(
        beyond.contains("start.position must be between 0"),
        "{beyond}"
    );
    let no_patient = run(&api, &["scenario", "record", "ward-obs", "--from", "0"]).await;
    assert_eq!(no_patient.code, Some(2), "{no_patient:?}");
    assert!(no_patient.stderr.contains("--patient"), "{no_patient:?}");
    let no_window = run(
        &api,
        &[
            "scenario",
            "record",
            "ward-obs",
            "--patient",
            "p",
            "--from",
            "yesterday",
        ],
    )
    .await;
    assert_eq!(no_window.code, Some(2), "{no_window:?}");
    // Nothing was recorded by what was refused.
    assert_eq!(
        parsed(run(&api, &["scenario", "export", "ward-obs"]).await.ok())[0]["version"],
        2
    );
}

/// Polls `scenario status <sandbox>` until the play has finished; its line.
async fn until_finished(api: &Api, sandbox: &str) -> String {
    let started = Instant::now();
    loop {
        let status = run(api, &["scenario", "status", sandbox]).await;
        let line = status.ok().to_owned();
        if line.contains(" finished, ") {
            return line;
        }
        assert!(!line.contains(" failed, "), "the play failed: {line}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the play did not finish in a minute: {line}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A sandbox that starts as a scenario, played at 3600x to the end, paused, sought back and
/// forth, resumed at the speed it had, stopped and played again; and what is refused.
#[tokio::test]
async fn a_scenario_plays_in_a_sandbox_with_pause_seek_and_stop() {
    let database = TestDatabase::create().await;
    let api = command_service(&database).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("night-obs.ndjson");
    std::fs::write(&file, scenario_file("night-obs", 1, Some("Bay 3 at night"))).unwrap();
    run(&api, &["scenario", "import", file.to_str().unwrap()])
        .await
        .ok();

    let created = run(
        &api,
        &[
            "sandbox",
            "create",
            "night-lab",
            "--class",
            "demo",
            "--scenario",
            "night-obs",
        ],
    )
    .await;
    let created = created.ok();
    assert!(
        created.starts_with("created sandbox night-lab\n"),
        "{created}"
    );
    assert_eq!(field(created, "starts at"), "scenario night-obs v1");
    assert_eq!(
        field(created, "play"),
        "not started (`wardline scenario play` starts it)"
    );
    let list = run(&api, &["sandbox", "list"]).await;
    let listed = rows(list.ok());
    assert_eq!(listed[0]["START"], "night-obs v1", "{list:?}");

    // Scenarios that are not there; a scenario and a position at once.
    let unknown = run(
        &api,
        &["sandbox", "create", "nope", "--scenario", "no-such"],
    )
    .await;
    let unknown = unknown.refused();
    assert!(
        unknown.starts_with("Error: creating sandbox `nope` was refused (404 Not Found): "),
        "{unknown}"
    );
    assert!(unknown.contains("`no-such`"), "{unknown}");
    let unknown_version = run(
        &api,
        &[
            "sandbox",
            "create",
            "nope",
            "--scenario",
            "night-obs",
            "--version",
            "7",
        ],
    )
    .await;
    assert!(
        unknown_version
            .refused()
            .contains("(404 Not Found): there is no version 7 of the scenario `night-obs`"),
        "{unknown_version:?}"
    );
    for usage in [
        &[
            "sandbox",
            "create",
            "nope",
            "--scenario",
            "night-obs",
            "--at",
            "0",
        ][..],
        &["sandbox", "create", "nope", "--version", "1"],
        &["scenario", "seek", "night-lab", "--to", "soon"],
        &["scenario", "play", "night-lab", "--speed", "fast"],
    ] {
        let refused = run(&api, usage).await;
        assert_eq!(refused.code, Some(2), "{usage:?}: {refused:?}");
    }

    assert_eq!(
        run(&api, &["scenario", "status", "night-lab"]).await.ok(),
        "night-lab: night-obs v1 not started (`wardline scenario play night-lab` starts it)\n"
    );
    for speed in ["0", "3601"] {
        assert_eq!(
            run(&api, &["scenario", "play", "night-lab", "--speed", speed])
                .await
                .refused(),
            "Error: playing the scenario in sandbox `night-lab` was refused (400 Bad Request): \
             a speed is between 1 and 3600"
        );
    }

    // At 3600x, five minutes take a twelfth of a second.
    let playing = run(&api, &["scenario", "play", "night-lab", "--speed", "3600"]).await;
    let playing = playing.ok();
    assert!(playing.starts_with("night-lab: night-obs v1 "), "{playing}");
    assert!(playing.contains(" of 05:00 at 3600x, "), "{playing}");
    assert!(playing.ends_with(" of 5 changes applied\n"), "{playing}");
    let finished = until_finished(&api, "night-lab").await;
    assert!(
        finished.ends_with(" of 05:00 at 3600x, 5 of 5 changes applied\n"),
        "{finished}"
    );
    let shown = run(&api, &["sandbox", "show", "night-lab"]).await;
    assert!(
        field(shown.ok(), "play").starts_with("finished, "),
        "{shown:?}"
    );

    // Paused, then back to 2:00: the first two changes, the clock standing there.
    run(&api, &["scenario", "pause", "night-lab"]).await.ok();
    let back = run(&api, &["scenario", "seek", "night-lab", "--to", "2m"]).await;
    let paused = "night-lab: night-obs v1 paused, 02:00 of 05:00 at 3600x, 2 of 5 changes \
                  applied\n";
    assert_eq!(back.ok(), paused);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        run(&api, &["scenario", "status", "night-lab"]).await.ok(),
        paused
    );
    // Forward to 2:40 (a clock), then 150000 ms (the same point): the third change.
    let forward = run(&api, &["scenario", "seek", "night-lab", "--to", "2:40"]).await;
    assert_eq!(
        forward.ok(),
        "night-lab: night-obs v1 paused, 02:40 of 05:00 at 3600x, 3 of 5 changes applied\n"
    );
    let same = run(&api, &["scenario", "seek", "night-lab", "--to", "160000"]).await;
    assert_eq!(
        same.ok(),
        "night-lab: night-obs v1 paused, 02:40 of 05:00 at 3600x, 3 of 5 changes applied\n"
    );

    // Resumed with no --speed: at the speed it had, to the end.
    let resumed = run(&api, &["scenario", "play", "night-lab"]).await;
    assert!(resumed.ok().contains(" at 3600x, "), "{resumed:?}");
    until_finished(&api, "night-lab").await;

    // Stopped: nothing left to pause; played again, from the start.
    let stopped = run(&api, &["scenario", "stop", "night-lab"]).await;
    let stopped = stopped.ok();
    assert!(
        stopped.starts_with("night-lab: night-obs v1 stopped, "),
        "{stopped}"
    );
    assert!(stopped.ends_with(", 5 of 5 changes applied\n"), "{stopped}");
    assert_eq!(
        run(&api, &["scenario", "pause", "night-lab"])
            .await
            .refused(),
        "Error: pausing the scenario in sandbox `night-lab` was refused (404 Not Found): \
         nothing is playing in the sandbox `night-lab`"
    );
    run(&api, &["scenario", "play", "night-lab", "--speed", "3600"])
        .await
        .ok();
    let finished = until_finished(&api, "night-lab").await;
    assert!(
        finished.ends_with(", 5 of 5 changes applied\n"),
        "{finished}"
    );

    // Reset: back to the scenario's starting state.
    let reset = run(&api, &["sandbox", "reset", "night-lab"]).await;
    assert!(
        reset
            .ok()
            .starts_with("reset sandbox night-lab to scenario night-obs v1\n"),
        "{reset:?}"
    );

    // Sandboxes with no scenario, and none at all.
    run(&api, &["sandbox", "create", "plain"]).await.ok();
    assert_eq!(
        run(&api, &["scenario", "status", "plain"]).await.refused(),
        "Error: the sandbox `plain` does not start as a scenario (`wardline sandbox create \
         <name> --scenario <scenario>` makes one that does)"
    );
    assert_eq!(
        run(&api, &["scenario", "play", "plain", "--speed", "60"])
            .await
            .refused(),
        "Error: playing the scenario in sandbox `plain` was refused (409 Conflict): the sandbox \
         `plain` does not start as a scenario: create it with start.scenario"
    );
    for (args, doing) in [
        (
            &["scenario", "status", "nowhere"][..],
            "reading sandbox `nowhere`",
        ),
        (
            &["scenario", "play", "nowhere", "--speed", "60"],
            "playing the scenario in sandbox `nowhere`",
        ),
    ] {
        assert_eq!(
            run(&api, args).await.refused(),
            format!(
                "Error: {doing} was refused (404 Not Found): there is no sandbox named \
                 `nowhere` (GET /teaching/sandboxes lists them)"
            )
        );
    }
    let nothing_playing = run(&api, &["scenario", "seek", "nowhere", "--to", "1s"]).await;
    assert!(
        nothing_playing.refused().contains("(404 Not Found)"),
        "{nothing_playing:?}"
    );
}
