//! Kubernetes enrichment of resources, on encoded bytes, once per request before the fan-out to pipelines
//! (Kyma runs it before any batching, which would lose the sender's address).
//!
//! For each resource: find the sending pod (resource attribute `k8s.pod.ip`, else `k8s.pod.uid`, else
//! the connection's peer address; the first of those that is present decides, as in the Collector),
//! add the pod's precomputed attributes and the cluster's where the resource has no non-empty value,
//! resolve `service.name` with Kyma's legacy rules, and drop `kyma.*` attributes. Adding appends
//! encoded fields; only a resource that loses an attribute is copied.

pub mod index;
pub mod kube;
pub mod pods;
pub mod settings;
pub mod source;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};

use crate::wire::view::{Attributes, field};
use crate::wire::{ResourceSpansView, TraceData};
use index::{Attr, OtelService, PodAttrs, PodIndex, encode_string_attribute};

const SERVICE_NAME: &str = "service.name";
const UNKNOWN_SERVICE: &str = "unknown_service";
const KYMA_PREFIX: &str = "kyma.";
const POD_IP: &str = "k8s.pod.ip";
const POD_UID: &str = "k8s.pod.uid";

/// How `service.*` attributes are resolved: Kyma's two modes (Telemetry CR annotation
/// `telemetry.kyma-project.io/service-enrichment`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceMode {
    /// Keep a real `service.name`; else label `app.kubernetes.io/name`, label `app`, the workload,
    /// the pod; else keep `unknown_service:<x>` or set `unknown_service`. Kyma's default in code.
    #[default]
    KymaLegacy,
    /// Drop Istio's `service.*` on resources with proxy spans and any `unknown_service*`; then the
    /// OpenTelemetry conventions for Kubernetes, the `resource.opentelemetry.io/*` annotations winning.
    Otel,
}

/// Enriches requests from the current pod index.
#[derive(Debug, Default)]
pub struct Enricher {
    index: ArcSwap<PodIndex>,
    /// The service mode, switchable at runtime by the control plane: `true` is `otel`.
    otel: AtomicBool,
}

/// One attribute already on a resource.
#[derive(Clone, Copy, Debug)]
struct Existing<'a> {
    key: &'a str,
    /// The string value; `None` for other types.
    string: Option<&'a str>,
    /// Whether the value is missing or an empty string.
    empty: bool,
    start: usize,
    end: usize,
}

// === impl Enricher ===

impl Enricher {
    /// An enricher with an empty index.
    pub fn new(mode: ServiceMode) -> Self {
        Self { index: ArcSwap::default(), otel: AtomicBool::new(mode == ServiceMode::Otel) }
    }

    /// Switches the service mode; requests enriched from now on use it.
    pub fn set_mode(&self, mode: ServiceMode) {
        self.otel.store(mode == ServiceMode::Otel, Ordering::Relaxed);
    }

    /// The service mode in force.
    pub fn mode(&self) -> ServiceMode {
        if self.otel.load(Ordering::Relaxed) { ServiceMode::Otel } else { ServiceMode::KymaLegacy }
    }

    /// Publishes a new index; readers switch on their next request.
    pub fn publish(&self, index: PodIndex) {
        self.index.store(Arc::new(index));
    }

    /// The index in force.
    pub fn index(&self) -> Arc<PodIndex> {
        self.index.load_full()
    }

    /// Enriches every resource of a request sent from `peer`.
    pub fn enrich(&self, data: &mut TraceData, peer: Option<IpAddr>) {
        let index = self.index.load();
        let mode = self.mode();
        let proxies_possible = !data.no_component_key;
        for rs in &mut data.resources {
            enrich_resource(rs, &index, peer, mode, proxies_possible);
        }
    }
}

// === free functions ===

fn is_unknown_service(value: &str) -> bool {
    value == UNKNOWN_SERVICE || value.strip_prefix("unknown_service:").is_some_and(|rest| !rest.is_empty())
}

/// Reads the attributes of an encoded `Resource`.
fn existing_attributes(resource: &[u8]) -> Vec<Existing<'_>> {
    Attributes::new(resource, field::resource::ATTRIBUTES)
        .map(|a| Existing {
            key: a.kv.key,
            string: a.kv.value.as_str(),
            empty: a.kv.value.is_unset(),
            start: a.start,
            end: a.end,
        })
        .collect()
}

/// The pod a resource came from, in Kyma's association order. The first source that is present
/// decides, even when it matches no pod (or is not a string): the Collector does not fall back.
fn associate<'a>(
    existing: &[Existing<'_>],
    index: &'a PodIndex,
    peer: Option<IpAddr>,
) -> Option<&'a Arc<PodAttrs>> {
    let find = |key: &str| existing.iter().rev().find(|e| e.key == key && !e.empty);
    if let Some(ip) = find(POD_IP) {
        return ip.string.and_then(|s| s.parse().ok()).and_then(|ip| index.by_ip(&ip));
    }
    if let Some(uid) = find(POD_UID) {
        return uid.string.and_then(|u| index.by_uid(u));
    }
    peer.and_then(|ip| index.by_ip(&ip))
}

/// `proxies_possible` is false when the request has no `component` key, so no proxy span to look for.
fn enrich_resource(
    rs: &mut ResourceSpansView,
    index: &PodIndex,
    peer: Option<IpAddr>,
    mode: ServiceMode,
    proxies_possible: bool,
) {
    let otel = mode == ServiceMode::Otel;
    let proxy = otel && proxies_possible && crate::process::noise::has_proxy_span(rs);
    let resource = rs.resource.clone();
    let existing = existing_attributes(&resource);
    let pod = associate(&existing, index, peer);
    // `otel` mode first drops Istio's service.* (on resources with proxy spans) and SDK defaults.
    let dropped_first = |e: &Existing<'_>| {
        otel && ((proxy && e.key.starts_with("service."))
            || (e.key == SERVICE_NAME && e.string.is_some_and(|s| s.starts_with(UNKNOWN_SERVICE))))
    };
    let alive = |e: &Existing<'_>| !e.empty && !e.key.starts_with(KYMA_PREFIX) && !dropped_first(e);
    let has = |key: &str| existing.iter().any(|e| e.key == key && alive(e));
    let mut added: Vec<Attr<'_>> = Vec::new();
    let candidates = pod.map(|p| p.attrs.iter()).into_iter().flatten().chain(index.cluster.iter());
    for attr in candidates {
        if !has(attr.key) && !added.iter().any(|a| a.key == attr.key) {
            added.push(attr);
        }
    }
    // Effective value of a key after enrichment: the resource's own non-empty string, else what we add.
    let effective = |key: &str| -> Option<&str> {
        existing
            .iter()
            .rev()
            .find(|e| e.key == key && alive(e))
            .and_then(|e| e.string)
            .or_else(|| added.iter().find(|a| a.key == key).map(|a| a.value))
    };
    let services: Vec<(&str, String)> = match mode {
        ServiceMode::KymaLegacy => {
            legacy_service_name(&existing, pod, &effective).map(|n| vec![(SERVICE_NAME, n)])
        }
        ServiceMode::Otel => pod.map(|p| otel_services(&p.otel, &has, &effective)),
    }
    .unwrap_or_default();

    // Remove `kyma.*`, what `otel` mode drops, empty values we fill, and service attributes we set.
    let remove = |e: &Existing<'_>| {
        e.key.starts_with(KYMA_PREFIX)
            || dropped_first(e)
            || (e.empty && added.iter().any(|a| a.key == e.key))
            || services.iter().any(|(k, _)| *k == e.key)
    };
    if existing.iter().any(remove) {
        let mut kept = BytesMut::with_capacity(resource.len());
        let mut pos = 0;
        for e in existing.iter().filter(|e| remove(e)) {
            kept.extend_from_slice(&resource[pos..e.start]);
            pos = e.end;
        }
        kept.extend_from_slice(&resource[pos..]);
        rs.resource = kept.freeze();
    }
    if added.is_empty() && services.is_empty() {
        return;
    }
    let services: Vec<Bytes> = services.iter().map(|(k, v)| encode_string_attribute(k, v)).collect();
    let len =
        added.iter().map(|a| a.encoded.len()).sum::<usize>() + services.iter().map(Bytes::len).sum::<usize>();
    let mut out = BytesMut::with_capacity(rs.added.len() + len);
    out.extend_from_slice(&rs.added);
    for a in &added {
        out.extend_from_slice(a.encoded);
    }
    for s in &services {
        out.extend_from_slice(s);
    }
    rs.added = out.freeze();
    rs.has_resource = true;
}

/// Kyma's legacy `service_enrichment`: the new `service.name`, or `None` to leave it as it is.
fn legacy_service_name<'a>(
    existing: &[Existing<'_>],
    pod: Option<&Arc<PodAttrs>>,
    effective: &impl Fn(&str) -> Option<&'a str>,
) -> Option<String> {
    let current = existing.iter().rev().find(|e| e.key == SERVICE_NAME);
    let keep = current.and_then(|e| e.string).is_some_and(|s| !s.is_empty() && !is_unknown_service(s))
        || current.is_some_and(|e| e.string.is_none() && !e.empty);
    if keep {
        return None;
    }
    let from_pod =
        pod.and_then(|p| p.app_name_label.as_deref().or(p.app_label.as_deref())).map(str::to_string);
    let from_workload =
        ["k8s.deployment.name", "k8s.daemonset.name", "k8s.statefulset.name", "k8s.job.name", "k8s.pod.name"]
            .iter()
            .find_map(|k| effective(k).filter(|v| !v.is_empty()).map(str::to_string));
    let name = match from_pod.or(from_workload) {
        Some(name) => name,
        None => match current.and_then(|e| e.string) {
            Some(s) if is_unknown_service(s) && s != UNKNOWN_SERVICE => return None,
            _ => UNKNOWN_SERVICE.to_string(),
        },
    };
    // Setting the value it already has changes nothing.
    (current.and_then(|e| e.string) != Some(name.as_str()) || current.is_none()).then_some(name)
}

/// `otel` mode: the service attributes to set. Annotations overwrite (Kyma's
/// `restore-otel-service-attrs`); everything else only fills what the sender left unset.
fn otel_services<'a>(
    otel: &OtelService,
    has: &impl Fn(&str) -> bool,
    effective: &impl Fn(&str) -> Option<&'a str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut set = |key: &'static str, forced: Option<&str>, derived: Option<String>| {
        if let Some(v) = forced {
            out.push((key, v.to_string()));
        } else if !has(key)
            && let Some(v) = derived
        {
            out.push((key, v));
        }
    };
    set(SERVICE_NAME, otel.name_annotation.as_deref(), otel.name.as_deref().map(str::to_string));
    set(
        "service.version",
        otel.version_annotation.as_deref(),
        otel.version_label.as_deref().map(str::to_string),
    );
    set("service.namespace", None, otel.namespace.as_deref().map(str::to_string));
    let instance = otel.instance_annotation.as_deref().map(str::to_string).or_else(|| {
        let container = effective("k8s.container.name")?;
        otel.instance_prefix.as_deref().map(|p| format!("{p}.{container}"))
    });
    set("service.instance.id", None, instance);
    out
}

#[cfg(test)]
mod tests;
