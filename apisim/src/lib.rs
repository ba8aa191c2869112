//! A Kubernetes API server **simulated** over HTTP on 127.0.0.1, for tests of kube-rs clients and
//! controllers on machines where no cluster can run. It is not Kubernetes: it keeps objects as JSON
//! in memory and implements the parts of the REST protocol that clients exercise:
//!
//! - LIST, GET and WATCH (newline-delimited events from a resource version, `ADDED`/`MODIFIED`/
//!   `DELETED` as objects enter, change in and leave a label or field selector), for every resource
//!   under `/api/v1` and `/apis/<group>/<version>`, namespaced or cluster-scoped;
//! - POST, PUT (with resource-version conflicts), DELETE, JSON merge PATCH, and server-side apply
//!   PATCH: the applied fields are merged into the object, fields the same field manager applied
//!   before and no longer applies are removed, lists are replaced whole;
//! - the `status` subresource: writes to it change only `status`, writes to the object never do;
//! - `metadata.uid`, `resourceVersion`, `generation` (bumped when anything but metadata and status
//!   changes) and `creationTimestamp`;
//! - finalizers: deleting an object that has `metadata.finalizers` only sets `deletionTimestamp`; the
//!   object goes when a write leaves it with none.
//!
//! Validation, admission, defaulting, ownership conflicts and garbage collection are not simulated.
//! Tests act as the rest of the cluster through [`ApiSim`] (a kubelet writing pod status, a user
//! editing an object), inspect every request that reached the server, and can inject failures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

/// A handle on the simulated server; clones share it.
#[derive(Clone, Debug)]
pub struct ApiSim {
    state: Arc<Mutex<State>>,
    /// Where the server listens.
    pub addr: SocketAddr,
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/apis/apps/v1/namespaces/kyma-system/daemonsets/telemetry-otlp-gateway`.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// `Content-Type`, for PATCH requests the patch type.
    pub content_type: String,
}

/// A failure to inject: requests whose method and path match get `code` instead of an answer.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Method to match, e.g. `GET`.
    pub method: String,
    /// Path prefix to match.
    pub path_prefix: String,
    /// Status code to answer.
    pub code: u16,
    /// How many requests to fail; `None` until cleared.
    pub times: Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    resource_version: u64,
    objects: HashMap<Key, Value>,
    /// Every change, for watches that start from an older resource version.
    events: Vec<Event>,
    watchers: Vec<Watcher>,
    /// The last configuration each field manager applied, per object and subresource.
    applied: HashMap<(Key, String, bool), Value>,
    requests: Vec<Recorded>,
    faults: Vec<Fault>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    /// `v1/pods`, `apps/v1/daemonsets`.
    resource: String,
    namespace: Option<String>,
    name: String,
}

#[derive(Clone, Debug)]
struct Event {
    resource_version: u64,
    resource: String,
    kind: &'static str,
    before: Option<Value>,
    after: Option<Value>,
}

#[derive(Debug)]
struct Watcher {
    resource: String,
    filter: Filter,
    tx: mpsc::UnboundedSender<Bytes>,
}

#[derive(Clone, Debug, Default)]
struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelTerm>,
    fields: Vec<(String, String, bool)>,
}

#[derive(Clone, Debug)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// The parsed path of a request.
#[derive(Debug)]
struct Target {
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

const WATCH_TIMEOUT_DEFAULT: Duration = Duration::from_secs(290);

// === impl ApiSim ===

impl ApiSim {
    /// Starts a server on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sim = Self { state: Arc::default(), addr };
        let server = sim.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sim = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let sim = sim.clone();
                        async move { Ok::<_, Infallible>(sim.handle(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(sim)
    }

    /// The base URL for a client, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig pointing at the server, for binaries that read `KUBECONFIG`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: '{}'}}\nusers:\n- name: u\n  user: {{token: simulated}}\ncontexts:\n- name: c\n  context: {{cluster: sim, user: u}}\ncurrent-context: c\n",
            self.url()
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates or replaces an object as another actor would (a user, a kubelet); watches see it.
    /// `apiVersion`, `kind` and `metadata.name` locate it; `metadata.namespace` makes it namespaced.
    pub fn put(&self, object: Value) -> Value {
        let key = key_of(&object);
        let mut state = self.lock();
        let before = state.objects.get(&key).cloned();
        let stored = state.store(&key, object, before.as_ref());
        state.publish(&key.resource, before, Some(stored.clone()));
        state.finish_deletion(&key);
        stored
    }

    /// The object, if it exists.
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let key = Key {
            resource: resource_of(api_version, kind),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        self.lock().objects.get(&key).cloned()
    }

    /// Every object of a kind.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let resource = resource_of(api_version, kind);
        let state = self.lock();
        let mut items: Vec<(&Key, &Value)> =
            state.objects.iter().filter(|(k, _)| k.resource == resource).collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        items.into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// Changes an object in place as another actor would; returns false if it does not exist.
    pub fn update(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> bool {
        let Some(mut object) = self.get(api_version, kind, namespace, name) else { return false };
        change(&mut object);
        self.put(object);
        true
    }

    /// Deletes an object as another actor would; returns whether it existed.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let key = Key {
            resource: resource_of(api_version, kind),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        let mut state = self.lock();
        state.delete(&key).is_some()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Requests that could change something (everything but GET).
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method != "GET").collect()
    }

    /// Ends every open watch, as an API server restart does; clients re-watch.
    pub fn close_watches(&self) {
        self.lock().watchers.clear();
    }

    /// Forgets the change history, so watches from an older resource version get `410 Gone`.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.events.clear();
        state.watchers.clear();
    }

    /// Fails matching requests from now on.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        {
            let mut state = self.lock();
            state.requests.push(Recorded {
                method: method.to_string(),
                path: path.clone(),
                query: query.clone(),
                content_type: content_type.clone(),
            });
            if let Some(code) = state.fault(method.as_str(), &path) {
                return status(code, "InternalError", "injected failure");
            }
        }
        let Some(target) = parse_path(&path) else {
            return status(404, "NotFound", &format!("no such path {path}"));
        };
        let params = parse_query(&query);
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return status(400, "BadRequest", "unreadable body"),
        };
        let body: Option<Value> = if body.is_empty() {
            None
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => Some(v),
                Err(e) => return status(400, "BadRequest", &format!("body is not JSON: {e}")),
            }
        };
        match (method, &target.name) {
            (Method::GET, None) if params.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                self.watch(&target, &params)
            }
            (Method::GET, None) => self.list_response(&target, &params),
            (Method::GET, Some(name)) => match self.lock().objects.get(&target.key(name)) {
                Some(o) => json_response(200, o),
                None => not_found(&target, name),
            },
            (Method::POST, None) => self.create(&target, body),
            (Method::PUT, Some(name)) => self.replace(&target, name, body),
            (Method::PATCH, Some(name)) => {
                let manager = params.get("fieldManager").cloned().unwrap_or_default();
                self.patch(&target, name, body, &content_type, &manager)
            }
            (Method::DELETE, Some(name)) => {
                let key = target.key(name);
                match self.lock().delete(&key) {
                    Some(answer) => json_response(200, &answer),
                    None => not_found(&target, name),
                }
            }
            _ => status(405, "MethodNotAllowed", "method not allowed"),
        }
    }

    fn list_response(&self, target: &Target, params: &HashMap<String, String>) -> Response<Body> {
        let filter = match Filter::from_params(target, params) {
            Ok(f) => f,
            Err(e) => return status(400, "BadRequest", &e),
        };
        let state = self.lock();
        let mut items: Vec<(&Key, &Value)> = state
            .objects
            .iter()
            .filter(|(k, v)| k.resource == target.resource && filter.matches(v))
            .collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        let items: Vec<Value> = items.into_iter().map(|(_, v)| v.clone()).collect();
        json_response(
            200,
            &json!({"apiVersion": "v1", "kind": "List",
                    "metadata": {"resourceVersion": state.resource_version.to_string()}, "items": items}),
        )
    }

    fn watch(&self, target: &Target, params: &HashMap<String, String>) -> Response<Body> {
        let filter = match Filter::from_params(target, params) {
            Ok(f) => f,
            Err(e) => return status(400, "BadRequest", &e),
        };
        let since: u64 = params.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let timeout = params
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .map_or(WATCH_TIMEOUT_DEFAULT, Duration::from_secs);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut state = self.lock();
            let oldest = state.events.first().map_or(state.resource_version + 1, |e| e.resource_version);
            if since > 0 && since + 1 < oldest && since < state.resource_version {
                let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": format!("too old resource version: {since}"), "reason": "Expired", "code": 410}});
                let _ = tx.send(line(&gone));
            } else {
                for event in state
                    .events
                    .iter()
                    .filter(|e| e.resource == target.resource && e.resource_version > since)
                {
                    if let Some(l) = filter.event_line(event) {
                        let _ = tx.send(l);
                    }
                }
                state.watchers.push(Watcher { resource: target.resource.clone(), filter, tx });
            }
        }
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
        });
        let limited = futures::StreamExt::take_until(frames, tokio::time::sleep(timeout));
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(limited)));
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        r
    }

    fn create(&self, target: &Target, body: Option<Value>) -> Response<Body> {
        let Some(mut object) = body else { return status(400, "BadRequest", "no body") };
        let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string) else {
            return status(422, "Invalid", "metadata.name: Required value");
        };
        if let Some(ns) = &target.namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        let key = target.key(&name);
        let mut state = self.lock();
        if state.objects.contains_key(&key) {
            return status(409, "AlreadyExists", &format!("{name} already exists"));
        }
        let stored = state.store(&key, object, None);
        state.publish(&key.resource, None, Some(stored.clone()));
        json_response(201, &stored)
    }

    fn replace(&self, target: &Target, name: &str, body: Option<Value>) -> Response<Body> {
        let Some(mut object) = body else { return status(400, "BadRequest", "no body") };
        let key = target.key(name);
        let mut state = self.lock();
        let Some(before) = state.objects.get(&key).cloned() else { return not_found(target, name) };
        let sent_version = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
        let live_version = before.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
        if !sent_version.is_empty() && sent_version != live_version {
            return status(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version",
            );
        }
        if target.status {
            let mut merged = before.clone();
            merged["status"] = object.get("status").cloned().unwrap_or(Value::Null);
            object = merged;
        } else if let Some(s) = before.get("status") {
            object["status"] = s.clone();
        }
        let stored = state.store(&key, object, Some(&before));
        state.publish(&key.resource, Some(before), Some(stored.clone()));
        state.finish_deletion(&key);
        json_response(200, &stored)
    }

    fn patch(
        &self,
        target: &Target,
        name: &str,
        body: Option<Value>,
        content_type: &str,
        manager: &str,
    ) -> Response<Body> {
        let Some(patch) = body else { return status(400, "BadRequest", "no body") };
        let key = target.key(name);
        let mut state = self.lock();
        let before = state.objects.get(&key).cloned();
        let apply = content_type.starts_with("application/apply-patch");
        if apply && manager.is_empty() {
            return status(422, "Invalid", "fieldManager is required for apply patch");
        }
        let mut object = match (&before, apply, target.status) {
            (Some(b), _, _) => b.clone(),
            (None, true, false) => {
                let mut o = json!({"apiVersion": patch["apiVersion"], "kind": patch["kind"], "metadata": {"name": name}});
                if let Some(ns) = &target.namespace {
                    o["metadata"]["namespace"] = json!(ns);
                }
                o
            }
            _ => return not_found(target, name),
        };
        // The part of the object this request may change.
        let scope = |v: &Value| -> Value {
            let mut v = v.clone();
            if let Value::Object(map) = &mut v {
                if target.status {
                    map.retain(|k, _| k == "status");
                } else {
                    map.remove("status");
                }
            }
            v
        };
        let patch = scope(&patch);
        if apply {
            let slot = (key.clone(), manager.to_string(), target.status);
            if let Some(previous) = state.applied.get(&slot) {
                prune(&mut object, previous, &patch);
            }
            merge(&mut object, &patch, true);
            state.applied.insert(slot, patch);
        } else {
            merge(&mut object, &patch, false);
        }
        if let Some(ns) = &target.namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        object["metadata"]["name"] = json!(name);
        let stored = state.store(&key, object, before.as_ref());
        state.publish(&key.resource, before, Some(stored.clone()));
        state.finish_deletion(&key);
        json_response(200, &stored)
    }
}

// === impl State ===

impl State {
    fn fault(&mut self, method: &str, path: &str) -> Option<u16> {
        let fault = self.faults.iter_mut().find(|f| {
            f.method == method && path.starts_with(&f.path_prefix) && f.times.is_none_or(|t| t > 0)
        })?;
        if let Some(t) = fault.times.as_mut() {
            *t -= 1;
        }
        Some(fault.code)
    }

    /// Stores `object` under `key`, filling in the metadata the server owns.
    fn store(&mut self, key: &Key, mut object: Value, before: Option<&Value>) -> Value {
        self.resource_version += 1;
        let generation = match before {
            None => 1,
            Some(b) => {
                let old = b.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                if content(b) != content(&object) { old + 1 } else { old }
            }
        };
        if !object.get("metadata").is_some_and(Value::is_object) {
            object["metadata"] = json!({});
        }
        let meta = &mut object["metadata"];
        meta["name"] = json!(key.name);
        if let Some(ns) = &key.namespace {
            meta["namespace"] = json!(ns);
        }
        meta["resourceVersion"] = json!(self.resource_version.to_string());
        meta["generation"] = json!(generation);
        let carried = |field: &str| before.and_then(|b| b.pointer(&format!("/metadata/{field}")).cloned());
        for field in ["uid", "creationTimestamp", "deletionTimestamp"] {
            if let Some(v) = carried(field) {
                meta[field] = v;
            }
        }
        if meta.get("uid").is_none_or(Value::is_null) {
            meta["uid"] = json!(format!("uid-{:08}", self.resource_version));
        }
        if meta.get("creationTimestamp").is_none_or(Value::is_null) {
            meta["creationTimestamp"] = json!(now_rfc3339());
        }
        self.objects.insert(key.clone(), object.clone());
        object
    }

    /// Deletes an object, or only marks it deleted while it has finalizers; returns what the API
    /// server answers (the object as it was, or as marked), `None` when it does not exist.
    fn delete(&mut self, key: &Key) -> Option<Value> {
        let before = self.objects.get(key)?.clone();
        let finalizers = before.pointer("/metadata/finalizers").and_then(Value::as_array);
        if finalizers.is_some_and(|f| !f.is_empty()) {
            if before.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
                return Some(before);
            }
            let mut marked = before.clone();
            marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let stored = self.store(key, marked, Some(&before));
            self.publish(&key.resource, Some(before), Some(stored.clone()));
            return Some(stored);
        }
        self.objects.remove(key);
        self.applied.retain(|(k, _, _), _| k != key);
        self.publish(&key.resource, Some(before.clone()), None);
        Some(before)
    }

    /// Removes an object marked deleted once a write has left it without finalizers.
    fn finish_deletion(&mut self, key: &Key) {
        let Some(object) = self.objects.get(key) else { return };
        let marked = object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null());
        let pending =
            object.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        if marked && !pending {
            self.delete(key);
        }
    }

    /// Records a change and sends it to the watches it concerns.
    fn publish(&mut self, resource: &str, before: Option<Value>, after: Option<Value>) {
        let kind = match (&before, &after) {
            (None, _) => "ADDED",
            (Some(_), Some(_)) => "MODIFIED",
            (Some(_), None) => "DELETED",
        };
        if after.is_none() {
            self.resource_version += 1;
        }
        let event = Event {
            resource_version: self.resource_version,
            resource: resource.to_string(),
            kind,
            before,
            after,
        };
        self.watchers.retain(|w| {
            if w.resource != event.resource {
                return !w.tx.is_closed();
            }
            match w.filter.event_line(&event) {
                Some(l) => w.tx.send(l).is_ok(),
                None => !w.tx.is_closed(),
            }
        });
        self.events.push(event);
    }
}

// === impl Target ===

impl Target {
    fn key(&self, name: &str) -> Key {
        Key { resource: self.resource.clone(), namespace: self.namespace.clone(), name: name.to_string() }
    }
}

// === impl Filter ===

impl Filter {
    fn from_params(target: &Target, params: &HashMap<String, String>) -> Result<Self, String> {
        let mut filter = Filter { namespace: target.namespace.clone(), ..Filter::default() };
        if let Some(selector) = params.get("labelSelector").filter(|s| !s.is_empty()) {
            for term in selector.split(',') {
                let term = term.trim();
                filter.labels.push(if let Some((k, v)) = term.split_once("!=") {
                    LabelTerm::NotEquals(k.into(), v.into())
                } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                    LabelTerm::Equals(k.into(), v.into())
                } else if let Some(k) = term.strip_prefix('!') {
                    LabelTerm::Absent(k.into())
                } else if term.contains([' ', '(']) {
                    return Err(format!("set-based selectors are not simulated: {term}"));
                } else {
                    LabelTerm::Exists(term.into())
                });
            }
        }
        if let Some(selector) = params.get("fieldSelector").filter(|s| !s.is_empty()) {
            for term in selector.split(',') {
                let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
                    (f, v, false)
                } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                    (f, v, true)
                } else {
                    return Err(format!("invalid field selector {term}"));
                };
                filter.fields.push((field.trim().into(), value.trim().into(), equal));
            }
        }
        Ok(filter)
    }

    fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && object.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        let labels = object.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|t| match t {
            LabelTerm::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelTerm::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelTerm::Exists(k) => label(k).is_some(),
            LabelTerm::Absent(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(field, value, equal)| {
                let pointer = format!("/{}", field.replace('.', "/"));
                let actual = object.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
                (actual == value) == *equal
            })
    }

    /// The watch line for an event as this watch sees it, if it sees it at all.
    fn event_line(&self, event: &Event) -> Option<Bytes> {
        let was = event.before.as_ref().is_some_and(|o| self.matches(o));
        let is = event.after.as_ref().is_some_and(|o| self.matches(o));
        let (kind, object) = match (was, is) {
            (false, true) if event.kind == "MODIFIED" => ("ADDED", event.after.as_ref()),
            (true, false) if event.kind == "MODIFIED" => ("DELETED", event.after.as_ref()),
            (_, true) => (event.kind, event.after.as_ref()),
            (true, false) => ("DELETED", event.before.as_ref()),
            (false, false) => return None,
        };
        let mut object = object?.clone();
        if event.kind == "DELETED" || kind == "DELETED" {
            object["metadata"]["resourceVersion"] = json!(event.resource_version.to_string());
        }
        Some(line(&json!({"type": kind, "object": object})))
    }
}

// === free functions ===

/// `v1/pods` for `v1`/`Pod`, `apps/v1/daemonsets` for `apps/v1`/`DaemonSet`.
fn resource_of(api_version: &str, kind: &str) -> String {
    let lower = kind.to_lowercase();
    let plural = if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    format!("{api_version}/{plural}")
}

fn key_of(object: &Value) -> Key {
    let s = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    Key {
        resource: resource_of(&s("/apiVersion"), &s("/kind")),
        namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
        name: s("/metadata/name"),
    }
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_string(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !plural.is_empty() => (Some((*ns).to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (plural, name, status) = match rest.as_slice() {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some((*name).to_string()), false),
        [plural, name, "status"] => (*plural, Some((*name).to_string()), true),
        _ => return None,
    };
    Some(Target { resource: format!("{group_version}/{plural}"), namespace, name, status })
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything but metadata and status: what `generation` follows.
fn content(object: &Value) -> Value {
    let mut v = object.clone();
    if let Value::Object(map) = &mut v {
        map.remove("metadata");
        map.remove("status");
    }
    v
}

/// Merges `patch` into `target`. A JSON merge patch (`apply == false`) deletes on `null`; apply
/// ignores `metadata` fields the server owns.
fn merge(target: &mut Value, patch: &Value, apply: bool) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if apply
                    && matches!(
                        k.as_str(),
                        "resourceVersion" | "uid" | "generation" | "creationTimestamp" | "managedFields"
                    )
                {
                    continue;
                }
                if v.is_null() && !apply {
                    t.remove(k);
                } else if let Some(existing) = t.get_mut(k).filter(|e| e.is_object() && v.is_object()) {
                    merge(existing, v, apply);
                } else {
                    t.insert(k.clone(), strip_nulls(v));
                }
            }
        }
        (t, p) => *t = strip_nulls(p),
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect(),
        ),
        other => other.clone(),
    }
}

/// Removes from `target` the fields `previous` applied that `next` no longer applies.
fn prune(target: &mut Value, previous: &Value, next: &Value) {
    let (Value::Object(t), Value::Object(prev)) = (target, previous) else { return };
    let empty = Map::new();
    let next = next.as_object().unwrap_or(&empty);
    for (k, pv) in prev {
        if k == "metadata" {
            if let (Some(tm), Some(nm)) = (t.get_mut(k), next.get(k)) {
                prune(tm, pv, nm);
            }
            continue;
        }
        match next.get(k) {
            None => {
                t.remove(k);
            }
            Some(nv) if pv.is_object() && nv.is_object() => {
                if let Some(tv) = t.get_mut(k) {
                    prune(tv, pv, nv);
                }
            }
            Some(_) => {}
        }
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

fn not_found(target: &Target, name: &str) -> Response<Body> {
    status(404, "NotFound", &format!("{} \"{name}\" not found", target.resource))
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_path("/api/v1/namespaces/kube-system").unwrap();
        assert_eq!(
            (t.resource.as_str(), t.namespace, t.name.as_deref()),
            ("v1/namespaces", None, Some("kube-system"))
        );
        let t = parse_path("/apis/apps/v1/namespaces/ns/daemonsets/gw").unwrap();
        assert_eq!(
            (t.resource.as_str(), t.namespace.as_deref(), t.name.as_deref()),
            ("apps/v1/daemonsets", Some("ns"), Some("gw"))
        );
        let t = parse_path("/apis/telemetry.kyma-project.io/v1beta1/tracepipelines/p/status").unwrap();
        assert!(t.status && t.namespace.is_none());
        assert_eq!(
            resource_of("networking.k8s.io/v1", "NetworkPolicy"),
            "networking.k8s.io/v1/networkpolicies"
        );
        assert_eq!(decode("spec.nodeName%3Dnode-1"), "spec.nodeName=node-1");
    }

    /// Scenario: a field manager applies, then applies again without one field.
    /// Guarantees: the dropped field is removed, others' fields stay, lists are replaced.
    #[test]
    fn apply_prunes_what_the_manager_dropped() {
        let mut live = json!({"spec": {"a": 1, "b": 2, "list": [1, 2]}, "metadata": {"labels": {"x": "1"}}});
        let first = json!({"spec": {"a": 1, "b": 2, "list": [1, 2]}});
        let second = json!({"spec": {"a": 3, "list": [9]}});
        prune(&mut live, &first, &second);
        merge(&mut live, &second, true);
        assert_eq!(live, json!({"spec": {"a": 3, "list": [9]}, "metadata": {"labels": {"x": "1"}}}));
    }

    /// Scenario: an object with a finalizer is deleted, edited, then its finalizer is removed.
    /// Guarantees: the delete only marks it (`deletionTimestamp`, kept across edits); it goes when
    /// the last finalizer does; an object without finalizers goes at once.
    #[test]
    fn finalizers_hold_a_deletion() {
        let mut state = State::default();
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n", "finalizers": ["example.com/f"]}});
        let key = key_of(&object);
        state.store(&key, object, None);
        let marked = state.delete(&key).unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        let mut edited = marked.clone();
        edited["metadata"]["deletionTimestamp"] = Value::Null;
        edited["data"] = json!({"k": "v"});
        let stored = state.store(&key, edited, Some(&marked));
        assert_eq!(stored["metadata"]["deletionTimestamp"], marked["metadata"]["deletionTimestamp"]);
        state.finish_deletion(&key);
        assert!(state.objects.contains_key(&key));
        let mut released = stored.clone();
        released["metadata"]["finalizers"] = json!([]);
        state.store(&key, released, Some(&stored));
        state.finish_deletion(&key);
        assert!(!state.objects.contains_key(&key));

        let plain =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "namespace": "n"}});
        let key = key_of(&plain);
        state.store(&key, plain, None);
        assert!(state.delete(&key).is_some() && !state.objects.contains_key(&key));
    }
}
