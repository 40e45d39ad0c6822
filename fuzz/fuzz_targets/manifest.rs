//! The manifest reader (`_manifest.json`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = hourglass_storage::Manifest::decode(data, "fuzz") {
        let _ = m.max_time();
    }
});
