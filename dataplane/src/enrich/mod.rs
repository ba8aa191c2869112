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
pub mod source;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};

use crate::wire::{Fields, ResourceSpansView, TraceData};
use index::{Attr, PodAttrs, PodIndex, encode_string_attribute};

const SERVICE_NAME: &str = "service.name";
const UNKNOWN_SERVICE: &str = "unknown_service";
const KYMA_PREFIX: &str = "kyma.";
const POD_IP: &str = "k8s.pod.ip";
const POD_UID: &str = "k8s.pod.uid";
/// `Resource.attributes`.
const RESOURCE_ATTRIBUTES: u32 = 1;

/// Enriches requests from the current pod index.
#[derive(Debug, Default)]
pub struct Enricher {
    index: ArcSwap<PodIndex>,
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
        for rs in &mut data.resources {
            enrich_resource(rs, &index, peer);
        }
    }
}

// === free functions ===

fn is_unknown_service(value: &str) -> bool {
    value == UNKNOWN_SERVICE || value.strip_prefix("unknown_service:").is_some_and(|rest| !rest.is_empty())
}

/// Reads the attributes of an encoded `Resource`.
fn existing_attributes(resource: &[u8]) -> Vec<Existing<'_>> {
    let mut out = Vec::new();
    let mut fields = Fields::new(resource);
    while let Ok(Some(f)) = fields.next_field() {
        if f.number != RESOURCE_ATTRIBUTES || f.wire != crate::wire::WIRE_LEN {
            continue;
        }
        let kv = &resource[f.value_start..f.end];
        let (mut key, mut string, mut has_value) = ("", None, false);
        let mut kv_fields = Fields::new(kv);
        while let Ok(Some(g)) = kv_fields.next_field() {
            match (g.number, g.wire) {
                (1, crate::wire::WIRE_LEN) => {
                    key = std::str::from_utf8(&kv[g.value_start..g.end]).unwrap_or_default()
                }
                (2, crate::wire::WIRE_LEN) => {
                    let any = &kv[g.value_start..g.end];
                    let mut any_fields = Fields::new(any);
                    while let Ok(Some(h)) = any_fields.next_field() {
                        has_value = true;
                        string = (h.number == 1 && h.wire == crate::wire::WIRE_LEN)
                            .then(|| std::str::from_utf8(&any[h.value_start..h.end]).unwrap_or_default());
                    }
                }
                _ => {}
            }
        }
        out.push(Existing {
            key,
            string,
            empty: !has_value || string == Some(""),
            start: f.start,
            end: f.end,
        });
    }
    out
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

fn enrich_resource(rs: &mut ResourceSpansView, index: &PodIndex, peer: Option<IpAddr>) {
    let resource = rs.resource.clone();
    let existing = existing_attributes(&resource);
    let pod = associate(&existing, index, peer);
    let has =
        |key: &str| existing.iter().any(|e| e.key == key && !e.empty && !e.key.starts_with(KYMA_PREFIX));
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
            .find(|e| e.key == key && !e.empty)
            .and_then(|e| e.string)
            .or_else(|| added.iter().find(|a| a.key == key).map(|a| a.value))
    };
    let current_service = existing.iter().rev().find(|e| e.key == SERVICE_NAME);
    let keep_service =
        current_service.and_then(|e| e.string).is_some_and(|s| !s.is_empty() && !is_unknown_service(s))
            || current_service.is_some_and(|e| e.string.is_none() && !e.empty);
    let new_service: Option<String> = if keep_service {
        None
    } else {
        let from_pod =
            pod.and_then(|p| p.app_name_label.as_deref().or(p.app_label.as_deref())).map(str::to_string);
        let from_workload = [
            "k8s.deployment.name",
            "k8s.daemonset.name",
            "k8s.statefulset.name",
            "k8s.job.name",
            "k8s.pod.name",
        ]
        .iter()
        .find_map(|k| effective(k).filter(|v| !v.is_empty()).map(str::to_string));
        match from_pod.or(from_workload) {
            Some(name) => Some(name),
            None => match current_service.and_then(|e| e.string) {
                Some(s) if is_unknown_service(s) && s != UNKNOWN_SERVICE => None,
                _ => Some(UNKNOWN_SERVICE.to_string()),
            },
        }
    };
    let replace_service = new_service
        .as_deref()
        .is_some_and(|n| current_service.and_then(|e| e.string) != Some(n) || current_service.is_none());
    let new_service = new_service.filter(|_| replace_service);

    // Remove `kyma.*`, empty values we are about to fill, and a `service.name` we replace.
    let remove = |e: &Existing<'_>| {
        e.key.starts_with(KYMA_PREFIX)
            || (e.empty && added.iter().any(|a| a.key == e.key))
            || (e.key == SERVICE_NAME && new_service.is_some())
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
    if added.is_empty() && new_service.is_none() {
        return;
    }
    let service = new_service.map(|name| encode_string_attribute(SERVICE_NAME, &name));
    let len = added.iter().map(|a| a.encoded.len()).sum::<usize>() + service.as_ref().map_or(0, Bytes::len);
    let mut out = BytesMut::with_capacity(rs.added.len() + len);
    out.extend_from_slice(&rs.added);
    for a in &added {
        out.extend_from_slice(a.encoded);
    }
    if let Some(s) = &service {
        out.extend_from_slice(s);
    }
    rs.added = out.freeze();
    rs.has_resource = true;
}

#[cfg(test)]
mod tests;
