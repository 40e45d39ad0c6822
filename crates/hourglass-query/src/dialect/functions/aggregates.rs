//! Trino aggregates DataFusion lacks — `max_by(x, y)`, `min_by(x, y)` (the `x` of the row with the
//! largest / smallest `y`), their n-forms `max_by(x, y, n)` / `min_by(x, y, n)` (the array of the
//! `x` of the n rows with the largest / smallest `y`, in descending / ascending order of `y`),
//! `max(x, n)` / `min(x, n)` (planned as `hg_max_n` / `hg_min_n`, see [`n_form`]: the array of the
//! n largest values, descending / the n smallest, ascending), `skewness(x)`, `kurtosis(x)` — and
//! Trino names of DataFusion aggregates with the same meaning (`arbitrary` = `any_value`, `every`
//! = `bool_and`, ...). NULL `y` (NULL `x` for `max`/`min`) are skipped, and no rows give NULL.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
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
        AggregateUDF::new_from_impl(ExtremesN::new("hg_max_n", true)),
        AggregateUDF::new_from_impl(ExtremesN::new("hg_min_n", false)),
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
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
        }
    }
}

/// The aggregate a call of a DataFusion aggregate's name with Trino's extra `n` argument is
/// planned as: `max(x, n)` → `hg_max_n(x, n)`, `min(x, n)` → `hg_min_n(x, n)`.
pub fn n_form(name: &str, n_args: usize) -> Option<&'static str> {
    match (name, n_args) {
        ("max", 2) => Some("hg_max_n"),
        ("min", 2) => Some("hg_min_n"),
        _ => None,
    }
}

/// Trino's limit on `n`.
const MAX_N: i64 = 10_000;

/// The constant `n` of an n-form aggregate (its argument `at`).
fn constant_n(name: &str, args: &AccumulatorArgs, at: usize) -> Result<usize> {
    use datafusion::physical_expr::expressions::Literal;
    let value = args
        .exprs
        .get(at)
        .and_then(|e| e.downcast_ref::<Literal>())
        .map(|l| l.value().clone());
    let n = match value.map(|v| v.cast_to(&DataType::Int64)) {
        Some(Ok(ScalarValue::Int64(Some(n)))) => n,
        _ => return plan_err!("{name}: the number of values must be a constant integer"),
    };
    if !(1..=MAX_N).contains(&n) {
        return plan_err!("{name}: the number of values must be between 1 and {MAX_N}, got {n}");
    }
    Ok(n as usize)
}

fn list_of(t: &DataType) -> DataType {
    DataType::new_list(t.clone(), true)
}

impl AggregateUDFImpl for ByExtreme {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let x = arg_types.first().cloned().unwrap_or(DataType::Null);
        Ok(if arg_types.len() == 3 { list_of(&x) } else { x })
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args
            .input_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if types.len() == 3 {
            return Ok(TopNAcc::state_fields(&types[0], &types[1]));
        }
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
        if types.len() == 3 {
            return Ok(Box::new(TopNAcc::new(
                self.max,
                constant_n(self.name, &args, 2)?,
                types[0].clone(),
                types[1].clone(),
            )));
        }
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

/// `max(x, n)` / `min(x, n)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExtremesN {
    name: &'static str,
    max: bool,
    signature: Signature,
}

impl ExtremesN {
    fn new(name: &'static str, max: bool) -> Self {
        ExtremesN {
            name,
            max,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ExtremesN {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(arg_types.first().unwrap_or(&DataType::Null)))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let x = args
            .input_fields
            .first()
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        Ok(TopNAcc::state_fields(&x, &x))
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let x = args
            .expr_fields
            .first()
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        let name = if self.max { "max" } else { "min" };
        let mut acc = TopNAcc::new(self.max, constant_n(name, &args, 1)?, x.clone(), x);
        acc.self_keyed = true;
        Ok(Box::new(acc))
    }
}

/// The `x` of the `n` rows with the largest (`max`) / smallest `y`, ordered by `y`.
#[derive(Debug)]
struct TopNAcc {
    max: bool,
    n: usize,
    /// `x` is its own key (`max(x, n)`): the input is one column.
    self_keyed: bool,
    /// (y, x), sorted and cut to `n` when it grows past `2n`.
    items: Vec<(ScalarValue, ScalarValue)>,
    x_type: DataType,
    y_type: DataType,
}

impl TopNAcc {
    fn new(max: bool, n: usize, x_type: DataType, y_type: DataType) -> Self {
        TopNAcc {
            max,
            n,
            self_keyed: false,
            items: Vec::new(),
            x_type,
            y_type,
        }
    }

    fn state_fields(x: &DataType, y: &DataType) -> Vec<FieldRef> {
        vec![
            Arc::new(Field::new("xs", list_of(x), true)),
            Arc::new(Field::new("ys", list_of(y), true)),
        ]
    }

    fn trim(&mut self) {
        let max = self.max;
        self.items.sort_by(|(a, _), (b, _)| {
            let o = a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal);
            if max {
                o.reverse()
            } else {
                o
            }
        });
        self.items.truncate(self.n);
    }

    fn offer(&mut self, xs: &dyn Array, ys: &dyn Array) -> Result<()> {
        for i in 0..ys.len() {
            if ys.is_null(i) {
                continue;
            }
            self.items.push((
                ScalarValue::try_from_array(ys, i)?,
                ScalarValue::try_from_array(xs, i)?,
            ));
            if self.items.len() >= 2 * self.n + 64 {
                self.trim();
            }
        }
        Ok(())
    }
}

impl Accumulator for TopNAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let ys = if self.self_keyed {
            &values[0]
        } else {
            &values[1]
        };
        self.offer(values[0].as_ref(), ys.as_ref())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (xs, ys) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..xs.len() {
            if xs.is_null(row) || ys.is_null(row) {
                continue;
            }
            self.offer(xs.value(row).as_ref(), ys.value(row).as_ref())?;
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.trim();
        let xs: Vec<ScalarValue> = self.items.iter().map(|(_, x)| x.clone()).collect();
        let ys: Vec<ScalarValue> = self.items.iter().map(|(y, _)| y.clone()).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&xs, &self.x_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&ys, &self.y_type)),
        ])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.items.is_empty() {
            return ScalarValue::try_from(&list_of(&self.x_type));
        }
        self.trim();
        let xs: Vec<ScalarValue> = self.items.iter().map(|(_, x)| x.clone()).collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &xs,
            &self.x_type,
        )))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .items
                .iter()
                .map(|(x, y)| x.size() + y.size())
                .sum::<usize>()
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
