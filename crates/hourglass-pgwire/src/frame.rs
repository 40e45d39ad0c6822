//! Checks each frontend message's framing and layout before pgwire decodes it.
//!
//! pgwire 0.41's decoders trust the bytes: a message whose length field is below 4 underflows
//! (`attempt to subtract with overflow`), and a body shorter than its fields makes `bytes`
//! panic (`advance out of bounds`). So every message is checked here first, against the layout
//! pgwire's decoder reads (cstrings terminated inside the body, counts that fit, nothing left
//! over), and then decoded from a buffer holding that message alone. A message that fails is a
//! protocol violation ([`Violation`], answered FATAL `08P01` as PostgreSQL does), never a panic.

/// PostgreSQL's limit for the startup packet (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LENGTH: usize = 10_000;
/// The limit for any message before authentication has finished (SASL messages are small;
/// PostgreSQL allows 65535 for an authentication token).
pub const MAX_AUTH_LENGTH: usize = 65_535;
/// The limit afterwards (PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT`).
pub const MAX_LENGTH: usize = 0x3fff_ffff;

/// The `CancelRequest` code (in place of a protocol version).
const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// Which kind of message comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The untyped startup packet (or a CancelRequest).
    Startup,
    /// Typed messages while authentication is in progress.
    Authenticating,
    /// Typed messages of an authenticated session.
    Session,
}

/// A message that breaks the protocol: the SQLSTATE is `08P01`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

/// What the start of the read buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// A whole, well-formed message of this many bytes (header included).
    Complete(usize),
}

/// Checks the first message in `buf`.
pub fn check(buf: &[u8], phase: Phase) -> Result<Frame, Violation> {
    match phase {
        Phase::Startup => check_startup(buf),
        Phase::Authenticating => check_typed(buf, MAX_AUTH_LENGTH, true),
        Phase::Session => check_typed(buf, MAX_LENGTH, false),
    }
}

fn check_startup(buf: &[u8]) -> Result<Frame, Violation> {
    let Some(len) = be_u32(buf, 0) else {
        return Ok(Frame::Incomplete);
    };
    let len = len as usize;
    if !(8..=MAX_STARTUP_LENGTH).contains(&len) {
        return Err(Violation("invalid length of startup packet".into()));
    }
    if buf.len() < len {
        return Ok(Frame::Incomplete);
    }
    if be_u32(buf, 4) == Some(CANCEL_REQUEST_CODE) && len < 16 {
        return Err(Violation("invalid length of cancel request packet".into()));
    }
    Ok(Frame::Complete(len))
}

/// `authenticating`: a password message ('p') is expected (other types are refused by the
/// startup handler); afterwards it is not one PostgreSQL accepts.
fn check_typed(buf: &[u8], max: usize, authenticating: bool) -> Result<Frame, Violation> {
    let Some(&kind) = buf.first() else {
        return Ok(Frame::Incomplete);
    };
    if !KNOWN_TYPES.contains(&kind) || (kind == b'p' && !authenticating) {
        return Err(Violation(format!(
            "invalid frontend message type {}",
            describe_type(kind)
        )));
    }
    let Some(len) = be_u32(buf, 1) else {
        return Ok(Frame::Incomplete);
    };
    let len = len as usize;
    if len < 4 {
        return Err(Violation(format!(
            "invalid message length {len} of a message of type {}",
            describe_type(kind)
        )));
    }
    if len > max {
        return Err(Violation(format!(
            "invalid message length {len} of a message of type {} (the limit is {max})",
            describe_type(kind)
        )));
    }
    if buf.len() < len + 1 {
        return Ok(Frame::Incomplete);
    }
    let body = &buf[5..len + 1];
    check_body(kind, body).ok_or_else(|| {
        Violation(format!(
            "invalid message format of a message of type {}",
            describe_type(kind)
        ))
    })?;
    Ok(Frame::Complete(len + 1))
}

/// The frontend message types pgwire decodes.
const KNOWN_TYPES: &[u8] = b"pdQfPBDCESHXc";

/// `None` when the body does not have the message's layout.
fn check_body(kind: u8, body: &[u8]) -> Option<()> {
    let mut r = Reader(body);
    match kind {
        // PasswordMessage / SASLInitialResponse / SASLResponse (parsed by the startup handler);
        // CopyData: any bytes.
        b'p' | b'd' => r.0 = &[],
        // Query, CopyFail.
        b'Q' | b'f' => {
            r.cstring()?;
        }
        // Parse: name, query, parameter type OIDs.
        b'P' => {
            r.cstring()?;
            r.cstring()?;
            let n = r.u16()?;
            r.take(usize::from(n) * 4)?;
        }
        // Bind: portal, statement, parameter formats, parameters, result formats.
        b'B' => {
            r.cstring()?;
            r.cstring()?;
            let formats = r.u16()?;
            r.take(usize::from(formats) * 2)?;
            for _ in 0..r.u16()? {
                let len = r.i32()?;
                if len > 0 {
                    r.take(usize::try_from(len).ok()?)?;
                }
            }
            let results = r.u16()?;
            r.take(usize::from(results) * 2)?;
        }
        // Describe, Close: 'S' or 'P', name.
        b'D' | b'C' => {
            r.take(1)?;
            r.cstring()?;
        }
        // Execute: portal, row limit.
        b'E' => {
            r.cstring()?;
            r.i32()?;
        }
        // Sync, Flush, Terminate, CopyDone; types checked by the caller.
        _ => {}
    }
    r.0.is_empty().then_some(())
}

/// A message type as PostgreSQL names it in errors (its code), with the letter when printable.
pub fn describe_type(kind: u8) -> String {
    if kind.is_ascii_graphic() {
        format!("{kind} ('{}')", kind as char)
    } else {
        kind.to_string()
    }
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Reads fields off a message body; `None` when the body is too short.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn cstring(&mut self) -> Option<&'a [u8]> {
        let end = self.0.iter().position(|b| *b == 0)?;
        let s = self.take(end + 1)?;
        Some(&s[..end])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Parses a `SASLInitialResponse` body: mechanism name, then the initial response (length
/// `-1` for none). `None` when the body is not one (a cleartext or MD5 password, say).
pub fn sasl_initial_response(body: &[u8]) -> Option<(String, Option<Vec<u8>>)> {
    let mut r = Reader(body);
    let mechanism = String::from_utf8(r.cstring()?.to_vec()).ok()?;
    let len = r.i32()?;
    let data = match len {
        -1 => None,
        n => Some(r.take(usize::try_from(n).ok()?)?.to_vec()),
    };
    r.0.is_empty().then_some((mechanism, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn violation(buf: &[u8], phase: Phase) -> bool {
        check(buf, phase).is_err()
    }

    #[test]
    fn well_formed_messages_pass_whole() {
        let query = typed(b'Q', b"SELECT 1\0");
        assert_eq!(
            check(&query, Phase::Session),
            Ok(Frame::Complete(query.len()))
        );
        let mut two = query.clone();
        two.extend_from_slice(&typed(b'S', b""));
        assert_eq!(
            check(&two, Phase::Session),
            Ok(Frame::Complete(query.len()))
        );
        let parse = typed(b'P', b"s1\0SELECT $1\0\x00\x01\x00\x00\x00\x17");
        assert!(check(&parse, Phase::Session).is_ok());
        let bind = typed(
            b'B',
            b"\0s1\0\x00\x01\x00\x00\x00\x02\x00\x00\x00\x01x\xff\xff\xff\xff\x00\x00",
        );
        assert_eq!(
            check(&bind, Phase::Session),
            Ok(Frame::Complete(bind.len()))
        );
        assert!(check(&typed(b'E', b"\0\0\0\0\0"), Phase::Session).is_ok());
        assert!(check(&typed(b'D', b"S\0"), Phase::Session).is_ok());
        assert!(check(&typed(b'p', b"anything"), Phase::Authenticating).is_ok());
    }

    #[test]
    fn partial_messages_wait_for_more() {
        let query = typed(b'Q', b"SELECT 1\0");
        for n in 0..query.len() {
            assert_eq!(check(&query[..n], Phase::Session), Ok(Frame::Incomplete));
        }
        let mut startup = 9u32.to_be_bytes().to_vec();
        assert_eq!(check(&startup, Phase::Startup), Ok(Frame::Incomplete));
        startup.extend_from_slice(&[0, 3, 0, 0, 0]);
        assert_eq!(check(&startup, Phase::Startup), Ok(Frame::Complete(9)));
    }

    #[test]
    fn malformed_messages_are_violations() {
        // Length fields below 4 (pgwire underflows), above the limits.
        assert!(violation(b"p\0\0\0\0", Phase::Authenticating));
        assert!(violation(b"Q\0\0\0\x03", Phase::Session));
        assert!(violation(b"p\0\x01\0\0", Phase::Authenticating));
        assert!(violation(b"\0\0\0\x04", Phase::Startup));
        assert!(violation(b"\x7f\0\0\0", Phase::Startup));
        // Bodies shorter than their fields, or with bytes left over.
        assert!(violation(&typed(b'E', b""), Phase::Session));
        assert!(violation(&typed(b'E', b"\0\0\0"), Phase::Session));
        assert!(violation(&typed(b'Q', b"SELECT 1"), Phase::Session));
        assert!(violation(&typed(b'Q', b"SELECT 1\0x"), Phase::Session));
        assert!(violation(
            &typed(b'P', b"\0q\0\x00\x02\0\0\0\x17"),
            Phase::Session
        ));
        assert!(violation(
            &typed(b'B', b"\0\0\x00\x00\x00\x01\x00\x00\x00\x09ab\x00\x00"),
            Phase::Session
        ));
        assert!(violation(&typed(b'D', b""), Phase::Session));
        assert!(violation(&typed(b'S', b"x"), Phase::Session));
        // Unknown types (a second startup packet begins with a zero byte).
        assert!(violation(&typed(b'F', b""), Phase::Session));
        assert!(violation(
            b"\0\0\0\x08\x04\xd2\x16\x2f",
            Phase::Authenticating
        ));
        // A password message after login.
        assert!(violation(&typed(b'p', b"secret\0"), Phase::Session));
        // A short CancelRequest.
        assert!(violation(
            b"\0\0\0\x0c\x04\xd2\x16\x2e\0\0\0\x01",
            Phase::Startup
        ));
    }

    #[test]
    fn sasl_initial_responses_parse_only_when_well_formed() {
        assert_eq!(
            sasl_initial_response(b"SCRAM-SHA-256\0\0\0\0\x03abc"),
            Some(("SCRAM-SHA-256".into(), Some(b"abc".to_vec())))
        );
        assert_eq!(
            sasl_initial_response(b"SCRAM-SHA-256\0\xff\xff\xff\xff"),
            Some(("SCRAM-SHA-256".into(), None))
        );
        // A cleartext password, an MD5 one, a truncated or overlong response.
        assert_eq!(sasl_initial_response(b"secret\0"), None);
        assert_eq!(sasl_initial_response(b"md5abcdef0123\0"), None);
        assert_eq!(sasl_initial_response(b"SCRAM-SHA-256\0\0\0\0\x50abc"), None);
        assert_eq!(sasl_initial_response(b"SCRAM-SHA-256\0\0\0\0\x01abc"), None);
        assert_eq!(sasl_initial_response(b""), None);
    }
}
