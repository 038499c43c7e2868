//! The fan-out: one JetStream consumer per notifier instance, and the connections' subscriptions
//! indexed by topic, so an event costs one audience computation and one lookup per topic, not
//! one check per connection.
//!
//! Each notifier has its own ephemeral, ordered consumer: every instance sees every event, so a
//! client may land on any of them. The hub remembers the stream sequence it reached and, when
//! its connection to NATS breaks, starts the next consumer right after it, so live clients miss
//! nothing across a NATS restart. A connection whose queue is full is told to go (it closes
//! with 1008 `slow consumer` and can resume): the hub never waits for a client.
//!
//! Each teaching sandbox has a hub of its own (ADR 0014), made when its first client connects
//! (`/sandbox/<name>/ws`) and fed by the live hub's consumer: a sandbox's events go to its
//! hub's clients only, the live record's to the live hub's only, so neither ever sees the
//! other's. A sandbox hub matches search subscriptions in the sandbox's view of the index.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use axum::extract::ws::Utf8Bytes;
use event_store::EventStore;
use event_store::relay::referenced_event;
use futures::{FutureExt, StreamExt};
use tokio::sync::{Notify, mpsc, watch};

use crate::audience::{Audience, Interest};
use crate::event::Event;
use crate::protocol::{Criteria, Topic};

/// One message for one connection: an event that matched it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub position: i64,
    /// The event's resource type, which each connection's token must be allowed to read.
    pub resource_type: Option<fhir_model::ResourceType>,
    pub text: Utf8Bytes,
}

/// What a connection holds of the hub.
pub struct Registration {
    pub id: u64,
    pub live: mpsc::Receiver<Delivery>,
    /// Notified when the connection fell behind and must close.
    pub evicted: Arc<Notify>,
}

/// Where the hub's events come from.
#[derive(Debug, Clone)]
pub struct Source {
    pub nats_url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// Where events that travel by reference are read from.
    pub store: EventStore,
}

pub struct Hub {
    /// Whose events this hub hands out: the live record's, or one sandbox's.
    record: HubRecord,
    /// The live hub's sandbox hubs, by sandbox name.
    sandboxes: RwLock<HashMap<String, Arc<Hub>>>,
    connections: RwLock<Connections>,
    audience: Arc<Audience>,
    queue: usize,
    /// The newest position seen live, for heartbeats.
    latest: AtomicI64,
    connected: AtomicBool,
    delivered: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    by_id: HashMap<u64, Subscriber>,
    by_topic: HashMap<Topic, HashSet<u64>>,
    /// How many patient and ward topics exist, and the search topics by resource type: what
    /// the audience must compute.
    patient_topics: usize,
    ward_topics: usize,
    criteria: HashMap<String, BTreeSet<Criteria>>,
}

struct Subscriber {
    sender: mpsc::Sender<Delivery>,
    evicted: Arc<Notify>,
    topics: BTreeSet<Topic>,
}

/// Whose events a hub hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubRecord {
    Live,
    /// A sandbox, by name, and the live position it forked from (which every run keeps).
    Sandbox {
        name: String,
        fork: i64,
    },
}

impl Hub {
    /// `queue` is each connection's bound: that many undelivered events and it is dropped.
    pub fn new(audience: Arc<Audience>, queue: usize) -> Arc<Hub> {
        Hub::for_record(HubRecord::Live, audience, queue)
    }

    fn for_record(record: HubRecord, audience: Arc<Audience>, queue: usize) -> Arc<Hub> {
        Arc::new(Hub {
            record,
            sandboxes: RwLock::new(HashMap::new()),
            connections: RwLock::new(Connections::default()),
            audience,
            queue,
            latest: AtomicI64::new(0),
            connected: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    pub fn audience(&self) -> &Arc<Audience> {
        &self.audience
    }

    /// The hub of the sandbox `name` (forked at `fork`), made on first use.
    pub fn sandbox(&self, name: &str, fork: i64) -> Arc<Hub> {
        if let Some(hub) = self
            .sandboxes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .filter(|hub| matches!(&hub.record, HubRecord::Sandbox { fork: at, .. } if *at == fork))
        {
            return hub.clone();
        }
        let mut sandboxes = self
            .sandboxes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A sandbox deleted and made again under the same name may start elsewhere: its hub is
        // made anew (the old one's clients keep it until they leave).
        let hub = sandboxes
            .entry(name.to_owned())
            .and_modify(|hub| {
                if !matches!(&hub.record, HubRecord::Sandbox { fork: at, .. } if *at == fork) {
                    *hub = Hub::for_record(
                        HubRecord::Sandbox {
                            name: name.to_owned(),
                            fork,
                        },
                        self.audience.clone(),
                        self.queue,
                    );
                }
            })
            .or_insert_with(|| {
                Hub::for_record(
                    HubRecord::Sandbox {
                        name: name.to_owned(),
                        fork,
                    },
                    self.audience.clone(),
                    self.queue,
                )
            });
        hub.clone()
    }

    /// Whether `event` is this hub's: the live record's for the live hub, the sandbox's for a
    /// sandbox hub.
    pub fn holds(&self, event: &Event) -> bool {
        match (&self.record, &event.sandbox) {
            (HubRecord::Live, None) => true,
            (HubRecord::Sandbox { name, .. }, Some(tag)) => &tag.name == name,
            _ => false,
        }
    }

    /// The view of the index `event`'s search subscriptions are matched in.
    pub fn view(&self, event: &Event) -> fhir_search::sql::View {
        match (&self.record, &event.sandbox) {
            (HubRecord::Sandbox { fork, .. }, Some(tag)) => fhir_search::sql::View::Sandbox {
                partition: tag.partition,
                fork: *fork,
            },
            _ => fhir_search::sql::View::Live,
        }
    }

    /// Hands `event` to the hub whose it is: this one, or one of its sandboxes' (an event of a
    /// sandbox nobody watches goes nowhere).
    async fn route(&self, event: Arc<Event>) {
        if self.holds(&event) {
            return self.deliver_guarded(event).await;
        }
        self.latest.fetch_max(event.position, Ordering::Relaxed);
        let Some(tag) = &event.sandbox else {
            return;
        };
        let hub = self
            .sandboxes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tag.name)
            .cloned();
        if let Some(hub) = hub {
            hub.deliver_guarded(event).await;
        }
    }

    pub fn latest_position(&self) -> i64 {
        self.latest.load(Ordering::Relaxed)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// (connections, events delivered, connections evicted), for `/status`.
    pub fn counts(&self) -> (usize, u64, u64) {
        (
            self.read().by_id.len(),
            self.delivered.load(Ordering::Relaxed),
            self.evictions.load(Ordering::Relaxed),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Connections> {
        self.connections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Connections> {
        self.connections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn register(&self) -> Registration {
        let (sender, live) = mpsc::channel(self.queue);
        let evicted = Arc::new(Notify::new());
        let mut connections = self.write();
        connections.next_id += 1;
        let id = connections.next_id;
        connections.by_id.insert(
            id,
            Subscriber {
                sender,
                evicted: evicted.clone(),
                topics: BTreeSet::new(),
            },
        );
        Registration { id, live, evicted }
    }

    pub fn unregister(&self, id: u64) {
        let mut connections = self.write();
        if let Some(subscriber) = connections.by_id.remove(&id) {
            for topic in subscriber.topics {
                connections.drop_topic(&topic, id);
            }
        }
    }

    /// Adds a subscription; false if the connection already had it.
    pub fn subscribe(&self, id: u64, topic: Topic) -> bool {
        let mut connections = self.write();
        let Some(subscriber) = connections.by_id.get_mut(&id) else {
            return false;
        };
        if !subscriber.topics.insert(topic.clone()) {
            return false;
        }
        let holders = connections.by_topic.entry(topic.clone()).or_default();
        holders.insert(id);
        if holders.len() == 1 {
            match &topic {
                Topic::Patient(_) => connections.patient_topics += 1,
                Topic::Ward(_) => connections.ward_topics += 1,
                Topic::Type(_) => {}
                Topic::Criteria(criteria) => {
                    connections
                        .criteria
                        .entry(criteria.resource_type.clone())
                        .or_default()
                        .insert(criteria.clone());
                }
            }
        }
        true
    }

    /// Removes the subscription with this id; the topic it was, if the connection had it.
    pub fn unsubscribe(&self, id: u64, subscription: &str) -> Option<Topic> {
        let mut connections = self.write();
        let subscriber = connections.by_id.get_mut(&id)?;
        let topic = subscriber
            .topics
            .iter()
            .find(|topic| topic.id() == subscription)?
            .clone();
        subscriber.topics.remove(&topic);
        connections.drop_topic(&topic, id);
        Some(topic)
    }

    /// The connection's subscriptions.
    pub fn topics(&self, id: u64) -> BTreeSet<Topic> {
        self.read()
            .by_id
            .get(&id)
            .map(|subscriber| subscriber.topics.clone())
            .unwrap_or_default()
    }

    /// Sends `event` to every connection with a matching subscription, once each.
    pub async fn deliver(&self, event: Arc<Event>) {
        self.audience.seen(&event);
        let wanted: Vec<Criteria>;
        let (patients, wards) = {
            let connections = self.read();
            wanted = connections
                .criteria
                .get(&event.resource_type)
                .map(|all| all.iter().cloned().collect())
                .unwrap_or_default();
            (connections.patient_topics > 0, connections.ward_topics > 0)
        };
        let interest = Interest {
            patients,
            wards,
            criteria: wanted.iter().collect(),
        };
        let topics = self
            .audience
            .topics(&event, &interest, self.view(&event))
            .await;

        let mut evicted = Vec::new();
        {
            let connections = self.read();
            // Connection -> the ids of its subscriptions that matched.
            let mut matched: BTreeMap<u64, Vec<String>> = BTreeMap::new();
            for topic in &topics {
                let Some(holders) = connections.by_topic.get(topic) else {
                    continue;
                };
                let id = topic.id();
                for holder in holders {
                    matched.entry(*holder).or_default().push(id.clone());
                }
            }
            // Connections that matched through the same subscriptions share one message.
            let mut messages: HashMap<Vec<String>, Utf8Bytes> = HashMap::new();
            for (holder, ids) in matched {
                let Some(subscriber) = connections.by_id.get(&holder) else {
                    continue;
                };
                let text = messages
                    .entry(ids)
                    .or_insert_with_key(|ids| Utf8Bytes::from(event.message(ids)))
                    .clone();
                let delivery = Delivery {
                    position: event.position,
                    resource_type: fhir_model::ResourceType::parse(&event.resource_type).ok(),
                    text,
                };
                match subscriber.sender.try_send(delivery) {
                    Ok(()) => {
                        self.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        subscriber.evicted.notify_one();
                        evicted.push(holder);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => evicted.push(holder),
                }
            }
        }
        if !evicted.is_empty() {
            self.evictions
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            for id in evicted {
                self.unregister(id);
            }
        }
        self.latest.fetch_max(event.position, Ordering::Relaxed);
    }

    /// [`Hub::deliver`], with a panic logged and the event skipped: one event the notifier
    /// cannot handle must not stop every client's stream.
    async fn deliver_guarded(&self, event: Arc<Event>) {
        let position = event.position;
        if AssertUnwindSafe(self.deliver(event))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!(
                position,
                "delivering an event panicked; the event is skipped"
            );
            self.latest.fetch_max(position, Ordering::Relaxed);
        }
    }

    /// Follows the stream until `stopped` turns true, reconnecting after failures.
    pub async fn follow(self: Arc<Self>, source: Source, mut stopped: watch::Receiver<bool>) {
        let mut next_sequence = None;
        loop {
            let run = self.consume(&source, &mut next_sequence);
            let ended = tokio::select! {
                ended = run => ended,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            self.connected.store(false, Ordering::Relaxed);
            if let Err(error) = ended {
                tracing::warn!(%error, "notifier's event stream stopped; reconnecting");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn consume(
        &self,
        source: &Source,
        next_sequence: &mut Option<u64>,
    ) -> Result<(), async_nats::Error> {
        let client = event_store::relay::connect_nats(&source.nats_url).await?;
        let context = jetstream::new(client.clone());
        let stream = context
            .get_or_create_stream(event_store::relay::events_stream_config(
                &source.stream,
                &source.subject_prefix,
            ))
            .await?;
        let deliver_policy = match *next_sequence {
            Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
            None => consumer::DeliverPolicy::New,
        };
        let consumer = stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                description: Some("notifier: events to WebSocket clients".to_owned()),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        self.connected.store(true, Ordering::Relaxed);
        tracing::info!(stream = %source.stream, "notifier following the event stream");
        while let Some(message) = messages.next().await {
            let message = message?;
            if let Ok(info) = message.info() {
                *next_sequence = Some(info.stream_sequence + 1);
            }
            // An event too large for a NATS message travels by reference: read it from the store.
            let decoded = match referenced_event(&source.store, message.headers.as_ref()).await {
                Some(Ok(stored)) => Event::from_stored(&stored),
                Some(Err(error)) => {
                    tracing::error!(%error, subject = %message.subject, "event by reference not read; skipped");
                    continue;
                }
                None => Event::from_envelope(&message.payload),
            };
            match decoded {
                Ok(event) => self.route(event).await,
                Err(error) => {
                    tracing::error!(%error, subject = %message.subject, "unreadable event skipped")
                }
            }
        }
        Err("the consumer's message stream ended".into())
    }
}

impl Connections {
    fn drop_topic(&mut self, topic: &Topic, id: u64) {
        let Some(holders) = self.by_topic.get_mut(topic) else {
            return;
        };
        holders.remove(&id);
        if !holders.is_empty() {
            return;
        }
        self.by_topic.remove(topic);
        match topic {
            Topic::Patient(_) => self.patient_topics -= 1,
            Topic::Ward(_) => self.ward_topics -= 1,
            Topic::Type(_) => {}
            Topic::Criteria(criteria) => {
                if let Some(of_type) = self.criteria.get_mut(&criteria.resource_type) {
                    of_type.remove(criteria);
                    if of_type.is_empty() {
                        self.criteria.remove(&criteria.resource_type);
                    }
                }
            }
        }
    }
}
