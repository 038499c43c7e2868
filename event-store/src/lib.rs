//! The FHIR event store: the source of truth of every resource, and the spine of the platform.
//!
//! - `aggregate`: the lifecycle of one resource (create, update, patch, delete, versions) as a
//!   cqrs-es aggregate: pure, tested given/when/then.
//! - `event`: what is stored and published: event kinds, metadata (who, when, from where, in
//!   which transaction), the hash chain, and the envelope that goes on NATS.
//! - `store`: Postgres persistence: one stream per resource, optimistic concurrency, many
//!   streams in one atomic commit, and a global position in commit order that no reader can
//!   overtake (see `migrations/` and docs/adr/0002-event-store.md); its migrations create the
//!   event store's tables only.
//! - `sandbox`: teaching sandboxes, named partitions of the store forked from the live record
//!   (docs/adr/0014-teaching-sandboxes.md).
//! - `relay`: the outbox relay that publishes every committed event to JetStream, in position
//!   order, exactly once per message id.

pub mod aggregate;
pub mod event;
pub mod relay;
pub mod sandbox;
mod sequencer;
pub mod store;

pub use aggregate::{
    FhirResource, ResourceCommand, ResourceError, ResourceEvent, ResourceServices,
};
pub use event::{Actor, EventKind, EventMetadata, NewEvent, SandboxTag, StoredEvent};
pub use relay::{OutboxRelay, RelaySettings, RelayStatus};
pub use store::{
    CommitContext, CommittedEvent, EventStore, HistoryQuery, Record, SandboxRecord, StoreError,
};
