//! Management operations: databases, tables, tags and endpoints (both SDK services).
//!
//! Databases and tables are the catalog's. What only Timestream has (KMS key, tags, partition
//! keys, the rejected-data location, the memory-window floor after a retention increase) is kept
//! in the entries' `extra["timestream"]`.

use hourglass_auth::Principal;
use hourglass_core::TableProperties;
use hourglass_storage::{DatabaseDef, TableDef};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::arn::{self, Resource};
use crate::protocol::{
    check_enum, check_length, check_range, constraint_error, decode, epoch_seconds, required,
    ApiError,
};
use crate::Service;

/// Key of the Timestream metadata in `DatabaseDef::extra` / `TableDef::extra`.
pub const EXTRA_KEY: &str = "timestream";
/// How many databases or tables a List call returns at most.
const MAX_PAGE: usize = 20;
/// Tags on one resource (model).
pub const MAX_TAGS: usize = 200;
const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

fn to_body(v: Value) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&v).map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

/// The Timestream metadata of a catalog entry.
pub fn meta(extra: &Map<String, Value>) -> Option<&Map<String, Value>> {
    extra.get(EXTRA_KEY).and_then(Value::as_object)
}

fn meta_mut(extra: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let entry = extra
        .entry(EXTRA_KEY.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

// ---------------------------------------------------------------------------------------------
// Names

/// A name for CreateDatabase / CreateTable: required, `[a-zA-Z0-9_.-]+`, 1..=256 bytes, and a
/// valid Hourglass name.
fn create_name(value: Option<&str>, path: &str, what: &str) -> Result<String, ApiError> {
    let v = value.ok_or_else(|| required(path))?;
    check_length(v, path, 1, Some(256))?;
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(constraint_error(
            Some(v),
            path,
            &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
        ));
    }
    if what == "database" {
        hourglass_core::names::validate_database_name(v)?;
    } else {
        hourglass_core::names::validate_object_name(what, v)?;
    }
    Ok(v.to_string())
}

/// A name of an existing resource (any string; must be present).
fn existing_name(value: Option<String>, path: &str) -> Result<String, ApiError> {
    let v = value.ok_or_else(|| required(path))?;
    check_length(&v, path, 1, None)?;
    Ok(v)
}

pub fn database_not_found(db: &str) -> ApiError {
    ApiError::not_found(format!("The database {db} does not exist."))
}

pub fn table_not_found(db: &str, table: &str) -> ApiError {
    ApiError::not_found(format!(
        "The table {table} does not exist in database {db}."
    ))
}

// ---------------------------------------------------------------------------------------------
// Shapes

fn database_json(svc: &Service, db: &DatabaseDef) -> Value {
    let kms = meta(&db.extra)
        .and_then(|m| m.get("kms_key_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| default_kms_key(svc));
    json!({
        "Arn": arn::database_arn(&svc.region, &svc.account_id, &db.name),
        "DatabaseName": db.name,
        "TableCount": db.tables.len(),
        "KmsKeyId": kms,
        "CreationTime": epoch_seconds(db.created_at),
        "LastUpdatedTime": epoch_seconds(db.updated_at),
    })
}

fn default_kms_key(svc: &Service) -> String {
    format!(
        "arn:aws:kms:{}:{}:alias/aws/timestream",
        svc.region, svc.account_id
    )
}

/// The default partition key: by measure name.
pub fn default_schema() -> Value {
    json!({"CompositePartitionKey": [{"Type": "MEASURE"}]})
}

pub fn table_schema_json(def: &TableDef) -> Value {
    meta(&def.extra)
        .and_then(|m| m.get("schema"))
        .cloned()
        .unwrap_or_else(default_schema)
}

fn table_json(svc: &Service, db: &str, def: &TableDef) -> Value {
    let p = def.properties;
    let mut magnetic = json!({"EnableMagneticStoreWrites": p.magnetic_writes_enabled});
    if let Some(location) = meta(&def.extra).and_then(|m| m.get("magnetic_rejected_data_location"))
    {
        magnetic["MagneticStoreRejectedDataLocation"] = location.clone();
    }
    json!({
        "Arn": arn::table_arn(&svc.region, &svc.account_id, db, &def.name),
        "TableName": def.name,
        "DatabaseName": db,
        "TableStatus": "ACTIVE",
        "RetentionProperties": {
            "MemoryStoreRetentionPeriodInHours": p.memory_retention_hours,
            "MagneticStoreRetentionPeriodInDays": p.magnetic_retention_days,
        },
        "CreationTime": epoch_seconds(def.created_at),
        "LastUpdatedTime": epoch_seconds(def.updated_at),
        "MagneticStoreWriteProperties": magnetic,
        "Schema": table_schema_json(def),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    key: Option<String>,
    value: Option<String>,
}

/// A request's `Tags` checked against the model (count, lengths, the reserved `aws:` prefix).
pub fn check_tags(tags: &[TagIn], path: &str) -> Result<Vec<(String, String)>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(constraint_error(
            None,
            path,
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    tags.iter()
        .enumerate()
        .map(|(i, t)| {
            let p = format!("{path}.{}.member", i + 1);
            let key = t
                .key
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.key")))?;
            let value = t
                .value
                .as_deref()
                .ok_or_else(|| required(&format!("{p}.value")))?;
            check_length(key, &format!("{p}.key"), 1, Some(128))?;
            check_length(value, &format!("{p}.value"), 0, Some(256))?;
            if key.to_ascii_lowercase().starts_with("aws:") {
                return Err(ApiError::validation(format!(
                    "Tag keys starting with 'aws:' are reserved: '{key}'"
                )));
            }
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

fn tags_of(extra: &Map<String, Value>) -> Vec<(String, String)> {
    meta(extra)
        .and_then(|m| m.get("tags"))
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some((
                        t.get("Key")?.as_str()?.to_string(),
                        t.get("Value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_tags(extra: &mut Map<String, Value>, tags: &[(String, String)]) {
    let m = meta_mut(extra);
    if tags.is_empty() {
        m.remove("tags");
    } else {
        m.insert(
            "tags".into(),
            Value::Array(
                tags.iter()
                    .map(|(k, v)| json!({"Key": k, "Value": v}))
                    .collect(),
            ),
        );
    }
}

/// An UntagResource request's `TagKeys` checked against the model.
pub fn check_tag_keys(keys: &[String]) -> Result<(), ApiError> {
    if keys.len() > MAX_TAGS {
        return Err(constraint_error(
            None,
            "tagKeys",
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    for (i, k) in keys.iter().enumerate() {
        check_length(k, &format!("tagKeys.{}.member", i + 1), 1, Some(128))?;
    }
    Ok(())
}

/// Adds or replaces tags; the result may hold at most 200.
pub fn merge_tags(
    existing: &mut Vec<(String, String)>,
    new: Vec<(String, String)>,
) -> Result<(), ApiError> {
    for (k, v) in new {
        match existing.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => existing.push((k, v)),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(ApiError::quota(format!(
            "A resource can have at most {MAX_TAGS} tags; this would make {}.",
            existing.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Databases

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateDatabaseIn {
    database_name: Option<String>,
    kms_key_id: Option<String>,
    tags: Option<Vec<TagIn>>,
}

pub fn create_database(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: CreateDatabaseIn = decode(body)?;
    let name = create_name(req.database_name.as_deref(), "databaseName", "database")?;
    if let Some(k) = &req.kms_key_id {
        check_length(k, "kmsKeyId", 1, Some(2048))?;
    }
    let tags = check_tags(req.tags.as_deref().unwrap_or(&[]), "tags")?;
    let now = svc.engine.clock.now_nanos();
    let db = svc.engine.catalog.update(|s| {
        if s.databases.contains_key(&name) {
            return Err(hourglass_core::Error::conflict(format!(
                "The database {name} already exists."
            )));
        }
        let mut db = DatabaseDef {
            name: name.clone(),
            created_at: now,
            updated_at: now,
            tables: Default::default(),
            extra: Map::new(),
        };
        if let Some(k) = &req.kms_key_id {
            meta_mut(&mut db.extra).insert("kms_key_id".into(), Value::String(k.clone()));
        }
        set_tags(&mut db.extra, &tags);
        s.databases.insert(name.clone(), db.clone());
        Ok(db)
    })?;
    to_body(json!({"Database": database_json(svc, &db)}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DatabaseIn {
    database_name: Option<String>,
}

pub fn describe_database(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: DatabaseIn = decode(body)?;
    let name = existing_name(req.database_name, "databaseName")?;
    let catalog = svc.engine.catalog.snapshot();
    let db = catalog
        .databases
        .get(&name)
        .ok_or_else(|| database_not_found(&name))?;
    to_body(json!({"Database": database_json(svc, db)}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    database_name: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Pagination tokens: the hex of the last key returned.
/// A pagination token after `last` (the last name or ARN of a page).
pub fn encode_token(last: &str) -> String {
    last.bytes().map(|b| format!("{b:02x}")).collect()
}

/// What [`encode_token`] made, or "Invalid pagination token.".
pub fn decode_token(token: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::validation("Invalid pagination token.");
    if token.is_empty() || !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

fn page_size(max_results: Option<i64>) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(MAX_PAGE),
        Some(n) => {
            check_range(n, "maxResults", 1, MAX_PAGE as i64)?;
            Ok(n as usize)
        }
    }
}

pub fn list_databases(
    svc: &Service,
    body: &[u8],
    principal: &Principal,
) -> Result<Vec<u8>, ApiError> {
    let req: ListIn = decode(body)?;
    let size = page_size(req.max_results)?;
    let after = req.next_token.as_deref().map(decode_token).transpose()?;
    let catalog = svc.engine.catalog.snapshot();
    let mut page: Vec<Value> = Vec::new();
    let mut next = None;
    for (name, db) in catalog
        .databases
        .iter()
        .filter(|(n, _)| principal.can_see(n))
        .filter(|(n, _)| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
    {
        if page.len() == size {
            next = page
                .last()
                .and_then(|d| d["DatabaseName"].as_str())
                .map(encode_token);
            break;
        }
        let _ = name;
        page.push(database_json(svc, db));
    }
    let mut out = json!({"Databases": page});
    if let Some(t) = next {
        out["NextToken"] = Value::String(t);
    }
    to_body(out)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UpdateDatabaseIn {
    database_name: Option<String>,
    kms_key_id: Option<String>,
}

pub fn update_database(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: UpdateDatabaseIn = decode(body)?;
    let name = existing_name(req.database_name, "databaseName")?;
    let kms = req.kms_key_id.ok_or_else(|| required("kmsKeyId"))?;
    check_length(&kms, "kmsKeyId", 1, Some(2048))?;
    let now = svc.engine.clock.now_nanos();
    let db = svc.engine.catalog.update(|s| {
        let db = s.databases.get_mut(&name).ok_or_else(|| {
            hourglass_core::Error::not_found(format!("The database {name} does not exist."))
        })?;
        meta_mut(&mut db.extra).insert("kms_key_id".into(), Value::String(kms.clone()));
        db.updated_at = now;
        Ok(db.clone())
    })?;
    to_body(json!({"Database": database_json(svc, &db)}))
}

pub async fn delete_database(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: DatabaseIn = decode(body)?;
    let name = existing_name(req.database_name, "databaseName")?;
    {
        let catalog = svc.engine.catalog.snapshot();
        let db = catalog
            .databases
            .get(&name)
            .ok_or_else(|| database_not_found(&name))?;
        if !db.tables.is_empty() {
            return Err(ApiError::validation(format!(
                "Cannot delete database {name}: it still has {} table(s). Delete all tables of the database first.",
                db.tables.len()
            )));
        }
    }
    svc.engine
        .drop_database(&name)
        .await
        .map_err(|e| match e.kind {
            hourglass_core::ErrorKind::NotFound => database_not_found(&name),
            _ => ApiError::from(e),
        })?;
    svc.writes.forget_database(&svc.engine, &name);
    to_body(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Tables

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "PascalCase")]
struct RetentionIn {
    memory_store_retention_period_in_hours: Option<i64>,
    magnetic_store_retention_period_in_days: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct MagneticWritesIn {
    enable_magnetic_store_writes: Option<bool>,
    magnetic_store_rejected_data_location: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct SchemaIn {
    composite_partition_key: Option<Vec<PartitionKeyIn>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PartitionKeyIn {
    #[serde(rename = "Type")]
    kind: Option<String>,
    name: Option<String>,
    enforcement_in_record: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TableIn {
    database_name: Option<String>,
    table_name: Option<String>,
    retention_properties: Option<RetentionIn>,
    magnetic_store_write_properties: Option<MagneticWritesIn>,
    schema: Option<SchemaIn>,
    tags: Option<Vec<TagIn>>,
}

fn check_retention(r: RetentionIn) -> Result<(i64, i64), ApiError> {
    let memory = r
        .memory_store_retention_period_in_hours
        .ok_or_else(|| required("retentionProperties.memoryStoreRetentionPeriodInHours"))?;
    let magnetic = r
        .magnetic_store_retention_period_in_days
        .ok_or_else(|| required("retentionProperties.magneticStoreRetentionPeriodInDays"))?;
    check_range(
        memory,
        "retentionProperties.memoryStoreRetentionPeriodInHours",
        1,
        8766,
    )?;
    check_range(
        magnetic,
        "retentionProperties.magneticStoreRetentionPeriodInDays",
        1,
        73_000,
    )?;
    Ok((memory, magnetic))
}

/// Validates the rejected-data location (an S3 configuration, kept and described back).
fn check_rejected_location(v: &Value) -> Result<(), ApiError> {
    let path = "magneticStoreWriteProperties.magneticStoreRejectedDataLocation";
    let Some(obj) = v.as_object() else {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{path}' failed to satisfy constraint: Member must be a structure"
        )));
    };
    if let Some(s3) = obj.get("S3Configuration") {
        let s3 = s3.as_object().ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value at '{path}.s3Configuration' failed to satisfy constraint: Member must be a structure"
            ))
        })?;
        if let Some(bucket) = s3.get("BucketName") {
            let b = bucket.as_str().unwrap_or("");
            check_length(
                b,
                &format!("{path}.s3Configuration.bucketName"),
                3,
                Some(63),
            )?;
        }
        if let Some(enc) = s3.get("EncryptionOption") {
            check_enum(
                enc.as_str().unwrap_or(""),
                &format!("{path}.s3Configuration.encryptionOption"),
                &["SSE_S3", "SSE_KMS"],
            )?;
        }
    }
    Ok(())
}

/// Validates a Schema and returns its JSON form.
fn check_schema(schema: &SchemaIn) -> Result<Value, ApiError> {
    let keys = schema
        .composite_partition_key
        .as_ref()
        .ok_or_else(|| required("schema.compositePartitionKey"))?;
    if keys.is_empty() {
        return Err(constraint_error(
            None,
            "schema.compositePartitionKey",
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let p = format!("schema.compositePartitionKey.{}.member", i + 1);
        let kind = k
            .kind
            .as_deref()
            .ok_or_else(|| required(&format!("{p}.type")))?;
        check_enum(kind, &format!("{p}.type"), &["DIMENSION", "MEASURE"])?;
        let mut key = json!({"Type": kind});
        match (kind, &k.name) {
            ("DIMENSION", None) => {
                return Err(ApiError::validation(format!(
                    "A partition key of type DIMENSION needs a Name (at '{p}.name')."
                )))
            }
            ("DIMENSION", Some(n)) => {
                check_length(n, &format!("{p}.name"), 1, None)?;
                key["Name"] = Value::String(n.clone());
            }
            ("MEASURE", Some(_)) => {
                return Err(ApiError::validation(format!(
                    "A partition key of type MEASURE takes no Name (at '{p}.name')."
                )))
            }
            _ => {}
        }
        if let Some(e) = &k.enforcement_in_record {
            check_enum(
                e,
                &format!("{p}.enforcementInRecord"),
                &["REQUIRED", "OPTIONAL"],
            )?;
            key["EnforcementInRecord"] = Value::String(e.clone());
        }
        out.push(key);
    }
    Ok(json!({"CompositePartitionKey": out}))
}

pub async fn create_table(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TableIn = decode(body)?;
    let db = create_name(req.database_name.as_deref(), "databaseName", "database")?;
    let table = create_name(req.table_name.as_deref(), "tableName", "table")?;
    let mut properties = TableProperties::default();
    if let Some(r) = req.retention_properties {
        let (memory, magnetic) = check_retention(r)?;
        properties.memory_retention_hours = memory;
        properties.magnetic_retention_days = magnetic;
    }
    let mut rejected_location = None;
    if let Some(m) = &req.magnetic_store_write_properties {
        properties.magnetic_writes_enabled = m
            .enable_magnetic_store_writes
            .ok_or_else(|| required("magneticStoreWriteProperties.enableMagneticStoreWrites"))?;
        if let Some(loc) = &m.magnetic_store_rejected_data_location {
            check_rejected_location(loc)?;
            rejected_location = Some(loc.clone());
        }
    }
    let schema = req.schema.as_ref().map(check_schema).transpose()?;
    let tags = check_tags(req.tags.as_deref().unwrap_or(&[]), "tags")?;
    if svc.engine.catalog.snapshot().databases.contains_key(&db) {
        // Files a crash left behind when a table of this name was dropped.
        svc.engine.purge_dropped_table_objects(&db, &table).await?;
    }
    let now = svc.engine.clock.now_nanos();
    let def = svc.engine.catalog.update(|s| {
        let database = s.databases.get_mut(&db).ok_or_else(|| {
            hourglass_core::Error::not_found(format!("The database {db} does not exist."))
        })?;
        if database.tables.contains_key(&table) {
            return Err(hourglass_core::Error::conflict(format!(
                "The table {table} already exists in database {db}."
            )));
        }
        let mut def = hourglass_storage::catalog::new_table(&table, properties, now);
        {
            let m = meta_mut(&mut def.extra);
            if let Some(schema) = &schema {
                m.insert("schema".into(), schema.clone());
            }
            if let Some(loc) = &rejected_location {
                m.insert("magnetic_rejected_data_location".into(), loc.clone());
            }
        }
        set_tags(&mut def.extra, &tags);
        if meta(&def.extra).is_some_and(|m| m.is_empty()) {
            def.extra.remove(EXTRA_KEY);
        }
        database.tables.insert(table.clone(), def.clone());
        Ok(def)
    })?;
    svc.writes.forget_table(&svc.engine, &db, &table);
    svc.engine.ensure_table_store(&db, &table);
    to_body(json!({"Table": table_json(svc, &db, &def)}))
}

fn table_names(req: &TableIn) -> Result<(String, String), ApiError> {
    Ok((
        existing_name(req.database_name.clone(), "databaseName")?,
        existing_name(req.table_name.clone(), "tableName")?,
    ))
}

/// `ResourceNotFoundException` naming the database when it is the database that is missing.
fn lookup_error(svc: &Service, db: &str, table: &str) -> ApiError {
    if svc.engine.catalog.snapshot().databases.contains_key(db) {
        table_not_found(db, table)
    } else {
        database_not_found(db)
    }
}

pub fn describe_table(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TableIn = decode(body)?;
    let (db, table) = table_names(&req)?;
    let catalog = svc.engine.catalog.snapshot();
    let def = catalog
        .table(&db, &table)
        .ok_or_else(|| lookup_error(svc, &db, &table))?;
    to_body(json!({"Table": table_json(svc, &db, def)}))
}

pub fn list_tables(svc: &Service, body: &[u8], principal: &Principal) -> Result<Vec<u8>, ApiError> {
    let req: ListIn = decode(body)?;
    let size = page_size(req.max_results)?;
    let after = req.next_token.as_deref().map(decode_token).transpose()?;
    let catalog = svc.engine.catalog.snapshot();
    if let Some(db) = &req.database_name {
        if !catalog.databases.contains_key(db) {
            return Err(database_not_found(db));
        }
    }
    // Keys `db\0table` order tables by database then name.
    let mut page: Vec<Value> = Vec::new();
    let mut last_key = String::new();
    let mut next = None;
    'outer: for (db_name, db) in &catalog.databases {
        if req.database_name.as_ref().is_some_and(|d| d != db_name) || !principal.can_see(db_name) {
            continue;
        }
        for (t_name, def) in &db.tables {
            let key = format!("{db_name}\u{0}{t_name}");
            if after.as_ref().is_some_and(|a| key.as_str() <= a.as_str()) {
                continue;
            }
            if page.len() == size {
                next = Some(encode_token(&last_key));
                break 'outer;
            }
            page.push(table_json(svc, db_name, def));
            last_key = key;
        }
    }
    let mut out = json!({"Tables": page});
    if let Some(t) = next {
        out["NextToken"] = Value::String(t);
    }
    to_body(out)
}

pub fn update_table(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TableIn = decode(body)?;
    let (db, table) = table_names(&req)?;
    let retention = req.retention_properties.map(check_retention).transpose()?;
    let mut magnetic_writes = None;
    let mut rejected_location = None;
    if let Some(m) = &req.magnetic_store_write_properties {
        magnetic_writes =
            Some(m.enable_magnetic_store_writes.ok_or_else(|| {
                required("magneticStoreWriteProperties.enableMagneticStoreWrites")
            })?);
        if let Some(loc) = &m.magnetic_store_rejected_data_location {
            check_rejected_location(loc)?;
        }
        rejected_location = Some(m.magnetic_store_rejected_data_location.clone());
    }
    let schema = req.schema.as_ref().map(check_schema).transpose()?;
    let now = svc.engine.clock.now_nanos();
    let def = svc.engine.catalog.update(|s| {
        let def = s
            .databases
            .get_mut(&db)
            .and_then(|d| d.tables.get_mut(&table))
            .ok_or_else(|| hourglass_core::Error::not_found(String::new()))?;
        if let Some(new_schema) = &schema {
            check_schema_change(&table_schema_json(def), new_schema)?;
            meta_mut(&mut def.extra).insert("schema".into(), new_schema.clone());
        }
        if let Some((memory, magnetic)) = retention {
            let old = def.properties;
            if memory > old.memory_retention_hours {
                // The memory store only fills up to the new retention as time passes: until
                // then the write window keeps its old lower bound (Timestream does not move
                // data back from the magnetic store).
                let floor = crate::write::memory_window_floor(def).max(old.memory_cutoff(now));
                meta_mut(&mut def.extra).insert("memory_window_floor".into(), json!(floor));
            }
            def.properties.memory_retention_hours = memory;
            def.properties.magnetic_retention_days = magnetic;
        }
        if let Some(enabled) = magnetic_writes {
            def.properties.magnetic_writes_enabled = enabled;
        }
        if let Some(loc) = &rejected_location {
            let m = meta_mut(&mut def.extra);
            match loc {
                Some(loc) => {
                    m.insert("magnetic_rejected_data_location".into(), loc.clone());
                }
                None => {
                    m.remove("magnetic_rejected_data_location");
                }
            }
        }
        def.updated_at = now;
        Ok(def.clone())
    });
    let def = match def {
        Ok(d) => d,
        Err(e) if e.kind == hourglass_core::ErrorKind::NotFound => {
            return Err(lookup_error(svc, &db, &table))
        }
        Err(e) => return Err(e.into()),
    };
    to_body(json!({"Table": table_json(svc, &db, &def)}))
}

/// Partition keys keep their names, types and order; only the enforcement level may change.
fn check_schema_change(old: &Value, new: &Value) -> hourglass_core::Result<()> {
    let strip = |v: &Value| -> Vec<(Value, Value)> {
        v["CompositePartitionKey"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| (k["Type"].clone(), k["Name"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    if strip(old) != strip(new) {
        return Err(hourglass_core::Error::invalid(
            "The name and type of each partition key, and the order of the partition keys, cannot be changed after the table is created; only EnforcementInRecord can be updated.",
        ));
    }
    Ok(())
}

pub async fn delete_table(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TableIn = decode(body)?;
    let (db, table) = table_names(&req)?;
    if svc.engine.catalog.snapshot().table(&db, &table).is_none() {
        return Err(lookup_error(svc, &db, &table));
    }
    svc.engine
        .drop_table(&db, &table)
        .await
        .map_err(|e| match e.kind {
            hourglass_core::ErrorKind::NotFound => lookup_error(svc, &db, &table),
            _ => ApiError::from(e),
        })?;
    svc.writes.forget_table(&svc.engine, &db, &table);
    to_body(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Tags

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TagsIn {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<Vec<TagIn>>,
    tag_keys: Option<Vec<String>>,
}

fn resource(svc: &Service, arn: Option<&str>) -> Result<Resource, ApiError> {
    let arn = arn.ok_or_else(|| required("resourceARN"))?;
    check_length(arn, "resourceARN", 1, Some(2048))?;
    let resource = arn::parse(arn).ok_or_else(|| {
        ApiError::not_found(format!(
            "The resource {arn} does not exist (expected a Timestream database or table ARN)."
        ))
    })?;
    let catalog = svc.engine.catalog.snapshot();
    let exists = match &resource {
        Resource::Database(db) => catalog.databases.contains_key(db),
        Resource::Table(db, t) => catalog.table(db, t).is_some(),
    };
    if !exists {
        return Err(ApiError::not_found(format!(
            "The resource {arn} does not exist."
        )));
    }
    Ok(resource)
}

/// Applies `change` to the tags of a resource.
fn update_tags(
    svc: &Service,
    resource: &Resource,
    change: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut failure = None;
    let result = svc.engine.catalog.update(|s| {
        let extra = match resource {
            Resource::Database(db) => s.databases.get_mut(db).map(|d| &mut d.extra),
            Resource::Table(db, t) => s
                .databases
                .get_mut(db)
                .and_then(|d| d.tables.get_mut(t))
                .map(|t| &mut t.extra),
        }
        .ok_or_else(|| hourglass_core::Error::not_found("The resource does not exist."))?;
        let mut tags = tags_of(extra);
        if let Err(e) = change(&mut tags) {
            failure = Some(e);
            return Ok(());
        }
        set_tags(extra, &tags);
        if meta(extra).is_some_and(|m| m.is_empty()) {
            extra.remove(EXTRA_KEY);
        }
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(ApiError::from)
}

pub fn tag_resource(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TagsIn = decode(body)?;
    let resource = resource(svc, req.resource_arn.as_deref())?;
    let tags = check_tags(req.tags.as_deref().ok_or_else(|| required("tags"))?, "tags")?;
    update_tags(svc, &resource, |existing| merge_tags(existing, tags))?;
    to_body(json!({}))
}

pub fn untag_resource(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TagsIn = decode(body)?;
    let resource = resource(svc, req.resource_arn.as_deref())?;
    let keys = req.tag_keys.ok_or_else(|| required("tagKeys"))?;
    check_tag_keys(&keys)?;
    update_tags(svc, &resource, |existing| {
        existing.retain(|(k, _)| !keys.contains(k));
        Ok(())
    })?;
    to_body(json!({}))
}

pub fn list_tags(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: TagsIn = decode(body)?;
    let resource = resource(svc, req.resource_arn.as_deref())?;
    let catalog = svc.engine.catalog.snapshot();
    let extra = match &resource {
        Resource::Database(db) => catalog.databases.get(db).map(|d| &d.extra),
        Resource::Table(db, t) => catalog.table(db, t).map(|t| &t.extra),
    };
    let tags: Vec<Value> = extra
        .map(tags_of)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    to_body(json!({"Tags": tags}))
}

// ---------------------------------------------------------------------------------------------
// Endpoints and the operations Hourglass does not run

/// What DescribeEndpoints sees of its request: the `Host` header and the `User-Agent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointRequest<'a> {
    pub host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// DescribeEndpoints: `--advertised-endpoint` as given, or else the address served, in the form
/// the asking SDK turns back into that address. SDKs discover when configured without an explicit
/// endpoint (botocore and the JavaScript SDK v3 even when the endpoint comes from
/// `AWS_ENDPOINT_URL`), and use the answer differently:
/// * botocore (and Go v2) replace the whole URL, prefixing `https://` to an address without a
///   scheme: a plain-HTTP server answers `http://host:port`, a TLS one `host:port` (AWS's shape);
/// * the JavaScript SDK v3 replaces only the request's hostname (keeping the configured scheme
///   and port): it is answered the bare host (its `User-Agent` starts `aws-sdk-js/3`).
///
/// When the server is bound to every interface (`0.0.0.0`, `[::]`) the host is the request's
/// `Host` header (how the client reached us), else the bound address.
pub fn describe_endpoints(
    svc: &Service,
    _body: &[u8],
    request: EndpointRequest<'_>,
) -> Result<Vec<u8>, ApiError> {
    let address = match &svc.config.advertised_endpoint {
        Some(address) => address.clone(),
        None => {
            let bound_anywhere = svc
                .served_address
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_unspecified());
            let host = request
                .host
                .map(str::trim)
                .filter(|h| bound_anywhere && !h.is_empty() && !h.contains(['/', ' ', '@']))
                .unwrap_or(&svc.served_address);
            let js_v3 = request
                .user_agent
                .is_some_and(|ua| ua.trim_start().starts_with("aws-sdk-js/3"));
            if js_v3 {
                without_port(host).to_string()
            } else if svc.served_tls {
                host.to_string()
            } else {
                format!("http://{host}")
            }
        }
    };
    to_body(json!({"Endpoints": [{"Address": address, "CachePeriodInMinutes": 1440}]}))
}

/// `host` of `host[:port]` (`[v6]` stays bracketed).
fn without_port(address: &str) -> &str {
    if address.starts_with('[') {
        return address.find(']').map_or(address, |end| &address[..=end]);
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => address,
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IdIn {
    task_id: Option<String>,
    scheduled_query_arn: Option<String>,
}

pub fn batch_load(operation: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: IdIn = decode(body)?;
    match operation {
        "ListBatchLoadTasks" => to_body(json!({"BatchLoadTasks": []})),
        "DescribeBatchLoadTask" | "ResumeBatchLoadTask" => {
            let id = req.task_id.ok_or_else(|| required("taskId"))?;
            Err(ApiError::not_found(format!(
                "The batch load task {id} does not exist."
            )))
        }
        _ => Err(ApiError::validation(
            "Hourglass does not run batch load tasks; write the data with WriteRecords or line protocol.",
        )),
    }
}

pub fn scheduled_queries(operation: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: IdIn = decode(body)?;
    match operation {
        "ListScheduledQueries" => to_body(json!({"ScheduledQueries": []})),
        "CreateScheduledQuery" => Err(ApiError::validation(
            "Hourglass does not run scheduled queries.",
        )),
        _ => {
            let arn = req
                .scheduled_query_arn
                .ok_or_else(|| required("scheduledQueryArn"))?;
            Err(ApiError::not_found(format!(
                "The scheduled query {arn} does not exist."
            )))
        }
    }
}

pub fn account_settings(operation: &str, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match operation {
        "DescribeAccountSettings" => to_body(json!({
            "QueryPricingModel": "BYTES_SCANNED",
            "QueryCompute": {"ComputeMode": "ON_DEMAND"},
        })),
        _ => Err(ApiError::validation(
            "Hourglass has no account settings to update.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        assert_eq!(
            decode_token(&encode_token("db\u{0}t.1")).unwrap(),
            "db\u{0}t.1"
        );
        assert!(decode_token("zz").is_err());
        assert!(decode_token("abc").is_err());
    }

    #[test]
    fn schema_changes_may_only_touch_enforcement() {
        let old = json!({"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "host", "EnforcementInRecord": "OPTIONAL"}]});
        let ok = json!({"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "host", "EnforcementInRecord": "REQUIRED"}]});
        let bad = json!({"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "region"}]});
        assert!(check_schema_change(&old, &ok).is_ok());
        assert!(check_schema_change(&old, &bad).is_err());
    }

    #[test]
    fn create_names_follow_the_model_pattern() {
        assert!(create_name(Some("sales.v1-x_y"), "databaseName", "database").is_ok());
        let e = create_name(Some("bad name"), "databaseName", "database").unwrap_err();
        assert!(
            e.message.contains("regular expression pattern"),
            "{}",
            e.message
        );
        assert!(create_name(Some(&"a".repeat(257)), "tableName", "table").is_err());
        assert!(create_name(Some("_x"), "tableName", "table").is_err());
        assert!(create_name(None, "tableName", "table")
            .unwrap_err()
            .message
            .contains("null"));
    }
}
