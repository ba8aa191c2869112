//! Kyma's Istio noise filter: Envoy spans (span attribute `component = proxy`) that only describe the
//! telemetry system itself, health probes or metric scrapes are dropped; everything else passes.
//!
//! It runs on every request after enrichment (rule 1 reads the resource's `k8s.namespace.name`, which
//! enrichment may have added). A request whose scan saw no `component` key is passed as it is; in one
//! that has the key somewhere, a scope without the encoded key cannot hold a proxy span, so one
//! substring search settles most scopes; a scope is copied only when it loses a span.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem;

use crate::wire::view::{Attributes, field, len_fields};
use crate::wire::{Fields, ResourceSpansView, TraceData};

/// `KeyValue.key = "component"` as encoded: field 1, length 9.
const COMPONENT_KEY_BYTES: &[u8] = b"\x0a\x09component";
/// Telemetry components whose own proxy spans are noise.
const TELEMETRY_SERVICES: [&str; 7] = [
    "telemetry-log-gateway",
    "telemetry-metric-gateway",
    "telemetry-trace-gateway",
    "telemetry-otlp-gateway",
    "telemetry-log-agent",
    "telemetry-metric-agent",
    "telemetry-fluent-bit",
];
/// The resource attribute rule 1 and rule 4 read.
const NAMESPACE: &str = "k8s.namespace.name";

/// Built once: a prebuilt finder is several times cheaper per call than a fresh search.
static COMPONENT_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(COMPONENT_KEY_BYTES));

/// The span attributes the rules read.
#[derive(Debug, Default, PartialEq, Eq)]
struct ProxySpan<'a> {
    component: Option<&'a str>,
    canonical_service: Option<&'a str>,
    method: Option<&'a str>,
    upstream_cluster: Option<&'a str>,
    url: Option<&'a str>,
    user_agent: Option<&'a str>,
}

// === impl ProxySpan ===

impl<'a> ProxySpan<'a> {
    fn read(span: &'a [u8]) -> Self {
        let mut out = Self::default();
        for attribute in Attributes::new(span, field::span::ATTRIBUTES) {
            let slot = match attribute.kv.key {
                "component" => &mut out.component,
                "istio.canonical_service" => &mut out.canonical_service,
                "http.method" => &mut out.method,
                "upstream_cluster.name" => &mut out.upstream_cluster,
                "http.url" => &mut out.url,
                "user_agent" => &mut out.user_agent,
                _ => continue,
            };
            // Like a map: the last value of a key wins.
            *slot = attribute.kv.value.as_str();
        }
        out
    }

    /// Kyma's four rules.
    fn is_noise(&self, namespace: Option<&str>) -> bool {
        if self.component != Some("proxy") {
            return false;
        }
        let outbound = self.upstream_cluster.is_some_and(|c| c.starts_with("outbound|"));
        let inbound = self.upstream_cluster.is_some_and(|c| c.starts_with("inbound|"));
        let telemetry_component = namespace == Some("kyma-system")
            && self.canonical_service.is_some_and(|s| TELEMETRY_SERVICES.contains(&s));
        let to_gateway =
            self.method == Some("POST") && outbound && self.url.is_some_and(is_telemetry_gateway_url);
        let scrape = self.method == Some("GET")
            && inbound
            && self
                .user_agent
                .is_some_and(|ua| ua.starts_with("kyma-otelcol/") || ua.starts_with("vm_promscrape"));
        let probe = namespace == Some("istio-system")
            && self.canonical_service == Some("istio-ingressgateway")
            && self.method == Some("GET")
            && outbound
            && self.url.is_some_and(is_healthz_probe_url);
        telemetry_component || to_gateway || scrape || probe
    }
}

// === free functions ===

/// `^https?://telemetry-otlp(-(logs|metrics|traces))?\.kyma-system(\..*)?:(4317|4318).*`
fn is_telemetry_gateway_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix("telemetry-otlp") else { return false };
    let rest = ["-logs", "-metrics", "-traces"].iter().find_map(|s| rest.strip_prefix(s)).unwrap_or(rest);
    let Some(rest) = rest.strip_prefix(".kyma-system") else { return false };
    let port = |s: &str| s.starts_with(":4317") || s.starts_with(":4318");
    // `(\..*)?` followed by the port: any later `:4317`/`:4318` after a dot also matches.
    port(rest) || (rest.starts_with('.') && (rest.contains(":4317") || rest.contains(":4318")))
}

/// `^https://healthz\..+/healthz/ready`
fn is_healthz_probe_url(url: &str) -> bool {
    url.strip_prefix("https://healthz.")
        .and_then(|rest| rest.get(1..))
        .is_some_and(|rest| rest.contains("/healthz/ready"))
}

/// The resource's `k8s.namespace.name`, from its own bytes and what enrichment appended.
fn namespace<'a>(resource: &'a [u8], added: &'a [u8]) -> Option<&'a str> {
    let mut found = None;
    for part in [resource, added] {
        for attribute in Attributes::new(part, field::resource::ATTRIBUTES) {
            if attribute.kv.key == NAMESPACE {
                found = attribute.kv.value.as_str();
            }
        }
    }
    found
}

/// Whether any span of the resource is an Istio proxy span (`component = proxy`).
pub(crate) fn has_proxy_span(rs: &ResourceSpansView) -> bool {
    rs.scopes.iter().any(|scope| {
        let run = &scope.body[scope.spans_start..scope.spans_end];
        COMPONENT_KEY.find(run).is_some()
            && len_fields(run, field::scope_spans::SPANS).any(|span| {
                COMPONENT_KEY.find(span).is_some() && ProxySpan::read(span).component == Some("proxy")
            })
    })
}

/// Drops noise spans from a request; returns how many.
pub fn drop_noise(data: &mut TraceData) -> usize {
    if data.no_component_key {
        return 0;
    }
    let mut dropped = 0;
    for rs in &mut data.resources {
        if !rs.scopes.iter().any(|s| COMPONENT_KEY.find(&s.body[s.spans_start..s.spans_end]).is_some()) {
            continue;
        }
        let ns = namespace(&rs.resource, &rs.added);
        for scope in &mut rs.scopes {
            let run = &scope.body[scope.spans_start..scope.spans_end];
            if COMPONENT_KEY.find(run).is_none() {
                continue;
            }
            let mut keep: Vec<(usize, usize)> = Vec::with_capacity(scope.count);
            let mut fields = Fields::new(run);
            let mut removed = 0;
            while let Ok(Some(f)) = fields.next_field() {
                // Only a span that carries the `component` key can be a proxy span; skip parsing the rest.
                let span = &run[f.value_start..f.end];
                if COMPONENT_KEY.find(span).is_some() && ProxySpan::read(span).is_noise(ns) {
                    removed += 1;
                } else {
                    keep.push((f.start, f.end));
                }
            }
            if removed == 0 {
                continue;
            }
            let body: &Bytes = &scope.body;
            let mut out = BytesMut::with_capacity(body.len());
            out.extend_from_slice(&body[..scope.spans_start]);
            for (s, e) in &keep {
                out.extend_from_slice(&run[*s..*e]);
            }
            let spans_end = out.len();
            out.extend_from_slice(&body[scope.spans_end..]);
            scope.body = out.freeze();
            scope.spans_end = spans_end;
            scope.count -= removed;
            rs.spans -= removed;
            data.spans -= removed;
            dropped += removed;
        }
    }
    dropped
}

#[cfg(test)]
mod tests;
