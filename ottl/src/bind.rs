//! The binder: parsed statements and conditions resolved against a context, as the Collector's parser
//! collection does it for a processor with context inference and context-prefixed paths (what Kyma
//! configures).
//!
//! For one statement group (a TracePipeline's `TransformSpec`, or a `FilterSpec`) it infers the context
//! from the paths, functions and enums used, then resolves every path against that context, every
//! function against the functions the context offers (with arity, named arguments and literal
//! parameter types checked, and each function's own bind-time checks such as regex compilation), and
//! every enum symbol. The result ([`TransformGroup`], [`FilterGroup`]) is what [`crate::eval`] runs.

use crate::ast::{self, BoolExprKind, CompareOp, KeyKind, MathOp, UnaryOp, ValueKind};
use crate::context::{Context, KeyUse, Target};
use crate::funcs::registry::{self, Use};
use crate::funcs::{FnKind, FunctionDef, ParamType, Prepared};
use crate::parser::{self, ParseError};
use crate::value::Value;

/// A `TransformSpec` bound to its inferred context: conditions (ORed) that select the items, then the
/// statements, run in order on each selected item.
#[derive(Debug)]
pub struct TransformGroup {
    pub context: Context,
    pub conditions: Vec<BoundCondition>,
    pub statements: Vec<BoundStatement>,
    /// The context whose items share the verdict of `conditions` (all spans of one resource, when
    /// the conditions read only the resource and no statement writes it); `None` when each item
    /// needs its own. [`crate::eval::Selection`] evaluates them once for such items.
    pub shared_selection: Option<Context>,
}

/// A `FilterSpec` bound to its inferred context: an item matching any condition is dropped.
#[derive(Debug)]
pub struct FilterGroup {
    pub context: Context,
    pub conditions: Vec<BoundCondition>,
}

/// One statement, with its source text for logs.
#[derive(Debug)]
pub struct BoundStatement {
    pub text: String,
    pub editor: BoundCall,
    pub condition: Option<BoundBool>,
    /// The statement as one write of a literal to a literal key, when that is all it is
    /// (`set(span.attributes["k"], "v")`, the usual statement): run as
    /// [`crate::eval::Accessor::set_key_literal`], which shares the value rather than copying it per
    /// item.
    pub literal_write: Option<std::sync::Arc<LiteralWrite>>,
}

/// `set(<path>["key"], <literal>)`: a write whose key and value are known when the statement is
/// bound, prepared once for every item it writes to.
#[derive(Debug)]
pub struct LiteralWrite {
    /// The map-valued field written (`span.attributes`).
    pub target: Target,
    pub key: std::sync::Arc<str>,
    /// Never `Nil` (`set` writes nothing then) and always a value an attribute holds.
    pub value: Value,
    /// Room for an accessor over encoded data to keep the write's encoding (for OTLP, the whole
    /// attribute field), made on first use and shared by every item after: the evaluator never
    /// reads it.
    pub encoded: std::sync::OnceLock<Box<[u8]>>,
}

/// One condition, with its source text.
#[derive(Debug)]
pub struct BoundCondition {
    pub text: String,
    pub expr: BoundBool,
}

/// A boolean expression.
#[derive(Debug)]
pub enum BoundBool {
    Or(Vec<BoundBool>),
    And(Vec<BoundBool>),
    Not(Box<BoundBool>),
    Compare(Box<BoundValue>, CompareOp, Box<BoundValue>),
    /// A converter whose result must be a bool.
    Call(Box<BoundCall>),
    Const(bool),
    /// A comparison of a path with a literal, the usual condition (`span.name == "x"`,
    /// `span.attributes["k"] != nil`), made ready when bound: the accessor compares in place.
    PathCompare(Box<PathCompare>),
    /// `IsMatch(<path>["k"], "<pattern>")` with its pattern compiled when bound: the accessor tests
    /// the string where it lies.
    KeyMatch(Box<KeyMatch>),
}

/// `<path> <op> <literal>`, the literal on the right (a comparison written the other way round is
/// flipped), the path into an item's field or one literal key of it (not the cache).
#[derive(Debug)]
pub struct PathCompare {
    pub path: BoundPath,
    pub op: CompareOp,
    pub literal: Value,
}

/// `IsMatch` on one literal key of an item's map-valued field, with a literal pattern.
#[derive(Debug)]
pub struct KeyMatch {
    pub target: Target,
    pub key: std::sync::Arc<str>,
    pub regex: regex::Regex,
    /// The call itself, run as any converter when the value is not a string (`IsMatch` converts it).
    pub call: BoundCall,
}

/// A value expression.
#[derive(Debug)]
pub enum BoundValue {
    Literal(Value),
    Path(BoundPath),
    Call(Box<BoundCall>),
    List(Vec<BoundValue>),
    Map(Vec<(String, BoundValue)>),
    /// `first op operand op operand …`, left to right.
    Math(Box<BoundValue>, Vec<(MathOp, BoundValue)>),
    Negate(Box<BoundValue>),
}

/// A path: the field, and the keys into its value.
#[derive(Debug)]
pub struct BoundPath {
    pub target: Target,
    pub keys: Vec<BoundKey>,
}

/// A key into a map (string) or list (int), or an expression giving one.
#[derive(Debug)]
pub enum BoundKey {
    /// Shared, so that an accessor may keep the statement's own key and know it again by address.
    String(std::sync::Arc<str>),
    Int(i64),
    Expr(BoundValue),
}

/// A function call with its arguments in parameter order.
pub struct BoundCall {
    pub def: &'static FunctionDef,
    pub args: Vec<BoundArg>,
    pub prepared: Option<Prepared>,
    /// Keys applied to a converter's result (`Split(x, ",")[0]`).
    pub keys: Vec<BoundKey>,
}

/// One argument.
#[derive(Debug)]
pub enum BoundArg {
    /// An optional parameter not given.
    Absent,
    /// A value; literals are folded here too.
    Value(BoundValue),
    /// A path the function writes.
    Path(BoundPath),
    /// A converter passed by name.
    Function(&'static FunctionDef),
    /// A list literal whose items are evaluated one by one.
    List(Vec<BoundValue>),
}

/// Why a statement group does not bind: the Collector's message, and where in which text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BindError {
    pub message: String,
}

/// An error inside one text, before it is wrapped with the text.
struct Located {
    message: String,
    offset: usize,
}

/// Binds the texts of one group in one context.
struct Binder {
    context: Context,
    usage: Use,
    /// A path without a context prefix means the group's context (a processor configured with an
    /// explicit `context:`); Kyma's inferred groups require the prefix.
    implicit_prefix: bool,
}

/// What inference looks at in a parsed text: the context prefixes of its paths, its functions and its
/// enum symbols.
#[derive(Default)]
struct Hints {
    prefixes: Vec<String>,
    functions: Vec<String>,
    enums: Vec<String>,
}

// === impl BoundStatement ===

impl BoundStatement {
    /// A bound statement, with its [`LiteralWrite`] worked out.
    pub fn new(text: String, editor: BoundCall, condition: Option<BoundBool>) -> Self {
        let literal_write = LiteralWrite::of(&editor).map(std::sync::Arc::new);
        Self { text, editor, condition, literal_write }
    }
}

// === impl LiteralWrite ===

impl LiteralWrite {
    /// The write `editor` makes, when it is `set` of a literal other than `nil` to one literal key
    /// of a map-valued field other than the cache.
    fn of(editor: &BoundCall) -> Option<Self> {
        if editor.def.name != "set" || !matches!(editor.def.run, crate::funcs::Run::Editor(_)) {
            return None;
        }
        let [BoundArg::Path(path), BoundArg::Value(BoundValue::Literal(value))] = editor.args.as_slice()
        else {
            return None;
        };
        let [BoundKey::String(key)] = path.keys.as_slice() else { return None };
        if path.target == Target::Cache || matches!(value, Value::Nil) || !value.is_attribute_value() {
            return None;
        }
        Some(Self {
            target: path.target,
            key: std::sync::Arc::clone(key),
            value: value.clone(),
            encoded: std::sync::OnceLock::new(),
        })
    }
}

// === impl BoundCall ===

impl std::fmt::Debug for BoundCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundCall").field("def", &self.def.name).field("args", &self.args).finish()
    }
}

// === impl TransformGroup ===

impl TransformGroup {
    /// A bound group; works out which items share its conditions' verdict.
    pub fn new(context: Context, conditions: Vec<BoundCondition>, statements: Vec<BoundStatement>) -> Self {
        let exprs: Vec<&BoundBool> = conditions.iter().map(|c| &c.expr).collect();
        let shared_selection = crate::analysis::shared_selection(context, &exprs, &statements);
        Self { context, conditions, statements, shared_selection }
    }

    /// Whether the statements write only the item each runs on (and what lies below it, and its
    /// cache), never the resource or scope above it: then its items are independent of each other.
    pub fn writes_only_items(&self) -> bool {
        crate::analysis::writes_only_items(self.context, &self.statements)
    }

    /// The literal first keys of the paths into `target` the group names (`"k"` of
    /// `span.attributes["k"]`), each once: what a host can look up once per item ahead of time.
    pub fn literal_keys(&self, target: Target) -> Vec<&std::sync::Arc<str>> {
        crate::analysis::literal_keys(&self.conditions, &self.statements, target)
    }
}

// === impl FilterGroup ===

impl FilterGroup {
    /// [`TransformGroup::literal_keys`] for a filter's conditions.
    pub fn literal_keys(&self, target: Target) -> Vec<&std::sync::Arc<str>> {
        crate::analysis::literal_keys(&self.conditions, &[], target)
    }
}

// === entry points ===

/// Binds a Kyma `TransformSpec` as the Collector's transform processor would: the context is inferred
/// from statements and conditions together, then both are bound in it.
pub fn bind_transform(statements: &[String], conditions: &[String]) -> Result<TransformGroup, BindError> {
    let parsed_statements = statements
        .iter()
        .map(|s| parser::parse_statement(s).map_err(|e| wrap("statement", s, &parse_message(&e))))
        .collect::<Result<Vec<_>, _>>()?;
    let parsed_conditions = conditions
        .iter()
        .map(|c| parser::parse_condition(c).map_err(|e| wrap("condition", c, &parse_message(&e))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut hints = Hints::default();
    for s in &parsed_statements {
        hints.statement(s);
    }
    for c in &parsed_conditions {
        hints.bool_expr(c);
    }
    let context = infer(&hints, Use::Transform, statements, conditions)?;
    let binder = Binder { context, usage: Use::Transform, implicit_prefix: false };
    let statements = parsed_statements
        .iter()
        .zip(statements)
        .map(|(parsed, text)| {
            binder
                .statement(parsed)
                .map_err(|e| wrap_at("statement", text, &e))
                .map(|(editor, condition)| BoundStatement::new(text.clone(), editor, condition))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = binder.conditions(&parsed_conditions, conditions)?;
    Ok(TransformGroup::new(context, conditions, statements))
}

/// Binds a Kyma `FilterSpec` as the Collector's filter processor would (no span events: Kyma's filter
/// has no such context).
pub fn bind_filter(conditions: &[String]) -> Result<FilterGroup, BindError> {
    bind_conditions(conditions, Use::Filter)
}

/// Binds conditions alone with an inferred context, offering what `usage` offers (transforms also
/// have `spanevent`).
pub fn bind_conditions(conditions: &[String], usage: Use) -> Result<FilterGroup, BindError> {
    let parsed = conditions
        .iter()
        .map(|c| parser::parse_condition(c).map_err(|e| wrap("condition", c, &parse_message(&e))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut hints = Hints::default();
    for c in &parsed {
        hints.bool_expr(c);
    }
    let context = if parsed.is_empty() { Context::Span } else { infer(&hints, usage, &[], conditions)? };
    let binder = Binder { context, usage, implicit_prefix: false };
    let conditions = binder.conditions(&parsed, conditions)?;
    Ok(FilterGroup { context, conditions })
}

/// Binds a transform group in a context given explicitly, as the Collector's processors do for
/// statements configured with `context:`; paths may leave out the prefix of that context.
pub fn bind_transform_in(
    context: Context,
    statements: &[String],
    conditions: &[String],
    usage: Use,
) -> Result<TransformGroup, BindError> {
    let binder = Binder { context, usage, implicit_prefix: true };
    let statements = statements
        .iter()
        .map(|text| {
            let parsed =
                parser::parse_statement(text).map_err(|e| wrap("statement", text, &parse_message(&e)))?;
            let (editor, condition) =
                binder.statement(&parsed).map_err(|e| wrap_at("statement", text, &e))?;
            Ok(BoundStatement::new(text.clone(), editor, condition))
        })
        .collect::<Result<Vec<_>, BindError>>()?;
    let parsed = conditions
        .iter()
        .map(|c| parser::parse_condition(c).map_err(|e| wrap("condition", c, &parse_message(&e))))
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = binder.conditions(&parsed, conditions)?;
    Ok(TransformGroup::new(context, conditions, statements))
}

/// Binds conditions in a context given explicitly (see [`bind_transform_in`]).
pub fn bind_conditions_in(
    context: Context,
    conditions: &[String],
    usage: Use,
) -> Result<FilterGroup, BindError> {
    let binder = Binder { context, usage, implicit_prefix: true };
    let parsed = conditions
        .iter()
        .map(|c| parser::parse_condition(c).map_err(|e| wrap("condition", c, &parse_message(&e))))
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = binder.conditions(&parsed, conditions)?;
    Ok(FilterGroup { context, conditions })
}

// === inference ===

/// The contexts a usage registers: Kyma's filter has no `spanevent`.
fn registered(usage: Use) -> &'static [Context] {
    match usage {
        Use::Transform => &[Context::SpanEvent, Context::Span, Context::Resource, Context::Scope],
        Use::Filter => &[Context::Span, Context::Resource, Context::Scope],
        Use::CollectorFilter => &[Context::SpanEvent, Context::Span, Context::Resource, Context::Scope],
    }
}

/// The Collector's priority inference: the highest-priority context named by a path prefix; if it
/// lacks a function or enum used, the first of its lower contexts that has them all.
fn infer(
    hints: &Hints,
    usage: Use,
    statements: &[String],
    conditions: &[String],
) -> Result<Context, BindError> {
    let mut best: Option<(usize, &str)> = None;
    for prefix in &hints.prefixes {
        let priority = Context::from_prefix(prefix).map_or(usize::MAX, Context::priority);
        if best.is_none_or(|(p, _)| priority < p) {
            best = Some((priority, prefix));
        }
    }
    let candidate = best.and_then(|(_, prefix)| Context::from_prefix(prefix));
    let fits = |c: Context| {
        registered(usage).contains(&c)
            && hints.functions.iter().all(|f| registry::available(f, usage, c).is_some())
            && hints.enums.iter().all(|e| enum_value(e, c).is_some())
    };
    let inferred = candidate.and_then(|c| {
        if fits(c) {
            return Some(c);
        }
        c.lower_contexts().iter().copied().filter(|l| registered(usage).contains(l)).find(|l| fits(*l))
    });
    inferred.ok_or_else(|| {
        let names: Vec<String> = registered(usage).iter().map(|c| format!("{:?}", c.name())).collect();
        let quoted = |texts: &[String]| texts.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" ");
        let what = if statements.is_empty() {
            format!("conditions [{}]", quoted(conditions))
        } else {
            format!("statements [{}]", quoted(statements))
        };
        let cause = match candidate {
            Some(c) if !registered(usage).contains(&c) => format!(
                "; the context \"{}\" is not available here (valid contexts: {})",
                c.name(),
                registered(usage).iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
            ),
            Some(c) => {
                let unknown: Vec<String> = hints
                    .functions
                    .iter()
                    .filter(|f| registry::lookup(f).is_none())
                    .map(|f| format!("undefined function \"{f}\""))
                    .chain(
                        hints
                            .enums
                            .iter()
                            .filter(|e| enum_value(e, Context::Span).is_none())
                            .map(|e| format!("enum symbol, {e}, not found")),
                    )
                    .collect();
                if unknown.is_empty() {
                    format!("; no context from \"{c}\" down offers every function and enum they use")
                } else {
                    format!("; {}", unknown.join(", "))
                }
            }
            None => {
                "; each path must start with a context name, e.g. span.name or resource.attributes[\"key\"]"
                    .to_string()
            }
        };
        BindError {
            message: format!("unable to infer a valid context ([{}]) from {what}{cause}", names.join(" ")),
        }
    })
}

// === impl Hints ===

impl Hints {
    fn statement(&mut self, s: &ast::Statement) {
        self.invocation(&s.editor);
        if let Some(c) = &s.condition {
            self.bool_expr(c);
        }
    }

    fn bool_expr(&mut self, e: &ast::BoolExpr) {
        match &e.kind {
            BoolExprKind::Or(items) | BoolExprKind::And(items) => {
                items.iter().for_each(|i| self.bool_expr(i))
            }
            BoolExprKind::Not(inner) => self.bool_expr(inner),
            BoolExprKind::Comparison(c) => {
                self.value(&c.left);
                self.value(&c.right);
            }
            BoolExprKind::Converter(call) => self.invocation(call),
            BoolExprKind::Literal(_) => {}
        }
    }

    fn invocation(&mut self, call: &ast::Invocation) {
        self.functions.push(call.name.name.clone());
        for arg in &call.args {
            self.value(&arg.value);
        }
        self.keys(&call.keys);
    }

    fn keys(&mut self, keys: &[ast::Key]) {
        for key in keys {
            if let KeyKind::Expr(v) = &key.kind {
                self.value(v);
            }
        }
    }

    fn value(&mut self, v: &ast::Value) {
        match &v.kind {
            // An all-capitals function name passed as an argument (`SHA256`) parses as an enum symbol.
            ValueKind::Enum(name) if registry::lookup(name).is_some() => self.functions.push(name.clone()),
            ValueKind::Enum(name) => self.enums.push(name.clone()),
            ValueKind::Path(path) => {
                // A path without a prefix counts as an unknown context, lowest priority.
                self.prefixes.push(path.context_candidate().map_or_else(String::new, |f| f.name.clone()));
                for field in &path.fields {
                    self.keys(&field.keys);
                }
            }
            ValueKind::Converter(call) => self.invocation(call),
            ValueKind::List(items) => items.iter().for_each(|i| self.value(i)),
            ValueKind::Map(entries) => entries.iter().for_each(|e| self.value(&e.value)),
            ValueKind::Math(m) => self.math(m),
            _ => {}
        }
    }

    fn math(&mut self, m: &ast::MathExpr) {
        match m {
            ast::MathExpr::Chain { first, rest } => {
                self.value(first);
                rest.iter().for_each(|(_, v)| self.value(v));
            }
            ast::MathExpr::Unary { operand, .. } => self.value(operand),
        }
    }
}

// === impl Binder ===

impl Binder {
    fn conditions(
        &self,
        parsed: &[ast::BoolExpr],
        texts: &[String],
    ) -> Result<Vec<BoundCondition>, BindError> {
        parsed
            .iter()
            .zip(texts)
            .map(|(p, text)| {
                self.bool_expr(p)
                    .map(|expr| BoundCondition { text: text.clone(), expr })
                    .map_err(|e| wrap_at("condition", text, &e))
            })
            .collect()
    }

    fn statement(&self, s: &ast::Statement) -> Result<(BoundCall, Option<BoundBool>), Located> {
        let editor = self.call(&s.editor, FnKind::Editor)?;
        let condition = s.condition.as_ref().map(|c| self.bool_expr(c)).transpose()?;
        Ok((editor, condition))
    }

    fn bool_expr(&self, e: &ast::BoolExpr) -> Result<BoundBool, Located> {
        Ok(match &e.kind {
            BoolExprKind::Or(items) => {
                BoundBool::Or(items.iter().map(|i| self.bool_expr(i)).collect::<Result<_, _>>()?)
            }
            BoolExprKind::And(items) => {
                BoundBool::And(items.iter().map(|i| self.bool_expr(i)).collect::<Result<_, _>>()?)
            }
            BoolExprKind::Not(inner) => BoundBool::Not(Box::new(self.bool_expr(inner)?)),
            BoolExprKind::Comparison(c) => path_compare(self.value(&c.left)?, c.op, self.value(&c.right)?),
            BoolExprKind::Converter(call) => key_match(self.call(call, FnKind::Converter)?),
            BoolExprKind::Literal(b) => BoundBool::Const(*b),
        })
    }

    fn value(&self, v: &ast::Value) -> Result<BoundValue, Located> {
        Ok(match &v.kind {
            ValueKind::Nil => BoundValue::Literal(Value::Nil),
            ValueKind::Bool(b) => BoundValue::Literal(Value::Bool(*b)),
            ValueKind::Int(i) => BoundValue::Literal(Value::Int(*i)),
            ValueKind::Float(f) => BoundValue::Literal(Value::Float(*f)),
            ValueKind::String(s) => BoundValue::Literal(Value::String(s.clone())),
            ValueKind::Bytes(b) => BoundValue::Literal(Value::Bytes(b.clone())),
            ValueKind::Enum(name) => match enum_value(name, self.context) {
                Some(n) => BoundValue::Literal(Value::Int(n)),
                None => return Err(at(v.span, format!("enum symbol, {name}, not found"))),
            },
            ValueKind::Path(path) => BoundValue::Path(self.path(path)?),
            ValueKind::Converter(call) => BoundValue::Call(Box::new(self.call(call, FnKind::Converter)?)),
            ValueKind::List(items) => {
                BoundValue::List(items.iter().map(|i| self.value(i)).collect::<Result<_, _>>()?)
            }
            ValueKind::Map(entries) => BoundValue::Map(
                entries
                    .iter()
                    .map(|e| Ok((e.key.clone(), self.value(&e.value)?)))
                    .collect::<Result<_, Located>>()?,
            ),
            ValueKind::Math(m) => self.math(m)?,
            ValueKind::FunctionName(name) => {
                return Err(at(
                    v.span,
                    format!("the function name \"{name}\" can only be passed as an argument"),
                ));
            }
        })
    }

    fn math(&self, m: &ast::MathExpr) -> Result<BoundValue, Located> {
        Ok(match m {
            ast::MathExpr::Chain { first, rest } => BoundValue::Math(
                Box::new(self.value(first)?),
                rest.iter().map(|(op, v)| Ok((*op, self.value(v)?))).collect::<Result<_, Located>>()?,
            ),
            ast::MathExpr::Unary { op: UnaryOp::Plus, operand } => self.value(operand)?,
            ast::MathExpr::Unary { op: UnaryOp::Minus, operand } => {
                BoundValue::Negate(Box::new(self.value(operand)?))
            }
        })
    }

    fn keys(&self, keys: &[ast::Key]) -> Result<Vec<BoundKey>, Located> {
        keys.iter()
            .map(|k| {
                Ok(match &k.kind {
                    KeyKind::String(s) => BoundKey::String(s.as_str().into()),
                    KeyKind::Int(i) => BoundKey::Int(*i),
                    KeyKind::Expr(v) => BoundKey::Expr(self.value(v)?),
                })
            })
            .collect()
    }

    fn path(&self, path: &ast::Path) -> Result<BoundPath, Located> {
        let text = path_text(path);
        let named = path
            .context_candidate()
            .and_then(|f| Context::from_prefix(&f.name))
            .is_some_and(|c| self.context.path_contexts().contains(&c));
        if self.implicit_prefix && !named {
            // The whole path names a field of the group's own context.
            return self.resolve(self.context, &path.fields, &text, path.span);
        }
        let Some(prefix) = path.context_candidate() else {
            let options: Vec<String> =
                self.context.prefix_names().iter().map(|p| format!("\"{p}.{text}\"")).collect();
            return Err(at(
                path.span,
                format!(
                    "missing context name for path \"{text}\", possibly valid options are: {}",
                    options.join(", ")
                ),
            ));
        };
        let path_context = Context::from_prefix(&prefix.name)
            .filter(|c| self.context.path_contexts().contains(c))
            .ok_or_else(|| {
                let options: Vec<String> =
                    self.context.prefix_names().iter().map(|p| format!("\"{p}\"")).collect();
                at(
                    path.span,
                    format!(
                        "context \"{}\" from path \"{text}\" is not valid, it must be replaced by one of: {}",
                        prefix.name,
                        options.join(", ")
                    ),
                )
            })?;
        self.resolve(path_context, &path.fields[1..], &text, path.span)
    }

    /// Resolves the fields after the prefix in `path_context`.
    fn resolve(
        &self,
        path_context: Context,
        fields: &[ast::Field],
        text: &str,
        span: ast::Span,
    ) -> Result<BoundPath, Located> {
        // Keys belong to the last field only: no context has keyed fields with sub-fields.
        if let Some(keyed) = fields.iter().rev().skip(1).find(|f| !f.keys.is_empty()) {
            return Err(at(
                keyed.span,
                format!("the path section \"{}\" cannot be followed by keys and more fields", keyed.name),
            ));
        }
        let segments: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let (target, key_use) = path_context.resolve(&segments, text).map_err(|e| at(span, e.to_string()))?;
        if target == Target::Cache && path_context != self.context {
            return Err(at(
                span,
                format!(
                    "access to cache must be performed using the same context, please replace \"{text}\" with \"{}.cache\"",
                    self.context
                ),
            ));
        }
        let keys = fields.last().map(|f| f.keys.as_slice()).unwrap_or_default();
        match (key_use, keys.len()) {
            (KeyUse::None, n) if n > 0 => {
                return Err(at(span, format!("the path \"{text}\" does not take keys")));
            }
            (KeyUse::AtMostOne, n) if n > 1 => {
                return Err(at(span, "must provide exactly 1 key when accessing trace_state".to_string()));
            }
            _ => {}
        }
        // One key into the trace state reads a member.
        let target = match (target, keys.len()) {
            (Target::Span(crate::context::SpanField::TraceState), 1) => {
                Target::Span(crate::context::SpanField::TraceStateKey)
            }
            (target, _) => target,
        };
        Ok(BoundPath { target, keys: self.keys(keys)? })
    }

    fn call(&self, call: &ast::Invocation, kind: FnKind) -> Result<BoundCall, Located> {
        let name = &call.name.name;
        // Filters take no statements, so an editor only ever reaches a transform.
        let def = registry::available(name, self.usage, self.context)
            .filter(|d| d.kind() == kind)
            .ok_or_else(|| at(call.name.span, format!("undefined function \"{name}\"")))?;
        // Named arguments go to their parameter; positional ones fill from the left.
        let mut slots: Vec<Option<&ast::Argument>> = vec![None; def.params.len()];
        let mut named_seen = false;
        for (position, arg) in call.args.iter().enumerate() {
            let index = match &arg.name {
                Some(arg_name) => {
                    named_seen = true;
                    def.params
                        .iter()
                        .position(|p| same_param_name(p.name, &arg_name.name))
                        .ok_or_else(|| at(arg.span, format!("no such parameter: {}", arg_name.name)))?
                }
                None if named_seen => {
                    return Err(at(arg.span, "unnamed argument used after named argument".to_string()));
                }
                None => position,
            };
            if index >= slots.len() {
                return Err(at(
                    call.span,
                    format!(
                        "incorrect number of arguments. Expected: {} Received: {}",
                        def.params.len(),
                        call.args.len()
                    ),
                ));
            }
            if slots[index].is_some() {
                return Err(at(
                    arg.span,
                    format!("duplicate argument for parameter \"{}\"", def.params[index].name),
                ));
            }
            slots[index] = Some(arg);
        }
        if let Some(missing) = def.params.iter().zip(&slots).position(|(p, s)| !p.optional && s.is_none()) {
            return Err(at(
                call.span,
                format!(
                    "incorrect number of arguments. Expected: {} Received: {} (missing \"{}\")",
                    def.required(),
                    call.args.len(),
                    def.params[missing].name
                ),
            ));
        }
        let mut args = Vec::with_capacity(slots.len());
        for (index, (param, slot)) in def.params.iter().zip(&slots).enumerate() {
            let Some(arg) = slot else {
                args.push(BoundArg::Absent);
                continue;
            };
            let bound = self.argument(param.ty, &arg.value).map_err(|e| Located {
                message: format!(
                    "error while parsing arguments for call to \"{name}\": invalid argument at position {index}: {}",
                    e.message
                ),
                offset: e.offset,
            })?;
            args.push(bound);
        }
        let prepared = match def.prepare {
            Some(prepare) => {
                let literals: Vec<Option<&Value>> = args.iter().map(literal_of).collect();
                prepare(&literals).map_err(|e| at(call.span, format!("couldn't create function: {e}")))?
            }
            None => None,
        };
        let keys = self.keys(&call.keys)?;
        Ok(BoundCall { def, args, prepared, keys })
    }

    fn argument(&self, ty: ParamType, v: &ast::Value) -> Result<BoundArg, Located> {
        let literal = |ok: bool, what: &str| {
            if ok { Ok(()) } else { Err(at(v.span, format!("must be {what}"))) }
        };
        Ok(match ty {
            ParamType::String => {
                literal(matches!(v.kind, ValueKind::String(_)), "a string")?;
                BoundArg::Value(self.value(v)?)
            }
            ParamType::Int => {
                literal(matches!(v.kind, ValueKind::Int(_)), "an int")?;
                BoundArg::Value(self.value(v)?)
            }
            ParamType::Float => {
                literal(matches!(v.kind, ValueKind::Float(_)), "a float")?;
                BoundArg::Value(self.value(v)?)
            }
            ParamType::Bool => {
                literal(matches!(v.kind, ValueKind::Bool(_)), "a bool")?;
                BoundArg::Value(self.value(v)?)
            }
            ParamType::StringList => {
                let ValueKind::List(items) = &v.kind else {
                    return Err(at(v.span, "must be a list of type string".into()));
                };
                if items.iter().any(|i| !matches!(i.kind, ValueKind::String(_))) {
                    return Err(at(v.span, "must be a list of type string".into()));
                }
                BoundArg::Value(self.value(v)?)
            }
            ParamType::GetSetter
            | ParamType::PMapGetSetter
            | ParamType::PSliceGetSetter
            | ParamType::Setter => {
                let ValueKind::Path(path) = &v.kind else { return Err(at(v.span, "must be a path".into())) };
                BoundArg::Path(self.path(path)?)
            }
            ParamType::FunctionGetter => {
                // An all-capitals name (`SHA256`) parses as an enum symbol; as an argument it names a function.
                let (ValueKind::FunctionName(name) | ValueKind::Enum(name)) = &v.kind else {
                    return Err(at(v.span, "must be a function name".into()));
                };
                let def = registry::available(name, self.usage, self.context)
                    .filter(|d| d.kind() == FnKind::Converter)
                    .ok_or_else(|| at(v.span, format!("undefined function \"{name}\"")))?;
                BoundArg::Function(def)
            }
            ParamType::GetterList | ParamType::StringGetterList | ParamType::StringLikeGetterList => {
                let ValueKind::List(items) = &v.kind else { return Err(at(v.span, "must be a list".into())) };
                BoundArg::List(items.iter().map(|i| self.value(i)).collect::<Result<_, _>>()?)
            }
            ParamType::Lambda => {
                return Err(at(
                    v.span,
                    "lambda expressions need the Collector feature gate ottl.functions.enableLambda, which is off".into(),
                ));
            }
            _ => BoundArg::Value(self.value(v)?),
        })
    }
}

// === free functions ===

/// A comparison, as a [`PathCompare`] when it is a path (into an item, with at most one literal
/// key) against a literal.
fn path_compare(left: BoundValue, op: CompareOp, right: BoundValue) -> BoundBool {
    let ready = |path: &BoundPath| {
        path.target != Target::Cache && matches!(path.keys.as_slice(), [] | [BoundKey::String(_)])
    };
    match (left, right) {
        (BoundValue::Path(path), BoundValue::Literal(literal)) if ready(&path) => {
            BoundBool::PathCompare(Box::new(PathCompare { path, op, literal }))
        }
        (BoundValue::Literal(literal), BoundValue::Path(path)) if ready(&path) => {
            BoundBool::PathCompare(Box::new(PathCompare { path, op: op.flipped(), literal }))
        }
        (left, right) => BoundBool::Compare(Box::new(left), op, Box::new(right)),
    }
}

/// A converter as a condition, as a [`KeyMatch`] when it is `IsMatch` of one literal key of an
/// item's map with a literal pattern.
fn key_match(call: BoundCall) -> BoundBool {
    let regex = call.prepared.as_ref().and_then(|p| p.downcast_ref::<regex::Regex>()).cloned();
    let key = match call.args.first() {
        Some(BoundArg::Value(BoundValue::Path(path))) if path.target != Target::Cache => {
            match path.keys.as_slice() {
                [BoundKey::String(key)] => Some((path.target, std::sync::Arc::clone(key))),
                _ => None,
            }
        }
        _ => None,
    };
    match (call.def.name, regex, key, call.keys.is_empty()) {
        ("IsMatch", Some(regex), Some((target, key)), true) => {
            BoundBool::KeyMatch(Box::new(KeyMatch { target, key, regex, call }))
        }
        _ => BoundBool::Call(Box::new(call)),
    }
}

/// The numeric value of an enum symbol in a context: span kinds and status codes exist where a span
/// does (span and span event).
pub fn enum_value(name: &str, context: Context) -> Option<i64> {
    if !matches!(context, Context::Span | Context::SpanEvent) {
        return None;
    }
    Some(match name {
        "SPAN_KIND_UNSPECIFIED" => 0,
        "SPAN_KIND_INTERNAL" => 1,
        "SPAN_KIND_SERVER" => 2,
        "SPAN_KIND_CLIENT" => 3,
        "SPAN_KIND_PRODUCER" => 4,
        "SPAN_KIND_CONSUMER" => 5,
        "STATUS_CODE_UNSET" => 0,
        "STATUS_CODE_OK" => 1,
        "STATUS_CODE_ERROR" => 2,
        _ => return None,
    })
}

/// Whether a named argument names a parameter: the Collector camel-cases the name (`regex_pattern` and
/// `regexPattern` both bind `RegexPattern`).
fn same_param_name(param: &str, given: &str) -> bool {
    to_camel(given) == to_camel(param)
}

/// `strcase.ToCamel` (iancoleman/strcase): the first letter and letters after `_`, `-`, `.`, a space
/// or a digit upper-cased, an upper-case letter right after another lower-cased.
fn to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper_next = true;
    let mut prev_upper = false;
    for c in s.trim().chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            upper_next = true;
            prev_upper = false;
            continue;
        }
        if c.is_ascii_digit() {
            out.push(c);
            upper_next = true;
            prev_upper = false;
            continue;
        }
        let is_upper = c.is_ascii_uppercase();
        if upper_next {
            out.push(c.to_ascii_uppercase());
            prev_upper = true;
        } else if is_upper && prev_upper {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
            prev_upper = is_upper;
        }
        upper_next = false;
    }
    out
}

/// The literal value of a bound argument, for `prepare`.
fn literal_of(arg: &BoundArg) -> Option<&Value> {
    match arg {
        BoundArg::Value(BoundValue::Literal(v)) => Some(v),
        _ => None,
    }
}

/// A path as the Collector prints it in messages: fields joined by dots, string keys unquoted.
fn path_text(path: &ast::Path) -> String {
    let mut out = String::new();
    for (n, field) in path.fields.iter().enumerate() {
        if n > 0 {
            out.push('.');
        }
        out.push_str(&field.name);
        for key in &field.keys {
            match &key.kind {
                KeyKind::String(s) => out.push_str(&format!("[{s}]")),
                KeyKind::Int(i) => out.push_str(&format!("[{i}]")),
                KeyKind::Expr(_) => out.push_str("[…]"),
            }
        }
    }
    out
}

fn at(span: ast::Span, message: String) -> Located {
    Located { message, offset: span.start }
}

fn parse_message(e: &ParseError) -> String {
    e.to_string()
}

/// The Collector's wrapping of an error in one text.
fn wrap(what: &str, text: &str, message: &str) -> BindError {
    BindError { message: format!("unable to parse OTTL {what} {text:?}: {message}") }
}

/// The same, with the position of the error in the text (line:column, 1-based).
fn wrap_at(what: &str, text: &str, e: &Located) -> BindError {
    let before = &text[..e.offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    wrap(what, text, &format!("{line}:{column}: {}", e.message))
}

#[cfg(test)]
mod tests;
