//! Evaluation of bound statements and conditions over any telemetry: the [`Accessor`] a context
//! implements, and the errors a statement can meet while it runs.

use crate::ast::{CompareOp, MathOp};
use crate::bind::{
    BoundArg, BoundBool, BoundCall, BoundKey, BoundPath, BoundValue, FilterGroup, LiteralWrite,
    TransformGroup,
};
use crate::context::Target;
use crate::funcs::{ArgSource, Call, Run};
use crate::value::Value;

/// Why a statement or condition failed on one item. Under `error_mode: ignore` (what Kyma sets) the
/// statement is skipped for that item and the failure counted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A value of the wrong type reached a typed getter or a setter.
    #[error("expected {expected} but got {got}")]
    Type { expected: &'static str, got: &'static str },
    /// A type that a converting getter cannot convert.
    #[error("unsupported type: {0}")]
    Unsupported(&'static str),
    /// A function's own failure, with its message.
    #[error("{0}")]
    Function(String),
    /// A key into a map or list that does not fit the value (`attributes["a"][0]` on a string).
    #[error("{0}")]
    Key(String),
    /// Arithmetic that Go refuses (division by zero, mismatched operand types).
    #[error("{0}")]
    Math(String),
}

// === impl EvalError ===

impl EvalError {
    /// A typed getter or setter got `got` instead of `expected`.
    pub fn expected(expected: &'static str, got: &Value) -> Self {
        Self::Type { expected, got: got.type_name() }
    }

    /// A converting getter met a type it does not convert.
    pub fn unsupported(got: &Value) -> Self {
        Self::Unsupported(got.type_name())
    }
}

/// The telemetry a statement runs on: one item (a span, a span event, a resource or a scope) and the
/// items above it. Implemented over prost-decoded spans for reference and over encoded spans in the
/// gateway; the evaluator needs nothing else.
pub trait Accessor {
    /// Reads a field.
    fn get(&mut self, target: Target) -> Result<Value, EvalError>;

    /// Writes a field; a value of the wrong type is an error, as the Collector's setters report it.
    fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError>;

    /// Runs a statement that is one [`LiteralWrite`] (`set(span.attributes["k"], "v")`): the same as
    /// [`Accessor::set_key`] with the write's key and value, which an accessor may keep shared
    /// rather than copy.
    fn set_key_literal(&mut self, write: &std::sync::Arc<LiteralWrite>) -> Result<(), EvalError> {
        self.set_key(write.target, &write.key, write.value.clone())
    }

    /// Reads one key of a map-valued field (`span.attributes["k"]`): the first entry with that key,
    /// `Nil` when there is none. Accessors over encoded data override this to avoid reading the whole
    /// map.
    fn get_key(&mut self, target: Target, key: &str) -> Result<Value, EvalError> {
        match self.get(target)? {
            Value::Map(entries) => Ok(Value::map_get(&entries, key).cloned().unwrap_or_default()),
            Value::Nil => Ok(Value::Nil),
            other => {
                Err(EvalError::Key(format!("type {} does not support string indexing", other.type_name())))
            }
        }
    }

    /// Writes one key of a map-valued field: replaces the first entry with that key or appends one.
    fn set_key(&mut self, target: Target, key: &str, value: Value) -> Result<(), EvalError> {
        let mut entries = match self.get(target)? {
            Value::Map(entries) => entries,
            Value::Nil => Vec::new(),
            other => {
                return Err(EvalError::Key(format!(
                    "type {} does not support string indexing",
                    other.type_name()
                )));
            }
        };
        map_put(&mut entries, key, value);
        self.set(target, Value::Map(entries))
    }

    /// Compares a field with `other` (`span.name == "x"`). Accessors over encoded data override it
    /// to compare a string in place rather than copy it out.
    fn compare_field(&mut self, target: Target, other: &Value, op: CompareOp) -> Result<bool, EvalError> {
        Ok(self.get(target)?.compare(other, op))
    }

    /// Compares one key of a map-valued field with `other` (`span.attributes["k"] != nil`), as
    /// [`Accessor::compare_field`] does for a field.
    fn compare_key(
        &mut self,
        target: Target,
        key: &str,
        other: &Value,
        op: CompareOp,
    ) -> Result<bool, EvalError> {
        Ok(self.get_key(target, key)?.compare(other, op))
    }

    /// Tests one key of a map-valued field with `test` where it lies, when it is a string:
    /// `Some(Some(verdict))`; `Some(None)` when there is no such key; `None` when it holds another
    /// kind of value or the accessor cannot lend it, and the caller reads it as a [`Value`] instead.
    /// Lets string converters (`IsMatch(span.attributes["k"], …)`) run without a copy.
    fn test_key_str(
        &mut self,
        target: Target,
        key: &str,
        test: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Option<bool>>, EvalError> {
        let _ = (target, key, test);
        Ok(None)
    }

    /// Removes the first entry under `key` from a map-valued field, as `pcommon.Map.Remove` does (the
    /// last entry moves into its place); `false` when there was none. Accessors over encoded data
    /// override this to avoid reading the whole map.
    fn remove_key(&mut self, target: Target, key: &str) -> Result<bool, EvalError> {
        let mut entries = match self.get(target)? {
            Value::Map(entries) => entries,
            other => return Err(EvalError::expected("pcommon.Map", &other)),
        };
        let Some(i) = entries.iter().position(|(k, _)| k == key) else {
            return Ok(false);
        };
        entries.swap_remove(i);
        self.set(target, Value::Map(entries))?;
        Ok(true)
    }
}

/// How a failing statement or condition is treated (the processors' `error_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorMode {
    /// Skip the statement for this item, log and count; Kyma's setting.
    #[default]
    Ignore,
    /// The same, without the log line.
    Silent,
    /// Stop and report the error.
    Propagate,
}

/// What running a group on one item did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Errors met (and, unless `Propagate`, skipped past), with the statement or condition text.
    pub errors: Vec<(String, EvalError)>,
}

/// Evaluation state for one item: the accessor and the context's cache.
struct Env<'a, A: Accessor + ?Sized> {
    acc: &'a mut A,
    /// `None` until a statement writes it: most items never use it, and an empty one still costs
    /// a call to drop.
    cache: Option<Vec<(String, Value)>>,
}

/// A bound call's arguments, evaluated on demand.
struct Args<'e, 'a, A: Accessor + ?Sized> {
    env: &'e mut Env<'a, A>,
    args: &'e [BoundArg],
}

/// A transform group's verdict on its conditions, kept for the items that share it
/// ([`TransformGroup::shared_selection`]): one per group and request, given to
/// [`TransformGroup::run_at`] with each item.
#[derive(Debug, Default)]
pub struct Selection {
    /// The resource (and scope) the verdict is for.
    place: Option<(usize, usize)>,
    selected: bool,
    /// The conditions' failures, counted again for each item, as if evaluated for each.
    errors: Vec<(String, EvalError)>,
}

// === impl TransformGroup ===

impl TransformGroup {
    /// Runs the group on one item of its context: when any condition holds (or there are none), each
    /// statement whose `where` holds, in order.
    pub fn run<A: Accessor + ?Sized>(&self, acc: &mut A, mode: ErrorMode) -> Result<Outcome, EvalError> {
        let mut env = Env { acc, cache: None };
        let mut outcome = Outcome::default();
        if !env.select(&self.conditions, &mut outcome, mode)? {
            return Ok(outcome);
        }
        self.run_statements(&mut env, outcome, mode)
    }

    /// [`TransformGroup::run`] on the item under resource `resource` and scope `scope` (their
    /// positions in the request): conditions whose verdict the items of a resource (scope) share
    /// are evaluated on its first item only, and `selection` keeps the verdict for the others.
    pub fn run_at<A: Accessor + ?Sized>(
        &self,
        acc: &mut A,
        mode: ErrorMode,
        (resource, scope): (usize, usize),
        selection: &mut Selection,
    ) -> Result<Outcome, EvalError> {
        let place = match self.shared_selection {
            Some(crate::context::Context::Resource) => (resource, usize::MAX),
            Some(_) => (resource, scope),
            None => return self.run(acc, mode),
        };
        let mut env = Env { acc, cache: None };
        if selection.place != Some(place) {
            let mut outcome = Outcome::default();
            let selected = env.select(&self.conditions, &mut outcome, mode)?;
            *selection = Selection { place: Some(place), selected, errors: outcome.errors };
        }
        // The selection's failures count again for each item it selected for (nothing to copy in the
        // usual case: none).
        let outcome = match selection.errors.is_empty() {
            true => Outcome::default(),
            false => Outcome { errors: selection.errors.clone() },
        };
        if !selection.selected {
            return Ok(outcome);
        }
        self.run_statements(&mut env, outcome, mode)
    }

    /// Each statement whose `where` holds, in order, adding failures to `outcome`.
    fn run_statements<A: Accessor + ?Sized>(
        &self,
        env: &mut Env<'_, A>,
        mut outcome: Outcome,
        mode: ErrorMode,
    ) -> Result<Outcome, EvalError> {
        for statement in &self.statements {
            let result = match &statement.condition {
                Some(c) => env.bool_expr(c),
                None => Ok(true),
            }
            .and_then(|holds| match (holds, &statement.literal_write) {
                (false, _) => Ok(()),
                (true, Some(write)) => env.acc.set_key_literal(write),
                (true, None) => env.run_editor(&statement.editor),
            });
            if let Err(e) = result {
                outcome.fail(&statement.text, e, mode)?;
            }
        }
        Ok(outcome)
    }
}

// === impl FilterGroup ===

impl FilterGroup {
    /// Whether the item matches any condition (and is dropped). A condition that fails counts as not
    /// matching unless `mode` is `Propagate`.
    pub fn matches<A: Accessor + ?Sized>(
        &self,
        acc: &mut A,
        mode: ErrorMode,
    ) -> Result<(bool, Outcome), EvalError> {
        let mut env = Env { acc, cache: None };
        let mut outcome = Outcome::default();
        for condition in &self.conditions {
            match env.bool_expr(&condition.expr) {
                Ok(true) => return Ok((true, outcome)),
                Ok(false) => {}
                Err(e) => outcome.fail(&condition.text, e, mode)?,
            }
        }
        Ok((false, outcome))
    }
}

// === impl Outcome ===

impl Outcome {
    fn fail(&mut self, text: &str, e: EvalError, mode: ErrorMode) -> Result<(), EvalError> {
        if mode == ErrorMode::Propagate {
            return Err(e);
        }
        self.errors.push((text.to_string(), e));
        Ok(())
    }
}

// === impl Env ===

impl<A: Accessor + ?Sized> Env<'_, A> {
    /// Whether any of a transform group's `conditions` holds (true without any), adding failures to
    /// `outcome`.
    fn select(
        &mut self,
        conditions: &[crate::bind::BoundCondition],
        outcome: &mut Outcome,
        mode: ErrorMode,
    ) -> Result<bool, EvalError> {
        if conditions.is_empty() {
            return Ok(true);
        }
        for condition in conditions {
            match self.bool_expr(&condition.expr) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => outcome.fail(&condition.text, e, mode)?,
            }
        }
        Ok(false)
    }

    fn bool_expr(&mut self, e: &BoundBool) -> Result<bool, EvalError> {
        match e {
            BoundBool::Or(items) => {
                for item in items {
                    if self.bool_expr(item)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            BoundBool::And(items) => {
                for item in items {
                    if !self.bool_expr(item)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            BoundBool::Not(inner) => Ok(!self.bool_expr(inner)?),
            BoundBool::PathCompare(c) => match c.path.keys.as_slice() {
                [BoundKey::String(key)] => self.acc.compare_key(c.path.target, key, &c.literal, c.op),
                _ => self.acc.compare_field(c.path.target, &c.literal, c.op),
            },
            BoundBool::KeyMatch(m) => {
                match self.acc.test_key_str(m.target, &m.key, &mut |s| m.regex.is_match(s))? {
                    // A string tested where it lies; nil never matches.
                    Some(verdict) => Ok(verdict.unwrap_or(false)),
                    // Another kind of value: `IsMatch` converts it first.
                    None => self.call_bool(&m.call),
                }
            }
            BoundBool::Const(b) => Ok(*b),
            other => self.general_bool(other),
        }
    }

    /// [`Self::bool_expr`] for a comparison of values and a converter: out of line, so that the
    /// usual conditions (prepared when bound) are evaluated without carrying this frame.
    #[inline(never)]
    fn general_bool(&mut self, e: &BoundBool) -> Result<bool, EvalError> {
        Ok(match e {
            BoundBool::Compare(left, op, right) => match (&**left, &**right) {
                // A path against a literal: the accessor compares in place, nothing is copied.
                (BoundValue::Path(path), BoundValue::Literal(literal)) => {
                    self.compare_path(path, literal, *op)?
                }
                (BoundValue::Literal(literal), BoundValue::Path(path)) => {
                    self.compare_path(path, literal, op.flipped())?
                }
                (BoundValue::Literal(literal), right) => self.value(right)?.compare(literal, op.flipped()),
                (left, BoundValue::Literal(literal)) => self.value(left)?.compare(literal, *op),
                (left, right) => {
                    let left = self.value(left)?;
                    let right = self.value(right)?;
                    left.compare(&right, *op)
                }
            },
            BoundBool::Call(call) => self.call_bool(call)?,
            other => self.bool_expr(other)?,
        })
    }

    /// A converter used as a condition: its result must be a bool.
    fn call_bool(&mut self, call: &BoundCall) -> Result<bool, EvalError> {
        match self.call(call)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::Function(format!(
                "value returned from Converter in constExpr is not a bool, it is type {}",
                other.type_name()
            ))),
        }
    }

    fn value(&mut self, v: &BoundValue) -> Result<Value, EvalError> {
        match v {
            BoundValue::Literal(v) => Ok(v.clone()),
            BoundValue::Path(path) => self.get_path(path),
            BoundValue::Call(call) => self.call(call),
            BoundValue::List(items) => {
                Ok(Value::List(items.iter().map(|i| self.value(i)).collect::<Result<_, _>>()?))
            }
            BoundValue::Map(entries) => Ok(Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.value(v)?)))
                    .collect::<Result<_, EvalError>>()?,
            )),
            BoundValue::Math(first, rest) => {
                let mut acc = self.value(first)?;
                for (op, operand) in rest {
                    let rhs = self.value(operand)?;
                    acc = math(acc, *op, rhs)?;
                }
                Ok(acc)
            }
            BoundValue::Negate(inner) => match self.value(inner)? {
                Value::Int(i) => Ok(Value::Int(i.wrapping_neg())),
                Value::Float(f) => Ok(Value::Float(-f)),
                other => Err(EvalError::Math(format!(
                    "unsupported unary minus operation on type {}",
                    other.type_name()
                ))),
            },
        }
    }

    /// A key's value: a string or an int.
    fn key(&mut self, key: &BoundKey) -> Result<Key, EvalError> {
        match key {
            BoundKey::String(s) => Ok(Key::String(s.to_string())),
            BoundKey::Int(i) => Ok(Key::Int(*i)),
            BoundKey::Expr(v) => Ok(match self.value(v)? {
                Value::String(s) => Key::String(s),
                Value::Int(i) => Key::Int(i),
                other => Key::Other(other.type_name()),
            }),
        }
    }

    fn keys(&mut self, keys: &[BoundKey]) -> Result<Vec<Key>, EvalError> {
        keys.iter().map(|k| self.key(k)).collect()
    }

    /// `path op literal`, through the accessor's in-place comparisons where the path allows.
    fn compare_path(&mut self, path: &BoundPath, literal: &Value, op: CompareOp) -> Result<bool, EvalError> {
        if path.target != Target::Cache {
            match path.keys.as_slice() {
                [] => return self.acc.compare_field(path.target, literal, op),
                [BoundKey::String(key)] => return self.acc.compare_key(path.target, key, literal, op),
                _ => {}
            }
        }
        Ok(self.get_path(path)?.compare(literal, op))
    }

    fn get_path(&mut self, path: &BoundPath) -> Result<Value, EvalError> {
        // The common case, one literal key into an item's map (`span.attributes["k"]`), needs no
        // evaluated copy of the key.
        if let ([BoundKey::String(first)], false) = (path.keys.as_slice(), path.target == Target::Cache) {
            return self.acc.get_key(path.target, first);
        }
        let keys = self.keys(&path.keys)?;
        let Some((first, rest)) = keys.split_first() else {
            return match path.target {
                Target::Cache => Ok(Value::Map(self.cache.clone().unwrap_or_default())),
                target => self.acc.get(target),
            };
        };
        let Key::String(first) = first else {
            return Err(map_key_error(first));
        };
        let top = match path.target {
            Target::Cache => {
                Value::map_get(self.cache.as_deref().unwrap_or_default(), first).cloned().unwrap_or_default()
            }
            target => self.acc.get_key(target, first)?,
        };
        index(top, rest)
    }

    fn set_path(&mut self, path: &BoundPath, value: Value) -> Result<(), EvalError> {
        if let ([BoundKey::String(first)], false) = (path.keys.as_slice(), path.target == Target::Cache) {
            if !value.is_attribute_value() {
                // What an attribute cannot hold leaves it as it was, as the Collector's setter does.
                return Ok(());
            }
            return self.acc.set_key(path.target, first, value);
        }
        let keys = self.keys(&path.keys)?;
        let Some((first, rest)) = keys.split_first() else {
            return match path.target {
                Target::Cache => match value {
                    Value::Map(entries) => {
                        self.cache = Some(entries);
                        Ok(())
                    }
                    other => Err(EvalError::expected("pcommon.Map", &other)),
                },
                target => self.acc.set(target, value),
            };
        };
        let Key::String(first) = first else {
            return Err(map_key_error(first));
        };
        if path.target != Target::Cache && !value.is_attribute_value() {
            // What an attribute cannot hold leaves it as it was, as the Collector's setter does.
            return Ok(());
        }
        if path.target == Target::Cache {
            let current =
                Value::map_get(self.cache.as_deref().unwrap_or_default(), first).cloned().unwrap_or_default();
            let updated = set_index(current, rest, value)?;
            map_put(self.cache.get_or_insert_with(Vec::new), first, updated);
            return Ok(());
        }
        if rest.is_empty() {
            return self.acc.set_key(path.target, first, value);
        }
        let current = self.acc.get_key(path.target, first)?;
        let updated = set_index(current, rest, value)?;
        self.acc.set_key(path.target, first, updated)
    }

    fn run_editor(&mut self, call: &BoundCall) -> Result<(), EvalError> {
        let Run::Editor(run) = call.def.run else {
            return Err(EvalError::Function(format!("{} is not an editor", call.def.name)));
        };
        let mut args = Args { env: self, args: &call.args };
        let mut c = Call::new(call.def.name, &mut args, call.prepared.as_deref());
        run(&mut c)
    }

    fn call(&mut self, call: &BoundCall) -> Result<Value, EvalError> {
        let Run::Converter(run) = call.def.run else {
            return Err(EvalError::Function(format!("{} is not a converter", call.def.name)));
        };
        let result = {
            let mut args = Args { env: self, args: &call.args };
            let mut c = Call::new(call.def.name, &mut args, call.prepared.as_deref());
            run(&mut c)?
        };
        if call.keys.is_empty() {
            return Ok(result);
        }
        let keys = self.keys(&call.keys)?;
        index(result, &keys)
    }
}

// === impl Args ===

impl<A: Accessor + ?Sized> ArgSource for Args<'_, '_, A> {
    fn present(&self, i: usize) -> bool {
        !matches!(self.args.get(i), None | Some(BoundArg::Absent))
    }

    fn value(&mut self, i: usize) -> Result<Value, EvalError> {
        match self.args.get(i) {
            Some(BoundArg::Value(v)) => self.env.value(v),
            Some(BoundArg::Path(p)) => self.env.get_path(p),
            Some(BoundArg::List(items)) => {
                Ok(Value::List(items.iter().map(|v| self.env.value(v)).collect::<Result<_, _>>()?))
            }
            Some(BoundArg::Function(def)) => Ok(Value::String(def.name.to_string())),
            Some(BoundArg::Absent) | None => Ok(Value::Nil),
        }
    }

    fn items(&mut self, i: usize) -> Result<Vec<Value>, EvalError> {
        match self.value(i)? {
            Value::List(items) => Ok(items),
            other => Err(EvalError::expected("pcommon.Slice", &other)),
        }
    }

    fn literal(&self, i: usize) -> Option<&Value> {
        match self.args.get(i) {
            Some(BoundArg::Value(BoundValue::Literal(v))) => Some(v),
            _ => None,
        }
    }

    fn test_str(
        &mut self,
        i: usize,
        test: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Option<bool>>, EvalError> {
        match self.args.get(i) {
            Some(BoundArg::Value(BoundValue::Path(path))) if path.target != Target::Cache => {
                match path.keys.as_slice() {
                    [BoundKey::String(key)] => self.env.acc.test_key_str(path.target, key, test),
                    _ => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    fn set(&mut self, i: usize, value: Value) -> Result<(), EvalError> {
        match self.args.get(i) {
            Some(BoundArg::Path(p)) => self.env.set_path(p, value),
            _ => Err(EvalError::Function(format!("argument {i} is not a path"))),
        }
    }

    fn call(&mut self, i: usize, args: Vec<Value>) -> Result<Value, EvalError> {
        let Some(BoundArg::Function(def)) = self.args.get(i) else {
            return Err(EvalError::Function(format!("argument {i} is not a function")));
        };
        let Run::Converter(run) = def.run else {
            return Err(EvalError::Function(format!("{} is not a converter", def.name)));
        };
        let prepared = match def.prepare {
            Some(prepare) => {
                let literals: Vec<Option<&Value>> = args.iter().map(Some).collect();
                prepare(&literals).map_err(EvalError::Function)?
            }
            None => None,
        };
        let mut values = Literals { args: &args, env: self.env };
        let mut c = Call::new(def.name, &mut values, prepared.as_deref());
        run(&mut c)
    }

    fn read(&mut self, target: Target) -> Result<Value, EvalError> {
        self.env.acc.get(target)
    }

    fn write(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        self.env.acc.set(target, value)
    }

    fn remove_key(&mut self, i: usize, key: &str) -> Result<bool, EvalError> {
        match self.args.get(i) {
            // The usual case, `delete_key(span.attributes, "k")`: the accessor removes it in place.
            Some(BoundArg::Path(p)) if p.keys.is_empty() && p.target != Target::Cache => {
                self.env.acc.remove_key(p.target, key)
            }
            _ => remove_through(self, i, key),
        }
    }
}

/// Removes a key by reading the map at argument `i` and writing it back without it (`pcommon.Map.Remove`).
pub(crate) fn remove_through<A: ArgSource + ?Sized>(
    args: &mut A,
    i: usize,
    key: &str,
) -> Result<bool, EvalError> {
    let mut entries = match args.value(i)? {
        Value::Map(entries) => entries,
        other => return Err(EvalError::expected("pcommon.Map", &other)),
    };
    let Some(at) = entries.iter().position(|(k, _)| k == key) else {
        return Ok(false);
    };
    entries.swap_remove(at);
    args.set(i, Value::Map(entries))?;
    Ok(true)
}

/// Arguments that are values already (a converter called by another function through a
/// `FunctionGetter`).
struct Literals<'e, 'a, A: Accessor + ?Sized> {
    args: &'e [Value],
    env: &'e mut Env<'a, A>,
}

impl<A: Accessor + ?Sized> ArgSource for Literals<'_, '_, A> {
    fn present(&self, i: usize) -> bool {
        i < self.args.len()
    }
    fn value(&mut self, i: usize) -> Result<Value, EvalError> {
        Ok(self.args.get(i).cloned().unwrap_or_default())
    }
    fn items(&mut self, i: usize) -> Result<Vec<Value>, EvalError> {
        match self.value(i)? {
            Value::List(items) => Ok(items),
            other => Err(EvalError::expected("pcommon.Slice", &other)),
        }
    }
    fn literal(&self, i: usize) -> Option<&Value> {
        self.args.get(i)
    }
    fn set(&mut self, i: usize, _: Value) -> Result<(), EvalError> {
        Err(EvalError::Function(format!("argument {i} is not a path")))
    }
    fn call(&mut self, i: usize, _: Vec<Value>) -> Result<Value, EvalError> {
        Err(EvalError::Function(format!("argument {i} is not a function")))
    }
    fn read(&mut self, target: Target) -> Result<Value, EvalError> {
        self.env.acc.get(target)
    }
    fn write(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        self.env.acc.set(target, value)
    }
}

/// A key's evaluated form; a key expression of another type fails where it is used.
#[derive(Clone, Debug, PartialEq)]
enum Key {
    String(String),
    Int(i64),
    Other(&'static str),
}

// === free functions ===

/// Replaces the first entry under `key`, or appends one (`pcommon.Map.Put*`).
pub fn map_put(entries: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

/// Follows keys into a value (`["a"][0]`): a missing map key gives `Nil`; an index out of range or a
/// key that does not fit the value is an error.
fn index(mut value: Value, keys: &[Key]) -> Result<Value, EvalError> {
    for key in keys {
        value = match (value, key) {
            (Value::Nil, _) => return Ok(Value::Nil),
            (Value::Map(entries), Key::String(k)) => match entries.into_iter().find(|(name, _)| name == k) {
                Some((_, v)) => v,
                None => return Ok(Value::Nil),
            },
            (Value::List(items), Key::Int(i)) => {
                let len = items.len();
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .ok_or_else(|| EvalError::Key(format!("index {i} out of bounds (length {len})")))?
            }
            (Value::Map(_), key) => return Err(map_key_error(key)),
            (Value::List(_), key) => return Err(list_key_error(key)),
            (other, Key::Int(_)) => {
                return Err(EvalError::Key(format!(
                    "type {} does not support int indexing",
                    other.type_name()
                )));
            }
            (other, _) => {
                return Err(EvalError::Key(format!(
                    "type {} does not support string indexing",
                    other.type_name()
                )));
            }
        };
    }
    Ok(value)
}

/// A key that is no string, used on a map.
fn map_key_error(key: &Key) -> EvalError {
    let got = match key {
        Key::Int(_) => "int64",
        Key::Other(t) => t,
        Key::String(_) => "string",
    };
    EvalError::Key(format!("unable to resolve a string index in map: invalid key type {got}"))
}

/// A key that is no integer, used on a list.
fn list_key_error(key: &Key) -> EvalError {
    let got = match key {
        Key::String(_) => "string",
        Key::Other(t) => t,
        Key::Int(_) => "int64",
    };
    EvalError::Key(format!("unable to resolve an integer index in slice: invalid key type {got}"))
}

/// Writes `new` at `keys` inside `value`, creating maps for missing string keys.
fn set_index(value: Value, keys: &[Key], new: Value) -> Result<Value, EvalError> {
    let Some((key, rest)) = keys.split_first() else {
        return Ok(new);
    };
    match (value, key) {
        (Value::Map(mut entries), Key::String(k)) => {
            let current = Value::map_get(&entries, k).cloned().unwrap_or_default();
            let updated = set_index(current, rest, new)?;
            map_put(&mut entries, k, updated);
            Ok(Value::Map(entries))
        }
        (Value::Nil, Key::String(k)) => Ok(Value::Map(vec![(k.clone(), set_index(Value::Nil, rest, new)?)])),
        // An empty value indexed by position becomes a list long enough to hold it, as pcommon does.
        (Value::Nil, Key::Int(i)) if *i >= 0 => {
            let slot = usize::try_from(*i).map_err(|_| EvalError::Key(format!("index {i} out of bounds")))?;
            let mut items = vec![Value::Nil; slot + 1];
            items[slot] = set_index(Value::Nil, rest, new)?;
            Ok(Value::List(items))
        }
        (Value::List(mut items), Key::Int(i)) => {
            let len = items.len();
            let slot = usize::try_from(*i)
                .ok()
                .filter(|i| *i < len)
                .ok_or_else(|| EvalError::Key(format!("index {i} out of bounds (length {len})")))?;
            let current = std::mem::take(&mut items[slot]);
            items[slot] = set_index(current, rest, new)?;
            Ok(Value::List(items))
        }
        (Value::Map(_), key) => Err(map_key_error(key)),
        (Value::List(_), key) => Err(list_key_error(key)),
        (other, Key::Int(_)) => {
            Err(EvalError::Key(format!("type {} does not support int indexing", other.type_name())))
        }
        (other, _) => {
            Err(EvalError::Key(format!("type {} does not support string indexing", other.type_name())))
        }
    }
}

/// One arithmetic step with the Collector's typing: ints stay ints, an int meets a float as a float,
/// times and durations add and subtract as Go's `time` does.
fn math(lhs: Value, op: MathOp, rhs: Value) -> Result<Value, EvalError> {
    use Value::*;
    let int_op = |x: i64, y: i64| -> Result<Value, EvalError> {
        Ok(Int(match op {
            MathOp::Add => x.wrapping_add(y),
            MathOp::Sub => x.wrapping_sub(y),
            MathOp::Mul => x.wrapping_mul(y),
            MathOp::Div if y == 0 => return Err(EvalError::Math("attempted to divide by 0".into())),
            MathOp::Div => x.wrapping_div(y),
        }))
    };
    let float_op = |x: f64, y: f64| -> Result<Value, EvalError> {
        Ok(Float(match op {
            MathOp::Add => x + y,
            MathOp::Sub => x - y,
            MathOp::Mul => x * y,
            MathOp::Div if y == 0.0 => return Err(EvalError::Math("attempted to divide by 0".into())),
            MathOp::Div => x / y,
        }))
    };
    let time_only =
        || EvalError::Math("only addition and subtraction supported for time.Time and time.Duration".into());
    match (lhs, rhs) {
        (Int(x), Int(y)) => int_op(x, y),
        (Int(x), Float(y)) => float_op(x as f64, y),
        (Float(x), Int(y)) => float_op(x, y as f64),
        (Float(x), Float(y)) => float_op(x, y),
        (Int(_) | Float(_), other) => {
            Err(EvalError::Math(format!("{} must be int64 or float64", other.type_name())))
        }
        (Time(t), rhs) => match (op, rhs) {
            (MathOp::Add, Duration(d)) => Ok(Time(t.wrapping_add(d))),
            (MathOp::Sub, Time(u)) => Ok(Duration(t.wrapping_sub(u))),
            (MathOp::Sub, Duration(d)) => Ok(Time(t.wrapping_sub(d))),
            (MathOp::Add, other) => Err(EvalError::Math(format!(
                "time.Time must be added to time.Duration; found {} instead",
                other.type_name()
            ))),
            (MathOp::Sub, other) => Err(EvalError::Math(format!(
                "time.Time or time.Duration must be subtracted from time.Time; found {} instead",
                other.type_name()
            ))),
            _ => Err(time_only()),
        },
        (Duration(d), rhs) => match (op, rhs) {
            (MathOp::Add, Duration(e)) => Ok(Duration(d.wrapping_add(e))),
            (MathOp::Add, Time(t)) => Ok(Time(t.wrapping_add(d))),
            (MathOp::Sub, Duration(e)) => Ok(Duration(d.wrapping_sub(e))),
            (MathOp::Add | MathOp::Sub, other) => Err(EvalError::Math(format!(
                "time.Duration cannot be combined with {} here",
                other.type_name()
            ))),
            _ => Err(time_only()),
        },
        (other, _) => Err(EvalError::Math(format!(
            "{} must be int64, float64, time.Time or time.Duration",
            other.type_name()
        ))),
    }
}
