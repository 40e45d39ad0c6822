//! `zscore(x [, min_stddev])`: the frame's last row scored against the frame's other rows,
//! `(x_last − mean(B)) / stddev_samp(B)` with `B` the frame's finite values except the last row.
//! Used as `zscore(price) OVER (... ORDER BY time RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING
//! AND CURRENT ROW)` it scores each row against its trailing window without the row itself.
//!
//! The state is a count and the sums of `x − k` and `(x − k)²` for a shift `k` (the first value
//! the accumulator saw), so that adding and retracting a row is O(1) and the variance does not
//! lose its digits to cancellation when the values are large and close (prices).

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_float64_array, as_uint64_array};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use super::{finite_at, float_args, scale_floor, score};

/// The function's SQL name.
pub const NAME: &str = "zscore";

/// The `zscore` aggregate (and window function).
pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(ZScore {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ZScore {
    signature: Signature,
}

impl AggregateUDFImpl for ZScore {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        float_args(NAME, arg_types, 1, 2)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(ZScoreAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let field = |what: &str, t: DataType| {
            Arc::new(Field::new(format!("{}[{what}]", args.name), t, true))
        };
        Ok(vec![
            field("count", DataType::UInt64),
            field("shift", DataType::Float64),
            field("sum", DataType::Float64),
            field("sum_squares", DataType::Float64),
            field("rows", DataType::UInt64),
            field("last", DataType::Float64),
            field("floor", DataType::Float64),
        ])
    }
}

/// Shifted sums of the frame's finite values, and the frame's last row.
#[derive(Debug, Default)]
pub(crate) struct Moments {
    /// Finite values in the frame.
    n: u64,
    /// The shift `k`; `None` until a finite value arrives (and again when the frame empties).
    k: Option<f64>,
    /// Σ (x − k)
    s1: f64,
    /// Σ (x − k)²
    s2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        let k = *self.k.get_or_insert(x);
        self.n += 1;
        self.s1 += x - k;
        self.s2 += (x - k) * (x - k);
    }

    fn remove(&mut self, x: f64) {
        let k = self.k.unwrap_or(x);
        self.n = self.n.saturating_sub(1);
        if self.n == 0 {
            *self = Moments::default();
            return;
        }
        self.s1 -= x - k;
        self.s2 -= (x - k) * (x - k);
    }

    /// Mean and sample standard deviation (n − 1), `None` with fewer than two values.
    pub(crate) fn mean_stddev(&self) -> Option<(f64, f64)> {
        let k = self.k?;
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let var = ((self.s2 - self.s1 * self.s1 / n) / (n - 1.0)).max(0.0);
        Some((k + self.s1 / n, var.sqrt()))
    }
}

#[derive(Debug, Default)]
struct ZScoreAccumulator {
    moments: Moments,
    /// Rows in the frame, NULL ones included (the frame is empty at 0).
    rows: u64,
    /// The last row's value (`None` when it is NULL or not finite).
    last: Option<f64>,
    floor: f64,
}

impl Accumulator for ZScoreAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let x = &values[0];
        for i in 0..x.len() {
            let v = finite_at(x, i)?;
            if let Some(v) = v {
                self.moments.add(v);
            }
            self.last = v;
        }
        self.rows += x.len() as u64;
        if let Some(f) = scale_floor(NAME, values)? {
            self.floor = f;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let x = &values[0];
        for i in 0..x.len() {
            if let Some(v) = finite_at(x, i)? {
                self.moments.remove(v);
            }
        }
        self.rows = self.rows.saturating_sub(x.len() as u64);
        if self.rows == 0 {
            self.last = None;
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let n = as_uint64_array(&states[0])?;
        let k = as_float64_array(&states[1])?;
        let s1 = as_float64_array(&states[2])?;
        let s2 = as_float64_array(&states[3])?;
        let rows = as_uint64_array(&states[4])?;
        let floor = as_float64_array(&states[6])?;
        for i in 0..n.len() {
            if rows.value(i) == 0 {
                continue;
            }
            if n.value(i) > 0 {
                let (k2, mine) = (k.value(i), *self.moments.k.get_or_insert(k.value(i)));
                let d = k2 - mine;
                let m = n.value(i) as f64;
                self.moments.n += n.value(i);
                self.moments.s1 += s1.value(i) + m * d;
                self.moments.s2 += s2.value(i) + 2.0 * d * s1.value(i) + m * d * d;
            }
            self.rows += rows.value(i);
            self.last = finite_at(&states[5], i)?;
            self.floor = floor.value(i);
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let m = &self.moments;
        Ok(vec![
            ScalarValue::UInt64(Some(m.n)),
            ScalarValue::Float64(Some(m.k.unwrap_or(0.0))),
            ScalarValue::Float64(Some(m.s1)),
            ScalarValue::Float64(Some(m.s2)),
            ScalarValue::UInt64(Some(self.rows)),
            ScalarValue::Float64(self.last),
            ScalarValue::Float64(Some(self.floor)),
        ])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Float64(self.score()))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

impl ZScoreAccumulator {
    /// The last row against the others: its value is taken out of the moments for the baseline.
    fn score(&self) -> Option<f64> {
        let x = self.last?;
        let mut baseline = Moments {
            n: self.moments.n,
            k: self.moments.k,
            s1: self.moments.s1,
            s2: self.moments.s2,
        };
        baseline.remove(x);
        let (mean, sd) = baseline.mean_stddev()?;
        score(x, mean, sd, self.floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn column(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    fn z(acc: &mut ZScoreAccumulator) -> Option<f64> {
        match acc.evaluate().unwrap() {
            ScalarValue::Float64(v) => v,
            other => panic!("zscore returned {other:?}"),
        }
    }

    #[test]
    fn scores_last_row_against_the_others() {
        // Baseline 108, 112, 110, 108, 112: mean 110, Σd² = 16, s² = 16/4 = 4, s = 2.
        // Last 120: z = (120 − 110) / 2 = 5.
        let mut acc = ZScoreAccumulator::default();
        let x = [108.0, 112.0, 110.0, 108.0, 112.0, 120.0].map(Some);
        acc.update_batch(&[column(&x)]).unwrap();
        assert_eq!(z(&mut acc), Some(5.0));
    }

    #[test]
    fn sliding_frame_retracts_oldest_rows() {
        // 50 then 108, 112, 110, 108, 112, 120: after retracting 50 the score is that of the
        // test above; before it, the baseline was 50, 108, 112, 110, 108, 112.
        let mut acc = ZScoreAccumulator::default();
        acc.update_batch(&[column(&[Some(50.0)])]).unwrap();
        let x = [108.0, 112.0, 110.0, 108.0, 112.0, 120.0].map(Some);
        acc.update_batch(&[column(&x)]).unwrap();
        let before = z(&mut acc).unwrap();
        assert!(before < 5.0, "{before}");
        acc.retract_batch(&[column(&[Some(50.0)])]).unwrap();
        assert_eq!(z(&mut acc), Some(5.0));
    }

    #[test]
    fn null_last_row_scores_null_and_nulls_stay_out_of_the_baseline() {
        let mut acc = ZScoreAccumulator::default();
        let x = [Some(1.0), None, Some(3.0), Some(f64::NAN), Some(2.0)];
        acc.update_batch(&[column(&x)]).unwrap();
        // Baseline 1, 3: mean 2, s = √2; last 2 → 0.
        assert_eq!(z(&mut acc), Some(0.0));
        acc.update_batch(&[column(&[None])]).unwrap();
        assert_eq!(z(&mut acc), None);
    }

    #[test]
    fn flat_baseline_is_null_unless_floored() {
        let mut acc = ZScoreAccumulator::default();
        acc.update_batch(&[column(&[Some(7.0), Some(7.0), Some(9.0)])])
            .unwrap();
        assert_eq!(z(&mut acc), None);
        let mut floored = ZScoreAccumulator::default();
        let x = column(&[Some(7.0), Some(7.0), Some(9.0)]);
        floored.update_batch(&[x, column(&[Some(0.5); 3])]).unwrap();
        assert_eq!(z(&mut floored), Some(4.0));
    }

    #[test]
    fn one_value_baseline_is_null() {
        let mut acc = ZScoreAccumulator::default();
        acc.update_batch(&[column(&[Some(1.0), Some(5.0)])])
            .unwrap();
        assert_eq!(z(&mut acc), None);
    }

    #[test]
    fn merged_states_equal_one_pass() {
        let values = [3.0, 9.0, 4.0, 10.0, 2.0];
        let mut whole = ZScoreAccumulator::default();
        whole.update_batch(&[column(&values.map(Some))]).unwrap();
        let mut a = ZScoreAccumulator::default();
        a.update_batch(&[column(
            &values[..2].iter().copied().map(Some).collect::<Vec<_>>(),
        )])
        .unwrap();
        let mut b = ZScoreAccumulator::default();
        b.update_batch(&[column(
            &values[2..].iter().copied().map(Some).collect::<Vec<_>>(),
        )])
        .unwrap();
        let mut merged = ZScoreAccumulator::default();
        for part in [&mut a, &mut b] {
            let state: Vec<ArrayRef> = part
                .state()
                .unwrap()
                .into_iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&state).unwrap();
        }
        let (w, m) = (z(&mut whole).unwrap(), z(&mut merged).unwrap());
        assert!((w - m).abs() < 1e-12, "{w} vs {m}");
    }

    #[test]
    fn large_close_values_keep_their_digits() {
        // 1e9 + {0, 1, 2, 3}: baseline 1e9 + {0, 1, 2}, mean 1e9 + 1, s = 1; last 1e9 + 3 → 2.
        let mut acc = ZScoreAccumulator::default();
        let x = [0.0, 1.0, 2.0, 3.0].map(|d| Some(1e9 + d));
        acc.update_batch(&[column(&x)]).unwrap();
        assert_eq!(z(&mut acc), Some(2.0));
    }
}
