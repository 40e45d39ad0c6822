//! Comparisons of `time` with constants next to every stored time, through the adapter and
//! DataFusion's simplifier as a Parquet scan applies them, against the same comparison on the
//! nanoseconds.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use arrow::array::{
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{in_list, BinaryExpr, Column, Literal};
use datafusion::physical_expr::{PhysicalExpr, PhysicalExprSimplifier};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapterFactory,
};
use datafusion::scalar::ScalarValue;

use super::*;

const OPS: [Operator; 6] = [
    Operator::Lt,
    Operator::LtEq,
    Operator::Gt,
    Operator::GtEq,
    Operator::Eq,
    Operator::NotEq,
];

/// The table's schema: `time` in nanoseconds, second.
fn logical() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("host", DataType::Utf8, true),
        Field::new(
            TIME_COLUMN,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
    ]))
}

/// A file's schema and rows: `time` first, in `unit`.
fn file(unit: TimeUnit, stored: &[i64]) -> (SchemaRef, RecordBatch) {
    let time: ArrayRef = match unit {
        TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(stored.to_vec())),
        TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(stored.to_vec())),
        _ => Arc::new(TimestampNanosecondArray::from(stored.to_vec())),
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new(TIME_COLUMN, DataType::Timestamp(unit, None), false),
        Field::new("host", DataType::Utf8, true),
    ]));
    let hosts: ArrayRef = Arc::new(StringArray::from_iter_values(
        stored.iter().map(|t| format!("h{t}")),
    ));
    let batch = RecordBatch::try_new(schema.clone(), vec![time, hosts]).unwrap();
    (schema, batch)
}

/// The same rows as the table holds them.
fn table_rows(stored: &[i64], per: i64) -> RecordBatch {
    let hosts: ArrayRef = Arc::new(StringArray::from_iter_values(
        stored.iter().map(|t| format!("h{t}")),
    ));
    let time: ArrayRef = Arc::new(TimestampNanosecondArray::from(
        stored.iter().map(|t| t * per).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(logical(), vec![hosts, time]).unwrap()
}

fn time_column() -> Arc<dyn PhysicalExpr> {
    Arc::new(Column::new(TIME_COLUMN, 1))
}

fn nanos(c: i64) -> Arc<dyn PhysicalExpr> {
    Arc::new(Literal::new(ScalarValue::TimestampNanosecond(
        Some(c),
        None,
    )))
}

/// `expr` as a Parquet scan evaluates it on a file: adapted, then simplified.
fn on_file(
    factory: &dyn PhysicalExprAdapterFactory,
    file_schema: &SchemaRef,
    expr: Arc<dyn PhysicalExpr>,
) -> Arc<dyn PhysicalExpr> {
    let adapter = factory.create(logical(), file_schema.clone()).unwrap();
    PhysicalExprSimplifier::new(file_schema)
        .simplify(adapter.rewrite(expr).unwrap())
        .unwrap()
}

fn truth(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> BooleanArray {
    let value = expr
        .evaluate(batch)
        .unwrap()
        .into_array(batch.num_rows())
        .unwrap();
    value
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap()
        .clone()
}

/// Constants at, one nanosecond beside and half a unit beside each stored time.
fn constants(stored: &[i64], per: i64) -> Vec<i64> {
    stored
        .iter()
        .flat_map(|t| {
            let c = t * per;
            [
                c - per - 1,
                c - per / 2,
                c - 1,
                c,
                c + 1,
                c + per / 2,
                c + per - 1,
            ]
        })
        .collect()
}

#[test]
fn comparisons_with_constants_answer_as_on_the_nanoseconds() {
    let stored = [
        -2_001,
        -2_000,
        -1,
        0,
        1,
        2,
        999,
        1_000,
        1_001,
        1_700_000_000_123,
    ];
    for unit in [TimeUnit::Millisecond, TimeUnit::Microsecond] {
        let per = nanos_per(unit);
        let (schema, batch) = file(unit, &stored);
        let table = table_rows(&stored, per);
        for exact_comparisons in [true, false] {
            let factory = StoredTimeAdapterFactory { exact_comparisons };
            for c in constants(&stored, per) {
                for op in OPS {
                    for constant_left in [false, true] {
                        let expr: Arc<dyn PhysicalExpr> = if constant_left {
                            Arc::new(BinaryExpr::new(nanos(c), op.swap().unwrap(), time_column()))
                        } else {
                            Arc::new(BinaryExpr::new(time_column(), op, nanos(c)))
                        };
                        let adapted = on_file(&factory, &schema, expr.clone());
                        assert_eq!(
                            truth(&adapted, &batch),
                            truth(&expr, &table),
                            "{expr} as {adapted} on {unit:?} (exact comparisons {exact_comparisons})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn range_comparisons_become_plain_comparisons_of_the_stored_column() {
    let (schema, _) = file(TimeUnit::Millisecond, &[1]);
    let factory = StoredTimeAdapterFactory {
        exact_comparisons: true,
    };
    for op in [Operator::Lt, Operator::LtEq, Operator::Gt, Operator::GtEq] {
        let expr: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(time_column(), op, nanos(1_500_000)));
        let adapted = on_file(&factory, &schema, expr);
        let binary = adapted.downcast_ref::<BinaryExpr>().expect("a comparison");
        let column = binary
            .left()
            .downcast_ref::<Column>()
            .expect("the stored column");
        assert_eq!((column.name(), column.index()), (TIME_COLUMN, 0));
        let constant = binary
            .right()
            .downcast_ref::<Literal>()
            .expect("a constant");
        let rounded = if matches!(op, Operator::Lt | Operator::GtEq) {
            2
        } else {
            1
        };
        assert_eq!(
            constant.value(),
            &ScalarValue::TimestampMillisecond(Some(rounded), None)
        );
    }
    // Switched off, the column is converted before it is compared.
    let off = StoredTimeAdapterFactory {
        exact_comparisons: false,
    };
    let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
        time_column(),
        Operator::Lt,
        nanos(1_500_000),
    ));
    let adapted = on_file(&off, &schema, expr);
    assert!(
        adapted.to_string().contains("stored_time_to_nanos(time@0)"),
        "{adapted}"
    );
}

#[test]
fn datafusion_alone_truncates_the_constant() {
    // Why this module exists: DataFusion's adapter and simplifier answer `time < 1.5 ms` on a
    // millisecond file without the row at 1 ms. If this starts to pass through, DataFusion has
    // fixed it and the exact comparisons may be left to it.
    let stored = [0, 1, 2];
    let (schema, batch) = file(TimeUnit::Millisecond, &stored);
    let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
        time_column(),
        Operator::Lt,
        nanos(1_500_000),
    ));
    let datafusion = on_file(&DefaultPhysicalExprAdapterFactory, &schema, expr.clone());
    assert_eq!(
        truth(&expr, &table_rows(&stored, 1_000_000)),
        BooleanArray::from(vec![true, true, false])
    );
    assert_eq!(
        truth(&datafusion, &batch),
        BooleanArray::from(vec![true, false, false])
    );
}

#[test]
fn other_uses_of_time_read_nanoseconds() {
    let stored = [-3, 0, 7, 1_700_000_000_123];
    let (schema, batch) = file(TimeUnit::Millisecond, &stored);
    let table = table_rows(&stored, 1_000_000);
    for exact_comparisons in [true, false] {
        let factory = StoredTimeAdapterFactory { exact_comparisons };
        // The projected column.
        let projected = on_file(&factory, &schema, time_column());
        let values = projected
            .evaluate(&batch)
            .unwrap()
            .into_array(batch.num_rows())
            .unwrap();
        assert_eq!(values.as_ref(), table.column(1).as_ref());
        assert_eq!(
            values.data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, None)
        );
        // IN lists, with and without constants the stored unit can hold.
        for list in [vec![7_000_000, 7_000_001], vec![-3_000_000], vec![1, 2]] {
            let expr = in_list(
                time_column(),
                list.iter().map(|c| nanos(*c)).collect(),
                &false,
                &logical(),
            )
            .unwrap();
            let adapted = on_file(&factory, &schema, expr.clone());
            assert_eq!(
                truth(&adapted, &batch),
                truth(&expr, &table),
                "{expr} as {adapted}"
            );
        }
        // A comparison of two uses of time.
        let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            time_column(),
            Operator::GtEq,
            time_column(),
        ));
        let adapted = on_file(&factory, &schema, expr.clone());
        assert_eq!(truth(&adapted, &batch), truth(&expr, &table));
    }
}

#[test]
fn files_in_nanoseconds_get_datafusions_adapter() {
    let (schema, batch) = file(TimeUnit::Nanosecond, &[5, 6]);
    let factory = StoredTimeAdapterFactory {
        exact_comparisons: true,
    };
    let expr: Arc<dyn PhysicalExpr> =
        Arc::new(BinaryExpr::new(time_column(), Operator::Gt, nanos(5)));
    let adapted = on_file(&factory, &schema, expr);
    assert_eq!(adapted.to_string(), "time@0 > 5");
    assert_eq!(
        truth(&adapted, &batch),
        BooleanArray::from(vec![false, true])
    );
}
