use serde_json::json;

use crate::index_cleanly;

#[test]
fn near_indexes_the_position() {
    let location = json!({
        "resourceType": "Location",
        "name": "Ward 7",
        "status": "active",
        "position": {"latitude": 42.2565, "longitude": -71.8245},
        "address": {"city": "Worcester"}
    });
    let index = index_cleanly(&location);
    assert_eq!(index.coords.len(), 1);
    assert_eq!(index.coords[0].param, "near");
    assert!((index.coords[0].latitude - 42.2565).abs() < 1e-9);
    assert!((index.coords[0].longitude + 71.8245).abs() < 1e-9);
    assert!(
        index
            .strings
            .iter()
            .any(|s| s.param == "name" && s.normalized == "ward 7")
    );
    assert!(
        index
            .strings
            .iter()
            .any(|s| s.param == "address-city" && s.normalized == "worcester")
    );
}
