use crate::eval::EvalError;
use crate::funcs::testing::call_converter;
use crate::value::Value;

const INVALID_XML: &str = "<a>>>>>>>";

fn s(v: &str) -> Option<Value> {
    Some(Value::String(v.into()))
}

fn string_of(r: Result<Value, EvalError>, what: &str) -> String {
    match r {
        Ok(Value::String(s)) => s,
        other => panic!("{what}: expected a string, got {other:?}"),
    }
}

fn err_msg(r: Result<Value, EvalError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn st(v: &str) -> Value {
    Value::String(v.into())
}

/// Scenario: the Collector's GetXML table (func_get_xml_test.go).
/// Guarantees: selected elements serialised and concatenated; attribute, text and CDATA selections give
/// their text; declarations and comments ignored; an empty document gives "".
#[test]
fn get_xml_table() {
    let cases: &[(&str, &str, &str)] = &[
        ("<a><b/></a>", "/a/b", "<b></b>"),
        (r#"<a foo="bar"><b>hello</b></a>"#, "/a", r#"<a foo="bar"><b>hello</b></a>"#),
        ("<a><b>hello</b><b>world</b></a>", "/a/b", "<b>hello</b><b>world</b>"),
        ("<a><b>hello</b><b><c>world</c></b><d/></a>", "/a/*", "<b>hello</b><b><c>world</c></b><d></d>"),
        ("<a><x>1</x><b><x>2</x></b><d><e><f><x>3</x></f></e></d></a>", "/a//x", "<x>1</x><x>2</x><x>3</x>"),
        (
            r#"<a><x env="prod">1</x><b><x env="dev">2</x></b><d><e><f><x env="prod">3</x></f></e></d></a>"#,
            "/a//x[@env='prod']",
            r#"<x env="prod">1</x><x env="prod">3</x>"#,
        ),
        ("", "/", ""),
        (r#"<?xml version="1.0" encoding="UTF-8"?><a></a>"#, "/*", "<a></a>"),
        ("<!-- comment --><a></a><!-- comment -->", "/*", "<a></a>"),
        (r#"<a foo="bar"></a>"#, "/a/@foo", "bar"),
        ("<a>hello</a>", "/a/text()", "hello"),
        ("<a><![CDATA[hello]]></a>", "/a/text()", "hello"),
    ];
    for (doc, xpath, want) in cases {
        assert_eq!(string_of(call_converter("GetXML", vec![s(doc), s(xpath)]), doc), *want, "{doc} {xpath}");
    }
}

/// Scenario: GetXML with an invalid XPath literal and an invalid document (TestCreateGetXMLFunc).
/// Guarantees: the XPath is refused at bind time with "invalid xpath"; bad XML fails at run time.
#[test]
fn get_xml_errors() {
    assert!(err_msg(call_converter("GetXML", vec![s("<a/>"), s("!")])).starts_with("invalid xpath: "));
    assert!(err_msg(call_converter("GetXML", vec![s(INVALID_XML), s("/")])).starts_with("parse xml: "));
    assert_eq!(
        err_msg(call_converter("GetXML", vec![Some(Value::Int(1)), s("/")])),
        "expected string but got int64"
    );
}

/// Scenario: the Collector's RemoveXML table (func_remove_xml_test.go).
/// Guarantees: elements, attributes, text, comments and CDATA removed; the declaration kept only when the
/// input had one.
#[test]
fn remove_xml_table() {
    let cases: &[(&str, &str, &str)] = &[
        ("<a><b/></a>", "/a/b", "<a></a>"),
        ("<a><b/><b/></a>", "/a/b", "<a></a>"),
        ("<a><b/><b><c/></b></a>", "/a/b", "<a></a>"),
        ("<a><b/><b/><c><b><d/></b></c></a>", "/a//b", "<a><c></c></a>"),
        (r#"<a foo="bar"/>"#, "/a/@foo", "<a></a>"),
        (r#"<a><b foo="bar"/><b foo="notbar"/></a>"#, "/a/b[@foo='bar']", r#"<a><b foo="notbar"></b></a>"#),
        (r#"<a><b foo="bar"/><c foo="bar"/></a>"#, "//@foo", "<a><b></b><c></c></a>"),
        (
            r#"<a><b foo="bar" hello="world" keep="this"/></a>"#,
            "//@*[local-name() != 'keep']",
            r#"<a><b keep="this"></b></a>"#,
        ),
        ("<a>delete this</a>", "//text()['*delete*']", "<a></a>"),
        ("<a><b><c><!-- delete this --></c><!-- this too--></b></a>", "//comment()", "<a><b><c></c></b></a>"),
        (
            "<a><b><![CDATA[text content possibly containing literal <or &characters ]]></b></a>",
            "//text()['<![CDATA[*']",
            "<a><b></b></a>",
        ),
        (
            r#"<?xml version="1.0" encoding="UTF-8"?><a>delete this</a>"#,
            "//text()['*delete*']",
            r#"<?xml version="1.0" encoding="UTF-8"?><a></a>"#,
        ),
        ("", "/", ""),
    ];
    for (doc, xpath, want) in cases {
        assert_eq!(
            string_of(call_converter("RemoveXML", vec![s(doc), s(xpath)]), doc),
            *want,
            "{doc} {xpath}"
        );
    }
}

/// Scenario: RemoveXML with an invalid XPath and invalid XML (TestCreateRemoveXMLFunc).
/// Guarantees: bind-time XPath error, run-time XML error.
#[test]
fn remove_xml_errors() {
    assert!(err_msg(call_converter("RemoveXML", vec![s("<a/>"), s("!")])).starts_with("invalid xpath: "));
    assert!(err_msg(call_converter("RemoveXML", vec![s(INVALID_XML), s("/")])).contains("unexpected EOF"));
}

/// Scenario: the Collector's InsertXML table (func_insert_xml_test.go), successes.
/// Guarantees: the sub-document is appended to every selected element (or the document node).
#[test]
fn insert_xml_table() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("<a></a>", "/a", "<b/>", "<a><b></b></a>"),
        ("<a></a><a></a>", "/a", "<b/>", "<a><b></b></a><a><b></b></a>"),
        ("<a></a><z><a></a></z>", "//a", "<b/>", "<a><b></b></a><z><a><b></b></a></z>"),
        ("<a></a>", "/", "<b/><c/>", "<a></a><b></b><c></c>"),
        ("<a></a>", "/a", "<b/><c/>", "<a><b></b><c></c></a>"),
        ("<a></a><a></a>", "/a", "<b/><c/>", "<a><b></b><c></c></a><a><b></b><c></c></a>"),
        ("<a></a><z><a></a></z>", "//a", "<b/><c/>", "<a><b></b><c></c></a><z><a><b></b><c></c></a></z>"),
        (
            "<a></a>",
            "/a",
            r#"<x foo="bar"><b>text</b><c><d><e>1</e><e><![CDATA[two]]></e></d></c></x>"#,
            r#"<a><x foo="bar"><b>text</b><c><d><e>1</e><e><![CDATA[two]]></e></d></c></x></a>"#,
        ),
        ("", "/", "<a/>", "<a></a>"),
        ("<a></a>", "/", "<a/>", "<a></a><a></a>"),
        (
            "<a><b>has b</b></a><a></a><a><b>also has b</b></a>",
            "//a[not(b)]",
            "<b></b>",
            "<a><b>has b</b></a><a><b></b></a><a><b>also has b</b></a>",
        ),
    ];
    for (doc, xpath, sub, want) in cases {
        assert_eq!(
            string_of(call_converter("InsertXML", vec![s(doc), s(xpath), s(sub)]), doc),
            *want,
            "{doc} {xpath} {sub}"
        );
    }
}

/// Scenario: InsertXML selecting an attribute or text, and with invalid XPath, target or sub-document.
/// Guarantees: "InsertXML XPath selected non-element: …"; bind-time XPath error; XML errors at run time.
#[test]
fn insert_xml_errors() {
    assert_eq!(
        err_msg(call_converter("InsertXML", vec![s(r#"<a foo="bar"></a>"#), s("/a/@foo"), s("<b/>")])),
        r#"InsertXML XPath selected non-element: "foo""#
    );
    assert_eq!(
        err_msg(call_converter("InsertXML", vec![s("<a>foo</a>"), s("/a/text()"), s("<b/>")])),
        r#"InsertXML XPath selected non-element: "foo""#
    );
    assert!(
        err_msg(call_converter("InsertXML", vec![s("<a/>"), s("!"), s("<b/>")]))
            .starts_with("invalid xpath: ")
    );
    assert!(
        err_msg(call_converter("InsertXML", vec![s(INVALID_XML), s("/"), s("<b/>")]))
            .starts_with("parse xml: ")
    );
    assert!(
        err_msg(call_converter("InsertXML", vec![s("<a/>"), s("/"), s(INVALID_XML)]))
            .starts_with("parse xml: ")
    );
}

/// Scenario: the Collector's ConvertAttributesToElementsXML table.
/// Guarantees: attributes become trailing child elements in attribute order; an XPath restricts which;
/// a non-attribute selection changes nothing.
#[test]
fn convert_attributes_table() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("<a><b/></a>", None, "<a><b></b></a>"),
        (
            r#"<?xml version="1.0" encoding="UTF-8"?><a><b/></a>"#,
            None,
            r#"<?xml version="1.0" encoding="UTF-8"?><a><b></b></a>"#,
        ),
        (r#"<a foo="bar"/>"#, None, "<a><foo>bar</foo></a>"),
        (r#"<a foo="bar" hello="world"/>"#, None, "<a><foo>bar</foo><hello>world</hello></a>"),
        (r#"<a hello="world" foo="bar"/>"#, None, "<a><hello>world</hello><foo>bar</foo></a>"),
        (
            r#"<a hello="world" foo="bar"><b/><c/><b/></a>"#,
            None,
            "<a><b></b><c></c><b></b><hello>world</hello><foo>bar</foo></a>",
        ),
        (
            r#"<a hello="world" foo="bar">free value</a>"#,
            None,
            "<a>free value<hello>world</hello><foo>bar</foo></a>",
        ),
        (
            r#"<a hello="world" foo="bar">free value<b/>2<c/></a>"#,
            None,
            "<a>free value<b></b>2<c></c><hello>world</hello><foo>bar</foo></a>",
        ),
        (
            r#"<a hello="world" foo="bar"><b href="www.example.com"></b></a>"#,
            None,
            "<a><b><href>www.example.com</href></b><hello>world</hello><foo>bar</foo></a>",
        ),
        (
            r#"<a hello="world" foo="bar"><b href="www.example.com"></b></a>"#,
            Some("/a/b/@*"),
            r#"<a hello="world" foo="bar"><b><href>www.example.com</href></b></a>"#,
        ),
        (
            r#"<a hello="world" foo="bar"><b href="www.example.com"></b></a>"#,
            Some("/a/b"),
            r#"<a hello="world" foo="bar"><b href="www.example.com"></b></a>"#,
        ),
    ];
    for (doc, xpath, want) in cases {
        let args = vec![s(doc), xpath.and_then(s)];
        assert_eq!(
            string_of(call_converter("ConvertAttributesToElementsXML", args), doc),
            *want,
            "{doc} {xpath:?}"
        );
    }
    assert!(
        err_msg(call_converter("ConvertAttributesToElementsXML", vec![s("<a/>"), s("!")]))
            .starts_with("invalid xpath")
    );
    assert!(
        err_msg(call_converter("ConvertAttributesToElementsXML", vec![s(INVALID_XML)]))
            .starts_with("parse xml")
    );
}

/// Scenario: the Collector's ConvertTextToElementsXML table.
/// Guarantees: text mixed with elements (or repeated) is wrapped in the element name (default "value"),
/// at every level or under the selected elements only.
#[test]
fn convert_text_table() {
    let cases: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        ("<a><b/></a>", None, None, "<a><b></b></a>"),
        (
            r#"<?xml version="1.0" encoding="UTF-8"?><a><b/></a>"#,
            None,
            None,
            r#"<?xml version="1.0" encoding="UTF-8"?><a><b></b></a>"#,
        ),
        (r#"<a foo="bar" hello="world"/>"#, None, None, r#"<a foo="bar" hello="world"></a>"#),
        ("<a>hello world</a>", None, None, "<a>hello world</a>"),
        ("<a><b/>foo</a>", None, None, "<a><b></b><value>foo</value></a>"),
        ("<a><b/>foo</a>", None, Some("bar"), "<a><b></b><bar>foo</bar></a>"),
        ("<a>foo<b/>bar</a>", None, None, "<a><value>foo</value><b></b><value>bar</value></a>"),
        (
            "<a>foo<b/>bar<c/>1<d>not</d>2<e><f/><f/></e></a>",
            None,
            Some("v"),
            "<a><v>foo</v><b></b><v>bar</v><c></c><v>1</v><d>not</d><v>2</v><e><f></f><f></f></e></a>",
        ),
        (
            "<a><b><c/>foo</b><d><c/>bar</d><b><c/>baz</b></a>",
            Some("/a/b"),
            None,
            "<a><b><c></c><value>foo</value></b><d><c></c>bar</d><b><c></c><value>baz</value></b></a>",
        ),
        (
            "<a><b><c/>foo</b><d><c/>bar</d><b><c/>baz</b></a>",
            Some("/a/b"),
            Some("V"),
            "<a><b><c></c><V>foo</V></b><d><c></c>bar</d><b><c></c><V>baz</V></b></a>",
        ),
    ];
    for (doc, xpath, name, want) in cases {
        let args = vec![s(doc), xpath.and_then(s), name.and_then(s)];
        assert_eq!(string_of(call_converter("ConvertTextToElementsXML", args), doc), *want, "{doc}");
    }
}

/// Scenario: ConvertTextToElementsXML with an invalid XPath, invalid XML and nesting beyond the limit.
/// Guarantees: bind-time XPath error; run-time parse errors, including the depth limit.
#[test]
fn convert_text_errors() {
    assert!(
        err_msg(call_converter("ConvertTextToElementsXML", vec![s("<a/>"), s("!")]))
            .starts_with("invalid xpath")
    );
    assert!(
        err_msg(call_converter("ConvertTextToElementsXML", vec![s(INVALID_XML)])).starts_with("parse xml")
    );
    let deep = "<a>".repeat(10_002) + &"</a>".repeat(10_002);
    assert!(
        err_msg(call_converter("ConvertTextToElementsXML", vec![s(&deep)]))
            .contains("exceeded maximum XML nesting depth")
    );
}

/// Scenario: the Collector's ParseSimplifiedXML table (func_parse_simplified_xml_test.go), including the
/// simplified Windows event log document.
/// Guarantees: leaves become strings, parents maps, repeated tags lists; attributes, comments, extraneous
/// text and empty elements are dropped.
#[test]
fn parse_simplified_xml_table() {
    let cases: Vec<(&str, Value)> = vec![
        ("<a>b</a>", map(vec![("a", st("b"))])),
        ("<a>b</a><a>c</a>", map(vec![("a", Value::List(vec![st("b"), st("c")]))])),
        ("<a><b>1</b></a>", map(vec![("a", map(vec![("b", st("1"))]))])),
        (
            "<a>1</a><a><![CDATA[2]]></a><a><b>3</b></a>",
            map(vec![("a", Value::List(vec![st("1"), st("2"), map(vec![("b", st("3"))])]))]),
        ),
        ("<a><![CDATA[b]]></a>", map(vec![("a", st("b"))])),
        (r#"<a foo="bar"><b hello="world">c</b></a>"#, map(vec![("a", map(vec![("b", st("c"))]))])),
        (r#"<?xml version="1.0" encoding="UTF-8"?><a>b</a>"#, map(vec![("a", st("b"))])),
        ("<a><!-- ignore -->b</a><!-- ignore -->", map(vec![("a", st("b"))])),
        ("<a><b>2</b><c><!-- c is empty --></c></a>", map(vec![("a", map(vec![("b", st("2"))]))])),
        (
            "<a><b>2</b><c>4</c><c><!-- this c is empty --></c></a>",
            map(vec![("a", map(vec![("b", st("2")), ("c", Value::List(vec![st("4")]))]))]),
        ),
        ("<a>extra1<b>3</b>extra2</a>", map(vec![("a", map(vec![("b", st("3"))]))])),
        ("<a><![CDATA[1]]><b>3</b><![CDATA[2]]></a>", map(vec![("a", map(vec![("b", st("3"))]))])),
        ("<a><b>3</b><c/></a>", map(vec![("a", map(vec![("b", st("3"))]))])),
        ("<a><b><c/></b><d>2</d></a>", map(vec![("a", map(vec![("d", st("2"))]))])),
        ("<a><b>3</b><b/></a>", map(vec![("a", map(vec![("b", Value::List(vec![st("3")]))]))])),
    ];
    for (doc, want) in cases {
        assert_eq!(call_converter("ParseSimplifiedXML", vec![s(doc)]), Ok(want), "{doc}");
    }
}

/// Scenario: ParseSimplifiedXML on the simplified Windows event log from the Collector's tests.
/// Guarantees: the nested maps and the list of Data entries, whitespace between elements ignored.
#[test]
fn parse_simplified_xml_wel() {
    let doc = r#"<Event>
	<xmlns>http://schemas.microsoft.com/win/2004/08/events/event</xmlns>
    <System>
        <Provider><Name>Microsoft-Windows-Security-Auditing</Name><Guid>{54849625-5478-4994-a5ba-3e3b0328c30d}</Guid></Provider>
        <EventID>4625</EventID>
        <Version>0</Version>
        <Level>0</Level>
        <Task>12544</Task>
        <Opcode>0</Opcode>
        <Keywords>0x8010000000000000</Keywords>
        <TimeCreated><SystemTime>2024-09-04T08:38:09.7477579Z</SystemTime></TimeCreated>
        <EventRecordID>1361885</EventRecordID>
        <Correlation><ActivityID>{b67ee0c2-a671-0001-5f6b-82e8c1eeda01}</ActivityID></Correlation>
        <Execution><ProcessID>656</ProcessID><ThreadID>2276</ThreadID></Execution>
        <Channel>Security</Channel>
        <Computer>samuel-vahala</Computer>
        <Security />
    </System>
    <EventData>
		<Data><Name>SubjectUserSid</Name><value>S-1-0-0</value></Data>
		<Data><Name>TargetUserSid</Name><value>S-1-0-0</value></Data>
        <Data><Name>Status</Name><value>0xc000006d</value></Data>
        <Data><Name>WorkstationName</Name><value>D-508</value></Data>
    </EventData>
</Event>"#;
    let data = |n: &str, v: &str| map(vec![("Name", st(n)), ("value", st(v))]);
    let want = map(vec![(
        "Event",
        map(vec![
            ("xmlns", st("http://schemas.microsoft.com/win/2004/08/events/event")),
            (
                "System",
                map(vec![
                    (
                        "Provider",
                        map(vec![
                            ("Name", st("Microsoft-Windows-Security-Auditing")),
                            ("Guid", st("{54849625-5478-4994-a5ba-3e3b0328c30d}")),
                        ]),
                    ),
                    ("EventID", st("4625")),
                    ("Version", st("0")),
                    ("Level", st("0")),
                    ("Task", st("12544")),
                    ("Opcode", st("0")),
                    ("Keywords", st("0x8010000000000000")),
                    ("TimeCreated", map(vec![("SystemTime", st("2024-09-04T08:38:09.7477579Z"))])),
                    ("EventRecordID", st("1361885")),
                    ("Correlation", map(vec![("ActivityID", st("{b67ee0c2-a671-0001-5f6b-82e8c1eeda01}"))])),
                    ("Execution", map(vec![("ProcessID", st("656")), ("ThreadID", st("2276"))])),
                    ("Channel", st("Security")),
                    ("Computer", st("samuel-vahala")),
                ]),
            ),
            (
                "EventData",
                map(vec![(
                    "Data",
                    Value::List(vec![
                        data("SubjectUserSid", "S-1-0-0"),
                        data("TargetUserSid", "S-1-0-0"),
                        data("Status", "0xc000006d"),
                        data("WorkstationName", "D-508"),
                    ]),
                )]),
            ),
        ]),
    )]);
    assert_eq!(call_converter("ParseSimplifiedXML", vec![s(doc)]), Ok(want));
}

/// Scenario: ParseSimplifiedXML on invalid XML and on nesting beyond the limit.
/// Guarantees: run-time errors, the depth one naming the limit.
#[test]
fn parse_simplified_xml_errors() {
    assert!(err_msg(call_converter("ParseSimplifiedXML", vec![s(INVALID_XML)])).starts_with("parse xml"));
    let deep = "<a>".repeat(10_002) + &"</a>".repeat(10_002);
    assert!(
        err_msg(call_converter("ParseSimplifiedXML", vec![s(&deep)]))
            .contains("exceeded maximum XML nesting depth")
    );
}

/// Scenario: the Collector's ParseXML table (func_parse_xml_test.go), successes.
/// Guarantees: {tag, attributes, content, children} maps; text trimmed and joined; declarations,
/// comments, processing instructions and directives ignored.
#[test]
fn parse_xml_table() {
    let leaf = |tag: &str, content: &str| map(vec![("tag", st(tag)), ("content", st(content))]);
    let user = |id: &str| map(vec![("tag", st("User")), ("attributes", map(vec![("id", st(id))]))]);
    let log_user = map(vec![
        ("tag", st("Log")),
        (
            "children",
            Value::List(vec![
                map(vec![
                    ("tag", st("User")),
                    (
                        "children",
                        Value::List(vec![
                            leaf("ID", "00001"),
                            leaf("Name", "Joe"),
                            leaf("Email", "joe.smith@example.com"),
                        ]),
                    ),
                ]),
                leaf("Text", "User did a thing"),
            ]),
        ),
    ]);
    let cases: Vec<(&str, Value)> = vec![
        (
            "<Log><User><ID>00001</ID><Name>Joe</Name><Email>joe.smith@example.com</Email></User><Text>User did a thing</Text></Log>",
            log_user.clone(),
        ),
        (
            "\n\t\t\t\t\t\t<Log>\n\t\t\t\t\t\t  <User>\n\t\t\t\t\t\t    <ID>00001</ID>\n\t\t\t\t\t\t\t<Name>Joe</Name>\n\t\t\t\t\t\t\t<Email>joe.smith@example.com</Email>\n\t\t\t\t\t\t  </User>\n\t\t\t\t\t\t  <Text>User did a thing</Text>\n\t\t\t\t\t\t</Log>",
            log_user,
        ),
        (
            r#"<Log>This record has a collision<User id="0001"/><User id="0002"/></Log>"#,
            map(vec![
                ("tag", st("Log")),
                ("content", st("This record has a collision")),
                ("children", Value::List(vec![user("0001"), user("0002")])),
            ]),
        ),
        (
            "<Log>\n\t\t\t\t\t\tThis record has multiple lines of\n\t\t\t\t\t\t<User id=\"0001\"/>\n\t\t\t\t\t\ttext content\n\t\t\t\t\t\t</Log>",
            map(vec![
                ("tag", st("Log")),
                ("content", st("This record has multiple lines oftext content")),
                ("children", Value::List(vec![user("0001")])),
            ]),
        ),
        (
            r#"<HostInfo hostname="example.com" zone="east-1" cloudprovider="aws" />"#,
            map(vec![
                ("tag", st("HostInfo")),
                (
                    "attributes",
                    map(vec![
                        ("hostname", st("example.com")),
                        ("zone", st("east-1")),
                        ("cloudprovider", st("aws")),
                    ]),
                ),
            ]),
        ),
        (r#"<?xml version="1.0" encoding="UTF-8" ?><Log>Log content</Log>"#, leaf("Log", "Log content")),
        ("<Log>This has a comment <!-- This is comment text --></Log>", leaf("Log", "This has a comment")),
        (
            r#"<Log><?xml-stylesheet type="text/xsl" href="style.xsl"?>Log content</Log>"#,
            leaf("Log", "Log content"),
        ),
        ("<Log><!ELEMENT xi:fallback ANY>Log content</Log>", leaf("Log", "Log content")),
        ("<a>x &amp; y &lt;z&gt; &#65;&#x42;</a>", leaf("a", "x & y <z> AB")),
    ];
    for (doc, want) in cases {
        assert_eq!(call_converter("ParseXML", vec![s(doc)]), Ok(want), "{doc}");
    }
}

/// Scenario: ParseXML's error rows: missing closing elements, trailing bytes, nesting beyond the limit,
/// plus an unknown entity, a declared non-UTF-8 encoding and an empty document.
/// Guarantees: Go's `encoding/xml` messages wrapped as the Collector wraps them.
#[test]
fn parse_xml_errors() {
    let cases: &[(&str, &str)] = &[
        (r#"<Log id="1">"#, "unmarshal xml: decode next token: XML syntax error on line 1: unexpected EOF"),
        (
            "<Log><Text></Log>",
            "unmarshal xml: decode next token: XML syntax error on line 1: element <Text> closed by </Log>",
        ),
        ("<Log></Log><Log></Log>", "trailing bytes after parsing xml"),
        (
            "<a>&nbsp;</a>",
            "unmarshal xml: decode next token: XML syntax error on line 1: invalid character entity &nbsp;",
        ),
        (
            r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#,
            r#"unmarshal xml: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil"#,
        ),
        ("", "unmarshal xml: EOF"),
        (
            "<a>\n<b x=1/></a>",
            "unmarshal xml: decode next token: XML syntax error on line 2: unquoted or missing attribute value in element",
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(err_msg(call_converter("ParseXML", vec![s(doc)])), *want, "{doc}");
    }
    let deep = "<a>".repeat(10_002) + &"</a>".repeat(10_002);
    assert!(
        err_msg(call_converter("ParseXML", vec![s(&deep)])).contains("exceeded maximum XML nesting depth")
    );
    assert_eq!(err_msg(call_converter("ParseXML", vec![None])), "expected string but got nil");
}

/// Scenario: GetXML with XPath features beyond the Collector's tables: positions, last(), axes,
/// functions, unions, comparisons and arithmetic.
/// Guarantees: XPath 1.0 results over the xmlquery tree.
#[test]
fn xpath_features() {
    let doc = r#"<r><i n="1">a</i><i n="2">b</i><i n="3">c</i><j><i n="4">d</i></j></r>"#;
    let cases: &[(&str, &str)] = &[
        ("/r/i[2]", r#"<i n="2">b</i>"#),
        ("/r/i[last()]", r#"<i n="3">c</i>"#),
        ("/r/i[position() > 1]/text()", "bc"),
        ("//i[@n >= 3]/@n", "34"),
        ("//i[@n = 2 or @n = 4]/text()", "bd"),
        ("//i[@n mod 2 = 1 and . != 'c']/text()", "a"),
        ("/r/j/i/..", r#"<j><i n="4">d</i></j>"#),
        ("//i[text() = 'd']/ancestor::r/i[1]/text()", "a"),
        ("/r/i[1]/following-sibling::*[1]/text()", "b"),
        ("/r/j/preceding-sibling::i[1]/text()", "c"),
        ("/r/i[3] | /r/i[1]", r#"<i n="1">a</i><i n="3">c</i>"#),
        ("//i[contains(., 'b') or starts-with(@n, '4')]/@n", "24"),
        ("//*[count(i) = 3]/@n", ""),
        ("//*[count(i) = 1]/i/text()", "d"),
        ("/r/i[@n * 2 = 6]/text()", "c"),
        ("/r/i[string-length(concat(., 'xy')) = 3][1]/text()", "a"),
        ("/r/*[name() = 'j']/descendant::i/@n", "4"),
        ("/r/i[translate(., 'abc', 'ABC') = 'B']/@n", "2"),
        ("/r/i[normalize-space(' c ') = .]/@n", "3"),
        ("/r/i[-@n = -1]/text()", "a"),
        ("/r/i[@n div 2 = 1.5]/text()", "c"),
        ("/r/self::r/j/i/@n", "4"),
        ("/r/child::i[not(@n > 1)]/text()", "a"),
    ];
    for (xpath, want) in cases {
        assert_eq!(string_of(call_converter("GetXML", vec![s(doc), s(xpath)]), xpath), *want, "{xpath}");
    }
}

/// Scenario: XPath expressions that do not compile.
/// Guarantees: each is refused with "invalid xpath: …" at bind time.
#[test]
fn xpath_compile_errors() {
    for bad in ["!", "", "/a[", "/a]", "foo(", "unknown-fn(1)", "/a/@", "'unterminated", "$var", "bogus::a"] {
        let def = crate::funcs::registry::lookup("GetXML").expect("GetXML");
        let prepare = def.prepare.expect("prepare");
        let lit = Value::String(bad.into());
        let got = prepare(&[None, Some(&lit)]).err();
        assert!(got.as_deref().is_some_and(|e| e.starts_with("invalid xpath: ")), "{bad}: {got:?}");
    }
}

/// Scenario: serialisation details: escaping, namespaces, whitespace text and comments around the root.
/// Guarantees: HTML escaping of text and attribute values, prefixes kept, undeclared prefixes refused,
/// whitespace-only text kept in output but invisible to XPath beyond the first child.
#[test]
fn serialisation_details() {
    let doc = r#"<a x="1 &amp; &quot;2&quot;">it's &lt;b&gt;</a>"#;
    assert_eq!(
        string_of(call_converter("RemoveXML", vec![s(doc), s("/nothing")]), doc),
        "<a x=\"1 &amp; &#34;2&#34;\">it&#39;s &lt;b&gt;</a>"
    );
    let ns = r#"<p:a xmlns:p="urn:x" p:k="v"><p:b/></p:a>"#;
    assert_eq!(
        string_of(call_converter("RemoveXML", vec![s(ns), s("//p:b")]), ns),
        r#"<p:a xmlns:p="urn:x" p:k="v"></p:a>"#
    );
    assert!(
        err_msg(call_converter("RemoveXML", vec![s("<q:a/>"), s("/")])).contains("namespace q is missing")
    );
    let spaced = "<a>\n  <b>1</b>\n  <b>2</b>\n</a>";
    assert_eq!(string_of(call_converter("GetXML", vec![s(spaced), s("/a/text()")]), spaced), "\n  ");
    assert_eq!(string_of(call_converter("GetXML", vec![s(spaced), s("/a/node()[2]")]), spaced), "<b>1</b>");
    assert_eq!(string_of(call_converter("GetXML", vec![s(spaced), s("/a/node()[3]")]), spaced), "<b>2</b>");
    assert_eq!(
        string_of(call_converter("RemoveXML", vec![s(spaced), s("//b")]), spaced),
        "<a>\n  \n  \n</a>"
    );
}
