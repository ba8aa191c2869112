use std::path::Path;

use super::*;
use crate::load::Objects;

const NOW: i64 = 1_800_000_000;

fn resolve_yaml(yaml: &str) -> Resolution {
    let mut objects = Objects::default();
    objects.add_text(Path::new("test.yaml"), yaml).unwrap();
    assert!(objects.broken_pipelines.is_empty(), "{:?}", objects.broken_pipelines);
    resolve(&objects.pipelines, &SecretStore::new(&objects.secrets), options(7))
}

/// Version `version` at a fixed time (2027-01-15), with Kyma's limit.
fn options(version: u64) -> ResolveOptions {
    ResolveOptions { version, now: NOW, max_pipelines: Some(DEFAULT_MAX_PIPELINES) }
}

fn only_error(yaml: &str) -> PipelineError {
    let r = resolve_yaml(yaml);
    assert_eq!(r.statuses.len(), 1);
    r.statuses[0].result.clone().unwrap_err()
}

fn pipeline(output: &str) -> String {
    format!(
        "apiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata:\n  name: backend\nspec:\n  output:\n    otlp:\n{}",
        output.lines().map(|l| format!("      {l}\n")).collect::<String>()
    )
}

/// Scenario: Kyma's documented example with an endpoint, basic auth and a header from a Secret.
/// Guarantees: it resolves; defaults (grpc, gzip, TLS) apply; the secret values land in headers.
#[test]
fn kyma_example_with_secrets_resolves() {
    let yaml = r#"
apiVersion: telemetry.kyma-project.io/v1beta1
kind: TracePipeline
metadata:
  name: backend
spec:
  output:
    otlp:
      endpoint:
        valueFrom:
          secretKeyRef: {name: backend, namespace: default, key: endpoint}
      authentication:
        basic:
          user: {valueFrom: {secretKeyRef: {name: backend, namespace: default, key: user}}}
          password: {valueFrom: {secretKeyRef: {name: backend, namespace: default, key: password}}}
      headers:
        - name: Authorization-Token
          prefix: Bearer
          valueFrom: {secretKeyRef: {name: backend, namespace: default, key: token}}
---
apiVersion: v1
kind: Secret
metadata: {name: backend, namespace: default}
data:
  endpoint: b3RlbC5leGFtcGxlLmNvbTo0MzE3   # otel.example.com:4317
  user: dXNlcg==                          # user
stringData:
  password: pass
  token: abc
"#;
    let r = resolve_yaml(yaml);
    assert_eq!(r.statuses, vec![PipelineStatus { name: "backend".into(), result: Ok(Generated::default()) }]);
    let p = &r.snapshot.pipelines[0];
    assert_eq!(r.snapshot.version, 7);
    assert_eq!(p.output.protocol, Protocol::Grpc);
    assert_eq!(p.output.compression, Compression::Gzip);
    assert_eq!(p.output.url, "https://otel.example.com:4317");
    assert!(!p.output.tls.insecure);
    let headers: Vec<(&str, &str)> = p.output.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(headers, vec![("Authorization", "Basic dXNlcjpwYXNz"), ("Authorization-Token", "Bearer abc")]);
    assert_eq!(p.exporter_id(), "otlp_grpc/tracepipeline-backend");
}

/// Scenario: HTTP endpoints with and without `path`, and a plain-text gRPC endpoint.
/// Guarantees: `/v1/traces` is appended unless `path` replaces it (query kept); `http://` implies insecure.
#[test]
fn endpoint_urls_follow_kyma() {
    let http = resolve_yaml(&pipeline("protocol: http\nendpoint: {value: 'https://b.example:4318/prefix/'}"));
    assert_eq!(http.snapshot.pipelines[0].output.url, "https://b.example:4318/prefix/v1/traces");
    let path = resolve_yaml(&pipeline(
        "protocol: http\nendpoint: {value: 'http://b:4318'}\npath: /custom/traces?x=1",
    ));
    let out = &path.snapshot.pipelines[0].output;
    assert_eq!(out.url, "http://b:4318/custom/traces?x=1");
    assert!(out.tls.insecure);
    let grpc = resolve_yaml(&pipeline("endpoint: {value: 'http://10.0.0.1:4317'}"));
    assert_eq!(grpc.snapshot.pipelines[0].output.url, "http://10.0.0.1:4317");
    let insecure = resolve_yaml(&pipeline("endpoint: {value: 'collector.ns:4317'}\ntls: {insecure: true}"));
    assert_eq!(insecure.snapshot.pipelines[0].output.url, "http://collector.ns:4317");
}

/// Scenario: each endpoint rule Kyma enforces is broken once.
/// Guarantees: `EndpointInvalid` on the endpoint field with Kyma's message.
#[test]
fn endpoint_rules() {
    for (output, message) in [
        ("endpoint: {value: 'collector.ns'}", "missing port"),
        ("endpoint: {value: 'https://collector.ns:4317/v1'}", "gRPC endpoints cannot contain paths"),
        ("protocol: http\nendpoint: {value: 'collector.ns:4318'}", "missing or unsupported protocol scheme"),
        ("protocol: http\nendpoint: {value: 'ftp://collector.ns'}", "missing or unsupported protocol scheme"),
    ] {
        let e = only_error(&pipeline(output));
        assert_eq!(e.reason, Reason::EndpointInvalid, "{output}");
        assert_eq!(e.field, "spec.output.otlp.endpoint");
        assert_eq!(e.message, format!("OTLP output endpoint invalid: {message}"), "{output}");
    }
}

/// Scenario: the CEL rules of the CRD are violated one at a time.
/// Guarantees: `SpecInvalid` naming the field and Kyma's message.
#[test]
fn cel_rules() {
    for (output, field, message) in [
        (
            "endpoint: {value: x, valueFrom: {secretKeyRef: {name: a, namespace: b, key: c}}}",
            "spec.output.otlp.endpoint",
            "Only one of 'value' or 'valueFrom' can be set",
        ),
        ("endpoint: {}", "spec.output.otlp.endpoint", "'endpoint' must have 'value' or 'valueFrom' set"),
        (
            "endpoint: {value: 'c:4317'}\npath: /x",
            "spec.output.otlp.path",
            "Path is only available with HTTP protocol",
        ),
        (
            "endpoint: {value: 'c:4317'}\ntls: {cert: {value: x}}",
            "spec.output.otlp.tls",
            "Can define either both 'cert' and 'key', or neither",
        ),
        (
            "endpoint: {value: 'c:4317'}\nheaders: [{name: a}]",
            "spec.output.otlp.headers[0]",
            "Header must have 'value' or 'valueFrom' set",
        ),
        (
            "endpoint: {value: 'c:4317'}\nauthentication: {basic: {user: {value: u}, password: {}}}",
            "spec.output.otlp.authentication.basic.password",
            "'password' must have 'value' or 'valueFrom' set",
        ),
        (
            "endpoint: {valueFrom: {secretKeyRef: {name: a, key: c}}}",
            "spec.output.otlp.endpoint.valueFrom.secretKeyRef",
            "Secret reference is missing field/s: namespace",
        ),
        (
            "protocol: udp\nendpoint: {value: 'c:4317'}",
            "spec.output.otlp.protocol",
            "Unsupported value: \"udp\": supported values: \"grpc\", \"http\"",
        ),
    ] {
        let e = only_error(&pipeline(output));
        assert_eq!(
            (e.reason, e.field.as_str(), e.message.as_str()),
            (Reason::SpecInvalid, field, message),
            "{output}"
        );
    }
}

/// Scenario: a referenced Secret, or one of its keys, does not exist.
/// Guarantees: `ReferencedSecretMissing` with Kyma's message and no secret value in it.
#[test]
fn missing_secret_and_key() {
    let e =
        only_error(&pipeline("endpoint: {valueFrom: {secretKeyRef: {name: gone, namespace: ns, key: k}}}"));
    assert_eq!(e.reason, Reason::ReferencedSecretMissing);
    assert_eq!(e.message, "One or more referenced Secrets are missing: Secret 'gone' of Namespace 'ns'");
    let yaml = format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: ns}}\nstringData: {{other: topsecret}}\n",
        pipeline("endpoint: {valueFrom: {secretKeyRef: {name: s, namespace: ns, key: k}}}")
    );
    let e = only_error(&yaml);
    assert_eq!(e.reason, Reason::ReferencedSecretMissing);
    assert!(e.message.contains("Key 'k' in Secret 's' of Namespace 'ns'"), "{}", e.message);
    assert!(!e.message.contains("topsecret"));
}

/// Scenario: one valid and one broken pipeline in the same file.
/// Guarantees: the valid one is in the snapshot; the broken one is reported by name.
#[test]
fn valid_pipelines_survive_broken_ones() {
    let yaml = format!(
        "{}---\n{}",
        pipeline("endpoint: {value: 'a:4317'}").replace("name: backend", "name: good"),
        pipeline("endpoint: {value: 'a'}").replace("name: backend", "name: bad")
    );
    let r = resolve_yaml(&yaml);
    assert_eq!(r.snapshot.pipelines.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["good"]);
    assert_eq!(r.statuses[0].name, "bad");
    assert_eq!(r.statuses[0].result.as_ref().unwrap_err().reason, Reason::EndpointInvalid);
}

/// Scenario: v1alpha1 objects, which lack `compression`.
/// Guarantees: accepted without it; rejected with it.
#[test]
fn v1alpha1_is_served() {
    let yaml = pipeline("endpoint: {value: 'a:4317'}").replace("v1beta1", "v1alpha1");
    assert!(resolve_yaml(&yaml).statuses[0].result.is_ok());
    let with = pipeline("endpoint: {value: 'a:4317'}\ncompression: zstd").replace("v1beta1", "v1alpha1");
    assert_eq!(only_error(&with).field, "spec.output.otlp.compression");
}

/// Scenario: a misspelled field in the spec.
/// Guarantees: the document is reported with the path of the unknown field, not silently ignored.
#[test]
fn unknown_fields_are_reported_with_their_path() {
    let yaml = pipeline("endpoint: {value: 'a:4317'}\nprotocoll: http");
    let mut objects = Objects::default();
    objects.add_text(Path::new("p.yaml"), &yaml).unwrap();
    assert_eq!(objects.broken_pipelines.len(), 1);
    let broken = &objects.broken_pipelines[0];
    assert_eq!(broken.name, "backend");
    assert_eq!(broken.field, "spec.output.otlp.protocoll");
    assert!(broken.message.contains("protocoll"), "{}", broken.message);
}

fn self_signed(ca: bool, not_after: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["backend.example".into()]).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_after - 400 * DAY_SECONDS).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

const DAY_SECONDS: i64 = 24 * 3600;

/// A PEM as users paste it into a YAML value: one line with literal `\n`.
fn one_line(pem: &str) -> String {
    pem.trim_end().replace('\n', "\\n")
}

fn mtls_pipeline(cert: &str, key: &str) -> String {
    pipeline(&format!(
        "endpoint: {{value: 'a:4317'}}\ntls:\n  cert: {{value: \"{}\"}}\n  key: {{value: \"{}\"}}",
        one_line(cert),
        one_line(key)
    ))
}

/// Scenario: TLS material given inline with literal `\n`, as users paste it.
/// Guarantees: newlines are restored, the pair is accepted, and the key is redacted in Debug output.
#[test]
fn tls_pem_newlines() {
    let (cert, key) = self_signed(false, NOW + 100 * DAY_SECONDS);
    let r = resolve_yaml(&mtls_pipeline(&cert, &key));
    assert!(r.statuses[0].result.is_ok(), "{:?}", r.statuses);
    let tls = &r.snapshot.pipelines[0].output.tls;
    assert_eq!(tls.cert_pem.as_deref().map(str::trim_end), Some(cert.trim_end()));
    assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
}

/// Scenario: garbage instead of a certificate, an expired certificate, one expiring in three days,
/// and a CA bundle holding a leaf certificate.
/// Guarantees: Kyma's reasons (TLSConfigurationInvalid, TLSCertificateExpired), the about-to-expire
/// pipeline still runs with a warning, and the next check is scheduled at its expiry.
#[test]
fn tls_reasons_and_expiry() {
    let (cert, key) = self_signed(false, NOW + 100 * DAY_SECONDS);
    let garbage =
        only_error(&mtls_pipeline("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----", &key));
    assert_eq!(garbage.reason, Reason::TlsConfigurationInvalid, "{garbage}");
    assert!(garbage.message.starts_with("TLS configuration invalid: "), "{garbage}");

    let (old, old_key) = self_signed(false, NOW - 2 * DAY_SECONDS);
    let expired = only_error(&mtls_pipeline(&old, &old_key));
    assert_eq!(expired.reason, Reason::TlsCertificateExpired);
    assert_eq!(expired.condition_message(), "TLS certificate expired on 2027-01-13");

    let (soon, soon_key) = self_signed(false, NOW + 3 * DAY_SECONDS);
    let r = resolve_yaml(&mtls_pipeline(&soon, &soon_key));
    let generated = r.statuses[0].result.clone().unwrap();
    let warning = generated.expiry_warning(NOW).expect("about to expire");
    assert_eq!(
        warning.warning(),
        "TLS certificate is about to expire, configured certificate is valid until 2027-01-18"
    );
    assert_eq!(r.snapshot.pipelines.len(), 1);
    assert_eq!(r.next_check, Some(NOW + 3 * DAY_SECONDS + 1));

    let far = resolve_yaml(&mtls_pipeline(&cert, &key));
    assert_eq!(far.next_check, Some(NOW + 100 * DAY_SECONDS - 14 * DAY_SECONDS), "warn two weeks ahead");

    let leaf_as_ca = only_error(&pipeline(&format!(
        "endpoint: {{value: 'a:4317'}}\ntls:\n  ca: {{value: \"{}\"}}",
        one_line(&cert)
    )));
    assert_eq!(leaf_as_ca.reason, Reason::TlsConfigurationInvalid);
    assert_eq!(leaf_as_ca.message, "TLS configuration invalid: not a CA certificate");
}

/// Scenario: seven valid pipelines created at different times, one broken, with Kyma's limit of five.
/// Guarantees: the five oldest run whatever their names; the others get MaxPipelinesExceeded; the
/// broken one takes no slot; without a limit all seven run.
#[test]
fn the_oldest_pipelines_win() {
    let mut yaml = String::new();
    // Names sort opposite to age, so name order alone would pick the wrong five.
    for (i, name) in ["g", "f", "e", "d", "c", "b", "a"].iter().enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {{name: {name}, creationTimestamp: '2026-11-0{}T10:00:00Z'}}\nspec: {{output: {{otlp: {{endpoint: {{value: 'b:4317'}}}}}}}}\n",
            i + 1
        ));
    }
    yaml.push_str("---\napiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {name: broken, creationTimestamp: '2020-01-01T00:00:00Z'}\nspec: {output: {otlp: {endpoint: {value: 'no-port'}}}}\n");
    let r = resolve_yaml(&yaml);
    let running: Vec<&str> = r.snapshot.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(running, vec!["c", "d", "e", "f", "g"]);
    let reasons: Vec<(&str, Option<Reason>)> =
        r.statuses.iter().map(|s| (s.name.as_str(), s.result.as_ref().err().map(|e| e.reason))).collect();
    assert_eq!(reasons[0], ("a", Some(Reason::MaxPipelinesExceeded)));
    assert_eq!(reasons[1], ("b", Some(Reason::MaxPipelinesExceeded)));
    assert_eq!(reasons[2], ("broken", Some(Reason::EndpointInvalid)));

    let mut objects = Objects::default();
    objects.add_text(Path::new("t.yaml"), &yaml).unwrap();
    let unlimited = resolve(
        &objects.pipelines,
        &SecretStore::new(&objects.secrets),
        ResolveOptions { max_pipelines: None, ..options(1) },
    );
    assert_eq!(unlimited.snapshot.pipelines.len(), 7);
}

#[test]
fn explicit_port_reads_the_authority() {
    assert_eq!(explicit_port("https://a:443"), Some(443));
    assert_eq!(explicit_port("https://a"), None);
    assert_eq!(explicit_port("a:4317"), Some(4317));
    assert_eq!(explicit_port("http://[::1]:4317/x"), Some(4317));
    assert_eq!(explicit_port("http://[::1]/x"), None);
    assert_eq!(explicit_port("http://u:p@h:1"), Some(1));
}

/// Scenario: pipelines with valid and invalid OTTL, an invalid OTTL spec in the oldest of six under
/// Kyma's limit of five, and one spec with both an invalid transform and an invalid filter.
/// Guarantees: valid OTTL runs and reaches the snapshot; invalid OTTL is `OTTLSpecInvalid` with Kyma's
/// message naming the spec; it is checked after the pipeline limit, so it keeps its slot, and
/// transforms are checked before filters, as Kyma's reconciler orders them.
#[test]
fn ottl_is_checked_last_with_kymas_message() {
    let doc = |name: &str, created: &str, processing: &str| {
        format!(
            "---\napiVersion: telemetry.kyma-project.io/v1beta1\nkind: TracePipeline\nmetadata: {{name: {name}, creationTimestamp: '{created}'}}\nspec:\n  output: {{otlp: {{endpoint: {{value: 'b:4317'}}}}}}\n{processing}"
        )
    };
    let invalid_filter = "  filter:\n    - conditions: ['attributes[\"foo\"] == \"bar\"']\n";
    let valid = "  transform:\n    - statements: ['set(span.attributes[\"a\"], \"b\") where span.name == \"x\"']\n  filter:\n    - conditions: ['span.name == \"health\"']\n";
    let mut yaml = doc("oldest", "2026-01-01T00:00:00Z", invalid_filter);
    for (i, name) in ["p1", "p2", "p3", "p4", "p5"].iter().enumerate() {
        yaml += &doc(name, &format!("2026-02-0{}T00:00:00Z", i + 1), if i == 0 { valid } else { "" });
    }
    let r = resolve_yaml(&yaml);
    let status = |name: &str| r.statuses.iter().find(|s| s.name == name).unwrap().result.clone();
    let err = status("oldest").unwrap_err();
    assert_eq!(err.reason, Reason::OttlSpecInvalid);
    assert_eq!(err.reason.as_str(), "OTTLSpecInvalid");
    assert_eq!(err.field, "spec.filter[0]");
    assert!(
        err.condition_message().starts_with("OTTL specification is invalid, invalid FilterSpec: "),
        "{err}"
    );
    assert!(err.condition_message().contains("each path must start with a context name"), "{err}");
    assert!(err.condition_message().ends_with("see troubleshooting: https://kyma-project.io/external-content/telemetry-manager/docs/user/troubleshooting.html#ottl-spec-invalid-with-unspecific-error-message"));
    assert_eq!(
        status("p5").unwrap_err().reason,
        Reason::MaxPipelinesExceeded,
        "the invalid spec kept its slot"
    );
    let running: Vec<&str> = r.snapshot.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(running, ["p1", "p2", "p3", "p4"]);
    let p1 = &r.snapshot.pipelines[0];
    assert_eq!((p1.transform.len(), p1.filter.len()), (1, 1), "the snapshot carries the processing");

    let both = doc(
        "both",
        "2026-01-01T00:00:00Z",
        "  transform:\n    - statements: ['sset(span.name, \"x\")']\n  filter:\n    - conditions: ['attributes[\"foo\"] == \"bar\"']\n",
    );
    let err = only_error(&both);
    assert_eq!(err.field, "spec.transform[0]");
    assert!(
        err.message.contains("invalid TransformSpec: ")
            && err.message.contains("undefined function \"sset\""),
        "{err}"
    );
}
