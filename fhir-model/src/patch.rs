//! JSON Patch (RFC 6902) applied within a budget.
//!
//! A patch is small but its result need not be: `copy` can copy a value into its own child, so
//! twenty such operations in a patch of a kilobyte double a resource twenty times. Applying a
//! patch here keeps a running upper bound of the result's size (the document's size plus every
//! value added, replaced or copied into it; removals are not subtracted) and stops before an
//! operation would take it past the budget, so memory never grows much beyond the largest
//! resource the server accepts. The number of operations is bounded too. Counting a copied
//! value's size stops once it exceeds what is left of the budget, so the counting itself costs
//! at most the budget, however many operations there are.

use std::io;

use serde_json::Value;
use thiserror::Error;

/// How much a patch may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchLimits {
    /// Most operations in one patch document.
    pub max_operations: usize,
    /// Largest size, in bytes of compact JSON, the patched document may reach.
    pub max_bytes: usize,
}

/// Why a patch was not applied. The document is left as it was in every case.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    #[error("the body is not a JSON Patch document: {0}")]
    Malformed(String),
    #[error("the patch has {found} operations; at most {limit} are accepted")]
    TooManyOperations { found: usize, limit: usize },
    #[error(
        "operation '/{operation}' would make the resource larger than the limit of {limit} bytes"
    )]
    TooLarge { operation: usize, limit: usize },
    #[error("{0}")]
    Failed(String),
}

/// Applies `patch` (a JSON Patch document) to a copy of `document` within `limits`, and returns
/// the result. Either every operation applies or none does.
pub fn apply_patch(
    document: &Value,
    patch: &Value,
    limits: PatchLimits,
) -> Result<Value, PatchError> {
    let operations = patch.as_array().map_or(0, Vec::len);
    if operations > limits.max_operations {
        return Err(PatchError::TooManyOperations {
            found: operations,
            limit: limits.max_operations,
        });
    }
    let operations: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|error| PatchError::Malformed(error.to_string()))?;
    let mut patched = document.clone();
    let mut estimate = json_size(&patched, limits.max_bytes).ok_or(PatchError::TooLarge {
        operation: 0,
        limit: limits.max_bytes,
    })?;
    for (index, operation) in operations.iter().enumerate() {
        let too_large = PatchError::TooLarge {
            operation: index,
            limit: limits.max_bytes,
        };
        let budget = limits.max_bytes.saturating_sub(estimate);
        let added = match operation {
            json_patch::PatchOperation::Add(add) => json_size(&add.value, budget),
            json_patch::PatchOperation::Replace(replace) => json_size(&replace.value, budget),
            // A missing source is the patch's own error, reported when it is applied.
            json_patch::PatchOperation::Copy(copy) => patched
                .pointer(copy.from.as_str())
                .map_or(Some(0), |value| json_size(value, budget)),
            json_patch::PatchOperation::Remove(_)
            | json_patch::PatchOperation::Move(_)
            | json_patch::PatchOperation::Test(_) => Some(0),
        };
        estimate += added.ok_or(too_large)?;
        json_patch::patch_unsafe(&mut patched, std::slice::from_ref(operation)).map_err(
            |error| {
                PatchError::Failed(format!(
                    "operation '/{index}' failed at path '{}': {}",
                    error.path, error.kind
                ))
            },
        )?;
    }
    Ok(patched)
}

/// The size of `value` as compact JSON, or `None` once it exceeds `budget` (counting stops there).
fn json_size(value: &Value, budget: usize) -> Option<usize> {
    let mut counter = Counter { count: 0, budget };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.count)
}

/// Counts bytes written, failing once there are more than `budget`.
struct Counter {
    count: usize,
    budget: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len();
        if self.count > self.budget {
            return Err(io::Error::other("over budget"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: PatchLimits = PatchLimits {
        max_operations: 100,
        max_bytes: 10_000,
    };

    #[test]
    fn applies_a_patch_within_its_limits() {
        let document = json!({"resourceType": "Patient", "name": [{"family": "Smith"}]});
        let patched = apply_patch(
            &document,
            &json!([
                {"op": "replace", "path": "/name/0/family", "value": "Jones"},
                {"op": "copy", "from": "/name/0", "path": "/name/-"},
                {"op": "add", "path": "/active", "value": true}
            ]),
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"resourceType": "Patient", "name": [{"family": "Jones"}, {"family": "Jones"}], "active": true})
        );
    }

    #[test]
    fn a_copy_bomb_stops_before_it_grows_past_the_limit() {
        let document = json!({"resourceType": "Basic", "a": {"text": "x".repeat(100)}});
        // Each operation copies `a` into a new child of itself, doubling it.
        let bomb: Vec<Value> = (0..40)
            .map(|n| json!({"op": "copy", "from": "/a", "path": format!("/a/b{n}")}))
            .collect();
        let error = apply_patch(&document, &Value::Array(bomb), LIMITS).unwrap_err();
        // 100 bytes doubled: past 10,000 bytes at the 7th copy, well before the 40th.
        assert!(
            matches!(error, PatchError::TooLarge { operation, .. } if operation < 8),
            "{error:?}"
        );
    }

    #[test]
    fn operations_are_counted_before_anything_applies() {
        let many: Vec<Value> = (0..101)
            .map(|_| json!({"op": "test", "path": "/resourceType", "value": "Basic"}))
            .collect();
        assert_eq!(
            apply_patch(
                &json!({"resourceType": "Basic"}),
                &Value::Array(many),
                LIMITS
            ),
            Err(PatchError::TooManyOperations {
                found: 101,
                limit: 100
            })
        );
    }

    #[test]
    fn failures_name_the_operation() {
        let error = apply_patch(
            &json!({"resourceType": "Basic"}),
            &json!([{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/nothing"}]),
            LIMITS,
        )
        .unwrap_err();
        assert!(
            matches!(&error, PatchError::Failed(message) if message.contains("'/1'")),
            "{error:?}"
        );
        assert!(matches!(
            apply_patch(&json!({}), &json!({"op": "add"}), LIMITS),
            Err(PatchError::Malformed(_))
        ));
    }
}
