//! Kyma's `Telemetry` resource (`operator.kyma-project.io`): the module's settings and status.
//!
//! - **Schema.** The CRD ([`crd`]) has Kyma's identity: namespaced, `v1beta1` stored and `v1alpha1`
//!   served (deprecated, same schema), printer columns `state` and `age`, categories `kyma-modules`
//!   and `kyma-telemetry`, the status subresource and every CEL rule. The spec types live in the
//!   contract crate ([`tracegw_contract::telemetry`]), which both planes read.
//! - **Settings.** Only the object named `default` in the manager's namespace counts, as in Kyma.
//!   Its pod label rules, cluster name and `service-enrichment` annotation replace the manager's
//!   flags, which remain the settings while no such object exists.
//! - **Status.** [`status`] is a pure function of the pipelines' conditions, the object's deletion
//!   and which gateway Services exist: `state`, the three `*ComponentsHealthy` conditions in Kyma's
//!   order of precedence, and `endpoints`. The reconciler writes it by server-side apply on the
//!   status subresource, only when it changed.
//! - **Deletion.** The finalizer [`FINALIZER`] holds the object while TracePipelines exist (its
//!   status then says which); once none is left it is removed and the gateway's objects go too.
//! - **Overrides.** The ConfigMap [`OVERRIDES_CONFIGMAP`] sets the manager's log level while it runs
//!   and pauses parts of the reconciliation as Kyma's does ([`Overrides`]).
//! - **Webhook CA.** After each pass the reconciler tells the admission webhook's loop which
//!   Telemetry owns its CA Secret, whether the module was removed and whether it is paused
//!   ([`crate::webhook_cert::ModuleLink`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::reflector::Store;
use kube::{Api, Client, CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracegw_contract::telemetry::{
    API_VERSION_V1BETA1, EnrichmentSpec, MetricSpec, SignalSpec, TelemetrySettings,
};

use crate::cluster::{EnrichmentFlags, FIELD_MANAGER};
use crate::conditions;
use crate::crd::{Condition, CrdError};
use crate::gateway::{LEGACY_TRACES_SERVICE, OTLP_SERVICE};
use crate::logging::{LogFilter, LogLevel};

/// Held by the manager on the `Telemetry` while TracePipelines exist.
pub const FINALIZER: &str = "telemetry.kyma-project.io/finalizer";
/// Kyma's ConfigMap of overrides, in the manager's namespace.
pub const OVERRIDES_CONFIGMAP: &str = "telemetry-overrides";
/// The key of [`OVERRIDES_CONFIGMAP`] holding the YAML.
pub const OVERRIDES_KEY: &str = "overrides";
/// `LogComponentsHealthy`.
pub const TYPE_LOG_COMPONENTS_HEALTHY: &str = "LogComponentsHealthy";
/// `MetricComponentsHealthy`.
pub const TYPE_METRIC_COMPONENTS_HEALTHY: &str = "MetricComponentsHealthy";
/// `TraceComponentsHealthy`.
pub const TYPE_TRACE_COMPONENTS_HEALTHY: &str = "TraceComponentsHealthy";
/// The deprecation notice `kubectl` prints for v1alpha1.
pub const V1ALPHA1_DEPRECATION: &str = "operator.kyma-project.io/v1alpha1 Telemetry is deprecated; use operator.kyma-project.io/v1beta1, which reads the same fields";
/// Where `crdgen` writes the CRD, relative to the workspace root.
pub const CRD_PATH: &str = "deploy/crds/operator.kyma-project.io_telemetries.yaml";

const OTLP_GRPC_PORT: u16 = 4317;
const OTLP_HTTP_PORT: u16 = 4318;
/// How long the manager trusts its own write over a cache that has not shown it yet.
const RECENT_WRITE_TTL: Duration = Duration::from_secs(2);

/// The Telemetry module's settings for the whole cluster.
// Each printer column repeats `type_`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "operator.kyma-project.io",
    version = "v1beta1",
    kind = "Telemetry",
    plural = "telemetries",
    namespaced,
    status = "TelemetryStatus",
    category = "kyma-modules",
    category = "kyma-telemetry",
    printcolumn(name = "state", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    label("app.kubernetes.io/component", "controller"),
    label("app.kubernetes.io/managed-by", "kyma"),
    label("app.kubernetes.io/name", "telemetry-manager"),
    label("app.kubernetes.io/part-of", "telemetry"),
    label("kyma-project.io/module", "telemetry"),
    doc = "The Telemetry module's settings for the whole cluster, and its status"
)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// Attributes added to every resource: pod labels and the cluster's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "EnrichmentSpec")]
    pub enrichments: Option<EnrichmentSpec>,
    /// Trace settings (only a deprecated gateway section, without effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "SignalSpec")]
    pub trace: Option<SignalSpec>,
    /// Log settings (only a deprecated gateway section, without effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "SignalSpec")]
    pub log: Option<SignalSpec>,
    /// Metric settings, for Kyma's metric agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "MetricSpec")]
    pub metric: Option<MetricSpec>,
}

/// What the manager observed about the module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryStatus {
    /// `Ready`, `Warning` (a condition is False or a certificate is about to expire, or deletion
    /// waits for pipelines) or `Deleting`.
    #[schemars(extend("enum" = ["Deleting", "Ready", "Warning"]))]
    pub state: String,
    /// `LogComponentsHealthy`, `MetricComponentsHealthy` and `TraceComponentsHealthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where applications send their data, for each gateway Service that exists.
    #[serde(default)]
    pub endpoints: GatewayEndpoints,
}

/// The gateway's addresses inside the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayEndpoints {
    /// The one address for every signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "OtlpEndpoints")]
    pub otlp: Option<OtlpEndpoints>,
    /// Deprecated: the traces-only address, which leads to the same gateway as `otlp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "OtlpEndpoints")]
    pub traces: Option<OtlpEndpoints>,
    /// Deprecated: the logs-only address (no log gateway runs here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "OtlpEndpoints")]
    pub logs: Option<OtlpEndpoints>,
    /// Deprecated: the metrics-only address (no metric gateway runs here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "OtlpEndpoints")]
    pub metrics: Option<OtlpEndpoints>,
}

/// OTLP over gRPC and over HTTP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpEndpoints {
    /// OTLP/gRPC, `http://<service>.<namespace>:4317`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub grpc: Option<String>,
    /// OTLP/HTTP, `http://<service>.<namespace>:4318`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub http: Option<String>,
}

/// The module's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Every condition is True, and no certificate is about to expire.
    Ready,
    /// Something needs a look; see the conditions.
    Warning,
    /// Being deleted, with nothing left to block it.
    Deleting,
}

/// Kyma's overrides (`telemetry-overrides`, key `overrides`): the manager's log level and the pause
/// switches; other keys are accepted and ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `global.logLevel`: the manager logs at this level; absent or empty, at the level it was
    /// started with ([`crate::logging`]).
    pub log_level: Option<LogLevel>,
    /// `tracing.paused`: TracePipelines are not reconciled (no snapshot, no gateway objects, no
    /// pipeline status), as Kyma's TracePipeline reconciler stops.
    pub tracing_paused: bool,
    /// `otlpGateway.paused`: the gateway's objects and its configuration stay as they are.
    pub otlp_gateway_paused: bool,
    /// `telemetry.paused`: this resource's finalizer and status, and the admission webhook's CA
    /// Secret and configuration ([`crate::webhook_cert`]), are left alone.
    pub telemetry_paused: bool,
}

/// The overrides YAML does not read.
#[derive(Debug, thiserror::Error)]
#[error("ConfigMap {OVERRIDES_CONFIGMAP} key {OVERRIDES_KEY} is not valid: {0}")]
pub struct OverridesError(String);

/// One signal's condition: the pipelines of that kind and the words Kyma uses for it.
#[derive(Clone, Copy, Debug)]
struct Signal {
    type_: &'static str,
    kind_plural: &'static str,
    running: &'static str,
}

/// A TracePipeline as the module status sees it.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConditions<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its current conditions.
    pub conditions: &'a [Condition],
}

/// Everything the module status depends on.
#[derive(Clone, Copy, Debug)]
pub struct StatusInput<'a> {
    /// The Telemetry has a deletion timestamp.
    pub deleting: bool,
    /// Every TracePipeline (being deleted or not), in name order.
    pub trace_pipelines: &'a [PipelineConditions<'a>],
    /// Service `telemetry-otlp` exists.
    pub otlp_service: bool,
    /// Service `telemetry-otlp-traces` exists.
    pub traces_service: bool,
    /// The manager's (and the Services') namespace.
    pub namespace: &'a str,
    /// The Telemetry's generation.
    pub generation: Option<i64>,
}

/// A failed write to the Telemetry.
#[derive(Debug, thiserror::Error)]
#[error("{action} Telemetry {name}: {source}")]
pub struct ModuleError {
    /// What was being done.
    pub action: &'static str,
    /// The object.
    pub name: String,
    /// Cause.
    #[source]
    pub source: kube::Error,
}

/// The `default` Telemetry as the cache holds it.
#[derive(Clone, Debug)]
pub(crate) struct Observed {
    name: String,
    uid: Option<String>,
    generation: Option<i64>,
    resource_version: Option<String>,
    deleting: bool,
    finalizers: Vec<String>,
    settings: Result<TelemetrySettings, String>,
    status: Option<TelemetryStatus>,
}

/// What one pass knows about the module.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModuleView {
    /// The `default` Telemetry, if it exists.
    telemetry: Option<Observed>,
    /// The pause switches in force.
    pub(crate) overrides: Overrides,
}

/// The reconciler's state for the Telemetry between passes.
pub(crate) struct ModuleState {
    client: Client,
    namespace: String,
    resource: ApiResource,
    telemetries: Store<DynamicObject>,
    overrides: Store<ConfigMap>,
    last_overrides: Overrides,
    /// The manager's log filter, and the override last applied to it.
    log_filter: Option<LogFilter>,
    applied_level: Option<Option<LogLevel>>,
    /// Our last write of each kind, with the resource version the cache held before it.
    recent_status: Option<(Option<String>, Instant, TelemetryStatus)>,
    recent_finalizer: Option<(Option<String>, Instant)>,
    /// The Telemetry existed in the last pass.
    seen: bool,
    /// The Telemetry was deleted with no pipeline left: the gateway's objects go as well.
    removed: bool,
    logged: Option<(String, String)>,
    logged_spec_error: Option<String>,
    logged_overrides_error: Option<String>,
}

// === impl State ===

impl State {
    /// Kyma's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Warning => "Warning",
            Self::Deleting => "Deleting",
        }
    }
}

// === impl Overrides ===

impl Overrides {
    /// Reads the YAML under [`OVERRIDES_KEY`]; empty text pauses nothing.
    pub fn parse(text: &str) -> Result<Self, OverridesError> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Paused {
            paused: bool,
        }
        #[derive(Default, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        struct Global {
            log_level: String,
        }
        #[derive(Default, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        struct Raw {
            global: Global,
            tracing: Paused,
            otlp_gateway: Paused,
            telemetry: Paused,
        }
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: Raw = serde_yaml_ng::from_str(text).map_err(|e| OverridesError(e.to_string()))?;
        let level = raw.global.log_level.trim();
        let log_level = match level {
            "" => None,
            _ => Some(LogLevel::parse(level).ok_or_else(|| {
                OverridesError(format!(
                    "global.logLevel '{level}' is none of debug, info, warn, error, dpanic, panic, fatal"
                ))
            })?),
        };
        Ok(Self {
            log_level,
            tracing_paused: raw.tracing.paused,
            otlp_gateway_paused: raw.otlp_gateway.paused,
            telemetry_paused: raw.telemetry.paused,
        })
    }
}

// === impl Signal ===

impl Signal {
    const LOGS: Self = Self {
        type_: TYPE_LOG_COMPONENTS_HEALTHY,
        kind_plural: "LogPipelines",
        running: "All log components are running",
    };
    const METRICS: Self = Self {
        type_: TYPE_METRIC_COMPONENTS_HEALTHY,
        kind_plural: "MetricPipelines",
        running: "All metric components are running",
    };
    const TRACES: Self = Self {
        type_: TYPE_TRACE_COMPONENTS_HEALTHY,
        kind_plural: "TracePipelines",
        running: "All trace components are running",
    };
}

// === impl ModuleView ===

impl ModuleView {
    /// The enrichment settings of the `default` Telemetry, when it exists and reads.
    pub(crate) fn settings(&self) -> Option<&TelemetrySettings> {
        self.telemetry.as_ref().and_then(|t| t.settings.as_ref().ok())
    }
}

// === impl ModuleState ===

impl ModuleState {
    /// State over the caches of the `default` Telemetry and the overrides ConfigMap; `log_filter`
    /// follows `global.logLevel`.
    pub(crate) fn new(
        client: Client,
        namespace: String,
        telemetries: Store<DynamicObject>,
        overrides: Store<ConfigMap>,
        log_filter: Option<LogFilter>,
    ) -> Self {
        Self {
            client,
            namespace,
            resource: resource(),
            telemetries,
            overrides,
            last_overrides: Overrides::default(),
            log_filter,
            // The filter starts as the flag says, which is what no override means.
            applied_level: Some(None),
            recent_status: None,
            recent_finalizer: None,
            seen: false,
            removed: false,
            logged: None,
            logged_spec_error: None,
            logged_overrides_error: None,
        }
    }

    /// Waits for both caches' first lists, for at most `timeout` (a cluster without the Telemetry
    /// CRD never lists; the manager then runs on its flags).
    pub(crate) async fn wait_ready(&self, timeout: Duration) {
        let both = async {
            let _ = self.telemetries.wait_until_ready().await;
            let _ = self.overrides.wait_until_ready().await;
        };
        if tokio::time::timeout(timeout, both).await.is_err() {
            tracing::warn!(
                ?timeout,
                "no list of Telemetry resources or of the overrides ConfigMap yet; running on the flags until they arrive"
            );
        }
    }

    /// Reads the caches.
    pub(crate) fn observe(&mut self) -> ModuleView {
        let overrides = self
            .overrides
            .state()
            .into_iter()
            .find(|c| c.metadata.name.as_deref() == Some(OVERRIDES_CONFIGMAP))
            .and_then(|c| c.data.as_ref().and_then(|d| d.get(OVERRIDES_KEY).cloned()));
        let (overrides, error) = match Overrides::parse(overrides.as_deref().unwrap_or_default()) {
            Ok(o) => (o, None),
            Err(e) => (self.last_overrides, Some(e.to_string())),
        };
        if error != self.logged_overrides_error {
            if let Some(e) = &error {
                tracing::warn!(error = %e, "keeping the overrides in force");
            }
            self.logged_overrides_error = error;
        }
        self.apply_log_level(overrides.log_level);
        if overrides != self.last_overrides {
            tracing::info!(?overrides, "overrides changed");
            self.last_overrides = overrides;
        }
        let telemetry = self
            .telemetries
            .state()
            .into_iter()
            .find(|o| {
                o.metadata.name.as_deref() == Some(tracegw_contract::telemetry::DEFAULT_NAME)
                    && o.metadata.namespace.as_deref() == Some(self.namespace.as_str())
            })
            .map(|o| observed(&o));
        let spec_error = telemetry.as_ref().and_then(|t| t.settings.as_ref().err().cloned());
        if spec_error != self.logged_spec_error {
            if let Some(why) = &spec_error {
                tracing::warn!(error = %why, "the Telemetry's spec does not read; enriching by the flags");
            }
            self.logged_spec_error = spec_error;
        }
        ModuleView { telemetry, overrides }
    }

    /// Whether the gateway's objects should go: the Telemetry was deleted and no pipeline is left.
    pub(crate) fn removed(&self) -> bool {
        self.removed
    }

    /// What the admission webhook's loop needs to know of the module after this pass.
    pub(crate) fn webhook_link(&self, view: &ModuleView) -> crate::webhook_cert::ModuleLink {
        let owner = view.telemetry.as_ref().and_then(|t| {
            t.uid
                .as_ref()
                .map(|uid| crate::webhook_cert::TelemetryOwner { name: t.name.clone(), uid: uid.clone() })
        });
        crate::webhook_cert::ModuleLink {
            observed: true,
            owner,
            removed: self.removed,
            paused: view.overrides.telemetry_paused,
        }
    }

    /// Sets the manager's log level from the overrides, when it changed (also while paused: Kyma
    /// applies the level before it looks at the pause switches).
    fn apply_log_level(&mut self, level: Option<LogLevel>) {
        let Some(filter) = &self.log_filter else { return };
        if self.applied_level == Some(level) {
            return;
        }
        match filter.set_level(level) {
            Ok(()) => tracing::info!(filter = %filter.current(), "log level set by the overrides"),
            Err(e) => tracing::warn!(error = %e, "cannot change the log level"),
        }
        // Tried once per change: a filter that cannot be swapped will not be swappable next pass.
        self.applied_level = Some(level);
    }

    /// Adds the finalizer to a live Telemetry, or removes it from one being deleted once no
    /// TracePipeline is left.
    pub(crate) async fn finalize(
        &mut self,
        view: &ModuleView,
        pipelines_exist: bool,
    ) -> Result<(), ModuleError> {
        let Some(t) = &view.telemetry else {
            if self.seen && !pipelines_exist {
                self.removed = true;
            }
            self.seen = false;
            return Ok(());
        };
        self.seen = true;
        if pipelines_exist || !t.deleting {
            self.removed = false;
        }
        let ours = t.finalizers.iter().any(|f| f == FINALIZER);
        let pending = self
            .recent_finalizer
            .as_ref()
            .is_some_and(|(before, at)| *before == t.resource_version && at.elapsed() < RECENT_WRITE_TTL);
        let finalizers: Vec<&str> = match (t.deleting, ours) {
            (false, false) => {
                t.finalizers.iter().map(String::as_str).chain(std::iter::once(FINALIZER)).collect()
            }
            (true, true) if !pipelines_exist => {
                t.finalizers.iter().map(String::as_str).filter(|f| *f != FINALIZER).collect()
            }
            _ => return Ok(()),
        };
        if pending {
            return Ok(());
        }
        // A merge patch with the resource version: it fails on a concurrent change instead of
        // dropping someone else's finalizer, and never creates an object that was just deleted.
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": t.resource_version}});
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
        let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), &self.namespace, &self.resource);
        match api.patch(&t.name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => return Ok(()),
            Err(source) => {
                return Err(ModuleError {
                    action: "cannot update the finalizer of",
                    name: t.name.clone(),
                    source,
                });
            }
        }
        if t.deleting {
            tracing::info!(name = %t.name, "no TracePipeline is left: the Telemetry's deletion proceeds");
            self.removed = true;
        } else {
            tracing::info!(name = %t.name, finalizer = FINALIZER, "finalizer added");
        }
        self.recent_finalizer = Some((t.resource_version.clone(), Instant::now()));
        Ok(())
    }

    /// Writes the status if it changed. `stamp` is now, for new transition times.
    pub(crate) async fn write_status(
        &mut self,
        view: &ModuleView,
        trace_pipelines: &[PipelineConditions<'_>],
        otlp_service: bool,
        traces_service: bool,
        stamp: &str,
    ) -> Result<(), ModuleError> {
        let Some(t) = &view.telemetry else { return Ok(()) };
        if t.deleting && trace_pipelines.is_empty() {
            // Its finalizer is gone or going: there is nothing left to report to.
            return Ok(());
        }
        let previous = match &self.recent_status {
            Some((before, at, value)) if *before == t.resource_version && at.elapsed() < RECENT_WRITE_TTL => {
                value.clone()
            }
            _ => t.status.clone().unwrap_or_default(),
        };
        let mut next = status(&StatusInput {
            deleting: t.deleting,
            trace_pipelines,
            otlp_service,
            traces_service,
            namespace: &self.namespace,
            generation: t.generation,
        });
        next.conditions = conditions::with_transition_times(next.conditions, &previous.conditions, stamp);
        let trace = next.conditions.iter().find(|c| c.type_ == TYPE_TRACE_COMPONENTS_HEALTHY);
        let summary = (next.state.clone(), trace.map(|c| c.reason.clone()).unwrap_or_default());
        if self.logged.as_ref() != Some(&summary) {
            tracing::info!(name = %t.name, state = %summary.0, trace_components = %summary.1, "Telemetry status");
            self.logged = Some(summary);
        }
        if next == previous {
            return Ok(());
        }
        let patch = json!({
            "apiVersion": API_VERSION_V1BETA1,
            "kind": tracegw_contract::telemetry::KIND,
            "status": next,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), &self.namespace, &self.resource);
        match api.patch_status(&t.name, &params, &Patch::Apply(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(()),
            Err(source) => {
                return Err(ModuleError {
                    action: "cannot write the status of",
                    name: t.name.clone(),
                    source,
                });
            }
        }
        self.recent_status = Some((t.resource_version.clone(), Instant::now(), next));
        Ok(())
    }
}

// === free functions ===

/// The API resource of the stored version, for dynamic clients and reflectors.
pub fn resource() -> ApiResource {
    ApiResource::erase::<Telemetry>(&())
}

fn observed(object: &DynamicObject) -> Observed {
    let value = serde_json::to_value(object).unwrap_or_default();
    let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
    let annotations: BTreeMap<String, String> = object.metadata.annotations.clone().unwrap_or_default();
    let settings = serde_path_to_error::deserialize::<_, tracegw_contract::telemetry::TelemetrySpec>(spec)
        .map(|spec| tracegw_contract::telemetry::settings(&spec, &annotations))
        .map_err(|e| format!("spec.{}: {}", e.path(), e.inner()));
    Observed {
        name: object.metadata.name.clone().unwrap_or_default(),
        uid: object.metadata.uid.clone(),
        generation: object.metadata.generation,
        resource_version: object.metadata.resource_version.clone(),
        deleting: object.metadata.deletion_timestamp.is_some(),
        finalizers: object.metadata.finalizers.clone().unwrap_or_default(),
        settings,
        status: value.get("status").and_then(|s| serde_json::from_value(s.clone()).ok()),
    }
}

/// The enrichment settings in force: the `default` Telemetry's when it exists, else the flags.
pub(crate) fn enrichment_flags(view: &ModuleView, flags: &EnrichmentFlags) -> EnrichmentFlags {
    match view.settings() {
        Some(s) => EnrichmentFlags {
            service_mode: s.service_mode,
            pod_labels: s.pod_labels.clone(),
            cluster_name: s.cluster_name.clone(),
        },
        None => flags.clone(),
    }
}

fn condition(
    signal: Signal,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        last_transition_time: String::new(),
        message,
        observed_generation: generation,
        reason: reason.to_string(),
        status: status.to_string(),
        type_: signal.type_.to_string(),
    }
}

/// One signal's condition, the first that applies of: deletion blocked by its pipelines; no
/// pipeline; the first False pipeline condition (by type: ConfigurationGenerated, GatewayHealthy,
/// AgentHealthy, TelemetryFlowHealthy; within a type in name order), copied; the first certificate
/// about to expire, copied; components running.
fn components_condition(
    signal: Signal,
    pipelines: &[PipelineConditions<'_>],
    deleting: bool,
    generation: Option<i64>,
) -> Condition {
    if deleting && !pipelines.is_empty() {
        let mut names: Vec<&str> = pipelines.iter().map(|p| p.name).collect();
        names.sort_unstable();
        let message = format!(
            "The deletion of the module is blocked. To unblock the deletion, delete the following resources: {} ({})",
            signal.kind_plural,
            names.join(",")
        );
        return condition(signal, "False", "ResourceBlocksDeletion", message, generation);
    }
    if pipelines.is_empty() {
        return condition(
            signal,
            "True",
            "NoPipelineDeployed",
            "No pipelines have been deployed".into(),
            generation,
        );
    }
    let copied = |c: &Condition| condition(signal, &c.status, &c.reason, c.message.clone(), generation);
    for type_ in [
        conditions::TYPE_CONFIGURATION_GENERATED,
        conditions::TYPE_GATEWAY_HEALTHY,
        "AgentHealthy",
        conditions::TYPE_FLOW_HEALTHY,
    ] {
        let failing = pipelines
            .iter()
            .filter_map(|p| p.conditions.iter().find(|c| c.type_ == type_))
            .find(|c| c.status == "False");
        if let Some(c) = failing {
            return copied(c);
        }
    }
    let expiring = pipelines
        .iter()
        .filter_map(|p| p.conditions.iter().find(|c| c.type_ == conditions::TYPE_CONFIGURATION_GENERATED))
        .find(|c| c.reason == "TLSCertificateAboutToExpire");
    if let Some(c) = expiring {
        return copied(c);
    }
    condition(signal, "True", "ComponentsRunning", signal.running.into(), generation)
}

/// The module's state from its conditions, as Kyma decides it.
pub fn state(deleting: bool, trace_pipelines: usize, conditions: &[Condition]) -> State {
    if deleting {
        return if trace_pipelines > 0 { State::Warning } else { State::Deleting };
    }
    let warning = conditions.iter().any(|c| c.status == "False" || c.reason == "TLSCertificateAboutToExpire");
    if warning { State::Warning } else { State::Ready }
}

fn endpoints(service: &str, namespace: &str) -> OtlpEndpoints {
    OtlpEndpoints {
        grpc: Some(format!("http://{service}.{namespace}:{OTLP_GRPC_PORT}")),
        http: Some(format!("http://{service}.{namespace}:{OTLP_HTTP_PORT}")),
    }
}

/// The status, without transition times (see [`conditions::with_transition_times`]). No
/// LogPipelines or MetricPipelines exist here, so their conditions say what Kyma's say without any.
pub fn status(input: &StatusInput<'_>) -> TelemetryStatus {
    let conditions = vec![
        components_condition(Signal::LOGS, &[], input.deleting, input.generation),
        components_condition(Signal::METRICS, &[], input.deleting, input.generation),
        components_condition(Signal::TRACES, input.trace_pipelines, input.deleting, input.generation),
    ];
    let state = state(input.deleting, input.trace_pipelines.len(), &conditions);
    TelemetryStatus {
        state: state.as_str().to_string(),
        conditions,
        endpoints: GatewayEndpoints {
            otlp: input.otlp_service.then(|| endpoints(OTLP_SERVICE, input.namespace)),
            traces: input.traces_service.then(|| endpoints(LEGACY_TRACES_SERVICE, input.namespace)),
            logs: None,
            metrics: None,
        },
    }
}

/// Lines for people: the state, then TraceComponentsHealthy (the log and metric conditions never
/// change here), prefixed with `Telemetry <name>`.
pub fn lines(name: &str, status: &TelemetryStatus) -> Vec<String> {
    let prefix = format!("Telemetry {name}");
    let trace: Vec<Condition> =
        status.conditions.iter().filter(|c| c.type_ == TYPE_TRACE_COMPONENTS_HEALTHY).cloned().collect();
    std::iter::once(format!("{prefix}\tstate={}", status.state))
        .chain(conditions::lines(&prefix, &trace))
        .collect()
}

/// Without a cluster (`--pipelines` files): the status of the `default` Telemetry among the files,
/// from every pipeline's conditions; `Ok(None)` when the files hold none, an error when it does not
/// read. No gateway Service exists there, so no endpoint is listed.
pub fn local_status(
    path: &std::path::Path,
    pipelines: &[(String, Vec<Condition>)],
) -> Result<Option<TelemetryStatus>, String> {
    let telemetry = match tracegw_contract::telemetry::default_in(path) {
        Ok(None) => return Ok(None),
        Ok(Some(Ok(t))) => t,
        Ok(Some(Err(broken))) => {
            return Err(format!(
                "{}: Telemetry {} is not valid at {}: {}",
                broken.source.display(),
                broken.name,
                broken.field,
                broken.message
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    Ok(Some(local_status_of(&telemetry, pipelines)))
}

/// [`local_status`] for a Telemetry already read.
pub fn local_status_of(
    telemetry: &tracegw_contract::telemetry::Telemetry,
    pipelines: &[(String, Vec<Condition>)],
) -> TelemetryStatus {
    let mut sorted: Vec<&(String, Vec<Condition>)> = pipelines.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let views: Vec<PipelineConditions<'_>> =
        sorted.iter().map(|(name, conditions)| PipelineConditions { name, conditions }).collect();
    status(&StatusInput {
        deleting: false,
        trace_pipelines: &views,
        otlp_service: false,
        traces_service: false,
        namespace: tracegw_contract::telemetry::DEFAULT_NAMESPACE,
        generation: telemetry.metadata.generation,
    })
}

/// The complete CRD: `v1alpha1` (served, deprecated) and `v1beta1` (served, stored), one schema.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut crd = Telemetry::crd();
    crd.spec.names.list_kind = Some("TelemetryList".into());
    let mut beta = crd.spec.versions.first().cloned().ok_or_else(|| CrdError("no version derived".into()))?;
    if let Some(root) = beta.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
        // Kyma's schema requires neither spec nor status and titles nothing; the default CR has no spec.
        root.required = None;
        root.title = None;
        if let Some(status) = root.properties.as_mut().and_then(|p| p.get_mut("status")) {
            status.nullable = None;
            // The manager always writes `endpoints`; the API server has nothing to default.
            if let Some(endpoints) = status.properties.as_mut().and_then(|p| p.get_mut("endpoints")) {
                endpoints.default = None;
            }
        }
    }
    let alpha =
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion {
            name: "v1alpha1".into(),
            storage: false,
            deprecated: Some(true),
            deprecation_warning: Some(V1ALPHA1_DEPRECATION.into()),
            ..beta.clone()
        };
    beta.deprecated = None;
    crd.spec.versions = vec![alpha, beta];
    Ok(crd)
}

/// The CRD as the YAML `crdgen` writes to [`CRD_PATH`].
pub fn crd_yaml() -> Result<String, CrdError> {
    let crd = crd()?;
    let yaml = serde_yaml_ng::to_string(&crd).map_err(|e| CrdError(e.to_string()))?;
    Ok(format!("# Generated by `cargo run -p telemetry-manager --bin crdgen`; do not edit.\n---\n{yaml}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            ..Condition::default()
        }
    }

    fn input<'a>(deleting: bool, pipelines: &'a [PipelineConditions<'a>]) -> StatusInput<'a> {
        StatusInput {
            deleting,
            trace_pipelines: pipelines,
            otlp_service: true,
            traces_service: false,
            namespace: "kyma-system",
            generation: Some(3),
        }
    }

    fn trace(status: &TelemetryStatus) -> (&str, &str, &str) {
        let c = status.conditions.iter().find(|c| c.type_ == TYPE_TRACE_COMPONENTS_HEALTHY).unwrap();
        (c.status.as_str(), c.reason.as_str(), c.message.as_str())
    }

    /// Scenario: each step of Kyma's precedence in turn: deletion with pipelines, no pipeline, a
    /// failing flow beside a failing configuration, an expiring certificate, all running, and a
    /// flow that cannot be probed.
    /// Guarantees: the first applicable step wins, False conditions are copied (ConfigurationGenerated
    /// before TelemetryFlowHealthy whatever the pipeline order), Unknown does not warn, the state
    /// follows, and endpoints list only the Services that exist.
    #[test]
    fn status_follows_kyma_precedence() {
        let ok = [
            cond("ConfigurationGenerated", "True", "GatewayConfigured"),
            cond("GatewayHealthy", "True", "GatewayReady"),
            cond("TelemetryFlowHealthy", "True", "FlowHealthy"),
        ];
        let flow_down = [
            cond("ConfigurationGenerated", "True", "GatewayConfigured"),
            cond("GatewayHealthy", "True", "GatewayReady"),
            cond("TelemetryFlowHealthy", "False", "GatewayAllTelemetryDataDropped"),
        ];
        let no_secret = [
            cond("ConfigurationGenerated", "False", "ReferencedSecretMissing"),
            cond("GatewayHealthy", "False", "GatewayConfigurationNotGenerated"),
        ];
        let expiring = [cond("ConfigurationGenerated", "True", "TLSCertificateAboutToExpire")];
        let probing = [cond("TelemetryFlowHealthy", "Unknown", "GatewayProbingFailed")];
        let p = |name, conditions| PipelineConditions { name, conditions };

        let s = status(&input(true, &[p("b", &ok), p("a", &ok)]));
        assert_eq!(s.state, "Warning");
        assert_eq!(
            trace(&s),
            (
                "False",
                "ResourceBlocksDeletion",
                "The deletion of the module is blocked. To unblock the deletion, delete the following resources: TracePipelines (a,b)"
            )
        );
        assert_eq!(status(&input(true, &[])).state, "Deleting");

        let s = status(&input(false, &[]));
        assert_eq!(
            (s.state.as_str(), trace(&s)),
            ("Ready", ("True", "NoPipelineDeployed", "No pipelines have been deployed"))
        );
        let types: Vec<&str> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [TYPE_LOG_COMPONENTS_HEALTHY, TYPE_METRIC_COMPONENTS_HEALTHY, TYPE_TRACE_COMPONENTS_HEALTHY]
        );
        assert!(s.conditions.iter().all(|c| c.observed_generation == Some(3)));

        let s = status(&input(false, &[p("a", &flow_down), p("b", &no_secret)]));
        assert_eq!(
            (s.state.as_str(), trace(&s)),
            ("Warning", ("False", "ReferencedSecretMissing", "ReferencedSecretMissing message"))
        );
        let s = status(&input(false, &[p("a", &ok), p("b", &expiring)]));
        assert_eq!((s.state.as_str(), trace(&s).1), ("Warning", "TLSCertificateAboutToExpire"));
        let s = status(&input(false, &[p("a", &ok), p("b", &probing)]));
        assert_eq!(
            (s.state.as_str(), trace(&s)),
            ("Ready", ("True", "ComponentsRunning", "All trace components are running"))
        );

        assert_eq!(
            s.endpoints,
            GatewayEndpoints {
                otlp: Some(OtlpEndpoints {
                    grpc: Some("http://telemetry-otlp.kyma-system:4317".into()),
                    http: Some("http://telemetry-otlp.kyma-system:4318".into()),
                }),
                ..GatewayEndpoints::default()
            }
        );
    }

    /// Scenario: overrides YAML with every switch Kyma knows, with none, with other keys only, with an
    /// empty or unknown log level, and broken.
    /// Guarantees: the log level and each pause switch are read; absent or empty means nothing is
    /// paused and no level is set; an unknown level and broken YAML are errors.
    #[test]
    fn overrides_read_like_kyma() {
        let o = Overrides::parse(
            "global:\n  logLevel: debug\ntracing:\n  paused: true\notlpGateway:\n  paused: true\ntelemetry:\n  paused: true\nlogging:\n  paused: true\n",
        )
        .unwrap();
        assert_eq!(
            o,
            Overrides {
                log_level: Some(LogLevel::Debug),
                tracing_paused: true,
                otlp_gateway_paused: true,
                telemetry_paused: true
            }
        );
        assert_eq!(Overrides::parse("global: {logLevel: ''}").unwrap(), Overrides::default());
        assert!(Overrides::parse("global: {logLevel: verbose}").unwrap_err().to_string().contains("verbose"));
        assert_eq!(Overrides::parse("").unwrap(), Overrides::default());
        assert_eq!(Overrides::parse("metrics: {paused: true}").unwrap(), Overrides::default());
        assert!(Overrides::parse("tracing: [").is_err());
    }
}
