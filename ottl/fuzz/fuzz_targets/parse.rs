//! Fuzzes the OTTL lexer and parser: no input may panic or overflow the stack, an error must point inside
//! the input, and whatever parses must print (`Display`) to text that parses to the same tree.
//!
//! Run with `cargo +nightly fuzz run parse` from `ottl/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ottl::parser::{ParseError, parse_condition, parse_statement, parse_value_expression};

/// Parses `text`, and if that succeeds, parses the printed tree again and checks both print the same.
fn round_trip<T: std::fmt::Display>(text: &str, parse: fn(&str) -> Result<T, ParseError>) {
    match parse(text) {
        Ok(tree) => {
            let printed = tree.to_string();
            let again = parse(&printed).unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}: {e}"));
            assert_eq!(again.to_string(), printed, "{text:?} does not print stably");
        }
        Err(e) => {
            assert!(e.offset <= text.len(), "{text:?}: error offset {} past the end", e.offset);
            assert!(e.line >= 1 && e.column >= 1, "{text:?}: position {}:{}", e.line, e.column);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    round_trip(text, parse_statement);
    round_trip(text, parse_condition);
    round_trip(text, parse_value_expression);
});
