//! Remote write/read framing: a protobuf message compressed with snappy's *block* format (not
//! the framed stream format), as Prometheus sends and expects. Decoding is bounded: the length a
//! block announces is checked against a limit before anything is allocated.

use hourglass_core::{Error, Result};
use prost::Message;

/// Decompresses a snappy block of at most `limit` bytes once decompressed. `what` names the
/// body in errors ("remote write body").
pub fn decompress(body: &[u8], limit: usize, what: &str) -> Result<Vec<u8>> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        Error::invalid(format!(
            "{what} is not snappy-compressed (block format): {e}"
        ))
    })?;
    if len > limit {
        return Err(Error::invalid(format!(
            "{what} announces {len} bytes once snappy-decompressed, more than the limit of {limit} bytes"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::invalid(format!("{what} is not valid snappy (block format): {e}")))
}

/// Compresses `bytes` as one snappy block.
pub fn compress(bytes: &[u8]) -> Result<Vec<u8>> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .map_err(|e| Error::internal(format!("snappy compression failed: {e}")))
}

/// Decodes a snappy-compressed protobuf message.
pub fn decode<M: Message + Default>(body: &[u8], limit: usize, what: &str) -> Result<M> {
    if body.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    let raw = decompress(body, limit, what)?;
    M::decode(raw.as_slice())
        .map_err(|e| Error::invalid(format!("{what} is not a valid protobuf message: {e}")))
}

/// Encodes a message as protobuf compressed with snappy.
pub fn encode<M: Message>(message: &M) -> Result<Vec<u8>> {
    compress(&message.encode_to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::{Label, Sample, TimeSeries, WriteRequest};

    #[test]
    fn round_trips_a_write_request() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: Some(-0.0),
                    timestamp: 1_700_000_000_000,
                }],
                histograms: vec![],
            }],
        };
        let body = encode(&request).unwrap();
        let back: WriteRequest = decode(&body, 1 << 20, "remote write body").unwrap();
        assert_eq!(back, request);
        // -0 survives (proto3 would leave out a plain double equal to 0).
        assert_eq!(
            back.timeseries[0].samples[0].value.map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
    }

    #[test]
    fn names_what_is_wrong_with_a_body() {
        let e = decode::<WriteRequest>(b"", 100, "remote write body").unwrap_err();
        assert!(e.message.contains("is empty"), "{}", e.message);
        // Not snappy: a length varint announcing far more than the limit.
        let e = decode::<WriteRequest>(b"\xff\xff\xff\x7f", 100, "remote write body").unwrap_err();
        assert!(e.message.contains("more than the limit"), "{}", e.message);
        // Valid snappy of bytes that are not a WriteRequest (a truncated field).
        let body = compress(b"\x0a\x05ab").unwrap();
        let e = decode::<WriteRequest>(&body, 100, "remote write body").unwrap_err();
        assert!(e.message.contains("not a valid protobuf"), "{}", e.message);
        // Snappy's framed stream format is not the block format.
        let e = decode::<WriteRequest>(b"\xff\x06\x00\x00sNaPpY", 100, "remote write body")
            .unwrap_err();
        assert!(e.message.contains("snappy"), "{}", e.message);
    }
}
