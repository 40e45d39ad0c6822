//! WriteRecords JSON decoding: model constraints, CommonAttributes merging, value parsing and
//! the Arrow batch of the accepted records.
#![no_main]

use hourglass_core::TableProperties;
use hourglass_timestream::write::decode_records;
use hourglass_timestream::write::record::TableRules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = TableRules {
        properties: TableProperties {
            memory_retention_hours: 24,
            magnetic_retention_days: 3650,
            magnetic_writes_enabled: data.first().is_some_and(|b| b & 1 == 1),
        },
        now: 1_704_067_200_000_000_000,
        memory_floor: i64::MIN,
        required_dimensions: Vec::new(),
    };
    let _ = decode_records(data, &rules);
});
