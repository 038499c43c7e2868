//! Splitting a definition's expression into its union branches.
//!
//! Most R4 expressions are unions over the parameter's base types:
//! `AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | ...`. Compiling
//! each branch on its own lets extraction evaluate only the branches that start with the
//! resource's type (one path instead of thirty for `patient` or `code`), and tells which element
//! path a value came from, which `hfj_res_link.src_path` records. HAPI also evaluates the
//! branches one by one (`split` on `|`). A union is the distinct values of its branches, and rows
//! are deduplicated afterwards, so the result is the same as evaluating the whole expression.

/// Splits `expression` on `|` outside parentheses, brackets and string literals; trims each part.
pub fn split_union(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (at, ch) in expression.char_indices() {
        if in_string {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '\'' => in_string = true,
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => {
                parts.push(expression[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(expression[start..].trim());
    parts.retain(|part| !part.is_empty());
    parts
}

/// The identifier a branch starts with (`Observation` in `(Observation.value as Quantity)`),
/// which names the resource type it applies to when it is one.
pub fn leading_identifier(branch: &str) -> &str {
    let trimmed = branch.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
    let end = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(trimmed.len());
    &trimmed[..end]
}

/// The element path of a branch, as HAPI's `source_path` shows it: function calls (`where(...)`,
/// `as(...)`, `resolve()`, `exists()`), indexers (`[0]`), type casts (`x as T`), operators and
/// everything after them are dropped, so `Observation.subject.where(resolve() is Patient)` gives
/// `Observation.subject` and `(MedicationRequest.medication as Reference)` gives
/// `MedicationRequest.medication`.
pub fn element_path(branch: &str) -> String {
    let mut inner = branch.trim();
    while let Some(stripped) = inner.strip_prefix('(') {
        inner = stripped.trim_start();
    }
    let mut segments: Vec<&str> = Vec::new();
    let mut segment_start = 0;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut end = inner.len();
    for (at, ch) in inner.char_indices() {
        if in_string {
            in_string = ch != '\'';
            continue;
        }
        match ch {
            '\'' => in_string = true,
            '(' | '[' => depth += 1,
            ')' | ']' => {
                if depth == 0 {
                    // The closing parenthesis of a group opened before the path.
                    end = at;
                    break;
                }
                depth -= 1;
            }
            '.' if depth == 0 => {
                segments.push(&inner[segment_start..at]);
                segment_start = at + 1;
            }
            c if depth == 0 && c.is_whitespace() => {
                end = at;
                break;
            }
            _ => {}
        }
    }
    segments.push(&inner[segment_start..end.max(segment_start)]);
    let kept: Vec<&str> = segments
        .into_iter()
        .filter(|segment| !segment.contains('('))
        .map(|segment| segment.split('[').next().unwrap_or(segment))
        .filter(|segment| !segment.is_empty())
        .collect();
    kept.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_top_level_unions_only() {
        assert_eq!(
            split_union(
                "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient)"
            ),
            vec![
                "AllergyIntolerance.patient",
                "CarePlan.subject.where(resolve() is Patient)"
            ]
        );
        assert_eq!(
            split_union("(A.value as Quantity) | (A.value as Range)"),
            vec!["(A.value as Quantity)", "(A.value as Range)"]
        );
        assert_eq!(
            split_union("A.x.where(system = 'a|b' or (y | z).exists())"),
            vec!["A.x.where(system = 'a|b' or (y | z).exists())"]
        );
        assert_eq!(split_union("name | alias"), vec!["name", "alias"]);
        assert_eq!(split_union("A.b[0] | "), vec!["A.b[0]"]);
    }

    #[test]
    fn finds_the_leading_type() {
        assert_eq!(
            leading_identifier("(Observation.value as Quantity)"),
            "Observation"
        );
        assert_eq!(leading_identifier("Resource.meta.tag"), "Resource");
        assert_eq!(leading_identifier("name"), "name");
        assert_eq!(leading_identifier("%resource.x"), "");
    }

    #[test]
    fn element_paths_drop_functions_casts_and_operators() {
        let cases = [
            ("Observation.subject", "Observation.subject"),
            (
                "Observation.subject.where(resolve() is Patient)",
                "Observation.subject",
            ),
            (
                "(MedicationRequest.medication as Reference)",
                "MedicationRequest.medication",
            ),
            ("Condition.abatement.as(Age)", "Condition.abatement"),
            ("Bundle.entry[0].resource", "Bundle.entry.resource"),
            (
                "Patient.deceased.exists() and Patient.deceased != false",
                "Patient.deceased",
            ),
            ("Patient.telecom.where(system='phone')", "Patient.telecom"),
            (
                "(Observation.value as CodeableConcept).text",
                "Observation.value",
            ),
            ("Location.position", "Location.position"),
        ];
        for (branch, path) in cases {
            assert_eq!(element_path(branch), path, "{branch}");
        }
    }
}
