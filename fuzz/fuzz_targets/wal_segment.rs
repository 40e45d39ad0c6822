//! The WAL segment reader (header, frames, CRCs, torn-tail rules) and the decoding of each
//! entry's payload (a group of Arrow IPC streams), as replay does it.
#![no_main]

use libfuzzer_sys::fuzz_target;

static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // decode_group turns arrow-ipc's panics on malformed streams into errors (catch_unwind);
    // libfuzzer-sys's hook would abort on those caught panics, so it is replaced by a silent
    // one. Uncaught panics still reach libfuzzer-sys and are reported as crashes.
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    // Segment id 1 unless the header names another one (then it is checked against 1 too).
    if let Ok(segment) = hourglass_wal::decode_segment(data, 1) {
        assert!(segment.valid_len <= data.len() as u64);
        for (i, (sequence, payload)) in segment.entries.iter().enumerate() {
            assert_eq!(*sequence, segment.base_sequence + i as u64);
            let _ = hourglass_storage::wal_payload::decode_group(payload);
        }
    }
    // Payload decoding on its own (the CRC makes random payloads rare in real segments).
    let _ = hourglass_storage::wal_payload::decode_group(data);
});
