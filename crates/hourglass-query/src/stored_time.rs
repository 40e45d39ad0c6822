//! Reading Parquet files that store `time` in milliseconds or microseconds
//! ([`hourglass_storage::stored_time_unit`]) as the nanoseconds the table declares, with
//! comparisons against constants kept exact.
//!
//! DataFusion adapts a scan's predicate and projection to each file's schema: where a file's
//! column type differs from the table's it reads `CAST(time AS Timestamp(ns))`. Its simplifier
//! then moves such a cast from the column to the constant (`unwrap_cast_in_comparison`), and for
//! timestamps it truncates the constant to the coarser unit: `time < 1.5 ms` (in nanoseconds)
//! would become `time_ms < 1`, which drops the row at 1 ms; `time = 1.5 ms` would match it.
//! That happens in the row filter as well as in pruning, so it would be a wrong answer.
//!
//! [`StoredTimeAdapterFactory`] wraps DataFusion's adapter and, on files whose `time` is stored
//! coarser than the table's nanoseconds, rewrites what it produced:
//! - `time <op> constant` (`<`, `<=`, `>`, `>=`, and `=`/`<>` with a constant the stored unit
//!   holds exactly) becomes the same comparison in the stored unit with the constant rounded the
//!   way that keeps it exact: `t·f < c ⇔ t < ⌈c/f⌉`, `t·f ≤ c ⇔ t ≤ ⌊c/f⌋`,
//!   `t·f > c ⇔ t > ⌊c/f⌋`, `t·f ≥ c ⇔ t ≥ ⌈c/f⌉`. These are plain column comparisons, so row
//!   group statistics and page indexes prune with them.
//! - every other use of `time` reads it through [`StoredTimeToNanos`], a conversion the
//!   simplifier does not know and so cannot move.
//!
//! The rule `stored_time_unit` switched off ([`crate::rules`]) leaves only the conversion: the
//! same answers, without pruning by `time` inside such files.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal, TryCastExpr};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::scalar::ScalarValue;
use hourglass_core::TIME_COLUMN;
use hourglass_storage::stored_time_unit::{column_to_nanos, nanos_per};

/// DataFusion's expression adapter, with `time` stored in a coarser unit read exactly.
#[derive(Debug)]
pub struct StoredTimeAdapterFactory {
    /// Whether comparisons with constants are rewritten into the stored unit (the rule
    /// `stored_time_unit`); otherwise every use goes through [`StoredTimeToNanos`].
    pub exact_comparisons: bool,
}

impl PhysicalExprAdapterFactory for StoredTimeAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> DfResult<Arc<dyn PhysicalExprAdapter>> {
        let inner = DefaultPhysicalExprAdapterFactory
            .create(logical_file_schema.clone(), physical_file_schema.clone())?;
        let time_type = |schema: &Schema| {
            schema
                .field_with_name(TIME_COLUMN)
                .map(|f| f.data_type().clone())
                .ok()
        };
        match (
            time_type(&logical_file_schema),
            time_type(&physical_file_schema),
        ) {
            (
                Some(DataType::Timestamp(TimeUnit::Nanosecond, _)),
                Some(stored_type @ DataType::Timestamp(unit, _)),
            ) if unit != TimeUnit::Nanosecond => Ok(Arc::new(StoredTimeAdapter {
                inner,
                nanos_per_unit: nanos_per(unit),
                stored_type,
                exact_comparisons: self.exact_comparisons,
            })),
            _ => Ok(inner),
        }
    }
}

/// The adapter for one file whose `time` is stored `nanos_per_unit` nanoseconds per unit.
#[derive(Debug)]
struct StoredTimeAdapter {
    inner: Arc<dyn PhysicalExprAdapter>,
    nanos_per_unit: i64,
    /// The file's `time` type (`Timestamp(Millisecond | Microsecond, tz)`).
    stored_type: DataType,
    exact_comparisons: bool,
}

impl PhysicalExprAdapter for StoredTimeAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> DfResult<Arc<dyn PhysicalExpr>> {
        self.inner
            .rewrite(expr)?
            .transform_down(|node| {
                if self.exact_comparisons {
                    if let Some(exact) = self.exact_comparison(&node) {
                        return Ok(Transformed::new(exact, true, TreeNodeRecursion::Jump));
                    }
                }
                match stored_time_cast(&node) {
                    Some((column, target)) => Ok(Transformed::yes(Arc::new(StoredTimeToNanos {
                        stored: Arc::new(column.clone()),
                        target: target.clone(),
                    }))),
                    None => Ok(Transformed::no(node)),
                }
            })
            .data()
    }
}

impl StoredTimeAdapter {
    /// `CAST(time) <op> constant` (either side) as an exact comparison in the stored unit, or
    /// `None` when the node is not one or the comparison cannot be kept exact.
    fn exact_comparison(&self, node: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
        let binary = node.downcast_ref::<BinaryExpr>()?;
        let (column, nanos, op) = match (
            stored_time_cast(binary.left()),
            binary.right().downcast_ref::<Literal>(),
            stored_time_cast(binary.right()),
            binary.left().downcast_ref::<Literal>(),
        ) {
            (Some((column, _)), Some(lit), _, _) => (column, lit.value(), *binary.op()),
            (_, _, Some((column, _)), Some(lit)) => (column, lit.value(), binary.op().swap()?),
            _ => return None,
        };
        let ScalarValue::TimestampNanosecond(Some(c), _) = nanos else {
            return None;
        };
        let per = self.nanos_per_unit as i128;
        let floor = (*c as i128).div_euclid(per);
        let exact = (*c as i128).rem_euclid(per) == 0;
        let ceil = if exact { floor } else { floor + 1 };
        let bound = match op {
            Operator::Lt | Operator::GtEq => ceil,
            Operator::LtEq | Operator::Gt => floor,
            Operator::Eq | Operator::NotEq if exact => floor,
            _ => return None,
        };
        // The bound is within i64 (it is `c` divided by at least 1,000).
        let bound = i64::try_from(bound).ok()?;
        let constant = match &self.stored_type {
            DataType::Timestamp(TimeUnit::Millisecond, tz) => {
                ScalarValue::TimestampMillisecond(Some(bound), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                ScalarValue::TimestampMicrosecond(Some(bound), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Second, tz) => {
                ScalarValue::TimestampSecond(Some(bound), tz.clone())
            }
            _ => return None,
        };
        Some(Arc::new(BinaryExpr::new(
            Arc::new(column.clone()),
            op,
            Arc::new(Literal::new(constant)),
        )))
    }
}

/// `CAST(time AS Timestamp(Nanosecond))` over the file's `time` column (as DataFusion's adapter
/// writes it): the column and the cast's type.
fn stored_time_cast(expr: &Arc<dyn PhysicalExpr>) -> Option<(&Column, &DataType)> {
    let (inner, target) = if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        (cast.expr(), cast.cast_type())
    } else if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
        (cast.expr(), cast.cast_type())
    } else {
        return None;
    };
    let column = inner.downcast_ref::<Column>()?;
    (column.name() == TIME_COLUMN && matches!(target, DataType::Timestamp(TimeUnit::Nanosecond, _)))
        .then_some((column, target))
}

/// The file's `time` column converted to the table's nanoseconds: a cast DataFusion's
/// simplifier does not recognise, so it never moves it onto a constant (see the module doc).
/// The conversion is the storage layer's ([`column_to_nanos`]).
#[derive(Debug, Eq)]
pub struct StoredTimeToNanos {
    stored: Arc<dyn PhysicalExpr>,
    target: DataType,
}

impl PartialEq for StoredTimeToNanos {
    fn eq(&self, other: &Self) -> bool {
        self.stored.eq(&other.stored) && self.target == other.target
    }
}

impl Hash for StoredTimeToNanos {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.stored.hash(state);
        self.target.hash(state);
    }
}

impl fmt::Display for StoredTimeToNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored_time_to_nanos({})", self.stored)
    }
}

impl PhysicalExpr for StoredTimeToNanos {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(self.target.clone())
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.stored.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        match self.stored.evaluate(batch)? {
            ColumnarValue::Array(array) => {
                let nanos = column_to_nanos(&array)
                    .map_err(|e| DataFusionError::Execution(e.to_string()))?;
                if nanos.data_type() == &self.target {
                    Ok(ColumnarValue::Array(nanos))
                } else {
                    Ok(ColumnarValue::Array(arrow::compute::cast(
                        &nanos,
                        &self.target,
                    )?))
                }
            }
            ColumnarValue::Scalar(value) => Ok(ColumnarValue::Scalar(value.cast_to(&self.target)?)),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.stored]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(StoredTimeToNanos {
            stored: children[0].clone(),
            target: self.target.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored_time_to_nanos(")?;
        self.stored.fmt_sql(f)?;
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests;
