//! Enrichment settings the control plane pushes in its snapshots (service mode, pod labels, cluster
//! name, UID and provider). They override the gateway's own flags; the pod index writer applies them
//! without a restart, listing the pods again when the label rules change.

use tokio::sync::watch;
use tracegw_contract::{EnrichmentSettings, PodLabelRule};

use super::ServiceMode;
use super::index::{IndexConfig, LabelRule};
use super::pods::ClusterMeta;

/// The newest settings from the control plane; `None` until a snapshot carried some.
pub type SettingsRx = watch::Receiver<Option<EnrichmentSettings>>;

/// The settings as the index writer uses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// Index settings: the gateway's, with labels and cluster name from the control plane.
    pub config: IndexConfig,
    /// Cluster facts from the control plane, if it sent them.
    pub cluster: Option<ClusterMeta>,
    /// Service mode.
    pub mode: Option<ServiceMode>,
}

// === free functions ===

/// Combines the gateway's own settings with the control plane's.
pub fn effective(base: &IndexConfig, pushed: Option<&EnrichmentSettings>) -> Effective {
    let Some(s) = pushed else { return Effective { config: base.clone(), cluster: None, mode: None } };
    let config = IndexConfig {
        pod_labels: s
            .pod_labels
            .iter()
            .map(|r| match r {
                PodLabelRule::Key(k) => LabelRule::Key(k.clone()),
                PodLabelRule::KeyPrefix(p) => LabelRule::Prefix(p.clone()),
            })
            .collect(),
        cluster_name: s.cluster_name.clone().or_else(|| base.cluster_name.clone()),
        ..base.clone()
    };
    // Settings without cluster facts (a Telemetry in local files) leave the facts to the pod files.
    let cluster = (s.cluster_uid.is_some() || s.cloud_provider.is_some()).then(|| ClusterMeta {
        name: None,
        uid: s.cluster_uid.clone(),
        provider: s.cloud_provider.clone(),
    });
    let mode = match s.service_mode {
        tracegw_contract::ServiceMode::KymaLegacy => ServiceMode::KymaLegacy,
        tracegw_contract::ServiceMode::Otel => ServiceMode::Otel,
    };
    Effective { config, cluster, mode: Some(mode) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: no pushed settings, then settings from the control plane, then settings without
    /// cluster facts (a Telemetry in local files).
    /// Guarantees: the gateway's flags stand until then; pushed labels, mode and cluster facts win;
    /// settings without facts leave the facts alone.
    #[test]
    fn pushed_settings_override_flags() {
        let base = IndexConfig {
            cluster_name: Some("flag".into()),
            pod_labels: vec![LabelRule::Key("a".into())],
            ..IndexConfig::default()
        };
        assert_eq!(effective(&base, None).config, base);
        let pushed = EnrichmentSettings {
            service_mode: tracegw_contract::ServiceMode::Otel,
            pod_labels: vec![PodLabelRule::KeyPrefix("team.".into())],
            cluster_name: None,
            cluster_uid: Some("uid-1".into()),
            cloud_provider: Some("sap".into()),
        };
        let e = effective(&base, Some(&pushed));
        assert_eq!(e.config.pod_labels, vec![LabelRule::Prefix("team.".into())]);
        assert_eq!(e.config.cluster_name.as_deref(), Some("flag"));
        assert_eq!(e.mode, Some(ServiceMode::Otel));
        assert_eq!(e.cluster.unwrap().uid.as_deref(), Some("uid-1"));
        let without_facts = EnrichmentSettings { cluster_uid: None, cloud_provider: None, ..pushed };
        assert_eq!(effective(&base, Some(&without_facts)).cluster, None);
    }
}
