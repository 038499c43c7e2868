//! Orders and tasks as the ward's work list shows them: open ServiceRequests and
//! MedicationRequests, and Tasks not yet done, each reduced to who, what, how urgent and when.

use serde_json::Value;

use crate::fhir;

/// The kinds of work the list shows, with how to search for the open ones of some patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrderKind {
    ServiceRequest,
    MedicationRequest,
    Task,
}

impl OrderKind {
    pub const ALL: [OrderKind; 3] = [
        OrderKind::ServiceRequest,
        OrderKind::MedicationRequest,
        OrderKind::Task,
    ];

    pub fn from_resource_type(resource_type: &str) -> Option<OrderKind> {
        match resource_type {
            "ServiceRequest" => Some(OrderKind::ServiceRequest),
            "MedicationRequest" => Some(OrderKind::MedicationRequest),
            "Task" => Some(OrderKind::Task),
            _ => None,
        }
    }

    pub fn resource_type(self) -> &'static str {
        match self {
            OrderKind::ServiceRequest => "ServiceRequest",
            OrderKind::MedicationRequest => "MedicationRequest",
            OrderKind::Task => "Task",
        }
    }

    /// What the list calls it.
    pub fn label(self) -> &'static str {
        match self {
            OrderKind::ServiceRequest => "Order",
            OrderKind::MedicationRequest => "Medication",
            OrderKind::Task => "Task",
        }
    }

    /// The search parameter naming the patient (`Task.for` is searched as `patient`).
    pub fn patient_parameter(self) -> &'static str {
        match self {
            OrderKind::ServiceRequest | OrderKind::MedicationRequest => "subject",
            OrderKind::Task => "patient",
        }
    }

    /// The statuses of work still to be done.
    pub fn open_statuses(self) -> &'static [&'static str] {
        match self {
            OrderKind::ServiceRequest | OrderKind::MedicationRequest => &["active"],
            OrderKind::Task => &["requested", "received", "accepted", "ready", "in-progress"],
        }
    }

    fn patient_element(self) -> &'static str {
        match self {
            OrderKind::ServiceRequest | OrderKind::MedicationRequest => "subject",
            OrderKind::Task => "for",
        }
    }
}

/// One open order or task.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub kind: OrderKind,
    pub id: String,
    pub patient: String,
    /// What is asked for: the code, the medication, or the task's description.
    pub title: String,
    /// `routine`, `urgent`, `asap`, `stat`, when given.
    pub priority: Option<String>,
    /// When it was written: `authoredOn`, seconds since the Unix epoch.
    pub authored: Option<i64>,
}

impl Order {
    /// Reads an order or task; `None` for another type, one without a patient, or one that
    /// is no longer open (done, cancelled, entered in error), which leaves the list.
    pub fn from_resource(resource: &Value) -> Option<Order> {
        let kind = OrderKind::from_resource_type(fhir::resource_type(resource)?)?;
        let status = resource["status"].as_str()?;
        if !kind.open_statuses().contains(&status) {
            return None;
        }
        let title = match kind {
            OrderKind::ServiceRequest => fhir::concept_text(&resource["code"]),
            OrderKind::MedicationRequest => {
                fhir::concept_text(&resource["medicationCodeableConcept"])
                    .or_else(|| resource["medicationReference"]["display"].as_str())
            }
            OrderKind::Task => resource["description"]
                .as_str()
                .or_else(|| fhir::concept_text(&resource["code"])),
        };
        Some(Order {
            kind,
            id: fhir::id(resource)?.to_owned(),
            patient: fhir::reference_id(&resource[kind.patient_element()], "Patient")?.to_owned(),
            title: title.unwrap_or(kind.label()).to_owned(),
            priority: resource["priority"].as_str().map(str::to_owned),
            authored: resource["authoredOn"].as_str().and_then(fhir::parse_time),
        })
    }

    /// `Type/id`, the order's key in lists and in the `data-order` hook.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.resource_type(), self.id)
    }

    /// Whether it asks for more than routine speed.
    pub fn is_urgent(&self) -> bool {
        matches!(self.priority.as_deref(), Some("urgent" | "asap" | "stat"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_request_reads_its_code() {
        let order = Order::from_resource(&json!({
            "resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
            "priority": "urgent",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-06-01T12:00:00Z",
        }))
        .unwrap();
        assert_eq!(order.kind, OrderKind::ServiceRequest);
        assert_eq!(order.key(), "ServiceRequest/sr1");
        assert_eq!(order.patient, "p1");
        assert_eq!(order.title, "Glucose");
        assert!(order.is_urgent());
        assert_eq!(order.authored, fhir::parse_time("2026-06-01T12:00:00Z"));
    }

    #[test]
    fn a_task_belongs_to_its_for_patient_and_reads_its_description() {
        let order = Order::from_resource(&json!({
            "resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
            "priority": "routine", "description": "Take blood for glucose",
            "for": {"reference": "Patient/p2"},
        }))
        .unwrap();
        assert_eq!(order.patient, "p2");
        assert_eq!(order.title, "Take blood for glucose");
        assert!(!order.is_urgent());
        assert_eq!(order.authored, None);
    }

    #[test]
    fn a_medication_request_reads_its_medication() {
        let order = Order::from_resource(&json!({
            "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "amoxicillin 250 MG Oral Capsule"},
            "subject": {"reference": "Patient/p3"},
        }))
        .unwrap();
        assert_eq!(order.title, "amoxicillin 250 MG Oral Capsule");
    }

    #[test]
    fn closed_orders_and_other_resources_are_not_listed() {
        for resource in [
            json!({"resourceType": "Task", "id": "t", "status": "completed", "for": {"reference": "Patient/p"}}),
            json!({"resourceType": "ServiceRequest", "id": "s", "status": "revoked", "subject": {"reference": "Patient/p"}}),
            json!({"resourceType": "ServiceRequest", "id": "s", "status": "active", "subject": {"reference": "Group/g"}}),
            json!({"resourceType": "Observation", "id": "o", "status": "final", "subject": {"reference": "Patient/p"}}),
        ] {
            assert_eq!(Order::from_resource(&resource), None, "{resource}");
        }
    }
}
