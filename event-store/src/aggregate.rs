//! The lifecycle of one FHIR resource as a cqrs-es aggregate.
//!
//! One aggregate instance is one stream `(resource_type, id)`. Commands carry what the REST
//! layer parsed (the resource, `If-Match`, the time of the request); `handle` decides, with no
//! I/O, which event (if any) the command produces, and stamps `meta.versionId` and
//! `meta.lastUpdated` into the resource the event carries. Events are fat, so the state after
//! the latest event is the whole state: loading an aggregate means applying one event.
//!
//! Rules encoded here, per the FHIR R4 RESTful API:
//! - create assigns version 1; update of an unknown or deleted resource creates it (version
//!   after the last); an update identical to the current content records nothing (as HAPI);
//! - `If-Match: W/"n"` must name the current version, or the command fails with a conflict;
//! - delete records a new version; deleting a deleted resource records nothing;
//! - a JSON Patch may not change `resourceType` or `id`, and its result must be a valid
//!   resource; it is applied within limits on its operations and the result's size
//!   (`fhir_model::apply_patch`), so a small patch cannot build a huge resource.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use fhir_model::{
    OutcomeIssue, PatchError, PatchLimits, ResourceType, apply_patch, check_resource, stamp_meta,
    strip_server_meta,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// What a client asks of one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceCommand {
    /// `POST /<Type>`: the id is the server's (already chosen by the caller).
    Create {
        id: String,
        resource: Value,
        at: DateTime<Utc>,
    },
    /// `PUT /<Type>/<id>`: update, or create with the client's id.
    Update {
        id: String,
        resource: Value,
        if_match: Option<u32>,
        at: DateTime<Utc>,
    },
    /// `PATCH /<Type>/<id>` with a JSON Patch document.
    Patch {
        patch: Value,
        if_match: Option<u32>,
        at: DateTime<Utc>,
    },
    /// `DELETE /<Type>/<id>`.
    Delete {
        if_match: Option<u32>,
        at: DateTime<Utc>,
    },
}

/// What happened to a resource. Each event carries the whole resource after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResourceEvent {
    ResourceCreated {
        resource: Value,
    },
    ResourceUpdated {
        resource: Value,
        /// The JSON Patch that produced this version, when it came from a PATCH.
        patch: Option<Value>,
    },
    ResourceDeleted {
        version: u32,
        at: DateTime<Utc>,
        /// The resource as it stood before the delete, so consumers can still route the event.
        previous: Value,
    },
}

impl ResourceEvent {
    /// The version of the resource this event creates.
    pub fn version(&self) -> u32 {
        match self {
            ResourceEvent::ResourceCreated { resource }
            | ResourceEvent::ResourceUpdated { resource, .. } => version_of(resource),
            ResourceEvent::ResourceDeleted { version, .. } => *version,
        }
    }
}

impl DomainEvent for ResourceEvent {
    fn event_type(&self) -> String {
        match self {
            ResourceEvent::ResourceCreated { .. } => "ResourceCreated",
            ResourceEvent::ResourceUpdated { .. } => "ResourceUpdated",
            ResourceEvent::ResourceDeleted { .. } => "ResourceDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ResourceError {
    #[error("the resource already exists")]
    AlreadyExists,
    #[error("the resource does not exist")]
    NotFound,
    #[error("the resource was deleted (version {version})")]
    Gone { version: u32 },
    #[error(
        "version conflict: If-Match names version {expected}, the current version is {current}"
    )]
    VersionConflict { expected: u32, current: u32 },
    #[error("the patch cannot be applied: {0}")]
    PatchFailed(String),
    #[error("a patch may not change {0}")]
    PatchChangesIdentity(&'static str),
    /// The patch has too many operations, or would grow the resource past the size limit.
    #[error("{0}")]
    PatchTooCostly(String),
    #[error("the patched resource is not valid")]
    Invalid(Vec<OutcomeIssue>),
}

/// What `handle` may consult: the structural validator (for the result of a patch) and the
/// limits a patch is applied within.
pub struct ResourceServices {
    pub validate: fn(&Value) -> Result<ResourceType, Vec<OutcomeIssue>>,
    pub patch_limits: PatchLimits,
}

impl Default for ResourceServices {
    fn default() -> Self {
        ResourceServices {
            validate: check_resource,
            patch_limits: PatchLimits {
                max_operations: 1000,
                max_bytes: 16 * 1024 * 1024,
            },
        }
    }
}

/// The state of one resource stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FhirResource {
    /// The version of the latest event; 0 when the stream is empty.
    pub version: u32,
    pub deleted: bool,
    /// The current resource; `None` when the stream is empty or deleted.
    pub current: Option<Value>,
}

impl FhirResource {
    /// The state after `event`, which is the latest of its stream (events are fat).
    pub fn from_latest(event: ResourceEvent) -> Self {
        let mut state = FhirResource::default();
        state.apply(event);
        state
    }

    fn check_if_match(&self, if_match: Option<u32>) -> Result<(), ResourceError> {
        match if_match {
            Some(expected) if expected != self.version => Err(ResourceError::VersionConflict {
                expected,
                current: self.version,
            }),
            _ => Ok(()),
        }
    }

    fn live(&self) -> Result<&Value, ResourceError> {
        match &self.current {
            Some(resource) => Ok(resource),
            None if self.deleted => Err(ResourceError::Gone {
                version: self.version,
            }),
            None => Err(ResourceError::NotFound),
        }
    }
}

impl Aggregate for FhirResource {
    const TYPE: &'static str = "FhirResource";
    type Command = ResourceCommand;
    type Event = ResourceEvent;
    type Error = ResourceError;
    type Services = ResourceServices;

    async fn handle(
        &mut self,
        command: ResourceCommand,
        services: &ResourceServices,
        sink: &EventSink<Self>,
    ) -> Result<(), ResourceError> {
        match command {
            ResourceCommand::Create { id, resource, at } => {
                if self.version > 0 {
                    return Err(ResourceError::AlreadyExists);
                }
                let resource = stamped(resource, &id, 1, at);
                sink.write(ResourceEvent::ResourceCreated { resource }, self)
                    .await;
            }
            ResourceCommand::Update {
                id,
                resource,
                if_match,
                at,
            } => {
                self.check_if_match(if_match)?;
                let version = self.version + 1;
                let resource = stamped(resource, &id, version, at);
                let event = match &self.current {
                    Some(current) if strip_server_meta(current) == strip_server_meta(&resource) => {
                        return Ok(());
                    }
                    Some(_) => ResourceEvent::ResourceUpdated {
                        resource,
                        patch: None,
                    },
                    None => ResourceEvent::ResourceCreated { resource },
                };
                sink.write(event, self).await;
            }
            ResourceCommand::Patch {
                patch,
                if_match,
                at,
            } => {
                let current = self.live()?.clone();
                self.check_if_match(if_match)?;
                let patched =
                    apply_patch(&current, &patch, services.patch_limits).map_err(|error| {
                        match error {
                            PatchError::TooManyOperations { .. } | PatchError::TooLarge { .. } => {
                                ResourceError::PatchTooCostly(error.to_string())
                            }
                            PatchError::Malformed(_) | PatchError::Failed(_) => {
                                ResourceError::PatchFailed(error.to_string())
                            }
                        }
                    })?;
                for element in ["resourceType", "id"] {
                    if patched.get(element) != current.get(element) {
                        return Err(ResourceError::PatchChangesIdentity(element));
                    }
                }
                (services.validate)(&patched).map_err(ResourceError::Invalid)?;
                if strip_server_meta(&patched) == strip_server_meta(&current) {
                    return Ok(());
                }
                let id = current
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let resource = stamped(patched, &id, self.version + 1, at);
                sink.write(
                    ResourceEvent::ResourceUpdated {
                        resource,
                        patch: Some(patch),
                    },
                    self,
                )
                .await;
            }
            ResourceCommand::Delete { if_match, at } => {
                if self.deleted {
                    return Ok(());
                }
                let previous = self.live()?.clone();
                self.check_if_match(if_match)?;
                sink.write(
                    ResourceEvent::ResourceDeleted {
                        version: self.version + 1,
                        at,
                        previous,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: ResourceEvent) {
        self.version = event.version();
        match event {
            ResourceEvent::ResourceCreated { resource }
            | ResourceEvent::ResourceUpdated { resource, .. } => {
                self.deleted = false;
                self.current = Some(resource);
            }
            ResourceEvent::ResourceDeleted { .. } => {
                self.deleted = true;
                self.current = None;
            }
        }
    }
}

fn stamped(mut resource: Value, id: &str, version: u32, at: DateTime<Utc>) -> Value {
    if let Some(object) = resource.as_object_mut() {
        stamp_meta(object, id, version, at);
    }
    resource
}

/// `meta.versionId` of a resource this aggregate stamped.
fn version_of(resource: &Value) -> u32 {
    resource
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use serde_json::json;

    type ResourceTest = TestFramework<FhirResource>;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, second).unwrap()
    }

    fn patient(family: &str) -> Value {
        json!({"resourceType": "Patient", "name": [{"family": family}]})
    }

    fn stored(family: &str, version: u32, second: u32) -> Value {
        stamped(patient(family), "p1", version, at(second))
    }

    fn given_version_1() -> Vec<ResourceEvent> {
        vec![ResourceEvent::ResourceCreated {
            resource: stored("Smith", 1, 0),
        }]
    }

    #[test]
    fn create_records_version_1_with_server_meta() {
        ResourceTest::with(ResourceServices::default())
            .given_no_previous_events()
            .when(ResourceCommand::Create {
                id: "p1".into(),
                resource: json!({"resourceType": "Patient", "id": "client-sent", "meta": {"versionId": "7"}, "name": [{"family": "Smith"}]}),
                at: at(0),
            })
            .then_expect_events(given_version_1());
    }

    #[test]
    fn create_of_an_existing_stream_is_refused() {
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Create {
                id: "p1".into(),
                resource: patient("Jones"),
                at: at(1),
            })
            .then_expect_error(ResourceError::AlreadyExists);
    }

    #[test]
    fn update_records_the_next_version() {
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Update {
                id: "p1".into(),
                resource: patient("Jones"),
                if_match: Some(1),
                at: at(1),
            })
            .then_expect_events(vec![ResourceEvent::ResourceUpdated {
                resource: stored("Jones", 2, 1),
                patch: None,
            }]);
    }

    #[test]
    fn update_with_a_stale_if_match_is_a_conflict() {
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Update {
                id: "p1".into(),
                resource: patient("Jones"),
                if_match: Some(3),
                at: at(1),
            })
            .then_expect_error(ResourceError::VersionConflict {
                expected: 3,
                current: 1,
            });
    }

    #[test]
    fn update_of_an_unknown_id_creates_it() {
        ResourceTest::with(ResourceServices::default())
            .given_no_previous_events()
            .when(ResourceCommand::Update {
                id: "p1".into(),
                resource: patient("Smith"),
                if_match: None,
                at: at(0),
            })
            .then_expect_events(given_version_1());
    }

    #[test]
    fn update_with_unchanged_content_records_nothing() {
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Update {
                id: "p1".into(),
                resource: patient("Smith"),
                if_match: None,
                at: at(9),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn update_after_delete_recreates_with_the_next_version() {
        let mut history = given_version_1();
        history.push(ResourceEvent::ResourceDeleted {
            version: 2,
            at: at(1),
            previous: stored("Smith", 1, 0),
        });
        ResourceTest::with(ResourceServices::default())
            .given(history)
            .when(ResourceCommand::Update {
                id: "p1".into(),
                resource: patient("Smith"),
                if_match: None,
                at: at(2),
            })
            .then_expect_events(vec![ResourceEvent::ResourceCreated {
                resource: stored("Smith", 3, 2),
            }]);
    }

    #[test]
    fn delete_records_a_version_and_deleting_again_records_nothing() {
        let deleted = ResourceEvent::ResourceDeleted {
            version: 2,
            at: at(1),
            previous: stored("Smith", 1, 0),
        };
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Delete {
                if_match: None,
                at: at(1),
            })
            .then_expect_events(vec![deleted.clone()]);
        let mut history = given_version_1();
        history.push(deleted);
        ResourceTest::with(ResourceServices::default())
            .given(history)
            .when(ResourceCommand::Delete {
                if_match: None,
                at: at(2),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn delete_of_an_unknown_resource_is_not_found() {
        ResourceTest::with(ResourceServices::default())
            .given_no_previous_events()
            .when(ResourceCommand::Delete {
                if_match: None,
                at: at(1),
            })
            .then_expect_error(ResourceError::NotFound);
    }

    #[test]
    fn patch_records_the_result_and_the_patch() {
        let patch = json!([{"op": "replace", "path": "/name/0/family", "value": "Jones"}]);
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Patch {
                patch: patch.clone(),
                if_match: None,
                at: at(1),
            })
            .then_expect_events(vec![ResourceEvent::ResourceUpdated {
                resource: stored("Jones", 2, 1),
                patch: Some(patch),
            }]);
    }

    #[test]
    fn patch_may_not_change_the_id() {
        ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Patch {
                patch: json!([{"op": "replace", "path": "/id", "value": "p2"}]),
                if_match: None,
                at: at(1),
            })
            .then_expect_error(ResourceError::PatchChangesIdentity("id"));
    }

    #[test]
    fn patch_with_an_invalid_result_is_refused() {
        let result = ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Patch {
                patch: json!([{"op": "add", "path": "/birthDate", "value": "yesterday"}]),
                if_match: None,
                at: at(1),
            })
            .inspect_result();
        match result {
            Err(ResourceError::Invalid(issues)) => {
                assert_eq!(issues[0].expression, vec!["Patient.birthDate".to_owned()]);
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn patch_that_does_not_apply_is_refused() {
        let result = ResourceTest::with(ResourceServices::default())
            .given(given_version_1())
            .when(ResourceCommand::Patch {
                patch: json!([{"op": "remove", "path": "/telecom/5"}]),
                if_match: None,
                at: at(1),
            })
            .inspect_result();
        assert!(
            matches!(result, Err(ResourceError::PatchFailed(_))),
            "{result:?}"
        );
    }

    #[test]
    fn patch_of_a_deleted_resource_is_gone() {
        let mut history = given_version_1();
        history.push(ResourceEvent::ResourceDeleted {
            version: 2,
            at: at(1),
            previous: stored("Smith", 1, 0),
        });
        ResourceTest::with(ResourceServices::default())
            .given(history)
            .when(ResourceCommand::Patch {
                patch: json!([]),
                if_match: None,
                at: at(2),
            })
            .then_expect_error(ResourceError::Gone { version: 2 });
    }

    #[test]
    fn the_latest_event_is_the_whole_state() {
        let state = FhirResource::from_latest(ResourceEvent::ResourceUpdated {
            resource: stored("Jones", 4, 1),
            patch: None,
        });
        assert_eq!(state.version, 4);
        assert!(!state.deleted);
        assert_eq!(state.current, Some(stored("Jones", 4, 1)));
    }
}
