//! Trino's map aggregates — `histogram(x)`, `map_agg(k, v)`, `multimap_agg(k, v)`,
//! `map_union(m)` — producing Arrow maps, and `element_at` over maps and arrays.
//!
//! Choices where Trino leaves the result open (documented in docs/protocols/timestream.md):
//! * a map's entries are in ascending key order (Trino's order is its hash order);
//! * `map_agg` / `map_union` keep, for a key seen more than once, the smallest of its values (NULL
//!   last), so the answer does not depend on the order rows arrive in;
//! * `multimap_agg` keeps a key's values in the order the rows arrive in;
//! * NULL keys (and NULL maps for `map_union`) are skipped; no input (or only NULL keys) gives
//!   NULL.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{new_empty_array, Array, ArrayRef, AsArray, MapArray, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

pub fn udafs() -> Vec<AggregateUDF> {
    [Kind::Histogram, Kind::MapAgg, Kind::Multimap, Kind::Union]
        .into_iter()
        .map(|kind| {
            AggregateUDF::new_from_impl(MapAggregate {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

/// `element_at(map, key)` (the value, NULL when the key is missing) and `element_at(array, i)`
/// (1-based, negative from the end, NULL out of range), as in Trino.
pub fn element_at() -> ScalarUDF {
    ScalarUDF::new_from_impl(ElementAt {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Histogram,
    MapAgg,
    Multimap,
    Union,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Histogram => "histogram",
            Kind::MapAgg => "map_agg",
            Kind::Multimap => "multimap_agg",
            Kind::Union => "map_union",
        }
    }
    fn arity(self) -> usize {
        match self {
            Kind::Histogram | Kind::Union => 1,
            Kind::MapAgg | Kind::Multimap => 2,
        }
    }
}

/// Dictionary-encoded values are aggregated as their value type.
fn plain(t: &DataType) -> DataType {
    match t {
        DataType::Dictionary(_, v) => plain(v),
        other => other.clone(),
    }
}

/// The map type with `key` and `value` (`entries: Struct<key NOT NULL, value>`).
pub fn map_type(key: &DataType, value: &DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key.clone(), false),
        Field::new("value", value.clone(), true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

/// (key type, value type) of a map type.
fn map_parts(t: &DataType) -> Option<(DataType, DataType)> {
    let DataType::Map(field, _) = t else {
        return None;
    };
    let DataType::Struct(fields) = field.data_type() else {
        return None;
    };
    Some((
        fields.first()?.data_type().clone(),
        fields.get(1)?.data_type().clone(),
    ))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MapAggregate {
    kind: Kind,
    signature: Signature,
}

impl MapAggregate {
    /// (key type, type of the map's values, type of one input value) for the input types.
    fn types(&self, input: &[DataType]) -> Result<(DataType, DataType, DataType)> {
        let first = input.first().map(plain).unwrap_or(DataType::Null);
        Ok(match self.kind {
            Kind::Histogram => (first, DataType::Int64, DataType::Int64),
            Kind::MapAgg => {
                let v = input.get(1).map(plain).unwrap_or(DataType::Null);
                (first, v.clone(), v)
            }
            Kind::Multimap => {
                let v = input.get(1).map(plain).unwrap_or(DataType::Null);
                (first, DataType::new_list(v.clone(), true), v)
            }
            Kind::Union => match map_parts(&first) {
                Some((k, v)) => (k, v.clone(), v),
                None => return plan_err!("map_union takes a map, got {first}"),
            },
        })
    }
}

impl AggregateUDFImpl for MapAggregate {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.kind.arity() {
            return plan_err!(
                "{} takes {} argument(s), got {}",
                self.kind.name(),
                self.kind.arity(),
                arg_types.len()
            );
        }
        if self.kind == Kind::Union && !matches!(arg_types[0], DataType::Map(_, _)) {
            return plan_err!("map_union takes a map, got {}", arg_types[0]);
        }
        Ok(arg_types.iter().map(plain).collect())
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let (k, v, _) = self.types(arg_types)?;
        Ok(map_type(&k, &v))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let input: Vec<DataType> = args
            .input_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let (k, v, _) = self.types(&input)?;
        Ok(vec![
            Arc::new(Field::new("keys", DataType::new_list(k, true), true)),
            Arc::new(Field::new("values", DataType::new_list(v, true), true)),
        ])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input: Vec<DataType> = args
            .expr_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let (key_type, value_type, element_type) = self.types(&input)?;
        Ok(Box::new(MapAcc {
            kind: self.kind,
            key_type,
            value_type,
            element_type,
            keys: Vec::new(),
            values: Vec::new(),
            index: HashMap::new(),
        }))
    }
}

#[derive(Debug)]
struct MapAcc {
    kind: Kind,
    key_type: DataType,
    /// The type of the map's values.
    value_type: DataType,
    /// The type of one aggregated value (a multimap's list element).
    element_type: DataType,
    keys: Vec<ScalarValue>,
    /// Per key: its count (histogram), its value (map_agg, map_union) or its values (multimap).
    values: Vec<Vec<ScalarValue>>,
    index: HashMap<ScalarValue, usize>,
}

/// `a` replaces `b` as a key's value: the smaller one wins, NULL last.
fn smaller(a: &ScalarValue, b: &ScalarValue) -> bool {
    match (a.is_null(), b.is_null()) {
        (false, true) => true,
        (_, false) if !a.is_null() => a.partial_cmp(b) == Some(std::cmp::Ordering::Less),
        _ => false,
    }
}

impl MapAcc {
    fn slot(&mut self, key: ScalarValue) -> (usize, bool) {
        if let Some(&i) = self.index.get(&key) {
            return (i, false);
        }
        let i = self.keys.len();
        self.index.insert(key.clone(), i);
        self.keys.push(key);
        self.values.push(Vec::new());
        (i, true)
    }

    fn count(&mut self, key: ScalarValue, n: i64) {
        let (i, _) = self.slot(key);
        let v = &mut self.values[i];
        match v.first_mut() {
            Some(ScalarValue::Int64(Some(c))) => *c += n,
            _ => *v = vec![ScalarValue::Int64(Some(n))],
        }
    }

    fn value(&mut self, key: ScalarValue, value: ScalarValue) {
        let (i, new) = self.slot(key);
        let v = &mut self.values[i];
        if self.kind == Kind::Multimap {
            v.push(value);
        } else if new || v.first().is_some_and(|old| smaller(&value, old)) {
            *v = vec![value];
        }
    }

    /// Adds `keys[i]` → `values[i]` for each non-NULL key (a value per key, or a count for
    /// histograms when `counts`).
    fn add_pairs(
        &mut self,
        keys: &dyn Array,
        values: Option<&dyn Array>,
        counts: bool,
    ) -> Result<()> {
        for i in 0..keys.len() {
            if keys.is_null(i) {
                continue;
            }
            let key = ScalarValue::try_from_array(keys, i)?;
            match values {
                None => self.count(key, 1),
                Some(values) => {
                    let value = ScalarValue::try_from_array(values, i)?;
                    if counts {
                        if let ScalarValue::Int64(Some(n)) = value {
                            self.count(key, n);
                        }
                    } else if self.kind == Kind::Multimap {
                        // A state's value is the list of the key's values.
                        if let ScalarValue::List(list) = &value {
                            if !list.is_null(0) {
                                let items = list.value(0);
                                for j in 0..items.len() {
                                    self.value(
                                        key.clone(),
                                        ScalarValue::try_from_array(&items, j)?,
                                    );
                                }
                            }
                        } else {
                            self.value(key, value);
                        }
                    } else {
                        self.value(key, value);
                    }
                }
            }
        }
        Ok(())
    }

    /// The entries in ascending key order.
    fn sorted(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by(|&a, &b| {
            self.keys[a]
                .partial_cmp(&self.keys[b])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        order
    }

    /// The value of entry `i` in the map's value type.
    fn entry_value(&self, i: usize) -> ScalarValue {
        let v = &self.values[i];
        match self.kind {
            Kind::Multimap => {
                ScalarValue::List(ScalarValue::new_list_nullable(v, &self.element_type))
            }
            _ => v.first().cloned().unwrap_or(ScalarValue::Null),
        }
    }
}

fn to_array(values: Vec<ScalarValue>, t: &DataType) -> Result<ArrayRef> {
    if values.is_empty() {
        return Ok(new_empty_array(t));
    }
    let a = ScalarValue::iter_to_array(values)?;
    if a.data_type() == t {
        Ok(a)
    } else {
        Ok(arrow::compute::cast(&a, t)?)
    }
}

/// A one-row map of `keys` → `values` (NULL when `keys` is empty).
fn map_scalar(
    t: &DataType,
    keys: Vec<ScalarValue>,
    values: Vec<ScalarValue>,
) -> Result<ScalarValue> {
    let DataType::Map(field, _) = t else {
        return exec_err!("not a map type: {t}");
    };
    let DataType::Struct(fields) = field.data_type() else {
        return exec_err!("not a map type: {t}");
    };
    let nulls = keys.is_empty().then(|| NullBuffer::new_null(1));
    let n = keys.len();
    let k = to_array(keys, fields[0].data_type())?;
    let v = to_array(values, fields[1].data_type())?;
    let entries = StructArray::try_new(fields.clone(), vec![k, v], None)?;
    let map = MapArray::try_new(
        Arc::clone(field),
        OffsetBuffer::from_lengths([n]),
        entries,
        nulls,
        false,
    )?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

impl Accumulator for MapAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match self.kind {
            Kind::Histogram => self.add_pairs(values[0].as_ref(), None, false),
            Kind::MapAgg | Kind::Multimap => {
                let keys = arrow::compute::cast(&values[0], &self.key_type)?;
                let vals = arrow::compute::cast(&values[1], &self.element_type)?;
                self.add_pairs(keys.as_ref(), Some(vals.as_ref()), false)
            }
            Kind::Union => {
                let Some(maps) = values[0].as_map_opt() else {
                    return exec_err!("map_union takes a map, got {}", values[0].data_type());
                };
                for row in 0..maps.len() {
                    if maps.is_null(row) {
                        continue;
                    }
                    let entries = maps.value(row);
                    self.add_pairs(
                        entries.column(0).as_ref(),
                        Some(entries.column(1).as_ref()),
                        false,
                    )?;
                }
                Ok(())
            }
        }
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let keys = states[0].as_list::<i32>();
        let values = states[1].as_list::<i32>();
        for row in 0..keys.len() {
            if keys.is_null(row) || values.is_null(row) {
                continue;
            }
            let (k, v) = (keys.value(row), values.value(row));
            self.add_pairs(k.as_ref(), Some(v.as_ref()), self.kind == Kind::Histogram)?;
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = (0..self.keys.len()).map(|i| self.entry_value(i)).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&self.keys, &self.key_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.value_type)),
        ])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let order = self.sorted();
        let keys = order.iter().map(|&i| self.keys[i].clone()).collect();
        let values = order.iter().map(|&i| self.entry_value(i)).collect();
        map_scalar(&map_type(&self.key_type, &self.value_type), keys, values)
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.keys.iter().map(|k| k.size() * 2).sum::<usize>()
            + self
                .values
                .iter()
                .flatten()
                .map(ScalarValue::size)
                .sum::<usize>()
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementAt {
    signature: Signature,
}

impl ScalarUDFImpl for ElementAt {
    fn name(&self) -> &str {
        "element_at"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [m @ DataType::Map(_, _), _] => {
                let (k, _) = map_parts(m).unwrap_or((DataType::Null, DataType::Null));
                Ok(vec![m.clone(), k])
            }
            [a @ (DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _)), i]
                if i.is_integer() || i.is_null() =>
            {
                Ok(vec![a.clone(), DataType::Int64])
            }
            _ => {
                let got: Vec<String> = arg_types.iter().map(|t| t.to_string()).collect();
                plan_err!(
                    "Unexpected parameters ({}) for function element_at. Expected: \
                     element_at(array(E), bigint) or element_at(map(K, V), K)",
                    got.join(", ")
                )
            }
        }
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(m @ DataType::Map(_, _)) => {
                Ok(map_parts(m).map(|(_, v)| v).unwrap_or(DataType::Null))
            }
            Some(DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
                Ok(f.data_type().clone())
            }
            other => plan_err!("element_at takes an array or a map, got {other:?}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::functions_nested::extract::array_element_udf;
        use datafusion::functions_nested::map_extract::map_extract_udf;
        if !matches!(args.arg_fields[0].data_type(), DataType::Map(_, _)) {
            return array_element_udf().invoke_with_args(args);
        }
        // map_extract(m, k) is the list [value] (empty without the key); its first element.
        let value_field = Arc::clone(&args.return_field);
        let list_field: FieldRef = Arc::new(Field::new(
            "map_extract",
            DataType::new_list(value_field.data_type().clone(), true),
            true,
        ));
        let ScalarFunctionArgs {
            args: values,
            arg_fields,
            number_rows,
            config_options,
            ..
        } = args;
        let extracted = map_extract_udf().invoke_with_args(ScalarFunctionArgs {
            args: values,
            arg_fields,
            number_rows,
            return_field: Arc::clone(&list_field),
            config_options: Arc::clone(&config_options),
        })?;
        array_element_udf().invoke_with_args(ScalarFunctionArgs {
            args: vec![
                extracted,
                ColumnarValue::Scalar(ScalarValue::Int64(Some(1))),
            ],
            arg_fields: vec![list_field, Arc::new(Field::new("i", DataType::Int64, true))],
            number_rows,
            return_field: value_field,
            config_options,
        })
    }
}
