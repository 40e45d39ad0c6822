//! Which Parquet encoding a numeric measure's column chunks get, chosen per file by measurement.
//!
//! No encoding is best for every series. Integer measures that move slowly (counters, TSBS's
//! CPU percentages) are smallest delta-encoded: their deltas bit-pack into a few bits. Integers
//! drawn from a few values that jump between them (order sizes in lots of 100) are smallest as
//! dictionary indices: on the side-by-side market data, delta took 1.75 B per quote size and a
//! dictionary 0.75. Floats that repeat (prices on a tick grid) are smallest as dictionary indices;
//! floats with many distinct values fall back from the dictionary to `PLAIN`, where Parquet's
//! `BYTE_STREAM_SPLIT` (each value's bytes split into byte planes) lets ZSTD find the shared
//! exponent and high mantissa bytes.
//!
//! The writer ([`crate::parquet_io`]) therefore encodes such a chunk both ways with ZSTD in the
//! first row group of a file (and every [`REMEASURE_EVERY`] row groups after it), keeps the
//! smaller, and uses that [`Variant`] for the column's row groups in between. Readers need nothing:
//! every encoding used is standard Parquet, named in each page header.
//!
//! Switch: `HOURGLASS_MEASURE_ENCODING=default` writes every chunk in [`Variant::Default`] (the
//! encodings of earlier versions), to compare or to rule the choice out.

use arrow_schema::{DataType, Field};
use hourglass_core::{column_role, ColumnRole};
use parquet::basic::Encoding;
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::schema::types::ColumnPath;

/// How often (in row groups) a column's choice is measured again within one file.
pub const REMEASURE_EVERY: usize = 8;

/// One way to encode a numeric measure column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Integers `DELTA_BINARY_PACKED`; floats dictionary-encoded (falling back to `PLAIN`).
    Default,
    /// Integers dictionary-encoded (falling back to `PLAIN`); floats `BYTE_STREAM_SPLIT`.
    Alternative,
}

/// Whether a column's chunks are measured in both variants: numeric measures.
pub fn has_alternative(field: &Field) -> bool {
    column_role(field) == ColumnRole::Measure
        && matches!(
            field.data_type(),
            DataType::Int64 | DataType::UInt64 | DataType::Float64
        )
}

/// Whether the choice is measured at all (`HOURGLASS_MEASURE_ENCODING` is not `default`).
pub fn choice_enabled() -> bool {
    !matches!(
        std::env::var("HOURGLASS_MEASURE_ENCODING").as_deref(),
        Ok("default")
    )
}

/// `props` with `field`'s encoding as `variant` says (other columns untouched).
pub fn apply(
    props: WriterPropertiesBuilder,
    field: &Field,
    variant: Variant,
) -> WriterPropertiesBuilder {
    if !has_alternative(field) {
        return props;
    }
    let path = ColumnPath::from(field.name().as_str());
    let float = matches!(field.data_type(), DataType::Float64);
    match (variant, float) {
        (Variant::Default, false) => props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
        (Variant::Default, true) | (Variant::Alternative, false) => {
            props.set_column_dictionary_enabled(path, true)
        }
        (Variant::Alternative, true) => props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT),
    }
}

/// Per column of one file: the variant in use and when it is measured again.
#[derive(Debug)]
pub struct Chooser {
    enabled: bool,
    /// Per column: the variant of the last measurement and the row group it was taken in.
    chosen: Vec<Option<(Variant, usize)>>,
}

impl Chooser {
    pub fn new(columns: usize) -> Chooser {
        Chooser {
            enabled: choice_enabled(),
            chosen: vec![None; columns],
        }
    }

    /// The variant for column `column` in row group `row_group`, or `None` when it must be
    /// measured now (encode both, then [`Chooser::record`] the smaller).
    pub fn variant(&self, column: usize, row_group: usize) -> Option<Variant> {
        if !self.enabled {
            return Some(Variant::Default);
        }
        match self.chosen[column] {
            Some((v, at)) if row_group < at + REMEASURE_EVERY => Some(v),
            _ => None,
        }
    }

    /// Records the result of a measurement: `default_bytes` and `alternative_bytes` are the sizes
    /// of the same chunk in each variant. Returns the smaller's variant (the default on a tie).
    pub fn record(
        &mut self,
        column: usize,
        row_group: usize,
        default_bytes: i64,
        alternative_bytes: i64,
    ) -> Variant {
        let v = if alternative_bytes < default_bytes {
            Variant::Alternative
        } else {
            Variant::Default
        };
        self.chosen[column] = Some((v, row_group));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_holds_until_it_is_measured_again() {
        let mut c = Chooser {
            enabled: true,
            chosen: vec![None; 2],
        };
        assert_eq!(c.variant(0, 0), None);
        assert_eq!(c.record(0, 0, 100, 40), Variant::Alternative);
        assert_eq!(c.variant(0, 1), Some(Variant::Alternative));
        assert_eq!(
            c.variant(0, REMEASURE_EVERY - 1),
            Some(Variant::Alternative)
        );
        assert_eq!(c.variant(0, REMEASURE_EVERY), None);
        assert_eq!(c.record(0, REMEASURE_EVERY, 50, 50), Variant::Default);
        assert_eq!(c.variant(0, REMEASURE_EVERY + 1), Some(Variant::Default));
        assert_eq!(c.variant(1, 3), None, "columns are independent");
    }

    #[test]
    fn switched_off_every_chunk_is_default() {
        let c = Chooser {
            enabled: false,
            chosen: vec![None],
        };
        assert_eq!(c.variant(0, 0), Some(Variant::Default));
    }
}
