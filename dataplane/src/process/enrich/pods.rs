//! Pod, node and cluster metadata as the gateway keeps it: only the fields enrichment uses, parsed from
//! Kubernetes' own JSON/YAML objects, and the attributes each pod contributes, computed once per change.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

/// The metadata of one pod that enrichment needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// `metadata.uid`; shared with the index's keys rather than copied into each snapshot.
    pub uid: std::sync::Arc<str>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.nodeName`.
    pub node_name: String,
    /// `status.podIPs` (or `status.podIP`).
    pub ips: Vec<IpAddr>,
    /// `spec.hostNetwork`: such pods share the node's IP and are never matched by IP.
    pub host_network: bool,
    /// `status.startTime`, else `metadata.creationTimestamp` (RFC 3339); orders pods that share an IP.
    pub started: String,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `metadata.labels`.
    pub labels: Labels,
    /// The `resource.opentelemetry.io/*` annotations.
    pub annotations: Labels,
    /// The controlling owner, `(kind, name)`.
    pub owner: Option<(String, String)>,
}

/// String pairs sorted by key, in one slice. A pod keeps a handful of labels, and a `BTreeMap`
/// allocates a half-kilobyte node for even two of them: with 10,000 pods that was a quarter of the
/// index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

/// The node's labels that become resource attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

/// Facts about the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMeta {
    /// `k8s.cluster.name`.
    pub name: Option<String>,
    /// `k8s.cluster.uid`: the UID of namespace `kube-system`.
    pub uid: Option<String>,
    /// `cloud.provider` from ConfigMap `kube-system/shoot-info`, `openstack` reported as `sap`.
    pub provider: Option<String>,
}

/// Workload names derived from a pod's owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    /// `k8s.deployment.name`.
    pub deployment: Option<String>,
    /// `k8s.statefulset.name`.
    pub statefulset: Option<String>,
    /// `k8s.daemonset.name`.
    pub daemonset: Option<String>,
    /// `k8s.job.name`.
    pub job: Option<String>,
    /// `k8s.cronjob.name`.
    pub cronjob: Option<String>,
}

const OTEL_ANNOTATION_PREFIX: &str = "resource.opentelemetry.io/";
const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

// === impl PodMeta ===

impl PodMeta {
    /// Reads a `v1` Pod object; `None` if it is not one or has no UID.
    pub fn from_object(v: &Value) -> Option<Self> {
        if v.get("kind")?.as_str()? != "Pod" {
            return None;
        }
        let meta = v.get("metadata")?;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let uid: std::sync::Arc<str> = s(meta.get("uid")).into();
        if uid.is_empty() {
            return None;
        }
        let status = v.get("status");
        let mut ips: Vec<IpAddr> = status
            .and_then(|st| st.get("podIPs"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.get("ip")?.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) =
                status.and_then(|st| st.get("podIP")).and_then(Value::as_str).and_then(|s| s.parse().ok())
        {
            ips.push(ip);
        }
        let owner = meta
            .get("ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                    .or_else(|| refs.first())
            })
            .map(|r| (s(r.get("kind")), s(r.get("name"))));
        let map = |v: Option<&Value>, keep: &dyn Fn(&str) -> bool| -> Labels {
            v.and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| keep(k))
                        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let annotations = map(meta.get("annotations"), &|k| k.starts_with(OTEL_ANNOTATION_PREFIX));
        let started = status.and_then(|st| st.get("startTime")).or_else(|| meta.get("creationTimestamp"));
        Some(Self {
            uid,
            name: s(meta.get("name")),
            namespace: s(meta.get("namespace")),
            node_name: s(v.get("spec").and_then(|sp| sp.get("nodeName"))),
            ips,
            host_network: v
                .get("spec")
                .and_then(|sp| sp.get("hostNetwork"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            started: s(started),
            terminating: meta.get("deletionTimestamp").is_some_and(|d| !d.is_null()),
            labels: map(meta.get("labels"), &|_| true),
            annotations,
            owner,
        })
    }

    /// Workload names from the owner, without watching ReplicaSets or Jobs cluster-wide.
    ///
    /// - A Deployment's ReplicaSet is `<deployment>-<pod-template-hash>` and its pods carry that hash as
    ///   a label, so stripping `-<hash>` is exact. A bare ReplicaSet whose name does not end in the
    ///   pod's hash yields no deployment rather than a wrong one.
    /// - A CronJob's Job is `<cronjob>-<scheduled minutes>`, all digits. A Job created by hand with a
    ///   name of that shape (`backup-2024`) would be reported as CronJob `backup`; that is the price of
    ///   not watching every Job in the cluster from every node.
    pub fn workload(&self) -> Workload {
        let mut w = Workload::default();
        let Some((kind, name)) = &self.owner else { return w };
        match kind.as_str() {
            "ReplicaSet" => {
                if let Some(hash) = self.labels.get(POD_TEMPLATE_HASH_LABEL)
                    && let Some(deployment) = name.strip_suffix(hash).and_then(|n| n.strip_suffix('-'))
                    && !deployment.is_empty()
                {
                    w.deployment = Some(deployment.to_string());
                }
            }
            "StatefulSet" => w.statefulset = Some(name.clone()),
            "DaemonSet" => w.daemonset = Some(name.clone()),
            "Job" => {
                w.job = Some(name.clone());
                if let Some((cronjob, suffix)) = name.rsplit_once('-')
                    && !cronjob.is_empty()
                    && !suffix.is_empty()
                    && suffix.bytes().all(|b| b.is_ascii_digit())
                {
                    w.cronjob = Some(cronjob.to_string());
                }
            }
            _ => {}
        }
        w
    }
}

// === impl Labels ===

impl Labels {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }

    /// Every pair, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Keeps the pairs whose key passes `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        if self.0.iter().all(|(k, _)| keep(k)) {
            return;
        }
        let kept: Vec<(Box<str>, Box<str>)> =
            std::mem::take(&mut self.0).into_vec().into_iter().filter(|(k, _)| keep(k)).collect();
        self.0 = kept.into_boxed_slice();
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    /// Sorted by key; of duplicate keys the last wins, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut pairs: Vec<(Box<str>, Box<str>)> =
            iter.into_iter().map(|(k, v)| (Box::from(k.as_ref()), Box::from(v.as_ref()))).collect();
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Self(pairs.into_boxed_slice())
    }
}

// === impl NodeMeta ===

impl NodeMeta {
    /// Reads a `v1` Node object.
    pub fn from_object(v: &Value) -> Option<Self> {
        if v.get("kind")?.as_str()? != "Node" {
            return None;
        }
        let meta = v.get("metadata")?;
        Some(Self {
            name: meta.get("name")?.as_str()?.to_string(),
            labels: meta
                .get("labels")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default(),
        })
    }
}

// === impl ClusterMeta ===

impl ClusterMeta {
    /// Picks up `k8s.cluster.uid` from Namespace `kube-system` and `cloud.provider` from ConfigMap
    /// `kube-system/shoot-info`, if `v` is one of them.
    pub fn observe(&mut self, v: &Value) {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        let meta = v.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or_default();
        let namespace = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or_default();
        match (kind, name, namespace) {
            ("Namespace", "kube-system", _) => {
                self.uid = meta.and_then(|m| m.get("uid")).and_then(Value::as_str).map(str::to_string);
            }
            ("ConfigMap", "shoot-info", "kube-system") => {
                self.provider = v
                    .pointer("/data/provider")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                    .map(|p| if p == "openstack" { "sap".to_string() } else { p.to_string() });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(owner_kind: &str, owner: &str, labels: Value) -> PodMeta {
        PodMeta::from_object(&json!({
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": labels,
                         "ownerReferences": [{"kind": owner_kind, "name": owner, "controller": true}]},
            "status": {"podIP": "10.0.0.7"}
        }))
        .unwrap()
    }

    /// Scenario: pods owned by each kind of controller.
    /// Guarantees: workload names follow the naming rules, and a name that does not fit yields none.
    #[test]
    fn owner_names() {
        let w = pod("ReplicaSet", "web-7d4b9c8f5d", json!({"pod-template-hash": "7d4b9c8f5d"})).workload();
        assert_eq!(w.deployment.as_deref(), Some("web"));
        let bare = pod("ReplicaSet", "standalone", json!({"pod-template-hash": "abc"})).workload();
        assert_eq!(bare.deployment, None);
        let cron = pod("Job", "nightly-backup-29123456", json!({})).workload();
        assert_eq!(
            (cron.job.as_deref(), cron.cronjob.as_deref()),
            (Some("nightly-backup-29123456"), Some("nightly-backup"))
        );
        let job = pod("Job", "migrate-db", json!({})).workload();
        assert_eq!((job.job.as_deref(), job.cronjob), (Some("migrate-db"), None));
        assert_eq!(pod("StatefulSet", "db", json!({})).workload().statefulset.as_deref(), Some("db"));
        assert_eq!(pod("DaemonSet", "agent", json!({})).workload().daemonset.as_deref(), Some("agent"));
    }

    /// Scenario: the cluster objects Kyma reads.
    /// Guarantees: kube-system's UID and the shoot's provider (openstack as sap) are picked up.
    #[test]
    fn cluster_facts() {
        let mut c = ClusterMeta::default();
        c.observe(&json!({"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "abc-123"}}));
        c.observe(&json!({"kind": "ConfigMap", "metadata": {"name": "shoot-info", "namespace": "kube-system"}, "data": {"provider": "openstack"}}));
        assert_eq!(c.uid.as_deref(), Some("abc-123"));
        assert_eq!(c.provider.as_deref(), Some("sap"));
    }
}
