//! XML converters: `ParseXML`, `ParseSimplifiedXML`, `GetXML`, `InsertXML`, `RemoveXML`,
//! `ConvertAttributesToElementsXML` and `ConvertTextToElementsXML`.
//!
//! Documents are read the way the Collector reads them: a tokenizer with the rules of Go's
//! `encoding/xml` in strict mode (entity and character checks, matching end tags, its error texts), and,
//! for the XPath-based functions, the tree `xmlquery` builds from those tokens (a synthetic
//! `<?xml version="1.0"?>` declaration before the first element, dropped again unless the input starts
//! with `<?xml`; anything before that point at top level is lost; serialisation with `<a></a>` for empty
//! elements and HTML escaping of text and attribute values). Nesting deeper than 10000 elements is
//! refused.
//!
//! XPath support (XPath 1.0 as the Collector's `antchfx/xpath` evaluates it over `xmlquery` trees):
//! absolute and relative location paths, `//`, `.`, `..`, `@name`, `@*`, the axes `child`, `descendant`,
//! `descendant-or-self`, `self`, `parent`, `ancestor`, `ancestor-or-self`, `following-sibling`,
//! `preceding-sibling`, `following`, `preceding` and `attribute`, the node tests `name`, `prefix:name`,
//! `*`, `prefix:*`, `node()`, `text()` (text and CDATA), `comment()` and `processing-instruction()`,
//! predicates (numeric ones select by position), unions, `or`, `and`, comparisons, arithmetic
//! (`+ - * div mod`, unary minus), string and number literals, and the functions `last`, `position`,
//! `count`, `local-name`, `name`, `namespace-uri`, `string`, `concat`, `contains`, `starts-with`,
//! `ends-with`, `substring`, `substring-before`, `substring-after`, `string-length`, `normalize-space`,
//! `translate`, `lower-case`, `upper-case`, `boolean`, `not`, `true`, `false`, `number`, `sum`, `floor`,
//! `ceiling` and `round`. Variables and namespace-URI matching are not supported. As in `xmlquery`,
//! whitespace-only text nodes other than an element's first child are invisible to XPath, and CDATA
//! nodes have an empty string value there.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{Call, FunctionDef, Param, ParamType, Prepared, Run};
use crate::eval::EvalError;
use crate::value::Value;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "ParseXML",
        params: &[Param { name: "target", ty: ParamType::StringGetter, optional: false }],
        prepare: None,
        run: Run::Converter(parse_xml_fn),
    },
    FunctionDef {
        name: "GetXML",
        params: &[
            Param { name: "target", ty: ParamType::StringGetter, optional: false },
            Param { name: "xPath", ty: ParamType::String, optional: false },
        ],
        prepare: Some(prepare_required_xpath),
        run: Run::Converter(get_xml_fn),
    },
    FunctionDef {
        name: "InsertXML",
        params: &[
            Param { name: "target", ty: ParamType::StringGetter, optional: false },
            Param { name: "xPath", ty: ParamType::String, optional: false },
            Param { name: "subDocument", ty: ParamType::StringGetter, optional: false },
        ],
        prepare: Some(prepare_required_xpath),
        run: Run::Converter(insert_xml_fn),
    },
    FunctionDef {
        name: "RemoveXML",
        params: &[
            Param { name: "target", ty: ParamType::StringGetter, optional: false },
            Param { name: "xPath", ty: ParamType::String, optional: false },
        ],
        prepare: Some(prepare_required_xpath),
        run: Run::Converter(remove_xml_fn),
    },
    FunctionDef {
        name: "ConvertAttributesToElementsXML",
        params: &[
            Param { name: "target", ty: ParamType::StringGetter, optional: false },
            Param { name: "xPath", ty: ParamType::String, optional: true },
        ],
        prepare: Some(prepare_attributes_xpath),
        run: Run::Converter(convert_attributes_fn),
    },
    FunctionDef {
        name: "ConvertTextToElementsXML",
        params: &[
            Param { name: "target", ty: ParamType::StringGetter, optional: false },
            Param { name: "xPath", ty: ParamType::String, optional: true },
            Param { name: "elementName", ty: ParamType::String, optional: true },
        ],
        prepare: Some(prepare_text_xpath),
        run: Run::Converter(convert_text_fn),
    },
    FunctionDef {
        name: "ParseSimplifiedXML",
        params: &[Param { name: "target", ty: ParamType::StringGetter, optional: false }],
        prepare: None,
        run: Run::Converter(parse_simplified_xml_fn),
    },
];

/// The deepest element nesting accepted (as `encoding/xml` bounds unmarshalling).
const MAX_DEPTH: usize = 10_000;

// === tokens (Go's encoding/xml) ===

/// A qualified name as written: prefix (may be empty) and local part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct QName {
    prefix: String,
    local: String,
}

impl QName {
    fn parse(s: &str) -> Self {
        match s.split_once(':') {
            Some((p, l)) if !p.is_empty() && !l.is_empty() && !l.contains(':') => {
                Self { prefix: p.to_owned(), local: l.to_owned() }
            }
            _ => Self { prefix: String::new(), local: s.to_owned() },
        }
    }

    fn qualified(&self) -> String {
        if self.prefix.is_empty() { self.local.clone() } else { format!("{}:{}", self.prefix, self.local) }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Start { name: QName, attrs: Vec<(QName, String)> },
    End { name: QName },
    Text { data: String, cdata: bool },
    Comment(String),
    ProcInst { target: String, inst: String },
    Directive(String),
}

/// A strict XML tokenizer with `encoding/xml`'s checks and messages.
struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
    /// Open elements, for end-tag matching.
    stack: Vec<QName>,
    /// An end token owed for a self-closing tag.
    pending_end: Option<QName>,
    /// Whether an encoding other than UTF-8 may be declared (xmlquery installs a charset reader).
    charset_reader: bool,
}

impl<'a> Tokenizer<'a> {
    fn new(src: &'a str, charset_reader: bool) -> Self {
        Self { src, pos: 0, stack: Vec::new(), pending_end: None, charset_reader }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn syntax(&self, msg: impl std::fmt::Display) -> String {
        let line = 1 + self.bytes()[..self.pos.min(self.src.len())].iter().filter(|&&b| b == b'\n').count();
        format!("XML syntax error on line {line}: {msg}")
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn eof(&self) -> String {
        self.syntax("unexpected EOF")
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn is_name_char(c: char, first: bool) -> bool {
        if c.is_alphabetic() || c == '_' || c == ':' {
            return true;
        }
        !first
            && (c.is_numeric()
                || c == '.'
                || c == '-'
                || c == '\u{b7}'
                || (!c.is_ascii() && !c.is_whitespace()))
    }

    /// A name at the current position, or `None` (position unchanged) when there is none.
    fn name(&mut self) -> Option<String> {
        let rest = &self.src[self.pos..];
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            if !Self::is_name_char(c, i == 0) {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return None;
        }
        self.pos += end;
        Some(rest[..end].to_owned())
    }

    /// The next token, `None` at the end of the input.
    fn next(&mut self) -> Result<Option<Token>, String> {
        if let Some(name) = self.pending_end.take() {
            return Ok(Some(Token::End { name }));
        }
        if self.pos >= self.src.len() {
            if !self.stack.is_empty() {
                return Err(self.eof());
            }
            return Ok(None);
        }
        if self.peek() != Some(b'<') {
            let start = self.pos;
            let end = self.src[start..].find('<').map_or(self.src.len(), |i| start + i);
            self.pos = end;
            let data = self.decode_text(&self.src[start..end], start)?;
            return Ok(Some(Token::Text { data, cdata: false }));
        }
        self.pos += 1;
        match self.peek() {
            None => Err(self.eof()),
            Some(b'/') => {
                self.pos += 1;
                let Some(raw) = self.name() else {
                    return Err(self.syntax("expected element name after </"));
                };
                self.skip_space();
                match self.peek() {
                    None => return Err(self.eof()),
                    Some(b'>') => self.pos += 1,
                    Some(_) => return Err(self.syntax(format!("invalid characters between </{raw} and >"))),
                }
                let name = QName::parse(&raw);
                match self.stack.pop() {
                    None => Err(self.syntax(format!("unexpected end element </{}>", name.local))),
                    Some(open) if open != name => {
                        Err(self.syntax(format!("element <{}> closed by </{}>", open.local, name.local)))
                    }
                    Some(_) => Ok(Some(Token::End { name })),
                }
            }
            Some(b'?') => {
                self.pos += 1;
                let Some(target) = self.name() else {
                    return Err(self.syntax("expected target name after <?"));
                };
                let rest = &self.src[self.pos..];
                let Some(end) = rest.find("?>") else {
                    self.pos = self.src.len();
                    return Err(self.eof());
                };
                let inst = rest[..end].to_owned();
                self.pos += end + 2;
                if target == "xml" {
                    let content = inst.trim_start();
                    if let Some(ver) = proc_inst_param("version", content)
                        && ver != "1.0"
                    {
                        return Err(format!(
                            "xml: unsupported version {ver:?}; only version 1.0 is supported"
                        ));
                    }
                    if let Some(enc) = proc_inst_param("encoding", content)
                        && !enc.eq_ignore_ascii_case("utf-8")
                        && !self.charset_reader
                    {
                        return Err(format!(
                            "xml: encoding {enc:?} declared but Decoder.CharsetReader is nil"
                        ));
                    }
                }
                let inst = inst.trim_start_matches([' ', '\t', '\r', '\n']).to_owned();
                Ok(Some(Token::ProcInst { target, inst }))
            }
            Some(b'!') => {
                self.pos += 1;
                let rest = &self.src[self.pos..];
                if rest.starts_with("--") {
                    self.pos += 2;
                    let body_start = self.pos;
                    let body = &self.src[body_start..];
                    let Some(dash) = body.find("--") else {
                        self.pos = self.src.len();
                        return Err(self.eof());
                    };
                    self.pos = body_start + dash + 2;
                    match self.peek() {
                        Some(b'>') => {
                            self.pos += 1;
                            Ok(Some(Token::Comment(body[..dash].to_owned())))
                        }
                        None => Err(self.eof()),
                        Some(_) => Err(self.syntax("invalid sequence \"--\" not allowed in comments")),
                    }
                } else if rest.starts_with('-') {
                    Err(self.syntax("invalid sequence <!- not part of <!--"))
                } else if rest.starts_with('[') {
                    if !rest.starts_with("[CDATA[") {
                        if rest.len() < 7 {
                            self.pos = self.src.len();
                            return Err(self.eof());
                        }
                        return Err(self.syntax("invalid <![ sequence"));
                    }
                    self.pos += 7;
                    let body = &self.src[self.pos..];
                    let Some(end) = body.find("]]>") else {
                        self.pos = self.src.len();
                        return Err(self.eof());
                    };
                    let start = self.pos;
                    self.pos += end + 3;
                    let data = check_chars(&normalize_newlines(&body[..end])).map_err(|e| {
                        self.pos = start;
                        self.syntax(e)
                    })?;
                    Ok(Some(Token::Text { data, cdata: true }))
                } else {
                    // A directive such as <!DOCTYPE …>, with nested markup and quotes.
                    let start = self.pos;
                    let b = self.bytes();
                    let mut depth = 0usize;
                    let mut quote: Option<u8> = None;
                    let mut i = start;
                    loop {
                        let Some(&c) = b.get(i) else {
                            self.pos = self.src.len();
                            return Err(self.eof());
                        };
                        i += 1;
                        if let Some(q) = quote {
                            if c == q {
                                quote = None;
                            }
                            continue;
                        }
                        match c {
                            b'\'' | b'"' => quote = Some(c),
                            b'<' => depth += 1,
                            b'>' if depth == 0 => break,
                            b'>' => depth -= 1,
                            _ => {}
                        }
                    }
                    self.pos = i;
                    Ok(Some(Token::Directive(self.src[start..i - 1].to_owned())))
                }
            }
            Some(_) => {
                let Some(raw) = self.name() else {
                    return Err(self.syntax("expected element name after <"));
                };
                let name = QName::parse(&raw);
                let mut attrs: Vec<(QName, String)> = Vec::new();
                loop {
                    self.skip_space();
                    match self.peek() {
                        None => return Err(self.eof()),
                        Some(b'/') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(b'>') => {
                                    self.pos += 1;
                                    self.pending_end = Some(name.clone());
                                    break;
                                }
                                None => return Err(self.eof()),
                                Some(_) => return Err(self.syntax("expected /> in element")),
                            }
                        }
                        Some(b'>') => {
                            self.pos += 1;
                            self.stack.push(name.clone());
                            break;
                        }
                        Some(_) => {
                            let Some(attr) = self.name() else {
                                return Err(self.syntax("expected attribute name in element"));
                            };
                            self.skip_space();
                            match self.peek() {
                                None => return Err(self.eof()),
                                Some(b'=') => self.pos += 1,
                                Some(_) => return Err(self.syntax("attribute name without = in element")),
                            }
                            self.skip_space();
                            let quote = match self.peek() {
                                None => return Err(self.eof()),
                                Some(q @ (b'"' | b'\'')) => q,
                                Some(_) => {
                                    return Err(self.syntax("unquoted or missing attribute value in element"));
                                }
                            };
                            self.pos += 1;
                            let start = self.pos;
                            let rest = &self.bytes()[start..];
                            let Some(len) = rest.iter().position(|&c| c == quote) else {
                                self.pos = self.src.len();
                                return Err(self.eof());
                            };
                            let raw_value = &self.src[start..start + len];
                            if let Some(lt) = raw_value.find('<') {
                                self.pos = start + lt;
                                return Err(self.syntax("unescaped < inside quoted string"));
                            }
                            let value = self.decode_text(raw_value, start)?;
                            self.pos = start + len + 1;
                            attrs.push((QName::parse(&attr), value));
                        }
                    }
                }
                if self.stack.len() > MAX_DEPTH {
                    return Err(format!("exceeded maximum XML nesting depth of {MAX_DEPTH}"));
                }
                Ok(Some(Token::Start { name, attrs }))
            }
        }
    }

    /// Character data with entity references replaced and line ends normalised.
    fn decode_text(&self, raw: &str, at: usize) -> Result<String, String> {
        let err = |offset: usize, msg: String| {
            let line =
                1 + self.bytes()[..(at + offset).min(self.src.len())].iter().filter(|&&b| b == b'\n').count();
            format!("XML syntax error on line {line}: {msg}")
        };
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        let mut offset = 0;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let name_len = after
                .find(|c: char| !(c.is_alphanumeric() || c == '#' || c == '_' || c == '-' || c == '.'))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            let terminated = after[name_len..].starts_with(';');
            let resolved = if terminated {
                match name {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => {
                        let code = if let Some(hex) = name.strip_prefix("#x") {
                            u32::from_str_radix(hex, 16).ok()
                        } else if let Some(dec) = name.strip_prefix('#') {
                            dec.parse::<u32>().ok()
                        } else {
                            None
                        };
                        code.filter(|&c| in_char_range(c)).and_then(char::from_u32)
                    }
                }
            } else {
                None
            };
            let Some(c) = resolved else {
                let shown = if terminated { format!("&{name};") } else { format!("&{name}") };
                return Err(err(offset + amp, format!("invalid character entity {shown}")));
            };
            out.push(c);
            let consumed = amp + 1 + name_len + 1;
            offset += consumed;
            rest = &rest[consumed..];
        }
        out.push_str(rest);
        check_chars(&normalize_newlines(&out)).map_err(|e| err(0, e))
    }
}

/// The value of `name="…"` in a processing instruction's content (Go's `procInst`).
fn proc_inst_param(name: &str, content: &str) -> Option<String> {
    let idx = content.find(&format!("{name}="))?;
    let rest = &content[idx + name.len() + 1..];
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let body = &rest[1..];
    let end = body.find(quote)?;
    Some(body[..end].to_owned())
}

fn normalize_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_owned();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn in_char_range(c: u32) -> bool {
    c == 0x09
        || c == 0x0a
        || c == 0x0d
        || (0x20..=0xd7ff).contains(&c)
        || (0xe000..=0xfffd).contains(&c)
        || (0x10000..=0x10ffff).contains(&c)
}

fn check_chars(s: &str) -> Result<String, String> {
    match s.chars().find(|&c| !in_char_range(c as u32)) {
        Some(c) => Err(format!("illegal character code U+{:04X}", c as u32)),
        None => Ok(s.to_owned()),
    }
}

// === the document tree (xmlquery) ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Document,
    Declaration,
    Element,
    Text,
    CData,
    Comment,
    Notation,
}

#[derive(Clone, Debug)]
struct Attr {
    name: QName,
    value: String,
}

#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    /// Element local name, declaration target, or text/comment content.
    data: String,
    prefix: String,
    attrs: Vec<Attr>,
    parent: Option<usize>,
    children: Vec<usize>,
    level: usize,
}

/// A document: node 0 is the document node.
#[derive(Clone, Debug)]
struct Doc {
    nodes: Vec<Node>,
}

const ROOT: usize = 0;

impl Doc {
    fn new() -> Self {
        Self { nodes: vec![Node::new(Kind::Document, String::new(), 0)] }
    }

    fn add(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn append_child(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// xmlquery's `AddSibling`: appended to the sibling's parent (lost when the sibling is the document).
    fn add_sibling(&mut self, sibling: usize, node: usize) {
        if let Some(parent) = self.nodes[sibling].parent {
            self.append_child(parent, node);
        }
    }

    fn detach(&mut self, node: usize) {
        if let Some(parent) = self.nodes[node].parent.take() {
            self.nodes[parent].children.retain(|&c| c != node);
        }
    }

    /// Parses like `xmlquery.Parse`.
    fn parse(src: &str) -> Result<Self, String> {
        let mut doc = Self::new();
        let mut tokens = Tokenizer::new(src, true);
        let mut declared: Vec<Vec<String>> = Vec::new();
        let mut prev = ROOT;
        let mut level = 0usize;
        while let Some(token) = tokens.next()? {
            match token {
                Token::Start { name, attrs } => {
                    if level == 0 {
                        let mut decl = Node::new(Kind::Declaration, "xml".into(), 1);
                        decl.attrs.push(Attr { name: QName::parse("version"), value: "1.0".into() });
                        let id = doc.add(decl);
                        doc.append_child(prev, id);
                        level = 1;
                        prev = id;
                    }
                    declared.push(
                        attrs
                            .iter()
                            .filter_map(|(n, _)| match (n.prefix.as_str(), n.local.as_str()) {
                                ("xmlns", p) => Some(p.to_owned()),
                                _ => None,
                            })
                            .collect(),
                    );
                    if !name.prefix.is_empty()
                        && name.prefix != "xml"
                        && !declared.iter().any(|scope| scope.contains(&name.prefix))
                    {
                        return Err(format!(
                            "xmlquery: invalid XML document, namespace {} is missing",
                            name.prefix
                        ));
                    }
                    let mut node = Node::new(Kind::Element, name.local, level);
                    node.prefix = name.prefix;
                    node.attrs = attrs.into_iter().map(|(name, value)| Attr { name, value }).collect();
                    let id = doc.add(node);
                    doc.attach(&mut prev, level, id);
                    prev = id;
                    level += 1;
                }
                Token::End { .. } => {
                    declared.pop();
                    level = level.saturating_sub(1);
                }
                Token::Text { data, cdata } => {
                    let id = doc.add(Node::new(if cdata { Kind::CData } else { Kind::Text }, data, level));
                    doc.attach(&mut prev, level, id);
                }
                Token::Comment(data) => {
                    let id = doc.add(Node::new(Kind::Comment, data, level));
                    doc.attach(&mut prev, level, id);
                }
                Token::Directive(data) => {
                    let id = doc.add(Node::new(Kind::Notation, data, level));
                    doc.attach(&mut prev, level, id);
                }
                Token::ProcInst { target, inst } => {
                    if doc.nodes[prev].kind != Kind::Declaration {
                        level += 1;
                    }
                    let mut node = Node::new(Kind::Declaration, target, level);
                    for pair in inst.split(' ') {
                        let pair = pair.trim();
                        if let Some(eq) = pair.find('=').filter(|&i| i > 0) {
                            let value = pair[eq + 1..].trim_matches(|c| c == '"' || c == '\'');
                            node.attrs
                                .push(Attr { name: QName::parse(&pair[..eq]), value: value.to_owned() });
                        }
                    }
                    let id = doc.add(node);
                    doc.attach(&mut prev, level, id);
                    prev = id;
                }
            }
        }
        Ok(doc)
    }

    /// Places a new node relative to the previous element or declaration, as xmlquery's parser does.
    fn attach(&mut self, prev: &mut usize, level: usize, node: usize) {
        let prev_level = self.nodes[*prev].level;
        if level == prev_level {
            self.add_sibling(*prev, node);
        } else if level > prev_level {
            self.append_child(*prev, node);
        } else {
            for _ in 1..prev_level - level {
                if let Some(p) = self.nodes[*prev].parent {
                    *prev = p;
                }
            }
            if let Some(p) = self.nodes[*prev].parent {
                self.add_sibling(p, node);
            }
        }
    }

    /// The text of a node's text and CDATA descendants (comments excluded).
    fn inner_text(&self, node: usize) -> String {
        let mut out = String::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            let nd = &self.nodes[n];
            match nd.kind {
                Kind::Text | Kind::CData => out.push_str(&nd.data),
                Kind::Comment => {}
                _ => stack.extend(nd.children.iter().rev()),
            }
        }
        out
    }

    /// Serialises a node (or, for the document, its children) like `OutputXML`.
    fn output(&self, node: usize, out: &mut String) {
        enum Step {
            Open(usize, bool),
            Close(usize),
        }
        let preserve = true;
        let mut stack: Vec<Step> = Vec::new();
        if self.nodes[node].kind == Kind::Document {
            stack.extend(self.nodes[node].children.iter().rev().map(|&c| Step::Open(c, preserve)));
        } else {
            stack.push(Step::Open(node, preserve));
        }
        while let Some(step) = stack.pop() {
            match step {
                Step::Close(n) => {
                    let nd = &self.nodes[n];
                    let _ = write!(out, "</{}>", qualified(&nd.prefix, &nd.data));
                }
                Step::Open(n, inherited) => {
                    let nd = &self.nodes[n];
                    let preserve = match self.attr_value(n, "xml", "space") {
                        Some("preserve") => true,
                        Some("default") => false,
                        _ => inherited,
                    };
                    match nd.kind {
                        Kind::Text => {
                            let data = if preserve { nd.data.as_str() } else { nd.data.trim() };
                            out.push_str(&html_escape(data));
                            continue;
                        }
                        Kind::CData => {
                            let _ = write!(out, "<![CDATA[{}]]>", nd.data);
                            continue;
                        }
                        Kind::Comment => {
                            let _ = write!(out, "<!--{}-->", nd.data);
                            continue;
                        }
                        Kind::Notation => {
                            let _ = write!(out, "<!{}>", nd.data);
                            continue;
                        }
                        Kind::Declaration => {
                            let _ = write!(out, "<?{}", nd.data);
                        }
                        Kind::Element | Kind::Document => {
                            let _ = write!(out, "<{}", qualified(&nd.prefix, &nd.data));
                        }
                    }
                    for a in &nd.attrs {
                        let _ = write!(out, " {}=\"{}\"", a.name.qualified(), html_escape(&a.value));
                    }
                    if nd.kind == Kind::Declaration {
                        out.push_str("?>");
                        stack.extend(nd.children.iter().rev().map(|&c| Step::Open(c, preserve)));
                    } else {
                        out.push('>');
                        stack.push(Step::Close(n));
                        stack.extend(nd.children.iter().rev().map(|&c| Step::Open(c, preserve)));
                    }
                }
            }
        }
    }

    fn output_string(&self, node: usize) -> String {
        let mut out = String::new();
        self.output(node, &mut out);
        out
    }

    fn attr_value(&self, node: usize, prefix: &str, local: &str) -> Option<&str> {
        self.nodes[node]
            .attrs
            .iter()
            .find(|a| a.name.prefix == prefix && a.name.local == local)
            .map(|a| a.value.as_str())
    }

    /// Copies a subtree of another document under `parent`.
    fn import(&mut self, other: &Doc, node: usize, parent: usize) {
        let mut work = vec![(node, parent)];
        while let Some((src, dst_parent)) = work.pop() {
            let mut copy = other.nodes[src].clone();
            copy.children.clear();
            copy.parent = None;
            let id = self.add(copy);
            self.append_child(dst_parent, id);
            work.extend(other.nodes[src].children.iter().rev().map(|&c| (c, id)));
        }
    }
}

impl Node {
    fn new(kind: Kind, data: String, level: usize) -> Self {
        Self {
            kind,
            data,
            prefix: String::new(),
            attrs: Vec::new(),
            parent: None,
            children: Vec::new(),
            level,
        }
    }
}

fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() { local.to_owned() } else { format!("{prefix}:{local}") }
}

/// Go's `html.EscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

/// The Collector's `parseNodesXML`: parses, and drops the leading declaration unless the input had one.
fn parse_nodes_xml(src: &str) -> Result<Doc, String> {
    let mut doc = Doc::parse(src).map_err(|e| format!("parse xml: {e}"))?;
    if !src.starts_with("<?xml")
        && let Some(&first) = doc.nodes[ROOT].children.first()
    {
        doc.detach(first);
    }
    Ok(doc)
}

// === XPath ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum NodeRef {
    Node(usize),
    Attr(usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    Itself,
    Parent,
    Ancestor,
    AncestorOrSelf,
    FollowingSibling,
    PrecedingSibling,
    Following,
    Preceding,
    Attribute,
}

impl Axis {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "child" => Self::Child,
            "descendant" => Self::Descendant,
            "descendant-or-self" => Self::DescendantOrSelf,
            "self" => Self::Itself,
            "parent" => Self::Parent,
            "ancestor" => Self::Ancestor,
            "ancestor-or-self" => Self::AncestorOrSelf,
            "following-sibling" => Self::FollowingSibling,
            "preceding-sibling" => Self::PrecedingSibling,
            "following" => Self::Following,
            "preceding" => Self::Preceding,
            "attribute" => Self::Attribute,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum NodeTest {
    /// `*`, `prefix:*`, `name` or `prefix:name` (local `*` means any).
    Name {
        prefix: String,
        local: String,
    },
    Node,
    Text,
    Comment,
    ProcessingInstruction(Option<String>),
}

#[derive(Clone, Debug, PartialEq)]
struct Step {
    axis: Axis,
    test: NodeTest,
    predicates: Vec<Expr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Union,
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    /// A location path; `absolute` starts from the document node.
    Path {
        absolute: bool,
        steps: Vec<Step>,
    },
    /// A primary expression with predicates, then location steps.
    Filter {
        primary: Box<Expr>,
        predicates: Vec<Expr>,
        steps: Vec<Step>,
    },
    Literal(String),
    Number(f64),
    Call(String, Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Slash,
    DoubleSlash,
    LBracket,
    RBracket,
    LParen,
    RParen,
    At,
    Comma,
    Pipe,
    Dot,
    DotDot,
    ColonColon,
    Star,
    Name(String),
    Literal(String),
    Number(f64),
    Op(&'static str),
    Dollar,
}

fn lex_xpath(src: &str) -> Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                toks.push(Tok::DoubleSlash);
                i += 2;
            }
            b'/' => {
                toks.push(Tok::Slash);
                i += 1;
            }
            b'[' => {
                toks.push(Tok::LBracket);
                i += 1;
            }
            b']' => {
                toks.push(Tok::RBracket);
                i += 1;
            }
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'@' => {
                toks.push(Tok::At);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b'$' => {
                toks.push(Tok::Dollar);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                toks.push(Tok::ColonColon);
                i += 2;
            }
            b'.' if b.get(i + 1) == Some(&b'.') => {
                toks.push(Tok::DotDot);
                i += 2;
            }
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                toks.push(Tok::Dot);
                i += 1;
            }
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let n = src[start..i].parse::<f64>().map_err(|_| format!("{src} has an invalid number"))?;
                toks.push(Tok::Number(n));
            }
            b'"' | b'\'' => {
                let end = src[i + 1..]
                    .find(char::from(c))
                    .ok_or_else(|| format!("{src} has an unclosed string literal"))?;
                toks.push(Tok::Literal(src[i + 1..i + 1 + end].to_owned()));
                i += end + 2;
            }
            b'*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            b'=' => {
                toks.push(Tok::Op("="));
                i += 1;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Op("!="));
                i += 2;
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                toks.push(Tok::Op(match (c, eq) {
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            b'+' => {
                toks.push(Tok::Op("+"));
                i += 1;
            }
            b'-' => {
                toks.push(Tok::Op("-"));
                i += 1;
            }
            _ => {
                let rest = &src[i..];
                let mut end = 0;
                let mut chars = rest.char_indices().peekable();
                while let Some((j, ch)) = chars.next() {
                    let ok = if j == 0 {
                        ch.is_alphabetic() || ch == '_'
                    } else {
                        ch.is_alphanumeric()
                            || matches!(ch, '_' | '-' | '.' | '\u{b7}')
                            || (ch == ':'
                                && chars.peek().is_some_and(|&(_, n)| n != ':')
                                && !rest[..j].contains(':'))
                    };
                    if !ok {
                        break;
                    }
                    end = j + ch.len_utf8();
                }
                if end == 0 {
                    return Err(format!("{src} has an invalid token"));
                }
                let mut name = rest[..end].to_owned();
                i += end;
                // `prefix:*`
                if name.ends_with(':') && b.get(i) == Some(&b'*') {
                    name.push('*');
                    i += 1;
                }
                toks.push(Tok::Name(name));
            }
        }
    }
    resolve_operators(&mut toks);
    Ok(toks)
}

/// XPath's lexical rule: after a token that can end an operand, `*` is multiplication and `and`, `or`,
/// `div`, `mod` are operators.
fn resolve_operators(toks: &mut [Tok]) {
    for i in 1..toks.len() {
        let after_operand = !matches!(
            toks[i - 1],
            Tok::At
                | Tok::ColonColon
                | Tok::LParen
                | Tok::LBracket
                | Tok::Comma
                | Tok::Op(_)
                | Tok::Slash
                | Tok::DoubleSlash
                | Tok::Pipe
                | Tok::Dollar
        );
        if !after_operand {
            continue;
        }
        let op = match &toks[i] {
            Tok::Star => "*",
            Tok::Name(n) if n == "and" => "and",
            Tok::Name(n) if n == "or" => "or",
            Tok::Name(n) if n == "div" => "div",
            Tok::Name(n) if n == "mod" => "mod",
            _ => continue,
        };
        toks[i] = Tok::Op(op);
    }
}

struct XPathParser<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    pos: usize,
}

impl<'a> XPathParser<'a> {
    fn err(&self, what: &str) -> String {
        format!("{} has an invalid token: {what}", self.src)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok) -> Result<(), String> {
        if self.eat(t) { Ok(()) } else { Err(self.err(&format!("expected {t:?}"))) }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn parse(mut self) -> Result<Expr, String> {
        let e = self.or_expr()?;
        if self.pos != self.toks.len() {
            return Err(self.err("unexpected trailing input"));
        }
        Ok(e)
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and_expr()?;
        while self.is_op("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.equality_expr()?;
        while self.is_op("and") {
            self.pos += 1;
            let right = self.equality_expr()?;
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn equality_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.relational_expr()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("=")) => BinOp::Eq,
                Some(Tok::Op("!=")) => BinOp::Ne,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.relational_expr()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn relational_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.additive_expr()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("<")) => BinOp::Lt,
                Some(Tok::Op("<=")) => BinOp::Le,
                Some(Tok::Op(">")) => BinOp::Gt,
                Some(Tok::Op(">=")) => BinOp::Ge,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.additive_expr()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn additive_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.multiplicative_expr()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.multiplicative_expr()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.unary_expr()?;
        loop {
            let op = if self.is_op("*") {
                BinOp::Mul
            } else if self.is_op("div") {
                BinOp::Div
            } else if self.is_op("mod") {
                BinOp::Mod
            } else {
                return Ok(left);
            };
            self.pos += 1;
            let right = self.unary_expr()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary_expr(&mut self) -> Result<Expr, String> {
        if self.eat(&Tok::Op("-")) {
            return Ok(Expr::Neg(Box::new(self.unary_expr()?)));
        }
        self.union_expr()
    }

    fn union_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.path_expr()?;
        while self.eat(&Tok::Pipe) {
            let right = self.path_expr()?;
            left = Expr::Binary(BinOp::Union, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn path_expr(&mut self) -> Result<Expr, String> {
        let primary_start = match self.peek() {
            Some(Tok::Literal(_) | Tok::Number(_) | Tok::LParen | Tok::Dollar) => true,
            Some(Tok::Name(n)) => {
                self.peek_at(1) == Some(&Tok::LParen)
                    && !matches!(n.as_str(), "node" | "text" | "comment" | "processing-instruction")
            }
            _ => false,
        };
        if primary_start {
            let primary = self.primary_expr()?;
            let mut predicates = Vec::new();
            while self.peek() == Some(&Tok::LBracket) {
                predicates.push(self.predicate()?);
            }
            let mut steps = Vec::new();
            loop {
                if self.eat(&Tok::Slash) {
                    steps.push(self.step()?);
                } else if self.eat(&Tok::DoubleSlash) {
                    steps.push(descendant_or_self());
                    steps.push(self.step()?);
                } else {
                    break;
                }
            }
            if predicates.is_empty() && steps.is_empty() {
                return Ok(primary);
            }
            return Ok(Expr::Filter { primary: Box::new(primary), predicates, steps });
        }
        self.location_path()
    }

    fn primary_expr(&mut self) -> Result<Expr, String> {
        match self.peek().cloned() {
            Some(Tok::Literal(s)) => {
                self.pos += 1;
                Ok(Expr::Literal(s))
            }
            Some(Tok::Number(n)) => {
                self.pos += 1;
                Ok(Expr::Number(n))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.or_expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Dollar) => Err(self.err("variables are not supported")),
            Some(Tok::Name(name)) => {
                self.pos += 2;
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.or_expr()?);
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        self.expect(&Tok::Comma)?;
                    }
                }
                check_function(self.src, &name, args.len())?;
                Ok(Expr::Call(name, args))
            }
            _ => Err(self.err("expected an expression")),
        }
    }

    fn predicate(&mut self) -> Result<Expr, String> {
        self.expect(&Tok::LBracket)?;
        let e = self.or_expr()?;
        self.expect(&Tok::RBracket)?;
        Ok(e)
    }

    fn location_path(&mut self) -> Result<Expr, String> {
        let mut steps = Vec::new();
        let absolute = match self.peek() {
            Some(Tok::Slash) => {
                self.pos += 1;
                if self.starts_step() {
                    steps.push(self.step()?);
                } else {
                    return Ok(Expr::Path { absolute: true, steps });
                }
                true
            }
            Some(Tok::DoubleSlash) => {
                self.pos += 1;
                steps.push(descendant_or_self());
                steps.push(self.step()?);
                true
            }
            _ => {
                steps.push(self.step()?);
                false
            }
        };
        loop {
            if self.eat(&Tok::Slash) {
                steps.push(self.step()?);
            } else if self.eat(&Tok::DoubleSlash) {
                steps.push(descendant_or_self());
                steps.push(self.step()?);
            } else {
                break;
            }
        }
        Ok(Expr::Path { absolute, steps })
    }

    fn starts_step(&self) -> bool {
        matches!(self.peek(), Some(Tok::Dot | Tok::DotDot | Tok::At | Tok::Star | Tok::Name(_)))
    }

    fn step(&mut self) -> Result<Step, String> {
        if self.eat(&Tok::Dot) {
            return Ok(Step { axis: Axis::Itself, test: NodeTest::Node, predicates: Vec::new() });
        }
        if self.eat(&Tok::DotDot) {
            return Ok(Step { axis: Axis::Parent, test: NodeTest::Node, predicates: Vec::new() });
        }
        let mut axis = Axis::Child;
        if self.eat(&Tok::At) {
            axis = Axis::Attribute;
        } else if let (Some(Tok::Name(n)), Some(Tok::ColonColon)) = (self.peek(), self.peek_at(1)) {
            axis = Axis::from_name(n).ok_or_else(|| self.err(&format!("unknown axis {n}")))?;
            self.pos += 2;
        }
        let test = match self.peek().cloned() {
            Some(Tok::Star) => {
                self.pos += 1;
                NodeTest::Name { prefix: String::new(), local: "*".into() }
            }
            Some(Tok::Name(n)) if self.peek_at(1) == Some(&Tok::LParen) => {
                self.pos += 2;
                let test = match n.as_str() {
                    "node" => NodeTest::Node,
                    "text" => NodeTest::Text,
                    "comment" => NodeTest::Comment,
                    "processing-instruction" => {
                        let target = match self.peek().cloned() {
                            Some(Tok::Literal(s)) => {
                                self.pos += 1;
                                Some(s)
                            }
                            _ => None,
                        };
                        NodeTest::ProcessingInstruction(target)
                    }
                    _ => return Err(self.err(&format!("{n}() is not a node test"))),
                };
                self.expect(&Tok::RParen)?;
                test
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                match n.split_once(':') {
                    Some((p, l)) => NodeTest::Name { prefix: p.to_owned(), local: l.to_owned() },
                    None => NodeTest::Name { prefix: String::new(), local: n },
                }
            }
            _ => return Err(self.err("expected a node test")),
        };
        let mut predicates = Vec::new();
        while self.peek() == Some(&Tok::LBracket) {
            predicates.push(self.predicate()?);
        }
        Ok(Step { axis, test, predicates })
    }
}

fn descendant_or_self() -> Step {
    Step { axis: Axis::DescendantOrSelf, test: NodeTest::Node, predicates: Vec::new() }
}

fn check_function(src: &str, name: &str, argc: usize) -> Result<(), String> {
    let (min, max) = match name {
        "last" | "position" | "true" | "false" => (0, 0),
        "count" | "not" | "boolean" | "sum" | "floor" | "ceiling" | "round" | "lower-case" | "upper-case" => {
            (1, 1)
        }
        "local-name" | "name" | "namespace-uri" | "string" | "string-length" | "normalize-space"
        | "number" => (0, 1),
        "contains" | "starts-with" | "ends-with" | "substring-before" | "substring-after" => (2, 2),
        "substring" => (2, 3),
        "translate" => (3, 3),
        "concat" => (2, usize::MAX),
        _ => return Err(format!("{src} has an invalid token: not supported function {name}")),
    };
    if argc < min || argc > max {
        return Err(format!("{src} has an invalid token: wrong number of arguments to {name}()"));
    }
    Ok(())
}

/// A compiled XPath expression.
#[derive(Clone, Debug, PartialEq)]
struct XPath {
    expr: Expr,
}

impl XPath {
    fn compile(src: &str) -> Result<Self, String> {
        let toks = lex_xpath(src)?;
        if toks.is_empty() {
            return Err(format!("{src} has an invalid token: empty expression"));
        }
        let expr = XPathParser { src, toks, pos: 0 }.parse()?;
        Ok(Self { expr })
    }

    /// The nodes the expression selects from the document node, in document order.
    fn select(&self, doc: &Doc) -> Vec<NodeRef> {
        let ev = Evaluator::new(doc);
        match ev.eval(&self.expr, &Ctx { node: NodeRef::Node(ROOT), position: 1, size: 1 }) {
            XValue::Nodes(nodes) => nodes,
            _ => Vec::new(),
        }
    }
}

/// `validateXPath`: the Collector's message for an expression that does not compile.
fn compile_xpath(src: &str) -> Result<XPath, String> {
    XPath::compile(src).map_err(|e| format!("invalid xpath: {e}"))
}

#[derive(Clone, Debug)]
enum XValue {
    Nodes(Vec<NodeRef>),
    Str(String),
    Num(f64),
    Bool(bool),
}

struct Ctx {
    node: NodeRef,
    position: usize,
    size: usize,
}

/// XPath node categories as xmlquery's navigator reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum XKind {
    Root,
    Element,
    Attribute,
    Text,
    Comment,
}

struct Evaluator<'d> {
    doc: &'d Doc,
    /// Document order of each tree node.
    order: Vec<usize>,
}

impl<'d> Evaluator<'d> {
    fn new(doc: &'d Doc) -> Self {
        let mut order = vec![usize::MAX; doc.nodes.len()];
        let mut stack = vec![ROOT];
        let mut n = 0;
        while let Some(id) = stack.pop() {
            order[id] = n;
            n += 1;
            stack.extend(doc.nodes[id].children.iter().rev());
        }
        Self { doc, order }
    }

    fn kind(&self, r: NodeRef) -> XKind {
        match r {
            NodeRef::Attr(..) => XKind::Attribute,
            NodeRef::Node(n) => match self.doc.nodes[n].kind {
                Kind::Document | Kind::Declaration => XKind::Root,
                Kind::Element => XKind::Element,
                Kind::Text | Kind::CData | Kind::Notation => XKind::Text,
                Kind::Comment => XKind::Comment,
            },
        }
    }

    fn order_key(&self, r: NodeRef) -> (usize, usize) {
        match r {
            NodeRef::Node(n) => (self.order[n], 0),
            NodeRef::Attr(n, i) => (self.order[n], i + 1),
        }
    }

    fn sort_unique(&self, mut nodes: Vec<NodeRef>) -> Vec<NodeRef> {
        nodes.sort_by_key(|&r| self.order_key(r));
        nodes.dedup();
        nodes
    }

    /// Children as the navigator walks them: the first child, then siblings that are not
    /// whitespace-only text.
    fn children(&self, n: usize) -> Vec<usize> {
        self.doc.nodes[n]
            .children
            .iter()
            .enumerate()
            .filter(|&(i, &c)| {
                let nd = &self.doc.nodes[c];
                i == 0 || nd.kind != Kind::Text || !nd.data.trim().is_empty()
            })
            .map(|(_, &c)| c)
            .collect()
    }

    fn parent(&self, r: NodeRef) -> Option<NodeRef> {
        match r {
            NodeRef::Attr(n, _) => Some(NodeRef::Node(n)),
            NodeRef::Node(n) => self.doc.nodes[n].parent.map(NodeRef::Node),
        }
    }

    fn descendants(&self, n: usize, out: &mut Vec<NodeRef>) {
        let mut stack: Vec<usize> = self.children(n).into_iter().rev().collect();
        while let Some(c) = stack.pop() {
            out.push(NodeRef::Node(c));
            stack.extend(self.children(c).into_iter().rev());
        }
    }

    fn siblings(&self, n: usize) -> (Vec<NodeRef>, Vec<NodeRef>) {
        let Some(p) = self.doc.nodes[n].parent else { return (Vec::new(), Vec::new()) };
        let kids = self.children(p);
        let Some(at) = kids.iter().position(|&k| k == n) else { return (Vec::new(), Vec::new()) };
        let before = kids[..at].iter().rev().map(|&k| NodeRef::Node(k)).collect();
        let after = kids[at + 1..].iter().map(|&k| NodeRef::Node(k)).collect();
        (before, after)
    }

    /// The nodes of `axis` from `r`, in axis order (reverse document order for reverse axes).
    fn axis_nodes(&self, axis: Axis, r: NodeRef) -> Vec<NodeRef> {
        let mut out = Vec::new();
        match axis {
            Axis::Itself => out.push(r),
            Axis::Child => {
                if let NodeRef::Node(n) = r {
                    out.extend(self.children(n).into_iter().map(NodeRef::Node));
                }
            }
            Axis::Descendant | Axis::DescendantOrSelf => {
                if axis == Axis::DescendantOrSelf {
                    out.push(r);
                }
                if let NodeRef::Node(n) = r {
                    self.descendants(n, &mut out);
                }
            }
            Axis::Parent => out.extend(self.parent(r)),
            Axis::Ancestor | Axis::AncestorOrSelf => {
                if axis == Axis::AncestorOrSelf {
                    out.push(r);
                }
                let mut cur = self.parent(r);
                while let Some(p) = cur {
                    out.push(p);
                    cur = self.parent(p);
                }
            }
            Axis::FollowingSibling | Axis::PrecedingSibling => {
                if let NodeRef::Node(n) = r {
                    let (before, after) = self.siblings(n);
                    out = if axis == Axis::FollowingSibling { after } else { before };
                }
            }
            Axis::Following => {
                let mut cur = match r {
                    NodeRef::Attr(n, _) => {
                        self.descendants(n, &mut out);
                        n
                    }
                    NodeRef::Node(n) => n,
                };
                loop {
                    let (_, after) = self.siblings(cur);
                    for s in after {
                        out.push(s);
                        if let NodeRef::Node(sn) = s {
                            self.descendants(sn, &mut out);
                        }
                    }
                    match self.doc.nodes[cur].parent {
                        Some(p) => cur = p,
                        None => break,
                    }
                }
            }
            Axis::Preceding => {
                let ancestors: Vec<NodeRef> = self.axis_nodes(Axis::Ancestor, r);
                let mut all = Vec::new();
                self.descendants(ROOT, &mut all);
                let key = self.order_key(r);
                out = all
                    .into_iter()
                    .filter(|&x| self.order_key(x) < key && !ancestors.contains(&x))
                    .rev()
                    .collect();
            }
            Axis::Attribute => {
                if let NodeRef::Node(n) = r
                    && self.doc.nodes[n].kind == Kind::Element
                {
                    out.extend((0..self.doc.nodes[n].attrs.len()).map(|i| NodeRef::Attr(n, i)));
                }
            }
        }
        out
    }

    fn prefix_local(&self, r: NodeRef) -> (String, String) {
        match r {
            NodeRef::Attr(n, i) => {
                let a = &self.doc.nodes[n].attrs[i];
                (a.name.prefix.clone(), a.name.local.clone())
            }
            NodeRef::Node(n) => {
                let nd = &self.doc.nodes[n];
                match nd.kind {
                    Kind::Element | Kind::Declaration => (nd.prefix.clone(), nd.data.clone()),
                    _ => (String::new(), String::new()),
                }
            }
        }
    }

    fn matches(&self, axis: Axis, test: &NodeTest, r: NodeRef) -> bool {
        let kind = self.kind(r);
        match test {
            NodeTest::Node => true,
            NodeTest::Text => kind == XKind::Text,
            NodeTest::Comment => kind == XKind::Comment,
            NodeTest::ProcessingInstruction(target) => match r {
                NodeRef::Node(n) => {
                    let nd = &self.doc.nodes[n];
                    nd.kind == Kind::Declaration && target.as_ref().is_none_or(|t| *t == nd.data)
                }
                NodeRef::Attr(..) => false,
            },
            NodeTest::Name { prefix, local } => {
                let principal = if axis == Axis::Attribute { XKind::Attribute } else { XKind::Element };
                if kind != principal {
                    return false;
                }
                let (p, l) = self.prefix_local(r);
                (local == "*" || *local == l) && (prefix.is_empty() || *prefix == p)
            }
        }
    }

    /// The string value of a node as xmlquery's navigator gives it.
    fn string_value(&self, r: NodeRef) -> String {
        match r {
            NodeRef::Attr(n, i) => self.doc.nodes[n].attrs[i].value.clone(),
            NodeRef::Node(n) => {
                let nd = &self.doc.nodes[n];
                match nd.kind {
                    Kind::Element => self.doc.inner_text(n),
                    Kind::Text | Kind::Comment => nd.data.clone(),
                    _ => String::new(),
                }
            }
        }
    }

    fn apply_steps(&self, mut nodes: Vec<NodeRef>, steps: &[Step]) -> Vec<NodeRef> {
        for step in steps {
            let mut next = Vec::new();
            for &ctx in &nodes {
                let candidates: Vec<NodeRef> = self
                    .axis_nodes(step.axis, ctx)
                    .into_iter()
                    .filter(|&r| self.matches(step.axis, &step.test, r))
                    .collect();
                next.extend(self.filter(candidates, &step.predicates));
            }
            nodes = self.sort_unique(next);
        }
        nodes
    }

    fn filter(&self, mut nodes: Vec<NodeRef>, predicates: &[Expr]) -> Vec<NodeRef> {
        for pred in predicates {
            let size = nodes.len();
            nodes = nodes
                .into_iter()
                .enumerate()
                .filter(|&(i, r)| match self.eval(pred, &Ctx { node: r, position: i + 1, size }) {
                    XValue::Num(n) => n == (i + 1) as f64,
                    other => self.boolean(&other),
                })
                .map(|(_, r)| r)
                .collect();
        }
        nodes
    }

    fn eval(&self, e: &Expr, ctx: &Ctx) -> XValue {
        match e {
            Expr::Literal(s) => XValue::Str(s.clone()),
            Expr::Number(n) => XValue::Num(*n),
            Expr::Neg(inner) => XValue::Num(-self.number(&self.eval(inner, ctx))),
            Expr::Path { absolute, steps } => {
                let start = if *absolute { NodeRef::Node(ROOT) } else { ctx.node };
                XValue::Nodes(self.apply_steps(vec![start], steps))
            }
            Expr::Filter { primary, predicates, steps } => match self.eval(primary, ctx) {
                XValue::Nodes(nodes) => {
                    let nodes = self.filter(nodes, predicates);
                    XValue::Nodes(self.apply_steps(nodes, steps))
                }
                other if predicates.is_empty() && steps.is_empty() => other,
                _ => XValue::Nodes(Vec::new()),
            },
            Expr::Binary(op, l, r) => self.binary(*op, l, r, ctx),
            Expr::Call(name, args) => self.call(name, args, ctx),
        }
    }

    fn binary(&self, op: BinOp, l: &Expr, r: &Expr, ctx: &Ctx) -> XValue {
        match op {
            BinOp::Or => XValue::Bool(self.boolean(&self.eval(l, ctx)) || self.boolean(&self.eval(r, ctx))),
            BinOp::And => XValue::Bool(self.boolean(&self.eval(l, ctx)) && self.boolean(&self.eval(r, ctx))),
            BinOp::Union => {
                let mut nodes = match self.eval(l, ctx) {
                    XValue::Nodes(n) => n,
                    _ => Vec::new(),
                };
                if let XValue::Nodes(more) = self.eval(r, ctx) {
                    nodes.extend(more);
                }
                XValue::Nodes(self.sort_unique(nodes))
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                let a = self.number(&self.eval(l, ctx));
                let b = self.number(&self.eval(r, ctx));
                XValue::Num(match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                    _ => a % b,
                })
            }
            _ => XValue::Bool(self.compare(op, &self.eval(l, ctx), &self.eval(r, ctx))),
        }
    }

    /// XPath 1.0 comparison, node-sets compared member by member.
    fn compare(&self, op: BinOp, a: &XValue, b: &XValue) -> bool {
        match (a, b) {
            (XValue::Nodes(x), XValue::Nodes(y)) => x.iter().any(|&m| {
                let ms = self.string_value(m);
                y.iter().any(|&n| {
                    self.compare_atoms(op, &XValue::Str(ms.clone()), &XValue::Str(self.string_value(n)))
                })
            }),
            (XValue::Nodes(x), XValue::Bool(_)) => self.compare_atoms(op, &XValue::Bool(!x.is_empty()), b),
            (XValue::Bool(_), XValue::Nodes(y)) => self.compare_atoms(op, a, &XValue::Bool(!y.is_empty())),
            (XValue::Nodes(x), other) => {
                x.iter().any(|&m| self.compare_atoms(op, &self.node_as(other, m), other))
            }
            (other, XValue::Nodes(y)) => {
                y.iter().any(|&n| self.compare_atoms(op, other, &self.node_as(other, n)))
            }
            _ => self.compare_atoms(op, a, b),
        }
    }

    /// A node's value in the type of the other operand.
    fn node_as(&self, other: &XValue, n: NodeRef) -> XValue {
        let s = self.string_value(n);
        match other {
            XValue::Num(_) => XValue::Num(str_to_num(&s)),
            _ => XValue::Str(s),
        }
    }

    fn compare_atoms(&self, op: BinOp, a: &XValue, b: &XValue) -> bool {
        match op {
            BinOp::Eq | BinOp::Ne => {
                let eq = match (a, b) {
                    (XValue::Bool(_), _) | (_, XValue::Bool(_)) => self.boolean(a) == self.boolean(b),
                    (XValue::Num(_), _) | (_, XValue::Num(_)) => self.number(a) == self.number(b),
                    _ => self.string(a) == self.string(b),
                };
                if op == BinOp::Eq { eq } else { !eq }
            }
            _ => {
                let (x, y) = (self.number(a), self.number(b));
                match op {
                    BinOp::Lt => x < y,
                    BinOp::Le => x <= y,
                    BinOp::Gt => x > y,
                    _ => x >= y,
                }
            }
        }
    }

    fn boolean(&self, v: &XValue) -> bool {
        match v {
            XValue::Bool(b) => *b,
            XValue::Num(n) => *n != 0.0 && !n.is_nan(),
            XValue::Str(s) => !s.is_empty(),
            XValue::Nodes(n) => !n.is_empty(),
        }
    }

    fn number(&self, v: &XValue) -> f64 {
        match v {
            XValue::Num(n) => *n,
            XValue::Bool(b) => f64::from(u8::from(*b)),
            XValue::Str(s) => str_to_num(s),
            XValue::Nodes(_) => str_to_num(&self.string(v)),
        }
    }

    fn string(&self, v: &XValue) -> String {
        match v {
            XValue::Str(s) => s.clone(),
            XValue::Bool(b) => b.to_string(),
            XValue::Num(n) => num_to_str(*n),
            XValue::Nodes(n) => n.first().map(|&r| self.string_value(r)).unwrap_or_default(),
        }
    }

    fn call(&self, name: &str, args: &[Expr], ctx: &Ctx) -> XValue {
        let arg = |i: usize| args.get(i).map(|a| self.eval(a, ctx));
        let str_arg = |i: usize| match arg(i) {
            Some(v) => self.string(&v),
            None => self.string_value(ctx.node),
        };
        let node_arg = |i: usize| -> Option<NodeRef> {
            match arg(i) {
                Some(XValue::Nodes(n)) => n.first().copied(),
                Some(_) => None,
                None => Some(ctx.node),
            }
        };
        match name {
            "last" => XValue::Num(ctx.size as f64),
            "position" => XValue::Num(ctx.position as f64),
            "count" => XValue::Num(match arg(0) {
                Some(XValue::Nodes(n)) => n.len() as f64,
                _ => 0.0,
            }),
            "local-name" => XValue::Str(node_arg(0).map(|r| self.prefix_local(r).1).unwrap_or_default()),
            "name" => XValue::Str(
                node_arg(0)
                    .map(|r| {
                        let (p, l) = self.prefix_local(r);
                        qualified(&p, &l)
                    })
                    .unwrap_or_default(),
            ),
            "namespace-uri" => XValue::Str(String::new()),
            "string" => XValue::Str(str_arg(0)),
            "concat" => XValue::Str((0..args.len()).map(str_arg).collect()),
            "contains" => XValue::Bool(str_arg(0).contains(&str_arg(1))),
            "starts-with" => XValue::Bool(str_arg(0).starts_with(&str_arg(1))),
            "ends-with" => XValue::Bool(str_arg(0).ends_with(&str_arg(1))),
            "substring-before" => {
                let (s, sep) = (str_arg(0), str_arg(1));
                XValue::Str(s.find(&sep).map(|i| s[..i].to_owned()).unwrap_or_default())
            }
            "substring-after" => {
                let (s, sep) = (str_arg(0), str_arg(1));
                XValue::Str(s.find(&sep).map(|i| s[i + sep.len()..].to_owned()).unwrap_or_default())
            }
            "substring" => {
                let s: Vec<char> = str_arg(0).chars().collect();
                let start = arg(1).map_or(f64::NAN, |v| self.number(&v)).round();
                let end = match arg(2) {
                    Some(v) => start + self.number(&v).round(),
                    None => f64::INFINITY,
                };
                XValue::Str(
                    s.iter()
                        .enumerate()
                        .filter(|&(i, _)| {
                            let p = (i + 1) as f64;
                            p >= start && p < end
                        })
                        .map(|(_, c)| *c)
                        .collect(),
                )
            }
            "string-length" => XValue::Num(str_arg(0).chars().count() as f64),
            "normalize-space" => XValue::Str(str_arg(0).split_whitespace().collect::<Vec<_>>().join(" ")),
            "translate" => {
                let (s, from, to) = (str_arg(0), str_arg(1), str_arg(2));
                let from: Vec<char> = from.chars().collect();
                let to: Vec<char> = to.chars().collect();
                XValue::Str(
                    s.chars()
                        .filter_map(|c| match from.iter().position(|&f| f == c) {
                            Some(i) => to.get(i).copied(),
                            None => Some(c),
                        })
                        .collect(),
                )
            }
            "lower-case" => XValue::Str(str_arg(0).to_lowercase()),
            "upper-case" => XValue::Str(str_arg(0).to_uppercase()),
            "boolean" => XValue::Bool(arg(0).is_some_and(|v| self.boolean(&v))),
            "not" => XValue::Bool(!arg(0).is_some_and(|v| self.boolean(&v))),
            "true" => XValue::Bool(true),
            "false" => XValue::Bool(false),
            "number" => XValue::Num(match arg(0) {
                Some(v) => self.number(&v),
                None => str_to_num(&self.string_value(ctx.node)),
            }),
            "sum" => XValue::Num(match arg(0) {
                Some(XValue::Nodes(n)) => n.iter().map(|&r| str_to_num(&self.string_value(r))).sum(),
                _ => f64::NAN,
            }),
            "floor" => XValue::Num(arg(0).map_or(f64::NAN, |v| self.number(&v)).floor()),
            "ceiling" => XValue::Num(arg(0).map_or(f64::NAN, |v| self.number(&v)).ceil()),
            "round" => XValue::Num(arg(0).map_or(f64::NAN, |v| (self.number(&v) + 0.5).floor())),
            _ => XValue::Nodes(Vec::new()),
        }
    }
}

fn str_to_num(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-') {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

fn num_to_str(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else if n == n.trunc() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

// === prepare ===

fn literal_str<'a>(args: &[Option<&'a Value>], i: usize) -> Option<&'a str> {
    match args.get(i).copied().flatten() {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn prepare_required_xpath(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    Ok(Some(Box::new(compile_xpath(literal_str(args, 1).unwrap_or_default())?)))
}

/// `ConvertAttributesToElementsXML`: every attribute unless a path is given.
fn attributes_xpath(given: Option<&str>) -> Result<XPath, String> {
    match given {
        Some(p) if !p.is_empty() => compile_xpath(p),
        _ => compile_xpath("//@*"),
    }
}

fn prepare_attributes_xpath(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    Ok(Some(Box::new(attributes_xpath(literal_str(args, 1))?)))
}

/// What `ConvertTextToElementsXML` keeps: its path (the document by default) and element name.
struct TextSpec {
    xpath: XPath,
    element: String,
}

fn text_spec(xpath: Option<&str>, element: Option<&str>) -> Result<TextSpec, String> {
    let xpath = match xpath {
        Some(p) if !p.is_empty() => compile_xpath(p)?,
        _ => compile_xpath("/")?,
    };
    let element = match element {
        Some(e) if !e.is_empty() => e.to_owned(),
        _ => "value".to_owned(),
    };
    Ok(TextSpec { xpath, element })
}

fn prepare_text_xpath(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    Ok(Some(Box::new(text_spec(literal_str(args, 1), literal_str(args, 2))?)))
}

/// The compiled path of argument 1, from `prepare` or compiled now.
fn xpath_of(call: &Call<'_>, default: fn(Option<&str>) -> Result<XPath, String>) -> Result<XPath, EvalError> {
    if let Some(x) = call.prepared::<XPath>() {
        return Ok(x.clone());
    }
    default(call.literal_str(1)).map_err(EvalError::Function)
}

fn required_xpath(given: Option<&str>) -> Result<XPath, String> {
    compile_xpath(given.unwrap_or_default())
}

fn fail(e: String) -> EvalError {
    EvalError::Function(e)
}

// === converters ===

fn get_xml_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let xpath = xpath_of(call, required_xpath)?;
    let doc = parse_nodes_xml(&call.string(0)?).map_err(fail)?;
    let mut out = String::new();
    for r in xpath.select(&doc) {
        match r {
            NodeRef::Attr(n, i) => out.push_str(&html_escape(&doc.nodes[n].attrs[i].value)),
            NodeRef::Node(n) => match doc.nodes[n].kind {
                Kind::Element | Kind::Text => doc.output(n, &mut out),
                Kind::CData => out.push_str(&html_escape(&doc.nodes[n].data)),
                _ => {}
            },
        }
    }
    Ok(Value::String(out))
}

fn insert_xml_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let xpath = xpath_of(call, required_xpath)?;
    let mut doc = parse_nodes_xml(&call.string(0)?).map_err(fail)?;
    let sub = parse_nodes_xml(&call.string(2)?).map_err(fail)?;
    let mut errors = Vec::new();
    for r in xpath.select(&doc) {
        match r {
            NodeRef::Node(n) if matches!(doc.nodes[n].kind, Kind::Element | Kind::Document) => {
                for &c in &sub.nodes[ROOT].children {
                    doc.import(&sub, c, n);
                }
            }
            NodeRef::Node(n) => {
                errors.push(format!("InsertXML XPath selected non-element: {:?}", doc.nodes[n].data))
            }
            NodeRef::Attr(n, i) => {
                errors.push(format!(
                    "InsertXML XPath selected non-element: {:?}",
                    doc.nodes[n].attrs[i].name.local
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(EvalError::Function(errors.join("\n")));
    }
    Ok(Value::String(doc.output_string(ROOT)))
}

fn remove_xml_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let xpath = xpath_of(call, required_xpath)?;
    let mut doc = parse_nodes_xml(&call.string(0)?).map_err(fail)?;
    let selected = xpath.select(&doc);
    // Attributes are removed by name once the selection is complete, as positions shift on removal.
    let mut attr_removals: Vec<(usize, String)> = Vec::new();
    for r in selected {
        match r {
            NodeRef::Node(n) => match doc.nodes[n].kind {
                Kind::Element | Kind::Comment | Kind::CData => doc.detach(n),
                Kind::Text => doc.nodes[n].data.clear(),
                _ => {}
            },
            NodeRef::Attr(n, i) => attr_removals.push((n, doc.nodes[n].attrs[i].name.local.clone())),
        }
    }
    for (n, local) in attr_removals {
        remove_unprefixed_attr(&mut doc, n, &local);
    }
    Ok(Value::String(doc.output_string(ROOT)))
}

/// xmlquery's `RemoveAttr` by local name: only an attribute without prefix matches.
fn remove_unprefixed_attr(doc: &mut Doc, n: usize, local: &str) {
    if let Some(at) =
        doc.nodes[n].attrs.iter().position(|a| a.name.prefix.is_empty() && a.name.local == local)
    {
        doc.nodes[n].attrs.remove(at);
    }
}

fn convert_attributes_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let xpath = xpath_of(call, attributes_xpath)?;
    let mut doc = parse_nodes_xml(&call.string(0)?).map_err(fail)?;
    // Attribute references are taken by name, since removing attributes shifts their positions.
    let attrs: Vec<(usize, String, String)> = xpath
        .select(&doc)
        .into_iter()
        .filter_map(|r| match r {
            NodeRef::Attr(n, i) => {
                let a = &doc.nodes[n].attrs[i];
                Some((n, a.name.local.clone(), a.value.clone()))
            }
            NodeRef::Node(_) => None,
        })
        .collect();
    for (n, local, value) in attrs {
        let element = doc.add(Node::new(Kind::Element, local.clone(), 0));
        let text = doc.add(Node::new(Kind::Text, value, 0));
        doc.append_child(element, text);
        doc.append_child(n, element);
        remove_unprefixed_attr(&mut doc, n, &local);
    }
    Ok(Value::String(doc.output_string(ROOT)))
}

fn convert_text_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let owned;
    let spec = match call.prepared::<TextSpec>() {
        Some(s) => s,
        None => {
            owned = text_spec(call.literal_str(1), call.literal_str(2)).map_err(EvalError::Function)?;
            &owned
        }
    };
    let (xpath, element) = (spec.xpath.clone(), spec.element.clone());
    let mut doc = parse_nodes_xml(&call.string(0)?).map_err(fail)?;
    for r in xpath.select(&doc) {
        if let NodeRef::Node(n) = r {
            convert_text_under(&mut doc, n, &element);
        }
    }
    Ok(Value::String(doc.output_string(ROOT)))
}

/// Wraps the text children of every element at or under `start` that mixes text with elements (or has
/// several text children) into `element` elements.
fn convert_text_under(doc: &mut Doc, start: usize, element: &str) {
    let mut work = vec![start];
    while let Some(n) = work.pop() {
        if !matches!(doc.nodes[n].kind, Kind::Element | Kind::Document) {
            continue;
        }
        let children = doc.nodes[n].children.clone();
        let elements = children.iter().filter(|&&c| doc.nodes[c].kind == Kind::Element).count();
        let texts = children.iter().filter(|&&c| doc.nodes[c].kind == Kind::Text).count();
        work.extend(children.iter().copied().filter(|&c| doc.nodes[c].kind == Kind::Element));
        if texts == 0 || elements + texts <= 1 {
            continue;
        }
        for c in children {
            if doc.nodes[c].kind != Kind::Text {
                continue;
            }
            let data = std::mem::take(&mut doc.nodes[c].data);
            let text = doc.add(Node::new(Kind::Text, data, 0));
            doc.nodes[c].kind = Kind::Element;
            doc.nodes[c].data = element.to_owned();
            doc.append_child(c, text);
        }
    }
}

// === ParseXML ===

/// One element as `ParseXML` reads it.
struct XmlElement {
    tag: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<XmlElement>,
}

impl XmlElement {
    fn into_value(self) -> Value {
        let mut m: Vec<(String, Value)> = vec![("tag".into(), Value::String(self.tag))];
        if !self.text.is_empty() {
            m.push(("content".into(), Value::String(self.text)));
        }
        if !self.attrs.is_empty() {
            let mut attrs: Vec<(String, Value)> = Vec::new();
            for (k, v) in self.attrs {
                match attrs.iter_mut().find(|(ek, _)| *ek == k) {
                    Some(slot) => slot.1 = Value::String(v),
                    None => attrs.push((k, Value::String(v))),
                }
            }
            m.push(("attributes".into(), Value::Map(attrs)));
        }
        if !self.children.is_empty() {
            m.push((
                "children".into(),
                Value::List(self.children.into_iter().map(XmlElement::into_value).collect()),
            ));
        }
        Value::Map(m)
    }
}

/// Reads the first element of `src` as Go's `xml.Decoder.Decode` into the Collector's element type.
fn parse_xml(src: &str) -> Result<Value, String> {
    let mut tokens = Tokenizer::new(src, false);
    // Everything before the first element is skipped.
    let (name, attrs) = loop {
        match tokens.next().map_err(|e| format!("unmarshal xml: {e}"))? {
            None => return Err("unmarshal xml: EOF".into()),
            Some(Token::Start { name, attrs }) => break (name, attrs),
            Some(_) => {}
        }
    };
    let mut stack = vec![XmlElement {
        tag: name.local,
        attrs: attrs.into_iter().map(|(n, v)| (n.local, v)).collect(),
        text: String::new(),
        children: Vec::new(),
    }];
    let root = loop {
        let token = tokens.next().map_err(|e| format!("unmarshal xml: decode next token: {e}"))?;
        match token {
            None => {
                return Err(
                    "unmarshal xml: decode next token: XML syntax error on line 1: unexpected EOF".into()
                );
            }
            Some(Token::Start { name, attrs }) => stack.push(XmlElement {
                tag: name.local,
                attrs: attrs.into_iter().map(|(n, v)| (n.local, v)).collect(),
                text: String::new(),
                children: Vec::new(),
            }),
            Some(Token::End { .. }) => {
                let Some(done) = stack.pop() else { return Err("unmarshal xml: unbalanced document".into()) };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => break done,
                }
            }
            Some(Token::Text { data, .. }) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(data.trim());
                }
            }
            Some(Token::Comment(_) | Token::ProcInst { .. } | Token::Directive(_)) => {}
        }
    };
    if tokens.pos != src.len() {
        return Err("trailing bytes after parsing xml".into());
    }
    Ok(root.into_value())
}

fn parse_xml_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    parse_xml(&s).map_err(EvalError::Function)
}

// === ParseSimplifiedXML ===

fn parse_simplified_xml_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let doc = parse_nodes_xml(&call.string(0)?).map_err(fail)?;
    Ok(Value::Map(simplified(&doc, ROOT)))
}

/// The map of an element's element children: leaves as strings, parents as maps, repeated tags as lists.
fn simplified(doc: &Doc, parent: usize) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let kids: Vec<usize> =
        doc.nodes[parent].children.iter().copied().filter(|&c| doc.nodes[c].kind == Kind::Element).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for &c in &kids {
        *counts.entry(doc.nodes[c].data.as_str()).or_default() += 1;
    }
    for c in kids {
        let node = &doc.nodes[c];
        if node.children.is_empty() {
            continue;
        }
        let leaf = leaf_value(doc, c);
        let key = node.data.clone();
        if counts.get(node.data.as_str()).copied().unwrap_or_default() > 1 {
            let at = match out.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    out.push((key, Value::List(Vec::new())));
                    out.len() - 1
                }
            };
            let item = if !leaf.is_empty() {
                Value::String(leaf)
            } else {
                let m = simplified(doc, c);
                if m.is_empty() {
                    continue;
                }
                Value::Map(m)
            };
            if let Value::List(items) = &mut out[at].1 {
                items.push(item);
            }
            continue;
        }
        if !leaf.is_empty() {
            put(&mut out, key, Value::String(leaf));
            continue;
        }
        let m = simplified(doc, c);
        if !m.is_empty() {
            put(&mut out, key, Value::Map(m));
        }
    }
    out
}

fn put(map: &mut Vec<(String, Value)>, key: String, value: Value) {
    match map.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => map.push((key, value)),
    }
}

/// The first text or CDATA content of an element without element children ("" otherwise).
fn leaf_value(doc: &Doc, n: usize) -> String {
    let kids = &doc.nodes[n].children;
    if kids.iter().any(|&c| doc.nodes[c].kind == Kind::Element) {
        return String::new();
    }
    kids.iter()
        .find(|&&c| matches!(doc.nodes[c].kind, Kind::Text | Kind::CData))
        .map(|&c| doc.nodes[c].data.clone())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
