//! The syntax tree of OTTL statements, conditions and value expressions, as [`crate::parser`] builds it.
//!
//! Every node carries the [`Span`] of source text it was parsed from. The tree is purely syntactic: names
//! are not resolved, paths are not bound to a context, and converter calls are not checked against any
//! function table; that is the binder's job.
//!
//! Two normalisations keep the tree small without losing meaning:
//! - parentheses leave no node of their own; the shape of the tree encodes them, and [`fmt::Display`]
//!   prints them back wherever the shape needs them;
//! - a sign written directly before a number is folded into it (`-5` is [`ValueKind::Int`]`(-5)`), and a
//!   key whose expression is just an integer is a [`KeyKind::Int`] (`[-1]`).
//!
//! [`fmt::Display`] prints every node as OTTL text that parses back to the same tree (spans aside).

use std::fmt::{self, Write as _};

/// A byte range `start..end` into the source text a node was parsed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Offset of the node's first byte.
    pub start: usize,
    /// Offset just past the node's last byte.
    pub end: usize,
}

/// A name as written in the source (an editor, converter or argument name), with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name. An editor or converter name written as several lexer tokens (`replace_all_Patterns`)
    /// is their concatenation, exactly as the Collector captures it.
    pub name: String,
    /// Where the name was written.
    pub span: Span,
}

/// A statement: one editor invocation, run when its optional `where` condition holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The editor call (`set(...)`); the parser guarantees its name starts with a lower-case letter and it
    /// has no keys.
    pub editor: Invocation,
    /// The condition after `where`, if any.
    pub condition: Option<BoolExpr>,
    /// The whole statement.
    pub span: Span,
}

/// A function call: an editor (`set(...)`, lower-case name) or a converter (`Concat(...)`, upper-case name).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The function's name.
    pub name: Ident,
    /// The arguments, in order.
    pub args: Vec<Argument>,
    /// Index keys after the call (`Split(x, ",")[0]`); only converters may have them.
    pub keys: Vec<Key>,
    /// The whole call, keys included.
    pub span: Span,
}

/// One argument of an invocation: positional (`value`) or named (`name = value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// The parameter name of a named argument.
    pub name: Option<Ident>,
    /// The argument's value; only here may it be a [`ValueKind::FunctionName`].
    pub value: Value,
    /// The whole argument, name included.
    pub span: Span,
}

/// A boolean expression and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct BoolExpr {
    /// What the expression is.
    pub kind: BoolExprKind,
    /// Where it was written (parentheses around it included).
    pub span: Span,
}

/// The forms of a boolean expression; `not` binds tighter than `and`, which binds tighter than `or`.
#[derive(Debug, Clone, PartialEq)]
pub enum BoolExprKind {
    /// `a or b or ...`: two or more operands.
    Or(Vec<BoolExpr>),
    /// `a and b and ...`: two or more operands.
    And(Vec<BoolExpr>),
    /// `not x`.
    Not(Box<BoolExpr>),
    /// `left op right`.
    Comparison(Box<Comparison>),
    /// A converter call used as a boolean (`IsMatch(name, "a.*")`); boxed to keep expressions small.
    Converter(Box<Invocation>),
    /// `true` or `false`.
    Literal(bool),
}

/// A comparison of two values: `left op right`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The value left of the operator.
    pub left: Value,
    /// The operator.
    pub op: CompareOp,
    /// The value right of the operator.
    pub right: Value,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> Self {
        match self {
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            same => same,
        }
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where it was written (parentheses around it included).
    pub span: Span,
}

/// The forms of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// A 64-bit integer; a sign written directly before the digits is folded in.
    Int(i64),
    /// A 64-bit float (`1.5`, `.5`, `3.`, `1.0e-3`); a sign written directly before it is folded in.
    Float(f64),
    /// A string literal, escapes decoded.
    String(String),
    /// A bytes literal (`0x0102`): one or more bytes.
    Bytes(Vec<u8>),
    /// An enum symbol (`SPAN_KIND_SERVER`): one upper-case token.
    Enum(String),
    /// A telemetry path (`span.attributes["k"]`, `attributes["k"]`).
    Path(Path),
    /// A converter call, with any keys after it (`Split(x, ",")[0]`); boxed to keep values small.
    Converter(Box<Invocation>),
    /// A list literal `[a, b]`.
    List(Vec<Value>),
    /// A map literal `{"k": v}`, entries in source order (duplicate keys kept).
    Map(Vec<MapEntry>),
    /// An arithmetic expression.
    Math(MathExpr),
    /// A function passed by name as an argument (`Sha256` in
    /// `replace_pattern(attributes["k"], "a", "b", Sha256)`); only ever the whole value of an [`Argument`].
    FunctionName(String),
}

/// One entry of a map literal: `"key": value`.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    /// The key, escapes decoded.
    pub key: String,
    /// The value.
    pub value: Value,
    /// The whole entry.
    pub span: Span,
}

/// An arithmetic expression; `*` and `/` bind tighter than `+` and `-`, all associate to the left.
///
/// Operators of one precedence level form one flat chain, as in the Collector's grammar, so that long
/// sums do not make deep trees: `a - b + c * d` is a chain `a - b + (c * d)` whose last operand is the
/// chain `c * d`.
#[derive(Debug, Clone, PartialEq)]
pub enum MathExpr {
    /// `first op1 operand1 op2 operand2 ...`, applied left to right. All operators of one chain have the
    /// same precedence (all `+`/`-` or all `*`/`/`), and there is at least one.
    Chain {
        /// The first operand.
        first: Box<Value>,
        /// Each further operator with its right operand.
        rest: Vec<(MathOp, Value)>,
    },
    /// A sign before a path, a converter call or a parenthesized expression (`-span.attributes["x"]`).
    Unary {
        /// The sign.
        op: UnaryOp,
        /// The operand.
        operand: Box<Value>,
    },
}

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MathOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// A sign before an arithmetic operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `+x`: no change of value.
    Plus,
    /// `-x`: negation.
    Minus,
}

/// A telemetry path: dot-separated fields, each with optional keys.
///
/// The first field may name a context (`span` in `span.name`); the parser does not decide that. The
/// Collector's grammar reads the first identifier as a context exactly when more fields follow it and it
/// has no keys itself, which [`Path::context_candidate`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The fields, at least one.
    pub fields: Vec<Field>,
    /// The whole path, keys included.
    pub span: Span,
}

/// One field of a path with its keys (`attributes["k"][0]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name: one lower-case identifier.
    pub name: String,
    /// The keys after the name.
    pub keys: Vec<Key>,
    /// The field, keys included.
    pub span: Span,
}

/// One index key `[...]` after a path field or a converter call.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// What the key is.
    pub kind: KeyKind,
    /// The key, brackets included.
    pub span: Span,
}

/// The forms of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyKind {
    /// A map key: `["name"]`.
    String(String),
    /// A list index: `[0]` (also `[-1]` and `[(2)]`, which the Collector reads as expressions).
    Int(i64),
    /// A key computed at run time: a path, a converter call or an arithmetic expression
    /// (`attributes[attributes["k"]]`, `[Len(x) - 1]`).
    Expr(Box<Value>),
}

// === impl Span ===

impl Span {
    /// The span `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

// === impl Path ===

impl Path {
    /// The first field when the Collector's grammar would read it as a context name: more fields follow it
    /// and it has no keys (`span` in `span.attributes["k"]`, nothing in `attributes["k"]`).
    pub fn context_candidate(&self) -> Option<&Field> {
        match self.fields.as_slice() {
            [first, _, ..] if first.keys.is_empty() => Some(first),
            _ => None,
        }
    }
}

// === impl CompareOp ===

impl CompareOp {
    /// The operator as written in OTTL.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

// === impl MathOp ===

impl MathOp {
    /// The operator as written in OTTL.
    pub fn as_str(self) -> &'static str {
        match self {
            MathOp::Add => "+",
            MathOp::Sub => "-",
            MathOp::Mul => "*",
            MathOp::Div => "/",
        }
    }

    /// Binding strength: `*` and `/` bind tighter than `+` and `-`.
    fn precedence(self) -> u8 {
        match self {
            MathOp::Add | MathOp::Sub => 1,
            MathOp::Mul | MathOp::Div => 2,
        }
    }
}

// === impl UnaryOp ===

impl UnaryOp {
    /// The sign as written in OTTL.
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Plus => "+",
            UnaryOp::Minus => "-",
        }
    }
}

// === Display: OTTL text that parses back to the same tree ===

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.editor)?;
        if let Some(condition) = &self.condition {
            write!(f, " where {condition}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{arg}")?;
        }
        f.write_char(')')?;
        for key in &self.keys {
            write!(f, "{key}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "{name} = ")?;
        }
        write!(f, "{}", self.value)
    }
}

impl fmt::Display for BoolExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BoolExprKind::Or(operands) => {
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    // `or` is left-associative in the grammar's shape: only a nested `or` needs parentheses.
                    write_bool_operand(f, operand, matches!(operand.kind, BoolExprKind::Or(_)))?;
                }
                Ok(())
            }
            BoolExprKind::And(operands) => {
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    let group = matches!(operand.kind, BoolExprKind::Or(_) | BoolExprKind::And(_));
                    write_bool_operand(f, operand, group)?;
                }
                Ok(())
            }
            BoolExprKind::Not(operand) => {
                f.write_str("not ")?;
                let bare = matches!(
                    operand.kind,
                    BoolExprKind::Comparison(_) | BoolExprKind::Converter(_) | BoolExprKind::Literal(_)
                );
                write_bool_operand(f, operand, !bare)
            }
            BoolExprKind::Comparison(comparison) => write!(f, "{comparison}"),
            BoolExprKind::Converter(invocation) => write!(f, "{invocation}"),
            BoolExprKind::Literal(b) => write!(f, "{b}"),
        }
    }
}

fn write_bool_operand(f: &mut fmt::Formatter<'_>, operand: &BoolExpr, group: bool) -> fmt::Result {
    if group { write!(f, "({operand})") } else { write!(f, "{operand}") }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.left, self.op, self.right)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MathOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for UnaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ValueKind::Nil => f.write_str("nil"),
            ValueKind::Bool(b) => write!(f, "{b}"),
            ValueKind::Int(n) => write!(f, "{n}"),
            ValueKind::Float(x) => write_float(f, *x),
            ValueKind::String(s) => write_quoted(f, s),
            ValueKind::Bytes(bytes) => {
                f.write_str("0x")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            ValueKind::Enum(name) | ValueKind::FunctionName(name) => f.write_str(name),
            ValueKind::Path(path) => write!(f, "{path}"),
            ValueKind::Converter(invocation) => write!(f, "{invocation}"),
            ValueKind::List(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            ValueKind::Map(entries) => {
                f.write_char('{')?;
                for (i, entry) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{entry}")?;
                }
                f.write_char('}')
            }
            ValueKind::Math(math) => write!(f, "{math}"),
        }
    }
}

impl fmt::Display for MapEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, &self.key)?;
        write!(f, ": {}", self.value)
    }
}

impl fmt::Display for MathExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MathExpr::Chain { first, rest } => {
                let own = rest.first().map_or(3, |(op, _)| op.precedence());
                // An operand that is itself a chain of the same or a looser level needs parentheses, or it
                // would merge into this chain (`(a - b) - c`, `(a + b) * c`).
                write_math_operand(f, first, math_precedence(first) <= own)?;
                for (op, operand) in rest {
                    write!(f, " {op} ")?;
                    write_math_operand(f, operand, math_precedence(operand) <= own)?;
                }
                Ok(())
            }
            MathExpr::Unary { op, operand } => {
                // A sign applies to a path, a converter call or a parenthesized expression; a number right
                // after a sign would be read as a signed number instead.
                let bare = matches!(operand.kind, ValueKind::Path(_) | ValueKind::Converter(_));
                write!(f, "{op}")?;
                write_math_operand(f, operand, !bare)
            }
        }
    }
}

/// How tightly a value binds as an arithmetic operand.
fn math_precedence(value: &Value) -> u8 {
    match &value.kind {
        ValueKind::Math(MathExpr::Chain { rest, .. }) => rest.first().map_or(3, |(op, _)| op.precedence()),
        _ => 3,
    }
}

fn write_math_operand(f: &mut fmt::Formatter<'_>, operand: &Value, group: bool) -> fmt::Result {
    if group { write!(f, "({operand})") } else { write!(f, "{operand}") }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        self.keys.iter().try_for_each(|key| write!(f, "{key}"))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        match &self.kind {
            KeyKind::String(s) => write_quoted(f, s)?,
            KeyKind::Int(n) => write!(f, "{n}")?,
            // `[1 + 2]` does not parse (the grammar commits to the integer key `1`), `[(1 + 2)]` does.
            KeyKind::Expr(value) if matches!(value.kind, ValueKind::Math(_)) => write!(f, "({value})")?,
            KeyKind::Expr(value) => write!(f, "{value}")?,
        }
        f.write_char(']')
    }
}

/// Writes a float so that the lexer reads it back as the same float token: always with a `.`.
fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    let text = format!("{x:?}");
    match text.find(['e', 'E']) {
        Some(at) if !text[..at].contains('.') => write!(f, "{}.0{}", &text[..at], &text[at..]),
        _ => f.write_str(&text),
    }
}

/// Writes a string literal with the escapes the Collector's lexer decodes.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 || c == '\u{7f}' => write!(f, "\\x{:02x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
