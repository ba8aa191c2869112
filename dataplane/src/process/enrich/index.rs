//! The node-local pod index. One writer ([`PodStore`]) applies changes and publishes immutable
//! [`PodIndex`] snapshots; readers load the current one through `arc-swap` and never take a lock, so
//! any rate of updates leaves the receive path alone.
//!
//! Each pod's resource attributes are computed and encoded once, when the pod changes, so enriching a
//! resource appends ready bytes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::pods::{ClusterMeta, NodeMeta, PodMeta};
use crate::wire::{put_len_header, read_varint};

/// The label a Deployment's ReplicaSet puts on its pods.
const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Kyma keeps a deleted pod resolvable for this long, so late spans still find it.
pub const DEFAULT_DELETE_GRACE: Duration = Duration::from_secs(120);

/// String attributes encoded back to back as `Resource.attributes` fields in one buffer: one
/// allocation per pod. Keys and values are found by walking the buffer, which is cheap (a lookup per
/// resource, not per span) and spares each pod a vector of offsets, 24 bytes per attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrSet {
    encoded: Bytes,
}

/// One attribute of an [`AttrSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Key.
    pub key: &'a str,
    /// String value.
    pub value: &'a str,
    /// The whole encoded `Resource.attributes` field.
    pub encoded: &'a [u8],
}

/// Builds an [`AttrSet`].
#[derive(Debug, Default)]
pub struct AttrSetBuilder {
    buf: BytesMut,
}

/// What one pod adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodAttrs {
    /// Pod, workload, node and label attributes, in the order they are added.
    pub attrs: AttrSet,
    /// Pod label `app.kubernetes.io/name`, first `service.name` candidate in legacy mode.
    pub app_name_label: Option<Box<str>>,
    /// Pod label `app`, second candidate.
    pub app_label: Option<Box<str>>,
    /// The service attributes the OpenTelemetry conventions derive for this pod (`otel` mode).
    pub otel: OtelService,
}

/// Service attributes per the OpenTelemetry semantic conventions for Kubernetes. The
/// `resource.opentelemetry.io/*` annotations are kept apart because Kyma lets them overwrite what the
/// sender set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelService {
    /// Annotation `resource.opentelemetry.io/service.name`.
    pub name_annotation: Option<Box<str>>,
    /// Label `app.kubernetes.io/instance`, else `app.kubernetes.io/name`, else the workload's name
    /// (Deployment, ReplicaSet, StatefulSet, DaemonSet, CronJob, Job), else the pod's.
    pub name: Option<Box<str>>,
    /// Annotation `resource.opentelemetry.io/service.version`.
    pub version_annotation: Option<Box<str>>,
    /// Label `app.kubernetes.io/version`.
    pub version_label: Option<Box<str>>,
    /// Annotation `resource.opentelemetry.io/service.namespace`, else the pod's namespace.
    pub namespace: Option<Box<str>>,
    /// Annotation `resource.opentelemetry.io/service.instance.id`.
    pub instance_annotation: Option<Box<str>>,
    /// `<namespace>.<pod>`, completed with `.<container>` when the resource names its container.
    pub instance_prefix: Option<Box<str>>,
}

/// Which pod labels become `k8s.pod.label.<key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRule {
    /// Exactly this key.
    Key(String),
    /// Every key with this prefix.
    Prefix(String),
}

/// Settings that shape the attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexConfig {
    /// Only pods on this node are indexed; `None` indexes all (local files).
    pub node_name: Option<String>,
    /// Pod labels to copy.
    pub pod_labels: Vec<LabelRule>,
    /// `k8s.cluster.name` when configured; else `KUBERNETES_SERVICE_HOST`.
    pub cluster_name: Option<String>,
    /// How long a deleted pod stays resolvable.
    pub delete_grace: Duration,
}

/// An immutable snapshot readers use.
#[derive(Clone, Debug, Default)]
pub struct PodIndex {
    by_ip: HashMap<IpAddr, Arc<PodAttrs>>,
    by_uid: HashMap<Arc<str>, Arc<PodAttrs>>,
    /// Cluster-wide attributes, added to every resource.
    pub cluster: AttrSet,
    /// Pods indexed.
    pub pods: usize,
}

/// The single writer.
#[derive(Debug)]
pub struct PodStore {
    config: IndexConfig,
    /// Boxed: a hash table keeps its entries inline in buckets it allocates ahead of need, and a
    /// stored pod is 248 bytes; a pointer per empty bucket costs less.
    pods: HashMap<Arc<str>, Box<StoredPod>>,
    node: Option<NodeMeta>,
    cluster: ClusterMeta,
}

#[derive(Debug)]
struct StoredPod {
    meta: PodMeta,
    attrs: Arc<PodAttrs>,
    deleted_at: Option<Instant>,
}

// === impl AttrSet ===

impl AttrSet {
    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The attributes in order.
    pub fn iter(&self) -> impl Iterator<Item = Attr<'_>> + '_ {
        let buf = &self.encoded[..];
        let mut pos = 0;
        // The buffer was written by [`AttrSetBuilder::push`]: each field is a `KeyValue` holding its
        // key, then an `AnyValue` holding a string, all from `&str`s, so the walk cannot go astray and
        // the texts are UTF-8.
        std::iter::from_fn(move || {
            let start = pos;
            let kv = len_field(buf, &mut pos)?;
            let mut at = 0;
            let key = len_field(kv, &mut at)?;
            let any = len_field(kv, &mut at)?;
            let value = len_field(any, &mut 0)?;
            let text = |b| std::str::from_utf8(b).unwrap_or_default();
            Some(Attr { key: text(key), value: text(value), encoded: &buf[start..pos] })
        })
    }

    /// The `i`-th attribute.
    pub fn get(&self, i: usize) -> Option<Attr<'_>> {
        self.iter().nth(i)
    }
}

// === impl AttrSetBuilder ===

impl AttrSetBuilder {
    /// Appends `key = value`; empty values are skipped, as Kubernetes never sets them.
    pub fn push(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        put_string_attribute(&mut self.buf, key, value);
    }

    /// The finished set, its buffer sized to fit.
    pub fn build(self) -> AttrSet {
        AttrSet { encoded: Bytes::copy_from_slice(&self.buf) }
    }
}

// === impl LabelRule ===

impl LabelRule {
    /// Whether a label key is copied.
    pub fn matches(&self, key: &str) -> bool {
        match self {
            Self::Key(k) => key == k,
            Self::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

// === impl IndexConfig ===

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            node_name: None,
            pod_labels: Vec::new(),
            cluster_name: None,
            delete_grace: DEFAULT_DELETE_GRACE,
        }
    }
}

// === impl PodIndex ===

impl PodIndex {
    /// The pod using this IP.
    pub fn by_ip(&self, ip: &IpAddr) -> Option<&Arc<PodAttrs>> {
        self.by_ip.get(ip)
    }

    /// The pod with this UID.
    pub fn by_uid(&self, uid: &str) -> Option<&Arc<PodAttrs>> {
        self.by_uid.get(uid)
    }
}

// === impl PodStore ===

impl PodStore {
    /// An empty store.
    pub fn new(config: IndexConfig) -> Self {
        Self { config, pods: HashMap::new(), node: None, cluster: ClusterMeta::default() }
    }

    /// Adds or replaces a pod. Pods of other nodes are ignored.
    pub fn upsert(&mut self, meta: PodMeta) {
        if let Some(node) = &self.config.node_name
            && !meta.node_name.is_empty()
            && &meta.node_name != node
        {
            return;
        }
        let mut meta = meta;
        // Only labels that can become attributes are worth their memory.
        meta.labels.retain(|k| {
            matches!(
                k,
                "app.kubernetes.io/name"
                    | "app.kubernetes.io/instance"
                    | "app.kubernetes.io/version"
                    | "app"
                    | POD_TEMPLATE_HASH_LABEL
            ) || self.config.pod_labels.iter().any(|rule| rule.matches(k))
        });
        let attrs = Arc::new(self.pod_attrs(&meta));
        self.pods.insert(meta.uid.clone(), Box::new(StoredPod { meta, attrs, deleted_at: None }));
    }

    /// Marks a pod deleted; it stays resolvable for the grace period unless its IP is reused.
    pub fn delete(&mut self, uid: &str, now: Instant) {
        if let Some(p) = self.pods.get_mut(uid) {
            p.deleted_at.get_or_insert(now);
        }
    }

    /// Replaces the set of pods with `pods` (a full re-list): pods no longer listed are deleted.
    pub fn replace_all(&mut self, pods: Vec<PodMeta>, now: Instant) {
        let listed: std::collections::HashSet<Arc<str>> = pods.iter().map(|p| Arc::clone(&p.uid)).collect();
        let gone: Vec<Arc<str>> = self.pods.keys().filter(|uid| !listed.contains(*uid)).cloned().collect();
        for uid in gone {
            self.delete(&uid, now);
        }
        for pod in pods {
            self.upsert(pod);
        }
    }

    /// Sets the node whose labels become attributes; recomputes every pod.
    pub fn set_node(&mut self, node: Option<NodeMeta>) {
        if self.node != node {
            self.node = node;
            self.recompute();
        }
    }

    /// Sets the cluster facts.
    pub fn set_cluster(&mut self, cluster: ClusterMeta) {
        self.cluster = cluster;
    }

    /// The settings in force.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Replaces the settings and recomputes every pod. Returns whether the pod label rules changed:
    /// labels the old rules did not keep are gone, so the caller must list the pods again.
    pub fn reconfigure(&mut self, config: IndexConfig) -> bool {
        if config == self.config {
            return false;
        }
        let relist = config.pod_labels != self.config.pod_labels;
        self.config = config;
        self.recompute();
        relist
    }

    /// Forgets pods deleted longer than the grace period ago; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let grace = self.config.delete_grace;
        let before = self.pods.len();
        self.pods.retain(|_, p| p.deleted_at.is_none_or(|at| now.duration_since(at) < grace));
        before - self.pods.len()
    }

    fn recompute(&mut self) {
        let metas: Vec<PodMeta> = self.pods.values().map(|p| p.meta.clone()).collect();
        for meta in metas {
            let attrs = Arc::new(self.pod_attrs(&meta));
            if let Some(p) = self.pods.get_mut(&meta.uid) {
                p.attrs = attrs;
            }
        }
    }

    /// Builds the snapshot readers use. When pods share an IP, a live pod beats a deleted one and the
    /// newer start time wins; `hostNetwork` pods are indexed by UID only.
    pub fn snapshot(&self) -> PodIndex {
        let mut by_ip: HashMap<IpAddr, (&StoredPod, Arc<PodAttrs>)> = HashMap::new();
        let mut by_uid = HashMap::with_capacity(self.pods.len());
        for (uid, pod) in &self.pods {
            by_uid.insert(Arc::clone(uid), Arc::clone(&pod.attrs));
            if pod.meta.host_network {
                continue;
            }
            for ip in &pod.meta.ips {
                let replace = match by_ip.get(ip) {
                    None => true,
                    Some((current, _)) => newer(pod, current),
                };
                if replace {
                    by_ip.insert(*ip, (pod, Arc::clone(&pod.attrs)));
                }
            }
        }
        PodIndex {
            by_ip: by_ip.into_iter().map(|(ip, (_, a))| (ip, a)).collect(),
            by_uid,
            cluster: self.cluster_attrs(),
            pods: self.pods.len(),
        }
    }

    fn cluster_attrs(&self) -> AttrSet {
        let mut out = AttrSetBuilder::default();
        let name = self.config.cluster_name.clone().or_else(|| std::env::var("KUBERNETES_SERVICE_HOST").ok());
        out.push("k8s.cluster.name", name.as_deref().unwrap_or_default());
        out.push("k8s.cluster.uid", self.cluster.uid.as_deref().unwrap_or_default());
        out.push("cloud.provider", self.cluster.provider.as_deref().unwrap_or_default());
        out.build()
    }

    fn pod_attrs(&self, pod: &PodMeta) -> PodAttrs {
        let mut attrs = AttrSetBuilder::default();
        let mut push = |k: &str, v: &str| attrs.push(k, v);
        push("k8s.namespace.name", &pod.namespace);
        push("k8s.pod.name", &pod.name);
        push("k8s.pod.uid", &pod.uid);
        let node_name = if pod.node_name.is_empty() {
            self.node.as_ref().map_or("", |n| n.name.as_str())
        } else {
            &pod.node_name
        };
        push("k8s.node.name", node_name);
        let w = pod.workload();
        for (key, value) in [
            ("k8s.deployment.name", &w.deployment),
            ("k8s.statefulset.name", &w.statefulset),
            ("k8s.daemonset.name", &w.daemonset),
            ("k8s.job.name", &w.job),
            ("k8s.cronjob.name", &w.cronjob),
        ] {
            if let Some(v) = value {
                push(key, v);
            }
        }
        if let Some(node) = &self.node {
            for (label, key) in [
                ("topology.kubernetes.io/region", "cloud.region"),
                ("topology.kubernetes.io/zone", "cloud.availability_zone"),
                ("node.kubernetes.io/instance-type", "host.type"),
                ("kubernetes.io/arch", "host.arch"),
            ] {
                if let Some(v) = node.labels.get(label) {
                    push(key, v);
                }
            }
        }
        for (k, v) in
            pod.labels.iter().filter(|(k, _)| self.config.pod_labels.iter().any(|rule| rule.matches(k)))
        {
            push(&format!("k8s.pod.label.{k}"), v);
        }
        let text = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(Box::<str>::from);
        let annotation = |k: &str| text(pod.annotations.get(&format!("resource.opentelemetry.io/{k}")));
        let replicaset = match &pod.owner {
            Some((kind, name)) if kind == "ReplicaSet" => Some(name.clone()),
            _ => None,
        };
        let otel_name = [
            pod.labels.get("app.kubernetes.io/instance").map(str::to_string),
            pod.labels.get("app.kubernetes.io/name").map(str::to_string),
            w.deployment.clone(),
            replicaset,
            w.statefulset.clone(),
            w.daemonset.clone(),
            w.cronjob.clone(),
            w.job.clone(),
            Some(pod.name.clone()),
        ]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty());
        let otel = OtelService {
            name_annotation: annotation("service.name"),
            name: otel_name.map(Into::into),
            version_annotation: annotation("service.version"),
            version_label: text(pod.labels.get("app.kubernetes.io/version")),
            namespace: annotation("service.namespace").or_else(|| text(Some(&pod.namespace))),
            instance_annotation: annotation("service.instance.id"),
            instance_prefix: (!pod.namespace.is_empty() && !pod.name.is_empty())
                .then(|| format!("{}.{}", pod.namespace, pod.name).into()),
        };
        PodAttrs {
            attrs: attrs.build(),
            app_name_label: pod
                .labels
                .get("app.kubernetes.io/name")
                .filter(|v| !v.is_empty())
                .map(Into::into),
            app_label: pod.labels.get("app").filter(|v| !v.is_empty()).map(Into::into),
            otel,
        }
    }
}

// === free functions ===

/// Whether `a` should own a shared IP rather than `b`.
fn newer(a: &StoredPod, b: &StoredPod) -> bool {
    match (a.deleted_at.is_some() || a.meta.terminating, b.deleted_at.is_some() || b.meta.terminating) {
        (false, true) => true,
        (true, false) => false,
        // RFC 3339 timestamps of one format compare as strings.
        _ => a.meta.started > b.meta.started,
    }
}

/// Encodes a string attribute as a `Resource.attributes` field.
pub fn encode_string_attribute(key: &str, value: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(string_attribute_len(key, value));
    put_string_attribute(&mut out, key, value);
    out.freeze()
}

/// The encoded size of a string attribute as a `Resource.attributes` field.
fn string_attribute_len(key: &str, value: &str) -> usize {
    crate::wire::len_field_size(1, key_value_len(key, value))
}

/// The encoded size of a `KeyValue` with a string value.
fn key_value_len(key: &str, value: &str) -> usize {
    let any_value_len = crate::wire::len_field_size(1, value.len());
    crate::wire::len_field_size(1, key.len()) + crate::wire::len_field_size(2, any_value_len)
}

/// Appends a string attribute as a `Resource.attributes` field.
fn put_string_attribute(out: &mut BytesMut, key: &str, value: &str) {
    put_len_header(out, 1, key_value_len(key, value));
    put_len_header(out, 1, key.len());
    out.extend_from_slice(key.as_bytes());
    put_len_header(out, 2, crate::wire::len_field_size(1, value.len()));
    put_len_header(out, 1, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// The body of the length-delimited field at `*pos` (a one-byte key, then the length), moving past
/// it; `None` at the end of `buf`.
fn len_field<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    // Checked first: the end of a set is reached once per lookup, and a varint error allocates.
    if *pos >= buf.len() {
        return None;
    }
    let mut at = *pos + 1;
    let len = usize::try_from(read_varint(buf, &mut at).ok()?).ok()?;
    let body = buf.get(at..at.checked_add(len)?)?;
    *pos = at + len;
    Some(body)
}
