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
/// Guarantees: `/v1/traces` is appended unless `path` replaces it (its query kept); `http://` implies
/// insecure.
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

/// Scenario: each of Kyma's `compression` values, and none.
/// Guarantees: every value runs (snappy included), an absent one is gzip, as Kyma's config builder
/// fills it in.
#[test]
fn every_compression_value_runs() {
    for (value, want) in [
        (None, Compression::Gzip),
        (Some("gzip"), Compression::Gzip),
        (Some("none"), Compression::None),
        (Some("zstd"), Compression::Zstd),
        (Some("snappy"), Compression::Snappy),
    ] {
        let line = value.map_or(String::new(), |v| format!("\ncompression: {v}"));
        let r = resolve_yaml(&pipeline(&format!("endpoint: {{value: 'a:4317'}}{line}")));
        assert_eq!(r.snapshot.pipelines[0].output.compression, want, "{value:?}");
    }
}

/// Scenario: header prefixes with and without surrounding spaces, an empty and a blank prefix.
/// Guarantees: as Kyma's `prefixHeaderValue`: the prefix trimmed and joined to the value with exactly
/// one space (`"Bearer "` + `tok` is `Bearer tok`); an empty or blank prefix leaves the value alone.
#[test]
fn header_prefix_is_joined_with_one_space() {
    let r = resolve_yaml(&pipeline(
        "endpoint: {value: 'a:4317'}\nheaders:\n- {name: A, prefix: 'Bearer ', value: tok}\n- {name: B, prefix: '  Token', value: ' v'}\n- {name: C, prefix: '', value: plain}\n- {name: D, prefix: '   ', value: plain}",
    ));
    let headers: Vec<(&str, &str)> =
        r.snapshot.pipelines[0].output.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(headers, vec![("A", "Bearer tok"), ("B", "Token  v"), ("C", "plain"), ("D", "plain")]);
}

/// Scenario: basic auth together with a custom `Authorization` header (in another case), and two
/// custom headers of the same name.
/// Guarantees: as in Kyma's header map, the custom header replaces the basic-auth one instead of
/// being sent beside it, and the later of two same-named headers wins.
#[test]
fn a_custom_authorization_header_replaces_basic_auth() {
    let r = resolve_yaml(&pipeline(
        "endpoint: {value: 'a:4317'}\nauthentication: {basic: {user: {value: u}, password: {value: p}}}\nheaders:\n- {name: authorization, prefix: Bearer, value: tok}\n- {name: X-Tenant, value: one}\n- {name: X-Tenant, value: two}",
    ));
    let headers: Vec<(&str, &str)> =
        r.snapshot.pipelines[0].output.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(headers, vec![("authorization", "Bearer tok"), ("X-Tenant", "two")]);
}

/// Scenario: HTTP endpoints and `path` values that need Go's `path.Join` cleaning, queries on either
/// side, and endpoints without `path` (with a trailing `/`, with a query).
/// Guarantees: the URL Kyma's `resolveEndpointURL` and the Collector's otlphttp exporter produce:
/// with `path`, the two paths joined and cleaned (`//`, `.`, `..`, trailing `/`) and `path`'s query
/// replacing the endpoint's; without, `v1/traces` appended to the endpoint as a string.
#[test]
fn http_paths_are_joined_as_go_joins_them() {
    for (endpoint, path, want) in [
        ("http://b:4318", Some("/custom/traces?x=1"), "http://b:4318/custom/traces?x=1"),
        ("http://b:4318/base/", Some("//v2//traces/"), "http://b:4318/base/v2/traces"),
        ("http://b:4318/base/sub", Some("../other/./traces"), "http://b:4318/base/other/traces"),
        ("http://b:4318/a", Some("/../../x"), "http://b:4318/x"),
        ("http://b:4318/a?keep=no", Some("/t"), "http://b:4318/a/t"),
        ("http://b:4318/a?old=1", Some("/t?new=2#frag"), "http://b:4318/a/t?new=2"),
        ("https://b.example:4318/prefix/", None, "https://b.example:4318/prefix/v1/traces"),
        ("https://b.example/prefix", None, "https://b.example/prefix/v1/traces"),
        ("http://b:4318/x?q=1", None, "http://b:4318/x?q=1/v1/traces"),
    ] {
        let path_line = path.map_or(String::new(), |p| format!("\npath: '{p}'"));
        let r =
            resolve_yaml(&pipeline(&format!("protocol: http\nendpoint: {{value: '{endpoint}'}}{path_line}")));
        assert_eq!(r.snapshot.pipelines[0].output.url, want, "{endpoint} + {path:?}");
    }
    assert_eq!(go_path_clean("a/../../b"), "../b");
    assert_eq!(go_path_clean("/.."), "/");
    assert_eq!(go_path_join(&["", ""]), "");
}

/// Scenario: endpoints whose scheme separator is mistyped (`http//`, `https:/`, `http:/`), beside
/// host names that merely start with `http` and a host named `http` with a port.
/// Guarantees: the mistyped ones are `EndpointInvalid` naming the malformed scheme and the fix,
/// instead of Kyma's "missing port"; the others are not mistaken for it.
#[test]
fn a_malformed_scheme_is_reported_as_such() {
    for (endpoint, written) in
        [("http//collector:4317", "http//"), ("https:/collector:4317", "https:/"), ("HTTP:/c:4317", "HTTP:/")]
    {
        for protocol in ["grpc", "http"] {
            let e =
                only_error(&pipeline(&format!("protocol: {protocol}\nendpoint: {{value: '{endpoint}'}}")));
            assert_eq!(e.reason, Reason::EndpointInvalid);
            assert_eq!(
                e.message,
                format!(
                    "OTLP output endpoint invalid: malformed scheme '{written}' in '{endpoint}': write 'http://' or 'https://' (or no scheme: host:port)"
                ),
                "{endpoint} over {protocol}"
            );
        }
    }
    for fine in ["httpbin.example:4317", "http:4317", "https-proxy:4317"] {
        let r = resolve_yaml(&pipeline(&format!("endpoint: {{value: '{fine}'}}")));
        assert!(r.statuses[0].result.is_ok(), "{fine}: {:?}", r.statuses[0].result);
    }
}

/// Scenario: OAuth2 with the three values from a Secret (spelled as Kyma's user guide spells them,
/// `clientId` and `tokenUrl`), scopes and params, over gRPC with TLS and over HTTP in plain text.
/// Guarantees: the pipeline runs with the resolved token URL, credentials, scopes and params; no
/// `Authorization` header is added (the token is fetched at run time); OAuth2 is no longer
/// `UnsupportedFeature`.
#[test]
fn oauth2_resolves() {
    let yaml = r#"
apiVersion: telemetry.kyma-project.io/v1beta1
kind: TracePipeline
metadata: {name: backend}
spec:
  output:
    otlp:
      endpoint: {value: 'backend.example:4317'}
      authentication:
        oauth2:
          clientId: {valueFrom: {secretKeyRef: {name: backend, namespace: default, key: clientId}}}
          clientSecret: {valueFrom: {secretKeyRef: {name: backend, namespace: default, key: clientSecret}}}
          tokenUrl: {valueFrom: {secretKeyRef: {name: backend, namespace: default, key: tokenUrl}}}
          scopes: [traces.write]
          params: {grant_type: client_credentials, audience: otlp}
---
apiVersion: v1
kind: Secret
metadata: {name: backend, namespace: default}
stringData: {clientId: id, clientSecret: s3cret, tokenUrl: 'http://auth.example/oauth2/token'}
"#;
    let r = resolve_yaml(yaml);
    assert!(r.statuses[0].result.is_ok(), "{:?}", r.statuses[0]);
    let out = &r.snapshot.pipelines[0].output;
    let o = out.oauth2.as_ref().unwrap();
    assert_eq!(o.token_url, "http://auth.example/oauth2/token");
    assert_eq!((o.client_id.expose(), o.client_secret.expose()), ("id", "s3cret"));
    assert_eq!(o.scopes, ["traces.write"]);
    assert_eq!(o.params["audience"], "otlp");
    assert!(out.headers.is_empty());
    let http = resolve_yaml(&pipeline(
        "protocol: http\nendpoint: {value: 'http://b:4318'}\nauthentication: {oauth2: {tokenURL: {value: 'http://a/t'}, clientID: {value: i}, clientSecret: {value: s}}}",
    ));
    assert!(http.statuses[0].result.is_ok(), "{:?}", http.statuses[0]);
}

/// Scenario: each of Kyma's OAuth2 rules broken once: gRPC with `tls.insecure` (CEL), gRPC with an
/// `http://` endpoint, HTTP with an `http://` endpoint and a CA, an inline token URL that is not a
/// URL, a missing client secret.
/// Guarantees: Kyma's reason, field and message for each.
#[test]
fn oauth2_rules_are_kymas() {
    let oauth = "authentication: {oauth2: {tokenURL: {value: 'http://a/t'}, clientID: {value: i}, clientSecret: {value: s}}}";
    for (output, reason, field, message) in [
        (
            format!("endpoint: {{value: 'b:4317'}}\ntls: {{insecure: true}}\n{oauth}"),
            Reason::SpecInvalid,
            "spec.output.otlp",
            "OAuth2 authentication requires TLS when using gRPC protocol",
        ),
        (
            format!("endpoint: {{value: 'http://b:4317'}}\n{oauth}"),
            Reason::EndpointInvalid,
            "spec.output.otlp.endpoint",
            "OTLP output endpoint invalid: OAuth2 requires TLS when using gRPC protocol: HTTP scheme not allowed",
        ),
        (
            format!("protocol: http\nendpoint: {{value: 'http://b:4318'}}\ntls: {{ca: {{value: x}}}}\n{oauth}"),
            Reason::EndpointInvalid,
            "spec.output.otlp.endpoint",
            "OTLP output endpoint invalid: HTTP scheme with TLS not allowed",
        ),
        (
            "endpoint: {value: 'b:4317'}\nauthentication: {oauth2: {tokenURL: {value: 'not a url'}, clientID: {value: i}, clientSecret: {value: s}}}".to_string(),
            Reason::SpecInvalid,
            "spec.output.otlp.authentication.oauth2.tokenURL",
            "'tokenURL' must be a valid URL",
        ),
        (
            "endpoint: {value: 'b:4317'}\nauthentication: {oauth2: {tokenURL: {value: 'http://a/t'}, clientID: {value: i}}}".to_string(),
            Reason::SpecInvalid,
            "spec.output.otlp.authentication.oauth2",
            "'clientSecret' must have 'value' or 'valueFrom' set",
        ),
    ] {
        let e = only_error(&pipeline(&output));
        assert_eq!((e.reason, e.field.as_str(), e.message.as_str()), (reason, field, message), "{output}");
    }
}

/// The marker planted in Secret values: it must never show in a verdict.
const MARKER: &str = "PLANTEDMARKER";

/// A pipeline reading `key` of Secret `s` for the endpoint, plus `extra` output fields, and that
/// Secret holding `values`.
fn with_secret(protocol: &str, extra: &str, values: &[(&str, &str)]) -> String {
    let data: String = values
        .iter()
        .map(|(k, v)| format!("  {k}: {}\n", base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: default}}\ndata:\n{data}",
        pipeline(&format!(
            "protocol: {protocol}\nendpoint: {{valueFrom: {{secretKeyRef: {{name: s, namespace: default, key: endpoint}}}}}}\n{extra}"
        ))
    )
}

/// Scenario: header values from a Secret and inline holding CR, LF, CRLF with a second header line,
/// NUL and DEL, with and without a prefix, over both protocols.
/// Guarantees: `HeaderInvalid` on the header's field, naming the header and (for a Secret) the key,
/// never the value; a tab and non-ASCII text are fine, as in HTTP.
#[test]
fn header_values_http_refuses_are_header_invalid() {
    let from_secret = "headers:\n  - {name: X-Api-Key, prefix: Bearer, valueFrom: {secretKeyRef: {name: s, namespace: default, key: token}}}";
    for protocol in ["grpc", "http"] {
        let endpoint = if protocol == "grpc" { "backend:4317" } else { "http://backend:4318" };
        for (bad, what) in [
            (format!("{MARKER}\r"), "a line break (CR or LF)"),
            (format!("{MARKER}\n"), "a line break (CR or LF)"),
            (format!("{MARKER}\r\nX-Injected: 1"), "a line break (CR or LF)"),
            (format!("{MARKER}\0"), "the control character 0x00"),
            (format!("{MARKER}\x7f"), "the control character 0x7F"),
        ] {
            let e =
                only_error(&with_secret(protocol, from_secret, &[("endpoint", endpoint), ("token", &bad)]));
            assert_eq!(e.reason, Reason::HeaderInvalid, "{bad:?}");
            assert_eq!(e.field, "spec.output.otlp.headers[0]");
            assert_eq!(
                e.message,
                format!(
                    "Header 'X-Api-Key' invalid: the value of Key 'token' in Secret 's' of Namespace 'default' (with its prefix) contains {what}, which HTTP does not allow in a header value"
                )
            );
            assert!(!format!("{e:?}").contains(MARKER), "{e:?}");
        }
        let inline = only_error(&with_secret(
            protocol,
            "headers: [{name: X-Inline, value: \"a\\nb\"}]",
            &[("endpoint", endpoint)],
        ));
        assert_eq!(
            (inline.reason, inline.field.as_str()),
            (Reason::HeaderInvalid, "spec.output.otlp.headers[0]")
        );
        assert!(inline.message.starts_with("Header 'X-Inline' invalid: its value"), "{}", inline.message);
        let fine = with_secret(protocol, from_secret, &[("endpoint", endpoint), ("token", "a\tb ünïcode")]);
        assert!(resolve_yaml(&fine).statuses[0].result.is_ok());
    }
}

/// Scenario: a header name with a space, and one with a colon.
/// Guarantees: `SpecInvalid` on the name's field (the name is in the spec, so it is quoted).
#[test]
fn header_names_http_refuses_are_spec_invalid() {
    for name in ["X Api", "X:Api"] {
        let e = only_error(&pipeline(&format!(
            "endpoint: {{value: 'b:4317'}}\nheaders: [{{name: '{name}', value: v}}]"
        )));
        assert_eq!((e.reason, e.field.as_str()), (Reason::SpecInvalid, "spec.output.otlp.headers[0].name"));
        assert_eq!(e.message, format!("Header name '{name}' is not a valid HTTP header name"));
    }
}

/// Scenario: Kyma's precedence around the new check: a missing Secret key, an invalid endpoint and an
/// invalid header value in the same pipeline, then only the last two.
/// Guarantees: `ReferencedSecretMissing` first, then `EndpointInvalid`, then `HeaderInvalid`.
#[test]
fn header_invalid_comes_after_secrets_and_endpoint() {
    let headers = "headers:\n  - {name: A, valueFrom: {secretKeyRef: {name: s, namespace: default, key: token}}}\n  - {name: B, valueFrom: {secretKeyRef: {name: s, namespace: default, key: gone}}}";
    let e = only_error(&with_secret("grpc", headers, &[("endpoint", "nohost"), ("token", "x\ny")]));
    assert_eq!(e.reason, Reason::ReferencedSecretMissing);
    let one = "headers: [{name: A, valueFrom: {secretKeyRef: {name: s, namespace: default, key: token}}}]";
    let e = only_error(&with_secret("grpc", one, &[("endpoint", "nohost"), ("token", "x\ny")]));
    assert_eq!(e.reason, Reason::EndpointInvalid);
    let e = only_error(&with_secret("grpc", one, &[("endpoint", "b:4317"), ("token", "x\ny")]));
    assert_eq!(e.reason, Reason::HeaderInvalid);
}

/// Scenario: endpoints from a Secret broken in every way the validator knows (no port, a path on
/// gRPC, a mistyped scheme, a bad port, a space, a line break, a control character, no scheme over
/// HTTP), and a mistake written inline.
/// Guarantees: `EndpointInvalid` naming the Secret key and the rule, never the value; inline values
/// are quoted as before (they are in the spec anyway).
#[test]
fn an_invalid_endpoint_from_a_secret_is_never_quoted() {
    let named = "the value of Key 'endpoint' in Secret 's' of Namespace 'default'";
    for (protocol, endpoint, expected) in [
        ("grpc", format!("{MARKER}.example"), "missing port".to_string()),
        ("grpc", format!("https://{MARKER}:4317/v1"), "gRPC endpoints cannot contain paths".into()),
        (
            "grpc",
            format!("http//{MARKER}:4317"),
            format!("malformed scheme in {named}: write 'http://' or 'https://' (or no scheme: host:port)"),
        ),
        ("grpc", format!("{MARKER}:99999"), format!("failed to parse {named} as a URL: invalid port number")),
        (
            "grpc",
            format!("{MARKER} x:4317"),
            format!("failed to parse {named} as a URL: invalid domain character"),
        ),
        (
            "http",
            format!("http://{MARKER}:4318/a\nb"),
            format!("{named} is not a valid HTTP URI: invalid uri character"),
        ),
        (
            "http",
            format!("http://{MARKER}:4318/\u{1}"),
            format!("{named} is not a valid HTTP URI: invalid uri character"),
        ),
        ("http", format!("{MARKER}:4318"), "missing or unsupported protocol scheme".into()),
    ] {
        let e = only_error(&with_secret(protocol, "", &[("endpoint", &endpoint)]));
        assert_eq!(e.reason, Reason::EndpointInvalid, "{endpoint:?}");
        assert_eq!(e.message, format!("OTLP output endpoint invalid: {expected}"), "{endpoint:?}");
        assert!(!format!("{e:?}").contains(MARKER), "{e:?}");
    }
    let inline = only_error(&pipeline("endpoint: {value: 'http//collector:4317'}"));
    assert!(inline.message.contains("'http//collector:4317'"), "{}", inline.message);
}

/// Scenario: an OAuth2 token URL from a Secret that is not a URL, has another scheme, or holds a
/// line break; and a client secret holding a line break.
/// Guarantees: the token URLs are `EndpointInvalid` on the tokenURL field, named by their key and
/// never quoted; the client secret runs (it is sent encoded, never as a raw header value).
#[test]
fn an_invalid_token_url_from_a_secret_is_endpoint_invalid() {
    let oauth = "authentication: {oauth2: {tokenURL: {valueFrom: {secretKeyRef: {name: s, namespace: default, key: url}}}, clientID: {value: i}, clientSecret: {valueFrom: {secretKeyRef: {name: s, namespace: default, key: secret}}}}}";
    for url in [MARKER.to_string(), format!("ftp://{MARKER}/t"), format!("https://{MARKER}/t\r\n")] {
        let yaml = with_secret("grpc", oauth, &[("endpoint", "b:4317"), ("url", &url), ("secret", "s")]);
        let e = only_error(&yaml);
        assert_eq!(e.reason, Reason::EndpointInvalid, "{url:?}");
        assert_eq!(e.field, "spec.output.otlp.authentication.oauth2.tokenURL");
        assert!(
            e.message.starts_with(
                "OAuth2 token URL invalid: the value of Key 'url' in Secret 's' of Namespace 'default' is "
            ),
            "{}",
            e.message
        );
        assert!(!format!("{e:?}").contains(MARKER), "{e:?}");
    }
    let yaml = with_secret(
        "grpc",
        oauth,
        &[("endpoint", "b:4317"), ("url", "https://auth/t"), ("secret", &format!("{MARKER}\r\n"))],
    );
    assert!(resolve_yaml(&yaml).statuses[0].result.is_ok());
}
