//! `correlate_pearson(ts1, ts2)` and `correlate_spearman(ts1, ts2)`: the correlation of two
//! series' values over the times both have (Timestream requires the same timestamps; points
//! only one series has are ignored). Spearman's coefficient is Pearson's over the values'
//! ranks, ties given their average rank. Fewer than two shared points, or a constant series,
//! give NULL.

use crate::dialect::udf_args::ArgArrays;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{expect_timeseries, numeric_points, SeriesColumn};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Correlate {
    name: &'static str,
    spearman: bool,
    signature: Signature,
}

pub fn udfs() -> Vec<ScalarUDF> {
    [("correlate_pearson", false), ("correlate_spearman", true)]
        .into_iter()
        .map(|(name, spearman)| {
            ScalarUDF::new_from_impl(Correlate {
                name,
                spearman,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    if x.len() < 2 || x.len() != y.len() {
        return None;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// 1-based ranks, ties averaged.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            r[*k] = avg;
        }
        i = j + 1;
    }
    r
}

/// The values of both series at the times they share.
fn paired(a: &[(i64, f64)], b: &[(i64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                x.push(a[i].1);
                y.push(b[j].1);
                i += 1;
                j += 1;
            }
        }
    }
    (x, y)
}

impl ScalarUDFImpl for Correlate {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [a, b] => Ok(vec![
                expect_timeseries(self.name, a)?,
                expect_timeseries(self.name, b)?,
            ]),
            _ => plan_err!("{} takes two timeseries", self.name),
        }
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = ArgArrays::new(&args)?;
        let rows = input.rows;
        let a = &input.arrays;
        let (c1, c2) = (SeriesColumn::new(&a[0])?, SeriesColumn::new(&a[1])?);
        let (v1, v2) = (c1.values_f64()?, c2.values_f64()?);
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            out.push(
                match (numeric_points(&c1, &v1, i), numeric_points(&c2, &v2, i)) {
                    (Some(p1), Some(p2)) => {
                        let (x, y) = paired(&p1, &p2);
                        if self.spearman {
                            pearson(&ranks(&x), &ranks(&y))
                        } else {
                            pearson(&x, &y)
                        }
                    }
                    _ => None,
                },
            );
        }
        let out: ArrayRef = Arc::new(Float64Array::from(out));
        input.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients() {
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(1.0));
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
    }
}
