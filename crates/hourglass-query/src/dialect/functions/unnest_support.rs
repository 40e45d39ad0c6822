//! Helpers of the UNNEST rewrite ([`crate::dialect::unnest`]):
//!
//! * `hg_unnest_outer(a)` — `a`, or a one-element array holding NULL when `a` is NULL or empty
//!   (`LEFT JOIN UNNEST(a) ... ON true` keeps such rows once, with NULLs);
//! * `hg_unnest_ordinals(outer, a1, a2, ...)` — `[1, 2, ..., n]` (BIGINT) with `n` the longest
//!   array's length, for `WITH ORDINALITY`; when all arrays are NULL or empty, NULL, or `[NULL]`
//!   if `outer`.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, Int64Builder, ListBuilder};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(Outer {
            signature: Signature::any(1, Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(Ordinals {
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
    ]
}

/// The length of each row's array (0 for NULL).
fn lengths(a: &ArrayRef) -> Result<Vec<usize>> {
    let len = |i: usize, n: usize| if a.is_null(i) { 0 } else { n };
    Ok(match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (0..l.len())
                .map(|i| len(i, l.value_length(i) as usize))
                .collect()
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            (0..l.len())
                .map(|i| len(i, l.value_length(i) as usize))
                .collect()
        }
        DataType::FixedSizeList(_, n) => (0..a.len()).map(|i| len(i, *n as usize)).collect(),
        DataType::Null => vec![0; a.len()],
        other => return exec_err!("UNNEST takes arrays, got {other}"),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Outer {
    signature: Signature,
}

impl ScalarUDFImpl for Outer {
    fn name(&self) -> &str {
        "hg_unnest_outer"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t @ DataType::List(_)) => Ok(t.clone()),
            Some(DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
                Ok(DataType::List(Arc::clone(f)))
            }
            Some(DataType::Null) => Ok(DataType::new_list(DataType::Null, true)),
            other => plan_err!("UNNEST takes arrays, got {other:?}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let is_scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let a = args.args[0].to_array(args.number_rows)?;
        let DataType::List(field) = args.return_field.data_type().clone() else {
            return exec_err!("hg_unnest_outer returns a list");
        };
        let a = if a.data_type() == args.return_field.data_type() {
            a
        } else if a.data_type().is_null() {
            new_null_array(args.return_field.data_type(), a.len())
        } else {
            arrow::compute::cast(&a, args.return_field.data_type())?
        };
        let list = a.as_list::<i32>();
        // Each row's elements, or one NULL element.
        let mut pieces: Vec<ArrayRef> = Vec::with_capacity(list.len());
        let mut lens = Vec::with_capacity(list.len());
        let null = new_null_array(field.data_type(), 1);
        for i in 0..list.len() {
            if list.is_null(i) || list.value_length(i) == 0 {
                pieces.push(Arc::clone(&null));
                lens.push(1);
            } else {
                let v = list.value(i);
                lens.push(v.len());
                pieces.push(v);
            }
        }
        let refs: Vec<&dyn Array> = pieces.iter().map(|p| p.as_ref()).collect();
        let values = if refs.is_empty() {
            arrow::array::new_empty_array(field.data_type())
        } else {
            arrow::compute::concat(&refs)?
        };
        let field = Arc::new(Field::new(field.name(), field.data_type().clone(), true));
        let out = arrow::array::ListArray::try_new(
            field,
            OffsetBuffer::from_lengths(lens),
            values,
            None,
        )?;
        let out: ArrayRef = Arc::new(out);
        if is_scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Ordinals {
    signature: Signature,
}

impl ScalarUDFImpl for Ordinals {
    fn name(&self) -> &str {
        "hg_unnest_ordinals"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::new_list(DataType::Int64, true))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let outer = match args.args.first() {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(b)))) => *b,
            _ => return exec_err!("hg_unnest_ordinals needs a constant flag"),
        };
        let rows = if all_scalar { 1 } else { args.number_rows };
        let mut longest = vec![0usize; rows];
        for a in &args.args[1..] {
            let a = a.to_array(rows)?;
            for (l, n) in longest.iter_mut().zip(lengths(&a)?) {
                *l = (*l).max(n);
            }
        }
        let mut b = ListBuilder::new(Int64Builder::new());
        for n in longest {
            if n == 0 {
                if outer {
                    b.values().append_null();
                    b.append(true);
                } else {
                    b.append(false);
                }
            } else {
                for k in 1..=n as i64 {
                    b.values().append_value(k);
                }
                b.append(true);
            }
        }
        let out: ArrayRef = Arc::new(b.finish());
        if all_scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}
