//! Every function, and which of them Kyma's transform and filter offer in which context.

use super::{FnKind, FunctionDef};
use crate::context::Context;

/// Where statements or conditions come from: a TracePipeline's `transform` or its `filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Transform,
    /// Kyma's filter: span, resource and scope.
    Filter,
    /// The Collector's filter processor itself, which also filters span events (Kyma's validator
    /// offers no such context); for running the Collector's own tables.
    CollectorFilter,
}

/// The functions only some contexts offer: `IsRootSpan` (span, transform and filter) and
/// `set_semconv_span_name` (span, transform).
const SPAN_ONLY: [&str; 2] = ["IsRootSpan", "set_semconv_span_name"];

/// Every family of functions.
fn families() -> [&'static [FunctionDef]; 6] {
    [
        super::editors::FUNCTIONS,
        super::strings::FUNCTIONS,
        super::convert::FUNCTIONS,
        super::hashing::FUNCTIONS,
        super::time::FUNCTIONS,
        super::xml::FUNCTIONS,
    ]
}

/// The function with this name, in any context.
pub fn lookup(name: &str) -> Option<&'static FunctionDef> {
    families().into_iter().flatten().find(|f| f.name == name)
}

/// The function `name` as a statement or condition of `usage` in `context` may call it: transforms get
/// the Collector's standard editors and converters, filters its standard converters; spans add
/// `IsRootSpan` (and transforms `set_semconv_span_name`).
pub fn available(name: &str, usage: Use, context: Context) -> Option<&'static FunctionDef> {
    let def = lookup(name)?;
    if SPAN_ONLY.contains(&def.name) {
        let offered =
            context == Context::Span && (usage == Use::Transform || def.kind() == FnKind::Converter);
        return offered.then_some(def);
    }
    // `append` and `delete_index` are registered among the converters, so filters "have" them, but a
    // condition cannot call an editor: the grammar only allows upper-case calls there.
    Some(def)
}

/// Every function's name, for "did you mean" hints and tests.
pub fn names() -> impl Iterator<Item = &'static str> {
    families().into_iter().flatten().map(|f| f.name)
}
