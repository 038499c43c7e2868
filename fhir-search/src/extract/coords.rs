//! Special parameters: R4 has one, `Location.near`, on `Location.position`, indexed as
//! coordinates (WGS84 latitude and longitude, both required, as HAPI does). Positions out of
//! range or not numbers are problems.

use serde_json::Value;

use super::Target;
use super::node::Node;
use crate::ResourceIndex;
use crate::index::CoordsRow;
use crate::normalize::decimal::decimal_text;

pub(super) fn extract(out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    let Some(position) = node.object() else {
        return;
    };
    let (Some(latitude), Some(longitude)) = (position.get("latitude"), position.get("longitude"))
    else {
        return;
    };
    match (degrees(latitude, 90.0), degrees(longitude, 180.0)) {
        (Some(latitude), Some(longitude)) => out.coords.push(CoordsRow {
            param: target.code.to_owned(),
            latitude,
            longitude,
        }),
        _ => target.problem(
            out,
            "a position whose latitude or longitude is out of range",
        ),
    }
}

/// A finite number of degrees within `±limit`.
fn degrees(value: &Value, limit: f64) -> Option<f64> {
    let degrees: f64 = decimal_text(value)?.parse().ok()?;
    (degrees.is_finite() && degrees.abs() <= limit).then_some(degrees)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::extract::testing::{node, rows, untyped};

    #[test]
    fn positions_become_coordinates() {
        let root = json!({"resourceType": "Location"});
        let position = json!({"latitude": 59.9139, "longitude": 10.7522, "altitude": 23});
        let half = json!({"latitude": 1});
        let out_of_range = json!({"latitude": 91, "longitude": 0});
        let index = rows(
            &root,
            "near",
            &[
                node(&position, "Location.position"),
                untyped(&half),
                untyped(&out_of_range),
            ],
        );
        assert_eq!(index.coords.len(), 1);
        assert_eq!(index.coords[0].param, "near");
        assert!((index.coords[0].latitude - 59.9139).abs() < 1e-9);
        assert!((index.coords[0].longitude - 10.7522).abs() < 1e-9);
        assert_eq!(index.problems.len(), 1);
    }
}
