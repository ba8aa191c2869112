//! The OpenTelemetry Transformation Language (OTTL) as the OpenTelemetry Collector defines it (pkg/ottl,
//! v0.158.0, the version Kyma pins), as a library with no runtime of its own: text in, a compiled form
//! out, evaluated over whatever holds the telemetry.
//!
//! Layers, each usable on its own:
//! - [`lexer`] and [`parser`]: statement and condition text to an [`ast`] with source positions, with
//!   the Collector's grammar and its error messages (`1:14: unexpected token "="`).
//! - [`context`]: the contexts (span, span event, resource, scope), their paths, and the order in which a
//!   statement group's context is inferred. Logs and metrics add contexts here.
//! - [`funcs`]: every editor and converter with its signature and bind-time checks (a regex literal is
//!   compiled once), and which contexts offer which ([`funcs::registry`]).
//! - [`bind`]: a statement group bound to its inferred context, with each path, function, argument and
//!   enum resolved; every error names the text, the position and what to change.
//! - [`eval`]: running a bound group on one item through an [`eval::Accessor`], under the processors'
//!   `error_mode`; [`value`] holds the values and the Collector's comparison rules.
//!
//! The evaluator never sees the telemetry's representation: an accessor reads and writes fields by
//! [`context::Target`]. The gateway's accessor works on encoded OTLP bytes; a test's can be a struct:
//!
//! ```
//! use ottl::bind::bind_transform;
//! use ottl::context::{SpanField, Target};
//! use ottl::eval::{Accessor, ErrorMode, EvalError};
//! use ottl::value::Value;
//!
//! struct Span {
//!     name: String,
//!     attributes: Vec<(String, Value)>,
//! }
//!
//! impl Accessor for Span {
//!     fn get(&mut self, target: Target) -> Result<Value, EvalError> {
//!         Ok(match target {
//!             Target::Span(SpanField::Name) => Value::String(self.name.clone()),
//!             Target::Span(SpanField::Attributes) => Value::Map(self.attributes.clone()),
//!             _ => Value::Nil,
//!         })
//!     }
//!     fn set(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
//!         match (target, value) {
//!             (Target::Span(SpanField::Name), Value::String(s)) => self.name = s,
//!             (Target::Span(SpanField::Attributes), Value::Map(m)) => self.attributes = m,
//!             (_, other) => return Err(EvalError::expected("string", &other)),
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let group = bind_transform(
//!     &[r#"set(span.attributes["env"], "prod") where span.name == "checkout""#.to_string()],
//!     &[],
//! )
//! .unwrap();
//! let mut span = Span { name: "checkout".into(), attributes: vec![] };
//! let outcome = group.run(&mut span, ErrorMode::Ignore).unwrap();
//! assert!(outcome.errors.is_empty());
//! assert_eq!(span.attributes, vec![("env".to_string(), Value::String("prod".into()))]);
//!
//! // Kyma requires the context prefix on every path: the error says so, and where.
//! let err = bind_transform(&[r#"set(attributes["env"], "prod")"#.to_string()], &[]).unwrap_err();
//! assert!(err.to_string().contains("unable to infer a valid context"));
//! ```

pub mod ast;
pub mod bind;
pub mod context;
pub mod eval;
pub mod funcs;
pub mod lexer;
pub mod parser;
mod analysis;
pub mod value;
