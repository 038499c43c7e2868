//! `OperationOutcome`: how every error, warning and informational message leaves a service.

use serde::Serialize;
use serde_json::{Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueSeverity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// `OperationOutcome.issue.code` (the IssueType value set), the codes this server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Forbidden,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    TooCostly,
    Conflict,
    Exception,
    Timeout,
    Throttled,
    Transient,
    Informational,
}

/// One issue: what went wrong, and where (`expression` is a FHIRPath-like location).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeIssue {
    pub severity: IssueSeverity,
    pub code: IssueCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

impl OutcomeIssue {
    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        OutcomeIssue {
            severity: IssueSeverity::Error,
            code,
            diagnostics: Some(diagnostics.into()),
            expression: Vec::new(),
        }
    }

    pub fn information(diagnostics: impl Into<String>) -> Self {
        OutcomeIssue {
            severity: IssueSeverity::Information,
            code: IssueCode::Informational,
            diagnostics: Some(diagnostics.into()),
            expression: Vec::new(),
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression.push(expression.into());
        self
    }
}

/// A FHIR `OperationOutcome` resource.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationOutcome {
    pub issues: Vec<OutcomeIssue>,
}

impl OperationOutcome {
    pub fn new(issues: Vec<OutcomeIssue>) -> Self {
        OperationOutcome { issues }
    }

    pub fn single(issue: OutcomeIssue) -> Self {
        OperationOutcome {
            issues: vec![issue],
        }
    }

    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = if self.issues.is_empty() {
            // FHIR requires at least one issue.
            vec![json!({"severity": "information", "code": "informational"})]
        } else {
            self.issues
                .iter()
                .map(|issue| serde_json::to_value(issue).unwrap_or(Value::Null))
                .collect()
        };
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_a_fhir_resource() {
        let outcome = OperationOutcome::single(
            OutcomeIssue::error(IssueCode::NotSupported, "nope").at("Patient.name"),
        );
        assert_eq!(
            outcome.to_json(),
            json!({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "not-supported", "diagnostics": "nope", "expression": ["Patient.name"]}
            ]})
        );
    }
}
