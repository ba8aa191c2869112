//! `telemetry-manager`: the control plane. It turns TracePipelines and the Secrets they reference
//! into versioned config snapshots ([`tracegw_contract`]), serves them to every gateway over one
//! authenticated long-lived stream each ([`snapshots`]), keeps the gateway DaemonSet and its
//! Services and RBAC in place ([`gateway`]), and reports each pipeline's conditions ([`conditions`]):
//! whether its configuration was generated, whether the gateways are healthy ([`health`]), and
//! whether spans flow, judged from the gateways' own counters ([`flow`]).
//!
//! [`cluster`] is the in-cluster reconciler; [`local`] runs the same push path from YAML files,
//! without a cluster. [`crd`] defines the `TracePipeline` resource with Kyma's schema; [`webhook`] is
//! its validating admission webhook, whose certificates and configuration [`webhook_cert`] provisions.
//! [`telemetry`] is Kyma's module resource: the cluster-wide enrichment settings and the module status;
//! its overrides ConfigMap can change the manager's log level ([`logging`]).

pub mod cluster;
pub mod conditions;
pub mod crd;
pub mod flow;
pub mod gateway;
pub mod health;
pub mod local;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod secrets;
pub mod snapshots;
pub mod telemetry;
pub mod tls;
pub mod webhook;
pub mod webhook_cert;
