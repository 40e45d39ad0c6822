//! The catalog reader (`catalog.json`) and what the engine derives from a table definition.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = hourglass_storage::catalog::decode_catalog(data, "fuzz") {
        for db in state.databases.values() {
            for table in db.tables.values() {
                let _ = hourglass_storage::schema::table_schema(table);
            }
        }
    }
});
