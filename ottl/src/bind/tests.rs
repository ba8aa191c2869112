use super::*;

fn texts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn transform(statements: &[&str], conditions: &[&str]) -> Result<TransformGroup, BindError> {
    bind_transform(&texts(statements), &texts(conditions))
}

/// Scenario: statement groups whose paths name different contexts. Guarantees: the Collector's
/// priority picks the most specific one (span event over span over resource over scope), conditions
/// count too, and a function only a lower context offers moves the group there.
#[test]
fn context_inference_follows_the_collectors_priority() {
    let cases: &[(&[&str], &[&str], Context)] = &[
        (&[r#"set(span.attributes["a"], "b")"#], &[], Context::Span),
        (&[r#"set(resource.attributes["a"], "b")"#], &[], Context::Resource),
        (&[r#"set(scope.name, "b")"#], &[], Context::Scope),
        (&[r#"set(resource.attributes["a"], span.name)"#], &[], Context::Span),
        (&[r#"set(spanevent.name, "x")"#, r#"set(span.name, "y")"#], &[], Context::SpanEvent),
        (&[r#"set(resource.attributes["a"], "b")"#], &[r#"span.name == "x""#], Context::Span),
        (&[r#"set(resource.attributes["a"], "b") where IsRootSpan()"#], &[], Context::Span),
    ];
    for (statements, conditions, want) in cases {
        let group = transform(statements, conditions).unwrap_or_else(|e| panic!("{statements:?}: {e}"));
        assert_eq!(group.context, *want, "{statements:?} {conditions:?}");
    }
}

/// Scenario: what Kyma's validator rejects. Guarantees: each is an error naming the text, the position
/// and the problem, in the Collector's words.
#[test]
fn invalid_statements_are_refused_with_position_and_cause() {
    let cases: &[(&str, &str)] = &[
        (r#"sset(span.attributes["test"], "foo")"#, r#"undefined function "sset""#),
        // Resource outranks scope, and a resource cannot read its scopes.
        (
            r#"set(resource.attributes["a"], scope.name)"#,
            r#"context "scope" from path "scope.name" is not valid"#,
        ),
        (
            r#"set(span.attributes["a"], "b") where NotAFunction(span.name)"#,
            r#"undefined function "NotAFunction""#,
        ),
        (
            r#"set(span.attributes["a"], "b") where attributes["c"] == "d""#,
            "missing context name for path \"attributes[c]\"",
        ),
        (r#"set(span.nmae, "x")"#, "segment \"nmae\" from path \"span.nmae\" is not a valid path"),
        (r#"set(span.name)"#, "incorrect number of arguments"),
        (r#"set("x", span.name)"#, "must be a path"),
        (r#"set(span.attributes["a"], SPAN_KIND_SERVERR)"#, "unable to infer a valid context"),
        (r#"set(span.attributes["a"], "b" ?= "c")"#, "unable to parse OTTL statement"),
        (r#"replace_pattern(span.name, "(", "x")"#, "couldn't create function"),
        (r#"set(span.name, "x", "y")"#, "incorrect number of arguments"),
        (r#"set(target = span.name, "x")"#, "unnamed argument used after named argument"),
        (r#"set(span.name["k"], "x")"#, "does not take keys"),
    ];
    for (statement, want) in cases {
        let err = transform(&[statement], &[]).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(want), "{statement}: {err}");
        assert!(
            err.contains(&format!("{statement:?}")) || err.contains("unable to infer"),
            "names the text: {err}"
        );
    }
}

/// Scenario: named arguments in the Collector's spellings. Guarantees: lower-camel and snake case both
/// bind to the parameter, in any order after the positional ones.
#[test]
fn named_arguments_bind_by_camel_case() {
    for statement in [
        r#"replace_pattern(span.name, regexPattern = "a", replacement = "b")"#,
        r#"replace_pattern(span.name, replacement = "b", regex_pattern = "a")"#,
    ] {
        transform(&[statement], &[]).unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let err = transform(&[r#"replace_pattern(span.name, pattern = "a", replacement = "b")"#], &[])
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("no such parameter: pattern"), "{err}");
}

/// Scenario: Kyma's filter. Guarantees: conditions bind in span, resource and scope contexts, a span
/// event condition and an editor are refused.
#[test]
fn filters_offer_what_kymas_filter_offers() {
    assert_eq!(bind_filter(&texts(&[r#"span.name == "x""#])).unwrap().context, Context::Span);
    assert_eq!(
        bind_filter(&texts(&[r#"resource.attributes["a"] == nil"#])).unwrap().context,
        Context::Resource
    );
    assert_eq!(
        bind_filter(&texts(&[r#"IsRootSpan()"#, r#"span.kind == 2"#])).unwrap().context,
        Context::Span
    );
    let err = bind_filter(&texts(&[r#"spanevent.name == "x""#])).unwrap_err().to_string();
    assert!(err.contains("spanevent") && err.contains("not available"), "{err}");
    assert!(bind_filter(&texts(&[r#"set(span.name, "x")"#])).is_err());
    assert!(bind_filter(&[]).is_ok(), "an empty FilterSpec is valid");
}

/// Scenario: `to_camel` on the Collector's argument spellings. Guarantees: it matches strcase.ToCamel.
#[test]
fn camel_case_matches_strcase() {
    for (given, want) in [
        ("regex_pattern", "RegexPattern"),
        ("regexPattern", "RegexPattern"),
        ("utf8_safe", "Utf8Safe"),
        ("source_i_p", "SourceIP"),
        ("target", "Target"),
    ] {
        assert_eq!(to_camel(given), want, "{given}");
    }
}
