//! `hg_row_field(row, i)`: the `i`-th field of a struct (0-based, `i` a literal). Used by the
//! UNNEST rewrite to name the columns of unnested rows (`AS t(time, value)`) by position.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct RowField {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(RowField {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

fn index(v: Option<&ScalarValue>) -> Option<usize> {
    match v? {
        ScalarValue::Int64(Some(i)) => usize::try_from(*i).ok(),
        ScalarValue::Int32(Some(i)) => usize::try_from(*i).ok(),
        ScalarValue::UInt64(Some(i)) => usize::try_from(*i).ok(),
        _ => None,
    }
}

impl ScalarUDFImpl for RowField {
    fn name(&self) -> &str {
        "hg_row_field"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("hg_row_field: return_field_from_args is used")
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some(i) = index(args.scalar_arguments.get(1).copied().flatten()) else {
            return plan_err!("hg_row_field needs a literal field index");
        };
        match args.arg_fields.first().map(|f| f.data_type()) {
            Some(DataType::Struct(fields)) => match fields.get(i) {
                Some(f) => Ok(std::sync::Arc::new(Field::new(
                    f.name(),
                    f.data_type().clone(),
                    true,
                ))),
                None => plan_err!("the row has only {} fields, not {}", fields.len(), i + 1),
            },
            Some(other) => plan_err!(
                "UNNEST into several columns (or into time and value, when no column names are \
                 given) needs an array of rows or a timeseries, got elements of type {other}"
            ),
            None => plan_err!("hg_row_field takes a row"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let i = match args.args.get(1) {
            Some(ColumnarValue::Scalar(s)) => index(Some(s)),
            _ => None,
        };
        let Some(i) = i else {
            return exec_err!("hg_row_field needs a literal field index");
        };
        let rows = match args.args.first() {
            Some(a) => a.to_array(args.number_rows)?,
            None => return exec_err!("hg_row_field takes a row"),
        };
        let s = rows.as_struct();
        let column = s.column(i).clone();
        // A NULL row has NULL fields.
        let out = match s.nulls() {
            Some(nulls) if nulls.null_count() > 0 => {
                let mask = arrow::array::BooleanArray::new(nulls.inner().clone(), None);
                arrow::compute::nullif(&column, &arrow::compute::not(&mask)?)?
            }
            _ => column,
        };
        Ok(ColumnarValue::Array(out))
    }
}
