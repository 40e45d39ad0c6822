//! Trino aggregates DataFusion lacks — `max_by(x, y)`, `min_by(x, y)` (the `x` of the row with the
//! largest / smallest `y`), `skewness(x)`, `kurtosis(x)` — and Trino names of DataFusion
//! aggregates with the same meaning (`arbitrary` = `any_value`, `every` = `bool_and`, ...).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

/// (DataFusion aggregate, Trino names).
pub const ALIASES: &[(&str, &[&str])] = &[
    ("any_value", &["arbitrary"]),
    ("bool_and", &["every"]),
    ("bit_and", &["bitwise_and_agg"]),
    ("bit_or", &["bitwise_or_agg"]),
    ("approx_percentile_cont", &["approx_percentile"]),
    ("var", &["variance"]),
];

pub fn udafs() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(ByExtreme::new("max_by", true)),
        AggregateUDF::new_from_impl(ByExtreme::new("min_by", false)),
        AggregateUDF::new_from_impl(Moment::new("skewness")),
        AggregateUDF::new_from_impl(Moment::new("kurtosis")),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ByExtreme {
    name: &'static str,
    max: bool,
    signature: Signature,
}

impl ByExtreme {
    fn new(name: &'static str, max: bool) -> Self {
        ByExtreme {
            name,
            max,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ByExtreme {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Null))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args
            .input_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(vec![
            Arc::new(Field::new(
                "x",
                types.first().cloned().unwrap_or(DataType::Null),
                true,
            )),
            Arc::new(Field::new(
                "y",
                types.get(1).cloned().unwrap_or(DataType::Null),
                true,
            )),
        ])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let types: Vec<DataType> = args
            .expr_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Box::new(ByExtremeAcc {
            max: self.max,
            best: None,
            x_type: types.first().cloned().unwrap_or(DataType::Null),
            y_type: types.get(1).cloned().unwrap_or(DataType::Null),
        }))
    }
}

#[derive(Debug)]
struct ByExtremeAcc {
    max: bool,
    best: Option<(ScalarValue, ScalarValue)>,
    x_type: DataType,
    y_type: DataType,
}

impl ByExtremeAcc {
    fn offer(&mut self, xs: &ArrayRef, ys: &ArrayRef) -> Result<()> {
        if ys.len() == ys.null_count() {
            return Ok(());
        }
        let options = SortOptions {
            descending: self.max,
            nulls_first: false,
        };
        let idx = arrow::compute::sort_to_indices(ys, Some(options), Some(1))?;
        if idx.is_empty() {
            return Ok(());
        }
        let i = idx.value(0) as usize;
        let y = ScalarValue::try_from_array(ys, i)?;
        if y.is_null() {
            return Ok(());
        }
        let better = match &self.best {
            None => true,
            Some((_, by)) => match y.partial_cmp(by) {
                Some(std::cmp::Ordering::Greater) => self.max,
                Some(std::cmp::Ordering::Less) => !self.max,
                _ => false,
            },
        };
        if better {
            self.best = Some((ScalarValue::try_from_array(xs, i)?, y));
        }
        Ok(())
    }
}

impl Accumulator for ByExtremeAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0], &values[1])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0], &states[1])
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(match &self.best {
            Some((x, y)) => vec![x.clone(), y.clone()],
            None => vec![
                ScalarValue::try_from(&self.x_type)?,
                ScalarValue::try_from(&self.y_type)?,
            ],
        })
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.best {
            Some((x, _)) => Ok(x.clone()),
            None => ScalarValue::try_from(&self.x_type),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.best.as_ref().map_or(0, |(x, y)| x.size() + y.size())
    }
}

/// `skewness` / `kurtosis` from the power sums of the values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Moment {
    name: &'static str,
    signature: Signature,
}

impl Moment {
    fn new(name: &'static str) -> Self {
        Moment {
            name,
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Moment {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(["n", "s1", "s2", "s3", "s4"]
            .iter()
            .map(|n| Arc::new(Field::new(*n, DataType::Float64, true)))
            .collect())
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MomentAcc {
            kurtosis: self.name == "kurtosis",
            sums: [0.0; 5],
        }))
    }
}

#[derive(Debug)]
struct MomentAcc {
    kurtosis: bool,
    /// n, Σx, Σx², Σx³, Σx⁴
    sums: [f64; 5],
}

/// Sample skewness `√n·m3 / m2^1.5` and excess kurtosis (bias-corrected) from power sums, with
/// `m_k` the sums of the k-th powers of the deviations from the mean.
pub fn moments(sums: [f64; 5], kurtosis: bool) -> Option<f64> {
    let [n, s1, s2, s3, s4] = sums;
    let mean = s1 / n;
    let m2 = s2 - n * mean * mean;
    let m3 = s3 - 3.0 * mean * s2 + 3.0 * mean * mean * s1 - n * mean.powi(3);
    let m4 =
        s4 - 4.0 * mean * s3 + 6.0 * mean * mean * s2 - 4.0 * mean.powi(3) * s1 + n * mean.powi(4);
    if kurtosis {
        if n < 4.0 || m2 <= 0.0 {
            return None;
        }
        let a = (n + 1.0) * n * (n - 1.0) / ((n - 2.0) * (n - 3.0));
        let b = 3.0 * (n - 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0));
        Some(a * m4 / (m2 * m2) - b)
    } else {
        if n < 3.0 || m2 <= 0.0 {
            return None;
        }
        Some(n.sqrt() * m3 / m2.powf(1.5))
    }
}

impl Accumulator for MomentAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.sums[0] += 1.0;
            self.sums[1] += x;
            self.sums[2] += x * x;
            self.sums[3] += x * x * x;
            self.sums[4] += x * x * x * x;
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for (k, s) in states.iter().enumerate().take(5) {
            self.sums[k] += s
                .as_primitive::<Float64Type>()
                .iter()
                .flatten()
                .sum::<f64>();
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self
            .sums
            .iter()
            .map(|s| ScalarValue::Float64(Some(*s)))
            .collect())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(moments(self.sums, self.kurtosis)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
