//! Line protocol files (plain or gzip) cut into chunks of whole lines, each written as one body:
//! to the engine's line protocol decoder (`--data-dir`) or to `/api/v3/write_lp` (`--server`).

use std::io::BufRead;

/// Bytes per chunk (a chunk ends at the first line end past it).
pub const CHUNK_BYTES: usize = 4 << 20;

/// One chunk of whole lines.
#[derive(Debug)]
pub struct Chunk {
    pub body: Vec<u8>,
    /// The file line of the chunk's first line (1-based).
    pub first_line: u64,
    /// Lines in the chunk.
    pub lines: u64,
}

/// Cuts a reader into chunks.
pub struct Chunker<R: BufRead> {
    input: R,
    /// Lines read so far.
    pub line: u64,
    /// Bytes read so far (of the decompressed text).
    pub bytes: u64,
    chunk_bytes: usize,
}

impl<R: BufRead> Chunker<R> {
    pub fn new(input: R, chunk_bytes: usize) -> Self {
        Chunker {
            input,
            line: 0,
            bytes: 0,
            chunk_bytes,
        }
    }

    /// Skips whole lines until `line` lines have been read (resume).
    pub fn skip_lines(&mut self, lines: u64) -> std::io::Result<()> {
        let mut buf = Vec::new();
        while self.line < lines {
            buf.clear();
            let n = self.input.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            self.bytes += n as u64;
            self.line += 1;
        }
        Ok(())
    }

    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut body = Vec::with_capacity(self.chunk_bytes + 4096);
        let first_line = self.line + 1;
        let mut lines = 0;
        while body.len() < self.chunk_bytes {
            let n = self.input.read_until(b'\n', &mut body)?;
            if n == 0 {
                break;
            }
            self.bytes += n as u64;
            self.line += 1;
            lines += 1;
        }
        if lines == 0 {
            return Ok(None);
        }
        Ok(Some(Chunk {
            body,
            first_line,
            lines,
        }))
    }
}

/// The text of line `n` (1-based) of a body, for messages (cut at 1 KiB).
pub fn line_text(body: &[u8], n: usize) -> String {
    let line = body
        .split(|&b| b == b'\n')
        .nth(n.saturating_sub(1))
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(&line[..line.len().min(1024)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_line_ends_and_resume_skips_lines() {
        let text = "a v=1 1\nb v=2 2\nc v=3 3\n";
        let mut c = Chunker::new(text.as_bytes(), 10);
        let first = c.next_chunk().unwrap().unwrap();
        assert_eq!(first.body, b"a v=1 1\nb v=2 2\n");
        assert_eq!((first.first_line, first.lines), (1, 2));
        let second = c.next_chunk().unwrap().unwrap();
        assert_eq!(second.first_line, 3);
        assert!(c.next_chunk().unwrap().is_none());
        let mut c = Chunker::new(text.as_bytes(), 10);
        c.skip_lines(2).unwrap();
        assert_eq!(c.next_chunk().unwrap().unwrap().body, b"c v=3 3\n");
        assert_eq!(line_text(text.as_bytes(), 2), "b v=2 2");
    }
}
