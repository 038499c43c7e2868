//! Searches as a hostile client writes them: values beyond what the server can compute with,
//! searches that would cost too much, page links that outlived their data. Each answers an
//! OperationOutcome with its status, and the connection stays usable.

use crate::helpers::TestApp;

#[tokio::test]
async fn decimal_values_beyond_range_are_400_naming_the_parameter() {
    let app = TestApp::spawn_with(false, 1_000).await;
    for (search, parameter) in [
        ("Observation?value-quantity=1e-28", "value-quantity"),
        ("Observation?value-quantity=ge1e-28", "value-quantity"),
        (
            "Observation?value-quantity=1e-28|http://unitsofmeasure.org|mg",
            "value-quantity",
        ),
        (
            "Observation?value-quantity=ap79228162514264337593543950335",
            "value-quantity",
        ),
        (
            "Observation?value-quantity=70000000000000000000000000000||kg",
            "value-quantity",
        ),
        ("RiskAssessment?probability=1e-28", "probability"),
    ] {
        let outcome = app.outcome(search, 400).await;
        let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(diagnostics.contains(parameter), "{search}: {diagnostics}");
    }
    // The same connection pool still answers.
    app.search("Observation?value-quantity=5.4").await;
}
