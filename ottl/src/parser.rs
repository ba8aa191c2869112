//! The OTTL parser: statements, conditions and value expressions to an [`ast`](crate::ast).
//!
//! A hand-written recursive-descent parser over [`lexer`] tokens that accepts exactly what
//! the Collector's grammar (pkg/ottl `grammar.go`, a participle grammar with unlimited lookahead) accepts.
//! That grammar is an ordered choice everywhere: the first alternative that matches wins and is never
//! revisited, optional and repeated parts back off when they fail. This parser follows it rule for rule:
//!
//! ```text
//! statement    = (editor | converter) ("where" boolExpr)?              converter: an error
//! boolExpr     = term ("or" term)*
//! term         = boolValue ("and" boolValue)*
//! boolValue    = "not"? (comparison | "true" | "false" | converter | "(" boolExpr ")")
//! comparison   = value ("==" | "!=" | "<" | "<=" | ">" | ">=") value
//! value        = "nil" | literal !("+"|"-"|"*"|"/") | math | Bytes | String | "true" | "false"
//!              | Uppercase !Lowercase (enum) | map | list
//! literal      = editor (an error) | converter | Float | Int | path
//! math         = term2 (("+"|"-") term2)* ;  term2 = factor (("*"|"/") factor)*
//! factor       = ("+"|"-")? (literal | "(" math ")")
//! editor       = Lowercase (Uppercase|Lowercase)* "(" args? ")" key*    keys: an error
//! converter    = Uppercase (Uppercase|Lowercase)* "(" args? ")" key*
//! args         = argument ("," argument)*
//! argument     = (Lowercase (Uppercase|Lowercase)* "=")? (value | Uppercase (Uppercase|Lowercase)*)
//! path         = (Lowercase ".")? field ("." field)* ;  field = Lowercase key*
//! key          = "[" (String | Int | math) "]"
//! list         = "[" value* ("," value)* "]"
//! map          = "{" (String ":" value ","?)* "}"
//! ```
//!
//! Punctuation and `where` are matched by token value, as participle matches grammar literals: a string
//! token whose content is `)` closes an argument list just as `)` does. That is the Collector's behaviour
//! and is kept.
//!
//! Errors read like the Collector's (participle's `unexpected token "…"`), with the position of the
//! furthest point the parser reached and what it expected there. Nesting deeper than
//! [`MAX_NESTING_DEPTH`] is refused instead of overflowing the stack; the Collector has no such limit.

use crate::ast::{
    Argument, BoolExpr, BoolExprKind, Comparison, Field, Ident, Invocation, Key, KeyKind, MapEntry, MathExpr,
    MathOp, Path, Span, Statement, UnaryOp, Value, ValueKind,
};
use crate::lexer::{self, Token, TokenKind};

/// How deeply lists, maps, calls, keys and parenthesized expressions may nest.
pub const MAX_NESTING_DEPTH: usize = 100;

/// How many failed alternatives one parse may try. The grammar is an ordered choice with
/// backtracking, so a hostile text of nested calls and lists can make the work grow exponentially
/// with its length (the fuzzer found one that took gigabytes); real statements try a few hundred.
pub const MAX_PARSE_STEPS: usize = 1_000_000;

/// Why a text is not valid OTTL: where, and a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    /// Byte offset of the error in the source text.
    pub offset: usize,
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column (in characters) of the error.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a statement: an editor invocation with an optional `where` condition
/// (`set(span.attributes["k"], "v") where span.name == "a"`).
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let tokens = lexer::tokenize(text)?;
    if tokens.is_empty() {
        return Err(ParseError::at(
            text,
            0,
            "empty statement: expected an editor invocation such as set(...)",
        ));
    }
    Parser::new(text, &tokens).run(Parser::statement)
}

/// Parses a condition: a boolean expression alone (`span.name == "a" and not IsMatch(span.name, "b.*")`).
pub fn parse_condition(text: &str) -> Result<BoolExpr, ParseError> {
    let tokens = lexer::tokenize(text)?;
    if tokens.is_empty() {
        return Err(ParseError::at(text, 0, "empty condition: expected a boolean expression"));
    }
    Parser::new(text, &tokens).run(|p| {
        let condition = p.bool_expr()?;
        p.expect_end()?;
        Ok(condition)
    })
}

/// Parses a value expression: a value alone (`Concat([span.name, "x"], "-")`, `span.end_time - span.start_time`).
pub fn parse_value_expression(text: &str) -> Result<Value, ParseError> {
    let tokens = lexer::tokenize(text)?;
    if tokens.is_empty() {
        return Err(ParseError::at(text, 0, "empty value expression: expected a value"));
    }
    Parser::new(text, &tokens).run(|p| {
        let value = p.value()?;
        p.expect_end()?;
        Ok(value)
    })
}

// === impl ParseError ===

impl ParseError {
    /// An error at byte `offset` of `src`, with its line and column.
    pub(crate) fn at(src: &str, offset: usize, message: impl Into<String>) -> Self {
        let before = src.get(..offset).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        ParseError { offset, line, column, message: message.into() }
    }
}

/// Why a rule did not produce a node.
enum Fail {
    /// The rule does not match here; the nearest choice point tries its next alternative.
    Backtrack,
    /// Parsing cannot go on (nesting too deep).
    Fatal(ParseError),
}

type PResult<T> = Result<T, Fail>;

/// A position to return to when an alternative fails.
#[derive(Clone, Copy)]
struct Checkpoint {
    pos: usize,
    custom: usize,
}

/// Something the parser expected and did not find, formatted only if it ends up in the error.
#[derive(Clone, Copy, PartialEq)]
enum Expectation {
    /// Described in words (`a value`).
    Words(&'static str),
    /// A token with this value (`"where"`).
    Token(&'static str),
    /// A token closing what was opened at byte `opened`.
    Closing { token: &'static str, closes: Closes, opened: usize },
}

/// What a closing token closes.
#[derive(Clone, Copy, PartialEq)]
enum Closes {
    /// The arguments of the invocation whose name is at this span.
    Arguments(Span),
    Key,
    List,
    Map,
    Expression,
    Condition,
}

/// Where a labelled rule started, for [`Parser::label_end`].
#[derive(Clone, Copy)]
struct Label {
    start: usize,
    before: usize,
}

/// Tries a rule: evaluates to `Some(node)`, or to `None` with the position restored when the rule does not
/// match; a fatal failure returns from the calling function. A macro rather than a method taking a
/// closure, so that each level of nesting costs fewer stack frames.
macro_rules! attempt {
    ($parser:ident . $rule:ident ( $($arg:expr),* )) => {{
        let checkpoint = $parser.checkpoint();
        match $parser.$rule($($arg),*) {
            Ok(node) => Some(node),
            Err(Fail::Backtrack) => {
                $parser.rewind(checkpoint);
                None
            }
            Err(fatal) => return Err(fatal),
        }
    }};
}

/// An error the Collector reports after an otherwise successful parse (an editor used as a converter,
/// keys after an editor, a converter used as the statement's editor).
struct CustomError {
    offset: usize,
    message: String,
}

struct Parser<'s, 't> {
    src: &'s str,
    tokens: &'t [Token<'s>],
    pos: usize,
    depth: usize,
    /// Failed alternatives so far, bounded by [`MAX_PARSE_STEPS`].
    steps: usize,
    /// The furthest token position at which something was expected and not found.
    furthest: usize,
    /// What was expected there.
    expected: Vec<Expectation>,
    /// Errors to report if the parse as a whole succeeds (rolled back with the tokens on backtracking).
    custom: Vec<CustomError>,
}

// === impl Parser: machinery ===

impl<'s, 't> Parser<'s, 't> {
    fn new(src: &'s str, tokens: &'t [Token<'s>]) -> Self {
        Parser {
            src,
            tokens,
            pos: 0,
            depth: 0,
            steps: 0,
            furthest: 0,
            expected: Vec::new(),
            custom: Vec::new(),
        }
    }

    /// Runs a root rule and turns its outcome into the public result.
    fn run<T>(mut self, rule: impl FnOnce(&mut Self) -> PResult<T>) -> Result<T, ParseError> {
        match rule(&mut self) {
            Ok(node) if self.custom.is_empty() => Ok(node),
            Ok(_) => {
                // The Collector reports them all, in the order of its tree walk (outer before inner).
                self.custom.sort_by_key(|e| e.offset);
                let offset = self.custom.first().map_or(0, |e| e.offset);
                let message = self.custom.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ");
                Err(ParseError::at(self.src, offset, message))
            }
            Err(Fail::Fatal(error)) => Err(error),
            Err(Fail::Backtrack) => Err(self.failure()),
        }
    }

    /// The error for a failed parse: the furthest point reached and what was expected there.
    fn failure(&self) -> ParseError {
        let offset = self.offset_of(self.furthest);
        let found = match self.tokens.get(self.furthest) {
            Some(token) => format!("unexpected token {:?}", token.text),
            None => "unexpected end of input".to_owned(),
        };
        let mut expected: Vec<String> = Vec::new();
        for e in &self.expected {
            let text = self.describe(*e);
            if !expected.contains(&text) {
                expected.push(text);
            }
        }
        let message = match expected.as_slice() {
            [] => found,
            [one] => format!("{found} (expected {one})"),
            [init @ .., last] => format!("{found} (expected {} or {last})", init.join(", ")),
        };
        ParseError::at(self.src, offset, message)
    }

    /// An expectation in words, for the error message.
    fn describe(&self, expectation: Expectation) -> String {
        match expectation {
            Expectation::Words(words) => words.to_owned(),
            Expectation::Token(token) => format!("{token:?}"),
            Expectation::Closing { token, closes, opened } => {
                let what = match closes {
                    Closes::Arguments(name) => {
                        let name = self.src.get(name.start..name.end).unwrap_or_default();
                        // A name spread over several tokens may contain whitespace; the Collector joins them.
                        let name: String = name.split_whitespace().collect();
                        format!("the arguments of {name:?}")
                    }
                    Closes::Key => "the key".to_owned(),
                    Closes::List => "the list".to_owned(),
                    Closes::Map => "the map".to_owned(),
                    Closes::Expression => "the parenthesized expression".to_owned(),
                    Closes::Condition => "the parenthesized condition".to_owned(),
                };
                format!("{token:?} to close {what} opened at {}", self.line_col(opened))
            }
        }
    }

    fn peek(&self) -> Option<&'t Token<'s>> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&'t TokenKind> {
        self.peek().map(|t| &t.kind)
    }

    fn peek_is(&self, pred: impl Fn(&TokenKind) -> bool) -> bool {
        self.peek_kind().is_some_and(pred)
    }

    /// Whether the next token's value is `literal` (see [`Token::value`]).
    fn peek_literal(&self, literal: &str) -> bool {
        self.peek().is_some_and(|t| t.value() == literal)
    }

    /// Byte offset where the token at `pos` starts (the end of the text past the last token).
    fn offset_of(&self, pos: usize) -> usize {
        self.tokens.get(pos).map_or(self.src.len(), |t| t.span.start)
    }

    /// Byte offset where the next token starts.
    fn here(&self) -> usize {
        self.offset_of(self.pos)
    }

    /// Byte offset just past the last consumed token.
    fn prev_end(&self) -> usize {
        self.pos.checked_sub(1).and_then(|i| self.tokens.get(i)).map_or(0, |t| t.span.end)
    }

    /// The span from byte `start` to the end of the last consumed token.
    fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.prev_end().max(start))
    }

    /// "line:column" of byte `offset`, for messages.
    fn line_col(&self, offset: usize) -> String {
        let e = ParseError::at(self.src, offset, "");
        format!("{}:{}", e.line, e.column)
    }

    /// Records that `what` was expected at the current position and fails the rule.
    fn expected(&mut self, what: &'static str) -> Fail {
        self.expect(Expectation::Words(what))
    }

    fn expect(&mut self, expectation: Expectation) -> Fail {
        self.steps += 1;
        if self.steps > MAX_PARSE_STEPS {
            let message = format!(
                "expression too complex to parse (more than {MAX_PARSE_STEPS} alternatives tried); simplify or split it"
            );
            return Fail::Fatal(ParseError::at(self.src, self.offset_of(self.furthest), message));
        }
        if self.pos > self.furthest {
            self.furthest = self.pos;
            self.expected.clear();
        }
        // Backtracking reaches the same point by many paths: keep each expectation once.
        if self.pos == self.furthest && !self.expected.contains(&expectation) {
            self.expected.push(expectation);
        }
        Fail::Backtrack
    }

    /// Consumes the next token if its value is `literal`; otherwise records it as expected and fails.
    fn literal(&mut self, literal: &'static str) -> PResult<Span> {
        match self.peek() {
            Some(token) if token.value() == literal => {
                self.pos += 1;
                Ok(token.span)
            }
            _ => Err(self.expect(Expectation::Token(literal))),
        }
    }

    /// Like [`Self::literal`], for a token that closes what `opened` opened.
    fn closing(&mut self, literal: &'static str, closes: Closes, opened: Span) -> PResult<Span> {
        match self.peek() {
            Some(token) if token.value() == literal => {
                self.pos += 1;
                Ok(token.span)
            }
            _ => Err(self.expect(Expectation::Closing { token: literal, closes, opened: opened.start })),
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint { pos: self.pos, custom: self.custom.len() }
    }

    fn rewind(&mut self, checkpoint: Checkpoint) {
        self.pos = checkpoint.pos;
        self.custom.truncate(checkpoint.custom);
    }

    /// Enters one nesting level deeper, refusing to go past [`MAX_NESTING_DEPTH`]; pair with
    /// [`Self::leave`].
    fn enter(&mut self) -> PResult<()> {
        if self.depth >= MAX_NESTING_DEPTH {
            let message = format!("expression nested too deeply (more than {MAX_NESTING_DEPTH} levels)");
            return Err(Fail::Fatal(ParseError::at(self.src, self.here(), message)));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Starts a labelled rule (see [`Self::label_end`]).
    fn label_start(&self) -> Label {
        let before = if self.furthest == self.pos { self.expected.len() } else { 0 };
        Label { start: self.pos, before }
    }

    /// Ends a labelled rule: if it failed without getting past its first token, reports `label` as what
    /// was expected there instead of the details of each alternative.
    fn label_end<T>(&mut self, label: Label, result: &PResult<T>, what: &'static str) {
        if matches!(result, Err(Fail::Backtrack)) && self.furthest == label.start {
            self.expected.truncate(label.before);
            self.expected.push(Expectation::Words(what));
        }
    }

    /// Records an error to report if the whole parse succeeds.
    fn custom_error(&mut self, offset: usize, message: String) {
        self.custom.push(CustomError { offset, message });
    }

    /// Fails unless all tokens are consumed.
    fn expect_end(&mut self) -> PResult<()> {
        if self.pos < self.tokens.len() { Err(self.expected("end of input")) } else { Ok(()) }
    }

    /// A name made of one token of the given case followed by any upper- or lower-case tokens, joined as
    /// the Collector joins them (`replace_all_Patterns`).
    fn name(&mut self, upper: bool, what: &'static str) -> PResult<Ident> {
        let start = self.here();
        let first_ok = if upper {
            self.peek_is(|k| matches!(k, TokenKind::Uppercase))
        } else {
            self.peek_is(|k| matches!(k, TokenKind::Lowercase))
        };
        if !first_ok {
            return Err(self.expected(what));
        }
        let mut name = String::new();
        while let Some(token) =
            self.peek().filter(|t| matches!(t.kind, TokenKind::Uppercase | TokenKind::Lowercase))
        {
            name.push_str(token.text);
            self.pos += 1;
        }
        Ok(Ident { name, span: self.span_from(start) })
    }
}

// === impl Parser: grammar ===

impl Parser<'_, '_> {
    /// `(editor | converter) ("where" boolExpr)?`, then the end of the input.
    fn statement(&mut self) -> PResult<Statement> {
        let start = self.here();
        let editor = match self.peek_kind() {
            Some(TokenKind::Lowercase) => {
                let editor = self.invocation(false)?;
                self.check_editor_keys(&editor);
                editor
            }
            Some(TokenKind::Uppercase) => {
                let converter = self.invocation(true)?;
                let message = format!(
                    "editor names must start with a lowercase letter but got '{}'",
                    converter.name.name
                );
                self.custom_error(converter.span.start, message);
                converter
            }
            _ => return Err(self.expected("an editor invocation such as set(...)")),
        };
        let mut condition = None;
        let before_where = self.checkpoint();
        if self.literal("where").is_ok() {
            match attempt!(self.bool_expr()) {
                Some(c) => condition = Some(c),
                None => self.rewind(before_where),
            }
        }
        self.expect_end()?;
        Ok(Statement { editor, condition, span: self.span_from(start) })
    }

    /// The Collector's check that an editor has no keys (`set(x)["k"]`).
    fn check_editor_keys(&mut self, editor: &Invocation) {
        if let (Some(first), Some(last)) = (editor.keys.first(), editor.keys.last()) {
            let keys = self.src.get(first.span.start..last.span.end).unwrap_or_default();
            let message = format!(
                "only paths and converters may be indexed, not editors, but got {}{keys}",
                editor.name.name
            );
            self.custom_error(editor.span.start, message);
        }
    }

    /// `name "(" (argument ("," argument)*)? ")" key*`; `upper` picks a converter name over an editor name.
    fn invocation(&mut self, upper: bool) -> PResult<Invocation> {
        let start = self.here();
        let name = self.name(upper, if upper { "a converter name" } else { "an editor name" })?;
        let open = self.literal("(")?;
        let mut args = Vec::new();
        if let Some(first) = attempt!(self.argument()) {
            args.push(first);
            loop {
                let before = self.checkpoint();
                if self.literal(",").is_err() {
                    break;
                }
                match attempt!(self.argument()) {
                    Some(arg) => args.push(arg),
                    None => {
                        self.rewind(before);
                        break;
                    }
                }
            }
        }
        self.closing(")", Closes::Arguments(name.span), open)?;
        let keys = self.keys()?;
        Ok(Invocation { name, args, keys, span: self.span_from(start) })
    }

    /// `(name "=")? (value | functionName)`.
    fn argument(&mut self) -> PResult<Argument> {
        let label = self.label_start();
        let result = self.argument_parts();
        self.label_end(label, &result, "an argument");
        result
    }

    /// The body of [`Self::argument`].
    fn argument_parts(&mut self) -> PResult<Argument> {
        let start = self.here();
        let mut name = None;
        if self.peek_is(|k| matches!(k, TokenKind::Lowercase)) {
            let before = self.checkpoint();
            let ident = self.name(false, "an argument name")?;
            if self.peek_is(|k| matches!(k, TokenKind::Equal)) {
                self.pos += 1;
                name = Some(ident);
            } else {
                self.rewind(before);
            }
        }
        let value = match attempt!(self.value()) {
            Some(value) => value,
            None if self.peek_is(|k| matches!(k, TokenKind::Uppercase)) => {
                let ident = self.name(true, "a function name")?;
                Value { kind: ValueKind::FunctionName(ident.name), span: ident.span }
            }
            None => return Err(self.expected("a value")),
        };
        Ok(Argument { name, value, span: self.span_from(start) })
    }

    /// `key*`.
    fn keys(&mut self) -> PResult<Vec<Key>> {
        let mut keys = Vec::new();
        while self.peek_literal("[") {
            match attempt!(self.key()) {
                Some(key) => keys.push(key),
                None => break,
            }
        }
        Ok(keys)
    }

    /// `"[" (String | Int | math) "]"`; the first alternative that matches is kept (`[1 + 2]` fails).
    fn key(&mut self) -> PResult<Key> {
        let start = self.here();
        let open = self.literal("[")?;
        let kind = match self.peek_kind() {
            Some(TokenKind::String(s)) => {
                self.pos += 1;
                KeyKind::String(s.clone())
            }
            Some(TokenKind::Int(n)) => {
                self.pos += 1;
                KeyKind::Int(*n)
            }
            // The grammar's fourth alternative (a bare literal) can only match where this one does.
            _ => {
                let label = self.label_start();
                let value = self.math(None);
                self.label_end(label, &value, "a key (a string, an integer, a path or an expression)");
                let value = value?;
                match value.kind {
                    ValueKind::Int(n) => KeyKind::Int(n),
                    _ => KeyKind::Expr(Box::new(value)),
                }
            }
        };
        self.closing("]", Closes::Key, open)?;
        Ok(Key { kind, span: self.span_from(start) })
    }

    /// `"nil" | literal !op | math | Bytes | String | Boolean | enum | map | list`.
    fn value(&mut self) -> PResult<Value> {
        self.enter()?;
        let label = self.label_start();
        let result = self.value_alternatives();
        self.label_end(label, &result, "a value");
        self.leave();
        result
    }

    /// The body of [`Self::value`].
    fn value_alternatives(&mut self) -> PResult<Value> {
        let start = self.here();
        let Some(token) = self.peek() else { return Err(self.expected("a value")) };
        if matches!(token.kind, TokenKind::Nil) {
            self.pos += 1;
            return Ok(Value { kind: ValueKind::Nil, span: token.span });
        }
        if let Some(literal) = attempt!(self.literal_value()) {
            // The grammar refuses a literal followed by an operator and reads the same literal again as the
            // first operand of its arithmetic alternative; carry on from it instead of parsing it twice.
            if self.peek_is(|k| matches!(k, TokenKind::AddSub(_) | TokenKind::MulDiv(_))) {
                return self.math(Some(literal));
            }
            return Ok(literal);
        }
        // Arithmetic not starting with a literal starts with a sign or a parenthesis.
        if (matches!(token.kind, TokenKind::AddSub(_)) || token.value() == "(")
            && let Some(math) = attempt!(self.math(None))
        {
            return Ok(math);
        }
        let kind = match &token.kind {
            TokenKind::Bytes(bytes) => Some(ValueKind::Bytes(bytes.clone())),
            TokenKind::String(s) => Some(ValueKind::String(s.clone())),
            TokenKind::Boolean(b) => Some(ValueKind::Bool(*b)),
            TokenKind::Uppercase
                if !self.tokens.get(self.pos + 1).is_some_and(|t| matches!(t.kind, TokenKind::Lowercase)) =>
            {
                Some(ValueKind::Enum(token.text.to_owned()))
            }
            _ => None,
        };
        if let Some(kind) = kind {
            self.pos += 1;
            return Ok(Value { kind, span: token.span });
        }
        if token.value() == "{"
            && let Some(entries) = attempt!(self.map())
        {
            return Ok(Value { kind: ValueKind::Map(entries), span: self.span_from(start) });
        }
        if token.value() == "["
            && let Some(items) = attempt!(self.list())
        {
            return Ok(Value { kind: ValueKind::List(items), span: self.span_from(start) });
        }
        Err(self.expected("a value"))
    }

    /// `editor | converter | Float | Int | path`: the operands of arithmetic.
    fn literal_value(&mut self) -> PResult<Value> {
        let start = self.here();
        match self.peek_kind() {
            Some(TokenKind::Lowercase) => {
                if let Some(editor) = attempt!(self.invocation(false)) {
                    let message = format!(
                        "converter names must start with an uppercase letter but got '{}'",
                        editor.name.name
                    );
                    self.custom_error(editor.span.start, message);
                    self.check_editor_keys(&editor);
                    let span = editor.span;
                    return Ok(Value { kind: ValueKind::Converter(Box::new(editor)), span });
                }
                let path = self.path()?;
                let span = path.span;
                Ok(Value { kind: ValueKind::Path(path), span })
            }
            Some(TokenKind::Uppercase) => {
                let converter = self.invocation(true)?;
                let span = converter.span;
                Ok(Value { kind: ValueKind::Converter(Box::new(converter)), span })
            }
            Some(TokenKind::Float(x)) => {
                self.pos += 1;
                Ok(Value { kind: ValueKind::Float(*x), span: self.span_from(start) })
            }
            Some(TokenKind::Int(n)) => {
                self.pos += 1;
                Ok(Value { kind: ValueKind::Int(*n), span: self.span_from(start) })
            }
            _ => Err(self.expected("a path, a converter call or a number")),
        }
    }

    /// `(Lowercase ".")? field ("." field)*`.
    fn path(&mut self) -> PResult<Path> {
        let start = self.here();
        let mut fields = Vec::new();
        if let Some(token) = self.peek().filter(|t| matches!(t.kind, TokenKind::Lowercase)) {
            let before = self.checkpoint();
            self.pos += 1;
            if self.peek_literal(".") {
                self.pos += 1;
                fields.push(Field { name: token.text.to_owned(), keys: Vec::new(), span: token.span });
            } else {
                self.rewind(before);
            }
        }
        fields.push(self.field()?);
        loop {
            let before = self.checkpoint();
            if !self.peek_literal(".") {
                break;
            }
            self.pos += 1;
            match attempt!(self.field()) {
                Some(field) => fields.push(field),
                None => {
                    self.rewind(before);
                    break;
                }
            }
        }
        Ok(Path { fields, span: self.span_from(start) })
    }

    /// `Lowercase key*`.
    fn field(&mut self) -> PResult<Field> {
        let start = self.here();
        let Some(token) = self.peek().filter(|t| matches!(t.kind, TokenKind::Lowercase)) else {
            return Err(self.expected("a field name (lower-case)"));
        };
        self.pos += 1;
        let keys = self.keys()?;
        Ok(Field { name: token.text.to_owned(), keys, span: self.span_from(start) })
    }

    /// `term2 (("+"|"-") term2)*`, starting from an already parsed first operand if given.
    fn math(&mut self, first: Option<Value>) -> PResult<Value> {
        self.enter()?;
        let result = self.math_sum(first);
        self.leave();
        result
    }

    /// The body of [`Self::math`].
    fn math_sum(&mut self, first: Option<Value>) -> PResult<Value> {
        let first = self.math_term(first)?;
        let mut rest = Vec::new();
        loop {
            let before = self.checkpoint();
            let Some(TokenKind::AddSub(op)) = self.peek_kind() else { break };
            self.pos += 1;
            match attempt!(self.math_term(None)) {
                Some(operand) => rest.push((*op, operand)),
                None => {
                    self.rewind(before);
                    break;
                }
            }
        }
        Ok(chain(first, rest))
    }

    /// `factor (("*"|"/") factor)*`.
    fn math_term(&mut self, first: Option<Value>) -> PResult<Value> {
        let first = match first {
            Some(value) => value,
            None => self.math_factor()?,
        };
        let mut rest = Vec::new();
        loop {
            let before = self.checkpoint();
            let Some(TokenKind::MulDiv(op)) = self.peek_kind() else { break };
            self.pos += 1;
            match attempt!(self.math_factor()) {
                Some(operand) => rest.push((*op, operand)),
                None => {
                    self.rewind(before);
                    break;
                }
            }
        }
        Ok(chain(first, rest))
    }

    /// `("+"|"-")? (literal | "(" math ")")`; a sign right before a number is folded into it.
    fn math_factor(&mut self) -> PResult<Value> {
        let start = self.here();
        let sign = match self.peek_kind() {
            Some(TokenKind::AddSub(MathOp::Add)) => Some(UnaryOp::Plus),
            Some(TokenKind::AddSub(_)) => Some(UnaryOp::Minus),
            _ => None,
        };
        if sign.is_some() {
            self.pos += 1;
        }
        let (operand, grouped) = match attempt!(self.literal_value()) {
            Some(literal) => (literal, false),
            None => {
                let open = self.literal("(")?;
                let mut inner = self.math(None)?;
                self.closing(")", Closes::Expression, open)?;
                inner.span = self.span_from(open.start);
                (inner, true)
            }
        };
        let span = self.span_from(start);
        let kind = match (sign, operand.kind) {
            (None, kind) => kind,
            (Some(UnaryOp::Minus), ValueKind::Int(n)) if !grouped && n != i64::MIN => ValueKind::Int(-n),
            (Some(UnaryOp::Minus), ValueKind::Float(x)) if !grouped => ValueKind::Float(-x),
            (Some(UnaryOp::Plus), kind @ (ValueKind::Int(_) | ValueKind::Float(_))) if !grouped => kind,
            (Some(op), kind) => {
                let operand = Value { kind, span: operand.span };
                ValueKind::Math(MathExpr::Unary { op, operand: Box::new(operand) })
            }
        };
        Ok(Value { kind, span })
    }

    /// `"[" value* ("," value)* "]"`.
    fn list(&mut self) -> PResult<Vec<Value>> {
        let open = self.literal("[")?;
        let mut items = Vec::new();
        while let Some(item) = attempt!(self.value()) {
            items.push(item);
        }
        loop {
            let before = self.checkpoint();
            if self.literal(",").is_err() {
                break;
            }
            match attempt!(self.value()) {
                Some(item) => items.push(item),
                None => {
                    self.rewind(before);
                    break;
                }
            }
        }
        self.closing("]", Closes::List, open)?;
        Ok(items)
    }

    /// `"{" (String ":" value ","?)* "}"`.
    fn map(&mut self) -> PResult<Vec<MapEntry>> {
        let open = self.literal("{")?;
        let mut entries = Vec::new();
        while let Some(entry) = attempt!(self.map_entry()) {
            entries.push(entry);
            if self.peek_literal(",") {
                self.pos += 1;
            }
        }
        self.closing("}", Closes::Map, open)?;
        Ok(entries)
    }

    /// `String ":" value`.
    fn map_entry(&mut self) -> PResult<MapEntry> {
        let start = self.here();
        let Some(TokenKind::String(key)) = self.peek_kind() else {
            return Err(self.expected("a map key (a string)"));
        };
        self.pos += 1;
        self.literal(":")?;
        let value = self.value()?;
        Ok(MapEntry { key: key.clone(), value, span: self.span_from(start) })
    }

    /// `term ("or" term)*`.
    fn bool_expr(&mut self) -> PResult<BoolExpr> {
        self.enter()?;
        let result = self.bool_or();
        self.leave();
        result
    }

    /// The body of [`Self::bool_expr`].
    fn bool_or(&mut self) -> PResult<BoolExpr> {
        let start = self.here();
        let mut terms = vec![self.bool_term()?];
        loop {
            let before = self.checkpoint();
            if !self.peek_is(|k| matches!(k, TokenKind::Or)) {
                self.expect(Expectation::Token("or"));
                break;
            }
            self.pos += 1;
            match attempt!(self.bool_term()) {
                Some(term) => terms.push(term),
                None => {
                    self.rewind(before);
                    break;
                }
            }
        }
        Ok(join_bool(terms, BoolExprKind::Or, self.span_from(start)))
    }

    /// `boolValue ("and" boolValue)*`.
    fn bool_term(&mut self) -> PResult<BoolExpr> {
        let start = self.here();
        let mut values = vec![self.bool_value()?];
        loop {
            let before = self.checkpoint();
            if !self.peek_is(|k| matches!(k, TokenKind::And)) {
                self.expect(Expectation::Token("and"));
                break;
            }
            self.pos += 1;
            match attempt!(self.bool_value()) {
                Some(value) => values.push(value),
                None => {
                    self.rewind(before);
                    break;
                }
            }
        }
        Ok(join_bool(values, BoolExprKind::And, self.span_from(start)))
    }

    /// `"not"? (comparison | Boolean | converter | "(" boolExpr ")")`.
    fn bool_value(&mut self) -> PResult<BoolExpr> {
        let label = self.label_start();
        let result = self.bool_value_parts();
        self.label_end(label, &result, "a condition");
        result
    }

    /// The body of [`Self::bool_value`].
    fn bool_value_parts(&mut self) -> PResult<BoolExpr> {
        let start = self.here();
        let negated = self.peek_is(|k| matches!(k, TokenKind::Not));
        if negated {
            self.pos += 1;
        }
        let operand = if let Some(comparison) = attempt!(self.comparison()) {
            comparison
        } else if let Some(constant) = attempt!(self.bool_constant()) {
            constant
        } else {
            let open = self.literal("(")?;
            let mut inner = self.bool_expr()?;
            self.closing(")", Closes::Condition, open)?;
            inner.span = self.span_from(open.start);
            inner
        };
        if negated {
            Ok(BoolExpr { kind: BoolExprKind::Not(Box::new(operand)), span: self.span_from(start) })
        } else {
            Ok(operand)
        }
    }

    /// `value op value`.
    fn comparison(&mut self) -> PResult<BoolExpr> {
        let start = self.here();
        let left = self.value()?;
        let Some(TokenKind::Comparison(op)) = self.peek_kind() else {
            return Err(self.expected("a comparison operator (==, !=, <, <=, >, >=)"));
        };
        self.pos += 1;
        let right = self.value()?;
        let comparison = Comparison { left, op: *op, right };
        Ok(BoolExpr { kind: BoolExprKind::Comparison(Box::new(comparison)), span: self.span_from(start) })
    }

    /// `Boolean | converter`.
    fn bool_constant(&mut self) -> PResult<BoolExpr> {
        let start = self.here();
        match self.peek_kind() {
            Some(TokenKind::Boolean(b)) => {
                self.pos += 1;
                Ok(BoolExpr { kind: BoolExprKind::Literal(*b), span: self.span_from(start) })
            }
            Some(TokenKind::Uppercase) => {
                let converter = self.invocation(true)?;
                let span = converter.span;
                Ok(BoolExpr { kind: BoolExprKind::Converter(Box::new(converter)), span })
            }
            _ => Err(self.expected("a condition")),
        }
    }
}

/// An operand alone, or a chain of it and further operators with their operands.
fn chain(first: Value, rest: Vec<(MathOp, Value)>) -> Value {
    match rest.last() {
        None => first,
        Some((_, last)) => {
            let span = first.span.to(last.span);
            Value { kind: ValueKind::Math(MathExpr::Chain { first: Box::new(first), rest }), span }
        }
    }
}

/// One operand alone, or all of them joined by `and`/`or`.
fn join_bool(mut operands: Vec<BoolExpr>, join: fn(Vec<BoolExpr>) -> BoolExprKind, span: Span) -> BoolExpr {
    if operands.len() == 1
        && let Some(only) = operands.pop()
    {
        return only;
    }
    BoolExpr { kind: join(operands), span }
}

#[cfg(test)]
mod tests;
