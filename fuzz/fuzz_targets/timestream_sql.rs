//! The Timestream dialect front end: tokenize, recognise metadata statements, rewrite interval
//! literals, parse and rewrite the AST. Nothing is executed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        if let Ok(translated) = hourglass_query::dialect::to_datafusion(sql) {
            // The rewritten statement prints (what `EXPLAIN`-style tools do with it).
            let _ = translated.to_string();
        }
    }
});
