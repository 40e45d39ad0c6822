//! One batch of messages to one line protocol body: each message's rows (its payload as is, or
//! its JSON mapped), then one `Engine::write_line_protocol` (one WAL commit), then which
//! messages were rejected and why (mapping errors, and line errors mapped back to messages).

use hourglass_core::time::Precision;
use hourglass_storage::Engine;

use crate::config::CompiledMapping;
use crate::mapping::map_message;

/// A message as the batcher sees it.
pub struct Message {
    pub topic: String,
    pub payload: bytes::Bytes,
    pub arrival_ns: i64,
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub rows: usize,
    /// Per message: why it was (wholly or partly) rejected.
    pub rejected: Vec<Option<String>>,
}

/// Maps and writes `messages` durably; `Err` means nothing was written (retry the batch).
pub fn write_batch(
    engine: &Engine,
    database: &str,
    precision: Precision,
    mapping: Option<&CompiledMapping>,
    messages: &[Message],
) -> hourglass_core::Result<BatchOutcome> {
    let mut body = String::new();
    let mut raw: Vec<u8> = Vec::new();
    // Per message: its first and one-past-last physical line (1-based), or its mapping error.
    let mut spans: Vec<Result<(usize, usize), String>> = Vec::with_capacity(messages.len());
    let mut line = 1usize;
    for m in messages {
        let before = if mapping.is_some() {
            body.len()
        } else {
            raw.len()
        };
        let result = match mapping {
            Some(mapping) => {
                map_message(mapping, &m.topic, &m.payload, m.arrival_ns, &mut body).map(|_| ())
            }
            None => {
                if m.payload.iter().all(|b| b.is_ascii_whitespace()) {
                    Err("the payload is empty".to_string())
                } else {
                    raw.extend_from_slice(&m.payload);
                    if raw.last() != Some(&b'\n') {
                        raw.push(b'\n');
                    }
                    Ok(())
                }
            }
        };
        match result {
            Ok(()) => {
                let added = if mapping.is_some() {
                    &body.as_bytes()[before..]
                } else {
                    &raw[before..]
                };
                let lines = added.iter().filter(|&&b| b == b'\n').count();
                spans.push(Ok((line, line + lines)));
                line += lines;
            }
            Err(e) => spans.push(Err(e)),
        }
    }
    let bytes: &[u8] = if mapping.is_some() {
        body.as_bytes()
    } else {
        &raw
    };
    let mut outcome = BatchOutcome {
        rows: 0,
        rejected: spans.iter().map(|s| s.as_ref().err().cloned()).collect(),
    };
    if bytes.is_empty() {
        return Ok(outcome);
    }
    let written = engine.write_line_protocol(database, bytes, precision, true)?;
    outcome.rows = written.rows_written;
    // Errors are sorted by line; spans are in line order.
    let mut errors = written.errors.iter().peekable();
    for (i, span) in spans.iter().enumerate() {
        let Ok((first, end)) = span else { continue };
        let mut reasons: Vec<String> = Vec::new();
        let mut count = 0usize;
        while let Some(e) = errors.peek() {
            if e.line >= *end {
                break;
            }
            if e.line >= *first {
                count += 1;
                if reasons.len() < 3 {
                    reasons.push(format!("row {}: {}", e.line - first + 1, e.message));
                }
            }
            errors.next();
        }
        if count > 0 {
            let more = if count > reasons.len() {
                format!(" (and {} more rows)", count - reasons.len())
            } else {
                String::new()
            };
            outcome.rejected[i] = Some(format!("{}{more}", reasons.join("; ")));
        }
    }
    Ok(outcome)
}
