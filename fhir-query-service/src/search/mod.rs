//! Search over the projections: parse (`fhir_search::query`), select (`sql`), page, include,
//! trim (`summary`), and return a `searchset` Bundle.
//!
//! Paging must neither skip nor repeat a resource while writes go on, which an `OFFSET` over a
//! live table cannot promise. So when a search has more than one page, its ordered list of
//! matches (up to [`RESULT_CAP`]) is kept in `search_result` and every page is a slice of that
//! list, as HAPI keeps its `hfj_search_result`. Page links name the list (`_getpages`); the
//! resources on a page are fetched when the page is asked for, at their current version, and
//! one deleted since the search is left out. Searches that fit in one page keep nothing.
//!
//! A kept list holds `res_pk`s, which mean something only in the projection they were read
//! from: each list records that projection's generation (the OID of `hfj_resource`, which a
//! rebuild's swap replaces), and a page of a list from before a rebuild answers 410 rather
//! than other resources. Lists expire ([`Searcher::delete_expired`] runs on a schedule) and
//! each client keeps at most so many (its oldest are dropped), so paging cannot fill the disk.
//!
//! A page's resources come from the Redis read cache where it holds them (one `MGET`), and from
//! the event store for the rest, which are then cached: the same versions a read would give.
//!
//! Every search is held to a [`Budget`]: the parser's [`query::Limits`], a bind parameter
//! count for the statement built, and a statement timeout, in a [`session::Session`] that is
//! cancelled on the server when the client goes away.

pub mod session;
pub mod summary;

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use event_store::{EventStore, Record};
use fhir_search::compartment;
use fhir_search::query::{self, Include, SearchQuery, Summary, Total};
use fhir_search::schema::{hfj_res_link, hfj_resource, search_result};
use fhir_search::sql::{self, View};
use fhir_search::{ParamType, Registry};
use serde_json::{Map, Value, json};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use service_kit::resource_cache::{CachedVersion, ResourceCache};
use session::Session;
use summary::Trim;

/// The most matches kept for paging; beyond it the search says so and pages stop there.
pub const RESULT_CAP: usize = 10_000;
/// The most resources `_include` and `_revinclude` add to one page.
const INCLUDE_CAP: usize = 5_000;

/// What one search may cost (the query service's settings).
#[derive(Debug, Clone)]
pub struct Budget {
    /// The parser's limits, the bind parameter count and the `:iterate` rounds.
    pub limits: query::Limits,
    /// Longest one statement of a search may run.
    pub statement_timeout: Duration,
    /// How long a kept result list serves pages.
    pub result_ttl: Duration,
    /// Most result lists one client keeps; its oldest are dropped past it.
    pub results_per_client: i64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            limits: query::Limits::default(),
            statement_timeout: Duration::from_secs(10),
            result_ttl: Duration::from_secs(3_600),
            results_per_client: 200,
        }
    }
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
    /// Beyond a limit of the search budget.
    #[error("{0}")]
    TooCostly(String),
    /// Unknown or unsupported parameters under `handling=strict`.
    #[error("{0}")]
    Strict(String),
    #[error("the result list `{0}` is unknown or has expired: run the search again")]
    UnknownPage(String),
    #[error(
        "the result list `{0}` was computed before the search index was rebuilt: run the search again"
    )]
    StalePage(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored resource that is not JSON (the event store guarantees it is).
    #[error("a stored resource is not valid JSON: {0}")]
    Stored(#[from] serde_json::Error),
}

/// Where a search was asked, for the Bundle's links.
#[derive(Debug, Clone)]
pub struct Request {
    /// This server's FHIR base as the client sees it (`http://host/fhir`).
    pub base: String,
    /// The path searched, relative to the base (`Patient`, or empty for a system search).
    pub path: String,
    /// The request's parameters as sent, for the `self` link and later pages.
    pub params: Vec<(String, String)>,
    /// `Prefer: handling=strict`.
    pub strict: bool,
    /// Compartment search and `$everything`: only resources in this patient's compartment.
    pub compartment: Option<compartment::PatientCompartment>,
    /// Who asked (the address the edge reports), for the bound on kept result lists.
    pub client: String,
    /// The present, a sandbox, or the past position searched (`/fhir/_asof/...`).
    pub view: View,
    /// The streams resources are read from: the live record's, or the sandbox's.
    pub record: Record,
}

/// A page of a kept result list: `_getpages=<id>&_getpagesoffset=<n>&_count=<m>`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub id: Uuid,
    pub offset: usize,
    pub count: Option<usize>,
}

/// Runs searches; cheap to clone.
#[derive(Clone)]
pub struct Searcher {
    pool: PgPool,
    /// Where a sandbox's resources are read (the live record's come from the cache first).
    store: EventStore,
    registry: &'static Registry,
    /// The base that absolute references to this server start with (as the projector sees it).
    reference_base: String,
    cache: ResourceCache,
    budget: Budget,
}

/// A resource by its `res_pk`, type and id.
type Named = (i64, String, String);

struct Page {
    /// The page's resources, in order.
    named: Vec<Named>,
    offset: usize,
    total: Option<usize>,
    /// The kept list, when there is more than one page.
    list: Option<(Uuid, usize)>,
}

impl Searcher {
    pub fn new(
        store: EventStore,
        reference_base: String,
        cache: ResourceCache,
        budget: Budget,
    ) -> Self {
        Self {
            pool: store.pool().clone(),
            store,
            registry: Registry::r4(),
            reference_base,
            cache,
            budget,
        }
    }

    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    /// The base absolute references to this server start with, as the projector indexes them.
    pub fn reference_base(&self) -> &str {
        &self.reference_base
    }

    /// Parses a search of `types` with `request`'s parameters.
    pub fn parse(&self, types: Vec<String>, request: &Request) -> Result<SearchQuery, SearchError> {
        let query = query::parse_within(
            self.registry,
            types,
            &request.params,
            &self.reference_base,
            &self.budget.limits,
        )
        .map_err(|error| match error.kind {
            query::QueryErrorKind::Invalid => SearchError::Invalid(error.to_string()),
            query::QueryErrorKind::TooCostly => SearchError::TooCostly(error.to_string()),
        })?;
        if request.strict && !query.ignored.is_empty() {
            let names: Vec<String> = query
                .ignored
                .iter()
                .map(|ignored| format!("{}: {}", ignored.name, ignored.reason))
                .collect();
            return Err(SearchError::Strict(format!(
                "unknown or unsupported search parameters (Prefer: handling=strict): {}",
                names.join("; ")
            )));
        }
        Ok(query)
    }

    /// Runs `query` and returns the first page as a Bundle.
    pub async fn search(
        &self,
        query: &SearchQuery,
        request: &Request,
    ) -> Result<Value, SearchError> {
        let select = sql::select_matches(
            query,
            request.compartment.as_ref(),
            RESULT_CAP as i64 + 1,
            request.view,
        );
        let binds = sql::bind_count(&select);
        if binds > self.budget.limits.bind_parameters {
            return Err(SearchError::TooCostly(format!(
                "the search needs {binds} bind parameters, beyond the limit of {}",
                self.budget.limits.bind_parameters
            )));
        }
        let mut session = Session::begin(&self.pool, self.budget.statement_timeout).await?;
        let bundle = self.search_in(&mut session, select, query, request).await;
        // Finished on errors too: only a search abandoned half-way needs cancelling.
        let finished = session.finish().await;
        let bundle = bundle?;
        finished?;
        Ok(bundle)
    }

    async fn search_in(
        &self,
        session: &mut Session,
        mut select: sqlx::QueryBuilder<'static, sqlx::Postgres>,
        query: &SearchQuery,
        request: &Request,
    ) -> Result<Value, SearchError> {
        if query.summary == Some(Summary::Count) || query.count == 0 {
            let total = self.count(session.connection()?, query, request).await?;
            return Ok(self.bundle(
                query,
                request,
                Vec::new(),
                &Page {
                    named: Vec::new(),
                    offset: 0,
                    total: Some(total),
                    list: None,
                },
                &[],
            ));
        }
        let mut matches: Vec<Named> = select
            .build_query_as()
            .fetch_all(session.connection()?)
            .await?;
        let overflow = matches.len() > RESULT_CAP;
        matches.truncate(RESULT_CAP);
        let total = match (overflow, query.total) {
            (false, _) => Some(matches.len()),
            (true, Total::Accurate) => {
                Some(self.count(session.connection()?, query, request).await?)
            }
            (true, _) => None,
        };
        let list = if matches.len() > query.count {
            let pks: Vec<i64> = matches.iter().map(|(pk, _, _)| *pk).collect();
            Some((
                self.keep(session.connection()?, request, &pks, total)
                    .await?,
                matches.len(),
            ))
        } else {
            None
        };
        matches.truncate(query.count);
        let page = Page {
            named: matches,
            offset: 0,
            total,
            list,
        };
        let (resources, included) = self
            .resources(session, query, &page.named, request.view, &request.record)
            .await?;
        Ok(self.bundle(query, request, resources, &page, &included))
    }

    /// A later page of a kept result list, which must have been kept by a search of `view`.
    pub async fn page(
        &self,
        page: &PageRequest,
        base: &str,
        view: View,
        record: Record,
    ) -> Result<Value, SearchError> {
        let mut session = Session::begin(&self.pool, self.budget.statement_timeout).await?;
        let bundle = self.page_in(&mut session, page, base, view, record).await;
        let finished = session.finish().await;
        let bundle = bundle?;
        finished?;
        Ok(bundle)
    }

    async fn page_in(
        &self,
        session: &mut Session,
        page: &PageRequest,
        base: &str,
        view: View,
        record: Record,
    ) -> Result<Value, SearchError> {
        // Held until the page is read, so no rebuild can swap the table between the check of
        // the generation and the reading of the page's rows.
        sqlx::query(&LOCK_RESOURCES)
            .execute(session.connection()?)
            .await?;
        let row = sqlx::query(&READ_KEPT)
            .bind(page.id)
            .bind(self.budget.result_ttl.as_secs_f64())
            .fetch_optional(session.connection()?)
            .await?
            .ok_or_else(|| SearchError::UnknownPage(page.id.to_string()))?;
        if !row.get::<bool, _>("current") {
            return Err(SearchError::StalePage(page.id.to_string()));
        }
        // A list pages through the record it was searched in: the present's lists are not
        // served at a past base, nor one past's at another.
        let searched_in: (Option<i64>, Option<i64>) = (
            row.get(search_result::ASOF),
            row.get(search_result::PARTITION),
        );
        if searched_in != kept(view) {
            return Err(SearchError::UnknownPage(page.id.to_string()));
        }
        let path: String = row.get(search_result::PATH);
        let params: sqlx::types::Json<Vec<(String, String)>> = row.get(search_result::PARAMS);
        let all: Vec<i64> = row.get(search_result::RES_PKS);
        let total: Option<i64> = row.get(search_result::TOTAL);
        let request = Request {
            base: base.to_owned(),
            path,
            params: params.0,
            strict: false,
            compartment: None,
            client: String::new(),
            view,
            record,
        };
        let mut query = self.parse(types_of(&request.path, &request.params)?, &request)?;
        if let Some(count) = page.count {
            query.count = count.clamp(1, query::MAX_COUNT);
        }
        let offset = page.offset.min(all.len());
        let ids: Vec<i64> = all.iter().skip(offset).take(query.count).copied().collect();
        let page_data = Page {
            named: self.names(session.connection()?, &ids, view).await?,
            offset,
            total: total.and_then(|total| usize::try_from(total).ok()),
            list: Some((page.id, all.len())),
        };
        let (resources, included) = self
            .resources(session, &query, &page_data.named, view, &request.record)
            .await?;
        Ok(self.bundle(&query, &request, resources, &page_data, &included))
    }

    async fn count(
        &self,
        connection: &mut PgConnection,
        query: &SearchQuery,
        request: &Request,
    ) -> Result<usize, SearchError> {
        let count: i64 = sql::count_matches(query, request.compartment.as_ref(), request.view)
            .build()
            .fetch_one(connection)
            .await?
            .get(0);
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Keeps the ordered matches for paging, with the projection's generation; the client's
    /// lists beyond its bound are dropped, oldest first.
    async fn keep(
        &self,
        connection: &mut PgConnection,
        request: &Request,
        matches: &[i64],
        total: Option<usize>,
    ) -> Result<Uuid, SearchError> {
        let id = Uuid::new_v4();
        sqlx::query(&INSERT_KEPT)
            .bind(id)
            .bind(&request.path)
            .bind(sqlx::types::Json(&request.params))
            .bind(matches)
            .bind(total.map(|total| total as i64))
            .bind(&request.client)
            .bind(kept(request.view).0)
            .bind(kept(request.view).1)
            .execute(&mut *connection)
            .await?;
        sqlx::query(&DELETE_BEYOND_CLIENT_BOUND)
            .bind(&request.client)
            .bind(id)
            .bind((self.budget.results_per_client - 1).max(0))
            .execute(&mut *connection)
            .await?;
        Ok(id)
    }

    /// Deletes the result lists older than their time to live; the query service runs it on a
    /// schedule. Returns how many it deleted.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let deleted = sqlx::query(&DELETE_EXPIRED)
            .bind(self.budget.result_ttl.as_secs_f64())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }

    /// The page's resources in order, and what `_include`/`_revinclude` add.
    async fn resources(
        &self,
        session: &mut Session,
        query: &SearchQuery,
        page: &[Named],
        view: View,
        record: &Record,
    ) -> Result<(Vec<Value>, Vec<Value>), SearchError> {
        let resources = self.fetch(page, view, record).await?;
        if query.includes.is_empty() && query.revincludes.is_empty() {
            return Ok((resources, Vec::new()));
        }
        let ids: Vec<i64> = page.iter().map(|(pk, _, _)| *pk).collect();
        let mut seen: HashSet<i64> = ids.iter().copied().collect();
        let mut included_ids = Vec::new();
        let mut frontier = ids;
        for round in 0..=self.budget.limits.iterate_depth {
            let mut found = Vec::new();
            for include in &query.includes {
                if round == 0 || include.iterate {
                    found.extend(forward(session.connection()?, include, &frontier, view).await?);
                }
            }
            for include in &query.revincludes {
                if round == 0 || include.iterate {
                    found.extend(reverse(session.connection()?, include, &frontier, view).await?);
                }
            }
            let fresh: Vec<i64> = found.into_iter().filter(|id| seen.insert(*id)).collect();
            if fresh.is_empty() || included_ids.len() >= INCLUDE_CAP {
                break;
            }
            included_ids.extend(fresh.iter().copied());
            frontier = fresh;
        }
        included_ids.truncate(INCLUDE_CAP);
        let named = self
            .names(session.connection()?, &included_ids, view)
            .await?;
        let included = self.fetch(&named, view, record).await?;
        Ok((resources, included))
    }

    /// The types and ids of `ids`, in that order.
    async fn names(
        &self,
        connection: &mut PgConnection,
        ids: &[i64],
        view: View,
    ) -> Result<Vec<Named>, SearchError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statement = match view {
            View::Sandbox { .. } => &*SANDBOX_NAMES,
            View::Live | View::AsOf(_) => &*NAMES,
        };
        Ok(sqlx::query_as(statement)
            .bind(ids)
            .fetch_all(connection)
            .await?)
    }

    /// The current versions of `named`, in that order; deleted ones are left out. Cached
    /// versions are taken from Redis; the others are read from the event store and cached.
    /// For a past, the versions of then, from the event store.
    async fn fetch(
        &self,
        named: &[Named],
        view: View,
        record: &Record,
    ) -> Result<Vec<Value>, SearchError> {
        if named.is_empty() {
            return Ok(Vec::new());
        }
        match view {
            View::AsOf(position) => return self.fetch_past(named, position).await,
            View::Sandbox { .. } => return self.fetch_sandbox(named, record).await,
            View::Live => {}
        }
        let keys: Vec<(&str, &str)> = named
            .iter()
            .map(|(_, resource_type, id)| (resource_type.as_str(), id.as_str()))
            .collect();
        let mut found: Vec<Option<CachedVersion>> = self.cache.get_many(&keys).await;
        let missing: Vec<i64> = named
            .iter()
            .zip(&found)
            .filter(|(_, cached)| cached.is_none())
            .map(|((pk, _, _), _)| *pk)
            .collect();
        if !missing.is_empty() {
            let rows: Vec<(
                i64,
                String,
                String,
                i32,
                chrono::DateTime<chrono::Utc>,
                String,
            )> = sqlx::query_as(&CURRENT_VERSIONS)
                .bind(&missing)
                .fetch_all(&self.pool)
                .await?;
            let read: Vec<(i64, String, String, CachedVersion)> = rows
                .into_iter()
                .map(|(pk, resource_type, id, version, recorded_at, resource)| {
                    let entry = CachedVersion {
                        version,
                        recorded_at,
                        deleted: false,
                        resource,
                    };
                    (pk, resource_type, id, entry)
                })
                .collect();
            // Cached side by side, not one round trip after another.
            futures::future::join_all(read.iter().map(|(_, resource_type, id, entry)| {
                self.cache.store_read(resource_type, id, entry)
            }))
            .await;
            let mut read: std::collections::HashMap<i64, CachedVersion> = read
                .into_iter()
                .map(|(pk, _, _, entry)| (pk, entry))
                .collect();
            for ((pk, _, _), slot) in named.iter().zip(found.iter_mut()) {
                if slot.is_none() {
                    *slot = read.remove(pk);
                }
            }
        }
        found
            .into_iter()
            .flatten()
            .filter(|entry| !entry.deleted)
            .map(|entry| serde_json::from_str(&entry.resource).map_err(SearchError::Stored))
            .collect()
    }

    /// The versions of `named` at `position`, in that order; those deleted by then left out.
    async fn fetch_past(&self, named: &[Named], position: i64) -> Result<Vec<Value>, SearchError> {
        let pks: Vec<i64> = named.iter().map(|(pk, _, _)| *pk).collect();
        let rows: Vec<(i64, String)> = sqlx::query_as(&VERSIONS_AT)
            .bind(&pks)
            .bind(position)
            .fetch_all(&self.pool)
            .await?;
        let mut read: std::collections::HashMap<i64, String> = rows.into_iter().collect();
        named
            .iter()
            .filter_map(|(pk, _, _)| read.remove(pk))
            .map(|resource| serde_json::from_str(&resource).map_err(SearchError::Stored))
            .collect()
    }

    /// The current versions of `named` in a sandbox, from its streams, in that order; deleted
    /// ones left out.
    async fn fetch_sandbox(
        &self,
        named: &[Named],
        record: &Record,
    ) -> Result<Vec<Value>, SearchError> {
        let streams: Vec<(String, String)> = named
            .iter()
            .map(|(_, resource_type, id)| (resource_type.clone(), id.clone()))
            .collect();
        let mut heads = self
            .store
            .within(record.clone())
            .latest_many(&streams)
            .await
            .map_err(|error| match error {
                event_store::StoreError::Database(error) => SearchError::Database(error),
                other => SearchError::Database(sqlx::Error::Protocol(other.to_string())),
            })?;
        streams
            .into_iter()
            .filter_map(|stream| heads.remove(&stream))
            .filter(|event| !event.is_delete())
            .map(|event| serde_json::from_str(&event.resource).map_err(SearchError::Stored))
            .collect()
    }

    /// The position from which the indexes keep the past (see `hfj_history_horizon`).
    pub async fn history_horizon(&self) -> Result<i64, sqlx::Error> {
        let horizon: Option<i64> = sqlx::query_scalar(&HISTORY_HORIZON)
            .fetch_optional(&self.pool)
            .await?;
        Ok(horizon.unwrap_or(0))
    }

    fn bundle(
        &self,
        query: &SearchQuery,
        request: &Request,
        resources: Vec<Value>,
        page: &Page,
        included: &[Value],
    ) -> Value {
        let trim = Trim::from_request(query.summary, &query.elements);
        let entry = |mut resource: Value, mode: &str| {
            if let Some(trim) = &trim {
                trim.apply(&mut resource);
            }
            let full_url = format!(
                "{}/{}/{}",
                request.base,
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": full_url, "resource": resource, "search": {"mode": mode}})
        };
        let mut entries: Vec<Value> = resources.into_iter().map(|r| entry(r, "match")).collect();
        entries.extend(included.iter().cloned().map(|r| entry(r, "include")));
        if !query.ignored.is_empty() {
            entries.push(json!({
                "resource": outcome_of_ignored(query),
                "search": {"mode": "outcome"}
            }));
        }
        let mut bundle = Map::new();
        bundle.insert("resourceType".into(), json!("Bundle"));
        bundle.insert("id".into(), json!(Uuid::new_v4().to_string()));
        bundle.insert(
            "meta".into(),
            json!({"lastUpdated": fhir_model::format_instant(chrono::Utc::now())}),
        );
        bundle.insert("type".into(), json!("searchset"));
        if query.total != Total::None
            && let Some(total) = page.total
        {
            bundle.insert("total".into(), json!(total));
        }
        bundle.insert("link".into(), Value::Array(links(request, query, page)));
        if query.summary != Some(Summary::Count) {
            bundle.insert("entry".into(), Value::Array(entries));
        }
        Value::Object(bundle)
    }
}

fn links(request: &Request, query: &SearchQuery, page: &Page) -> Vec<Value> {
    let base_path = if request.path.is_empty() {
        request.base.clone()
    } else {
        format!("{}/{}", request.base, request.path)
    };
    let mut links = Vec::new();
    match page.list {
        None => {
            let encoded = encode(&request.params);
            let url = if encoded.is_empty() {
                base_path
            } else {
                format!("{base_path}?{encoded}")
            };
            links.push(json!({"relation": "self", "url": url}));
        }
        Some((id, length)) => {
            let page_url = |offset: usize| {
                format!(
                    "{}?_getpages={id}&_getpagesoffset={offset}&_count={}&_bundletype=searchset",
                    request.base, query.count
                )
            };
            links.push(json!({"relation": "self", "url": page_url(page.offset)}));
            if page.offset > 0 {
                links.push(json!({"relation": "first", "url": page_url(0)}));
                links.push(json!({
                    "relation": "previous",
                    "url": page_url(page.offset.saturating_sub(query.count))
                }));
            }
            if page.offset + query.count < length {
                links.push(json!({"relation": "next", "url": page_url(page.offset + query.count)}));
            }
        }
    }
    links
}

fn encode(params: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// The types of a system search: those its `_type` parameters name, or every type.
pub fn system_types(params: &[(String, String)]) -> Result<Vec<String>, SearchError> {
    let named: Vec<&str> = params
        .iter()
        .filter(|(name, _)| name == "_type")
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if named.is_empty() {
        return Ok(fhir_model::ResourceType::all()
            .map(|t| t.as_str().to_owned())
            .collect());
    }
    named
        .into_iter()
        .map(|name| {
            fhir_model::ResourceType::parse(name)
                .map(|t| t.as_str().to_owned())
                .map_err(|error| SearchError::Invalid(error.to_string()))
        })
        .collect()
}

/// The types a kept search is re-read with (for its includes and trimming): `Patient` for a
/// patient's `$everything`, the last segment of a compartment search, the searched type, or
/// for a system search those of its `_type` (checked when the search first ran).
fn types_of(path: &str, params: &[(String, String)]) -> Result<Vec<String>, SearchError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [_, _, "$everything"] => Ok(vec!["Patient".to_owned()]),
        [resource_type] | [_, _, resource_type] => Ok(vec![(*resource_type).to_owned()]),
        _ => system_types(params),
    }
}

fn outcome_of_ignored(query: &SearchQuery) -> Value {
    let issues: Vec<Value> = query
        .ignored
        .iter()
        .map(|ignored| {
            json!({
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": format!("parameter `{}` was ignored: {}", ignored.name, ignored.reason)
            })
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

/// What a kept list records of the view it was searched in: `(asof, partition)`.
fn kept(view: View) -> (Option<i64>, Option<i64>) {
    match view {
        View::Live => (None, None),
        View::AsOf(position) => (Some(position), None),
        View::Sandbox { partition, .. } => (None, Some(partition)),
    }
}

/// Targets of `include` from the resources `from`.
async fn forward(
    connection: &mut PgConnection,
    include: &Include,
    from: &[i64],
    view: View,
) -> Result<Vec<i64>, SearchError> {
    let statement = match view {
        View::Live => std::borrow::Cow::Borrowed(FORWARD.as_str()),
        View::AsOf(_) | View::Sandbox { .. } => std::borrow::Cow::Owned(forward_statement(view)),
    };
    let rows = sqlx::query(&statement)
        .bind(from)
        .bind(&include.source_type)
        .bind(&include.param)
        .bind(&include.target_type)
        .fetch_all(connection)
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Resources whose `include` reference points at one of `to`.
async fn reverse(
    connection: &mut PgConnection,
    include: &Include,
    to: &[i64],
    view: View,
) -> Result<Vec<i64>, SearchError> {
    let statement = match view {
        View::Live => std::borrow::Cow::Borrowed(REVERSE.as_str()),
        View::AsOf(_) | View::Sandbox { .. } => std::borrow::Cow::Owned(reverse_statement(view)),
    };
    let rows = sqlx::query(&statement)
        .bind(to)
        .bind(&include.source_type)
        .bind(&include.param)
        .fetch_all(connection)
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

// The statements over the index schema and the kept lists, named through `fhir_search::schema`
// and formatted once. A kept list records the OID of the live `hfj_resource` (its generation).

/// Held while a page is read, so no rebuild swaps `hfj_resource` in between.
static LOCK_RESOURCES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "LOCK TABLE public.{} IN ACCESS SHARE MODE",
        hfj_resource::TABLE
    )
});

/// A kept list, unexpired, and whether it belongs to the live projection.
static READ_KEPT: LazyLock<String> = LazyLock::new(|| {
    use search_result::{
        ASOF, CREATED_AT, GENERATION, ID, PARAMS, PARTITION, PATH, RES_PKS, TABLE, TOTAL,
    };
    let resources = hfj_resource::TABLE;
    format!(
        "SELECT {PATH}, {PARAMS}, {RES_PKS}, {TOTAL}, {ASOF}, {PARTITION}, \
         {GENERATION} IS NOT DISTINCT FROM 'public.{resources}'::regclass::oid AS current \
         FROM {TABLE} WHERE {ID} = $1 AND {CREATED_AT} > now() - make_interval(secs => $2)"
    )
});

static INSERT_KEPT: LazyLock<String> = LazyLock::new(|| {
    use search_result::{
        ASOF, CLIENT, GENERATION, ID, PARAMS, PARTITION, PATH, RES_PKS, TABLE, TOTAL,
    };
    let resources = hfj_resource::TABLE;
    format!(
        "INSERT INTO {TABLE} ({ID}, {PATH}, {PARAMS}, {RES_PKS}, {TOTAL}, {GENERATION}, {CLIENT}, {ASOF}, {PARTITION}) \
         VALUES ($1, $2, $3, $4, $5, 'public.{resources}'::regclass, $6, $7, $8)"
    )
});

/// The client's lists beyond its bound, oldest first, but not the one just kept. Rows another
/// search of the same client is trimming at the same moment are skipped, not waited for: two
/// such searches locked the same rows in different orders and deadlocked (seen at 16 clients
/// behind one address), and the other search trims them anyway.
static DELETE_BEYOND_CLIENT_BOUND: LazyLock<String> = LazyLock::new(|| {
    use search_result::{CLIENT, CREATED_AT, ID, TABLE};
    format!(
        "DELETE FROM {TABLE} WHERE {ID} IN (SELECT {ID} FROM {TABLE} \
         WHERE {CLIENT} = $1 AND {ID} <> $2 ORDER BY {CREATED_AT} DESC OFFSET $3 \
         FOR UPDATE SKIP LOCKED)"
    )
});

static DELETE_EXPIRED: LazyLock<String> = LazyLock::new(|| {
    use search_result::{CREATED_AT, TABLE};
    format!("DELETE FROM {TABLE} WHERE {CREATED_AT} < now() - make_interval(secs => $1)")
});

/// Types and ids of `res_pk`s, in the order given.
/// Types and ids of `res_pk`s of a sandbox (its own resources' keys are in
/// `hfj_sandbox_resource`), in the order given.
static SANDBOX_NAMES: LazyLock<String> = LazyLock::new(|| {
    use fhir_search::schema::hfj_sandbox_resource as own;
    use hfj_resource::{RES_ID, RES_PK, RES_TYPE, TABLE};
    format!(
        "SELECT p.pk, r.{RES_TYPE}, r.{RES_ID} FROM unnest($1::bigint[]) WITH ORDINALITY AS p(pk, ord) \
         JOIN (SELECT {RES_PK}, {RES_TYPE}, {RES_ID} FROM {TABLE} \
               UNION ALL SELECT {}, {}, {} FROM {}) r ON r.{RES_PK} = p.pk ORDER BY p.ord",
        own::RES_PK,
        own::RES_TYPE,
        own::RES_ID,
        own::TABLE
    )
});

static NAMES: LazyLock<String> = LazyLock::new(|| {
    use hfj_resource::{RES_ID, RES_PK, RES_TYPE, TABLE};
    format!(
        "SELECT p.pk, r.{RES_TYPE}, r.{RES_ID} FROM unnest($1::bigint[]) WITH ORDINALITY AS p(pk, ord) \
         JOIN {TABLE} r ON r.{RES_PK} = p.pk ORDER BY p.ord"
    )
});

/// The current version of each `res_pk`'s resource from the event store, deleted ones left out.
static CURRENT_VERSIONS: LazyLock<String> = LazyLock::new(|| {
    use hfj_resource::{RES_ID, RES_PK, RES_TYPE, TABLE};
    format!(
        "SELECT r.{RES_PK}, r.{RES_TYPE}, r.{RES_ID}, e.version, e.recorded_at, e.resource::text \
             FROM {TABLE} r CROSS JOIN LATERAL ( \
                 SELECT version, recorded_at, kind, resource FROM fhir_event \
                 WHERE resource_type = r.{RES_TYPE} AND resource_id = r.{RES_ID} \
                 ORDER BY version DESC LIMIT 1) e \
             WHERE r.{RES_PK} = ANY($1) AND e.kind <> 'ResourceDeleted'"
    )
});

/// `_include`: local targets of the references from `$1`, optionally of one source type,
/// parameter and target type.
static FORWARD: LazyLock<String> = LazyLock::new(|| forward_statement(View::Live));

/// `_include` of `view`. From a past, the links are those of each source's version then: the
/// sources are joined to the past's versions first.
fn forward_statement(view: View) -> String {
    use hfj_res_link::{KIND, SP_NAME, SRC_TYPE, TARGET_ID, TARGET_TYPE};
    use hfj_resource::{DELETED, RES_ID, RES_PK, RES_TYPE};
    let (links, resources) = (view.rows(hfj_res_link::TABLE), view.resources());
    let sources = match view {
        View::Live => format!("{links} l"),
        View::AsOf(_) | View::Sandbox { .. } => format!(
            "{resources} f JOIN {links} l ON l.{RES_PK} = f.{RES_PK}{}",
            view.same_version("l", "f")
        ),
    };
    format!(
        "SELECT DISTINCT t.{RES_PK} FROM {sources} \
         JOIN {resources} t ON t.{RES_TYPE} = l.{TARGET_TYPE} AND t.{RES_ID} = l.{TARGET_ID} AND NOT t.{DELETED} \
         WHERE l.{RES_PK} = ANY($1) AND l.{KIND} = 'local' \
         AND ($2::text IS NULL OR l.{SRC_TYPE} = $2) AND ($3::text IS NULL OR l.{SP_NAME} = $3) \
         AND ($4::text IS NULL OR l.{TARGET_TYPE} = $4)"
    )
}

/// `_revinclude`: resources whose local references point at `$1`, optionally of one source
/// type and parameter.
static REVERSE: LazyLock<String> = LazyLock::new(|| reverse_statement(View::Live));

/// `_revinclude` of `view`: in a past, the referring versions of then.
fn reverse_statement(view: View) -> String {
    use hfj_res_link::{KIND, SP_NAME, SRC_TYPE, TARGET_ID, TARGET_TYPE};
    use hfj_resource::{DELETED, RES_ID, RES_PK, RES_TYPE};
    let (links, resources) = (view.rows(hfj_res_link::TABLE), view.resources());
    format!(
        "SELECT DISTINCT s.{RES_PK} FROM {resources} t \
         JOIN {links} l ON l.{TARGET_TYPE} = t.{RES_TYPE} AND l.{TARGET_ID} = t.{RES_ID} \
         JOIN {resources} s ON s.{RES_PK} = l.{RES_PK}{} AND NOT s.{DELETED} \
         WHERE t.{RES_PK} = ANY($1) AND l.{KIND} = 'local' \
         AND ($2::text IS NULL OR l.{SRC_TYPE} = $2) AND ($3::text IS NULL OR l.{SP_NAME} = $3)",
        view.same_version("l", "s")
    )
}

/// The version of each `res_pk`'s resource at position `$2` from the event store, those
/// deleted by then left out.
static VERSIONS_AT: LazyLock<String> = LazyLock::new(|| {
    use hfj_resource::{RES_ID, RES_PK, RES_TYPE, TABLE};
    format!(
        "SELECT r.{RES_PK}, e.resource::text FROM {TABLE} r CROSS JOIN LATERAL ( \
             SELECT e.kind, e.resource FROM fhir_event e JOIN fhir_event_position p ON p.event_id = e.event_id \
             WHERE e.resource_type = r.{RES_TYPE} AND e.resource_id = r.{RES_ID} AND p.position <= $2 \
             ORDER BY e.version DESC LIMIT 1) e \
         WHERE r.{RES_PK} = ANY($1) AND e.kind <> 'ResourceDeleted'"
    )
});

static HISTORY_HORIZON: LazyLock<String> = LazyLock::new(|| {
    use fhir_search::schema::hfj_history_horizon::{POSITION, TABLE};
    format!("SELECT max({POSITION}) FROM {TABLE}")
});

/// Parameters that select by reference, for the CapabilityStatement's include lists.
pub fn reference_params(registry: &Registry, resource_type: &str) -> Vec<String> {
    let mut codes: Vec<String> = registry
        .params_for(resource_type)
        .filter(|param| param.kind == ParamType::Reference)
        .map(|param| param.code.clone())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}
