//! The unit a Parquet file stores `time` in: the coarsest of milliseconds, microseconds and
//! nanoseconds that holds every time of the file exactly.
//!
//! Tables hold `time` in nanoseconds, but most writers send whole milliseconds (Timestream's
//! `WriteRecords` defaults to `MILLISECONDS`; market feeds, MQTT devices and Prometheus stamp in
//! milliseconds). A delta-encoded column pays for the zeros: irregular millisecond arrivals
//! 0.1–4 s apart need ~32 bits per delta in nanoseconds and ~12 in milliseconds. Measured on
//! the side-by-side market data (pyarrow re-encodings of the same files): quotes' `time`
//! 8.64 MB as nanoseconds, 6.13 MB as microseconds, 3.63 MB as milliseconds, for 2.0 M rows.
//!
//! The writer ([`crate::parquet_io::encode`]) stores such a file's `time` column as
//! `Timestamp(Millisecond)` (or `Microsecond`), which Parquet records as the logical type
//! `TIMESTAMP(MILLIS)` (`MICROS`). Every reader turns it back into nanoseconds as it decodes:
//! [`crate::parquet_io::read_all`] and [`crate::schema::conform`] (a unit cast multiplies), and
//! the query engine's Parquet scan through `hourglass_query::stored_time`, which also keeps
//! comparisons with constants exact (DataFusion would truncate the constant to the file's unit).
//!
//! Switch: `HOURGLASS_STORED_TIME_UNIT=nanosecond` writes every file in nanoseconds (the format
//! of earlier versions), to compare or to rule the choice out. Files of either kind are read
//! the same way whatever the switch says.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use hourglass_core::{Error, Result, TIME_COLUMN};

/// Whether files may store `time` coarser than nanoseconds
/// (`HOURGLASS_STORED_TIME_UNIT` is not `nanosecond`).
pub fn coarse_units_enabled() -> bool {
    !matches!(
        std::env::var("HOURGLASS_STORED_TIME_UNIT").as_deref(),
        Ok("nanosecond") | Ok("ns")
    )
}

/// Nanoseconds per unit of `unit`.
pub fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The coarsest unit (milliseconds, microseconds, nanoseconds) dividing every value of `times`
/// (nulls ignored; an empty column is milliseconds).
pub fn coarsest_unit(times: &[i64]) -> TimeUnit {
    let mut unit = TimeUnit::Millisecond;
    for &t in times {
        while t % nanos_per(unit) != 0 {
            unit = match unit {
                TimeUnit::Millisecond => TimeUnit::Microsecond,
                _ => return TimeUnit::Nanosecond,
            };
        }
    }
    unit
}

/// `batch` with its nanosecond `time` column in the coarsest unit that holds it exactly; the
/// batch itself when that is nanoseconds, when there is no such column, or when the switch is
/// off.
pub fn to_stored(batch: &RecordBatch) -> Result<RecordBatch> {
    if !coarse_units_enabled() {
        return Ok(batch.clone());
    }
    let Ok(index) = batch.schema().index_of(TIME_COLUMN) else {
        return Ok(batch.clone());
    };
    let Some(times) = batch
        .column(index)
        .as_primitive_opt::<TimestampNanosecondType>()
    else {
        return Ok(batch.clone());
    };
    if times.null_count() > 0 {
        return Ok(batch.clone());
    }
    let unit = coarsest_unit(times.values());
    if unit == TimeUnit::Nanosecond {
        return Ok(batch.clone());
    }
    let tz = times.timezone().map(Arc::<str>::from);
    let per = nanos_per(unit);
    let values: Vec<i64> = times.values().iter().map(|t| t / per).collect();
    let column: ArrayRef = match unit {
        TimeUnit::Millisecond => {
            Arc::new(arrow_array::TimestampMillisecondArray::from(values).with_timezone_opt(tz))
        }
        _ => Arc::new(arrow_array::TimestampMicrosecondArray::from(values).with_timezone_opt(tz)),
    };
    replace_column(batch, index, column)
}

/// `batch` with a `time` column stored in a coarser unit back in nanoseconds (the batch itself
/// when it is in nanoseconds already).
pub fn to_nanos(batch: &RecordBatch) -> Result<RecordBatch> {
    let Ok(index) = batch.schema().index_of(TIME_COLUMN) else {
        return Ok(batch.clone());
    };
    let column = batch.column(index);
    if !matches!(
        column.data_type(),
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, _)
    ) {
        return Ok(batch.clone());
    }
    let nanos = column_to_nanos(column)?;
    replace_column(batch, index, nanos)
}

/// A `Timestamp(Millisecond | Microsecond, tz)` column as `Timestamp(Nanosecond, tz)` (any
/// other column as it is): one multiplication per value once a pass has shown that none
/// overflows; a corruption error otherwise (a file whose times do not fit nanoseconds was not
/// written by Hourglass). Arrow's cast (`unary_opt` with `checked_mul`, a NULL for each
/// overflow) cost 4.6 % of the CPU of a query converting 4.3 M times, 60 % of it its scalar
/// check (`scripts/bench/stored_time_unit_ab.py`). Used by [`to_nanos`] and the query engine's
/// Parquet scan.
pub fn column_to_nanos(column: &ArrayRef) -> Result<ArrayRef> {
    let (values, tz) = match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, tz) => (
            column
                .as_primitive::<TimestampMillisecondType>()
                .reinterpret_cast::<Int64Type>(),
            tz,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => (
            column
                .as_primitive::<TimestampMicrosecondType>()
                .reinterpret_cast::<Int64Type>(),
            tz,
        ),
        _ => return Ok(column.clone()),
    };
    let DataType::Timestamp(unit, _) = column.data_type() else {
        return Ok(column.clone());
    };
    let per = nanos_per(*unit);
    // Quick test, one add and one OR per value (vectorised): every value within ±2^k, where
    // 2^k · per still fits; values beyond (years past 2248 in milliseconds) take the exact test.
    let k = 63 - (i64::MAX / per).leading_zeros();
    let bias = 1u64 << k;
    let spread = values
        .values()
        .iter()
        .fold(0u64, |acc, v| acc | (*v as u64).wrapping_add(bias));
    let (lo, hi) = (i64::MIN / per, i64::MAX / per);
    let fits = spread >> (k + 1) == 0
        || match values.nulls() {
            None => values.values().iter().all(|v| (lo..=hi).contains(v)),
            Some(nulls) => values
                .values()
                .iter()
                .zip(nulls.iter())
                .all(|(v, valid)| !valid || (lo..=hi).contains(v)),
        };
    if !fits {
        return Err(Error::corruption(format!(
            "a stored time does not fit nanoseconds (unit of {per} ns)"
        )));
    }
    let nanos: TimestampNanosecondArray = values
        .unary::<_, TimestampNanosecondType>(|v| v.wrapping_mul(per))
        .with_timezone_opt(tz.clone());
    Ok(Arc::new(nanos))
}

fn replace_column(batch: &RecordBatch, index: usize, column: ArrayRef) -> Result<RecordBatch> {
    let schema = batch.schema();
    let old = schema.field(index);
    let field = Field::new(old.name(), column.data_type().clone(), old.is_nullable())
        .with_metadata(old.metadata().clone());
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields[index] = Arc::new(field);
    let mut columns = batch.columns().to_vec();
    columns[index] = column;
    RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
    )
    .map_err(|e| Error::internal(format!("time column in its stored unit: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, TimestampNanosecondArray};

    fn batch(times: Vec<i64>) -> RecordBatch {
        let n = times.len() as i64;
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("v", DataType::Int64, true),
                Field::new(
                    TIME_COLUMN,
                    DataType::Timestamp(TimeUnit::Nanosecond, None),
                    false,
                ),
            ])),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(TimestampNanosecondArray::from(times)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_unit_is_the_coarsest_that_divides_every_time() {
        assert_eq!(coarsest_unit(&[]), TimeUnit::Millisecond);
        assert_eq!(
            coarsest_unit(&[0, 3_000_000, -7_000_000, 1_700_000_000_123_000_000]),
            TimeUnit::Millisecond
        );
        assert_eq!(
            coarsest_unit(&[1_000_000, 1_001_000, -5_000]),
            TimeUnit::Microsecond
        );
        assert_eq!(coarsest_unit(&[1_000_000, 1]), TimeUnit::Nanosecond);
        assert_eq!(coarsest_unit(&[-1_000_001]), TimeUnit::Nanosecond);
    }

    #[test]
    fn stored_times_come_back_as_the_same_nanoseconds() {
        for (times, unit) in [
            (
                vec![1_700_000_000_123_000_000, -86_400_000_000_000, 0],
                TimeUnit::Millisecond,
            ),
            (
                vec![1_700_000_000_123_456_000, -1_000],
                TimeUnit::Microsecond,
            ),
            (vec![1_700_000_000_123_456_789, 5], TimeUnit::Nanosecond),
        ] {
            let b = batch(times);
            let stored = to_stored(&b).unwrap();
            assert_eq!(
                stored.schema().field(1).data_type(),
                &DataType::Timestamp(unit, None)
            );
            assert!(!stored.schema().field(1).is_nullable());
            assert_eq!(stored.column(0), b.column(0));
            assert_eq!(to_nanos(&stored).unwrap(), b);
        }
    }

    #[test]
    fn the_conversion_keeps_nulls_and_time_zones_and_refuses_overflow() {
        use arrow_array::{TimestampMicrosecondArray, TimestampMillisecondArray};
        let tz: Arc<str> = Arc::from("+02:00");
        let stored: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(vec![Some(-5), None, Some(1_700_000_000_123)])
                .with_timezone(tz.clone()),
        );
        let target = DataType::Timestamp(TimeUnit::Nanosecond, Some(tz.clone()));
        let nanos = column_to_nanos(&stored).unwrap();
        assert_eq!(
            nanos.as_ref(),
            arrow_cast::cast(&stored, &target).unwrap().as_ref()
        );
        assert_eq!(nanos.data_type(), &target);
        // The extremes that fit, past the quick test's ±2^k (k = 43 for milliseconds).
        let edges = |per: i64| {
            let edge = i64::MAX / per;
            vec![edge, -edge, i64::MIN / per, 0]
        };
        let ms: ArrayRef = Arc::new(TimestampMillisecondArray::from(edges(1_000_000)));
        let us: ArrayRef = Arc::new(TimestampMicrosecondArray::from(edges(1_000)));
        for (array, per) in [(ms, 1_000_000), (us, 1_000)] {
            let nanos = column_to_nanos(&array).unwrap();
            let nanos = nanos.as_primitive::<TimestampNanosecondType>();
            let expected: Vec<i64> = edges(per).iter().map(|v| v * per).collect();
            assert_eq!(nanos.values().to_vec(), expected);
        }
        for too_far in [i64::MAX / 1_000 + 1, i64::MIN / 1_000 - 1] {
            let too_far: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0, too_far]));
            let err = column_to_nanos(&too_far).unwrap_err();
            assert!(
                err.to_string().contains("does not fit nanoseconds"),
                "{err}"
            );
        }
    }
}
