//! Resource names: `arn:aws:timestream:<region>:<account>:database/<db>` and
//! `.../database/<db>/table/<table>`.

/// What an ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Database(String),
    Table(String, String),
}

pub fn database_arn(region: &str, account: &str, db: &str) -> String {
    format!("arn:aws:timestream:{region}:{account}:database/{db}")
}

pub fn table_arn(region: &str, account: &str, db: &str, table: &str) -> String {
    format!("arn:aws:timestream:{region}:{account}:database/{db}/table/{table}")
}

/// Parses a Timestream database or table ARN (any region and account: clients build ARNs
/// themselves). `None` when it is not one.
pub fn parse(arn: &str) -> Option<Resource> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service, _region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if scheme != "arn" || !partition.starts_with("aws") || service != "timestream" {
        return None;
    }
    let rest = resource.strip_prefix("database/")?;
    match rest.split_once("/table/") {
        Some((db, table)) if !db.is_empty() && !table.is_empty() && !table.contains('/') => {
            Some(Resource::Table(db.to_string(), table.to_string()))
        }
        Some(_) => None,
        None if !rest.is_empty() && !rest.contains('/') => {
            Some(Resource::Database(rest.to_string()))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_database_and_table_arns() {
        let db = database_arn("us-east-1", "000000000000", "sales");
        assert_eq!(
            db,
            "arn:aws:timestream:us-east-1:000000000000:database/sales"
        );
        assert_eq!(parse(&db), Some(Resource::Database("sales".into())));
        let t = table_arn("us-east-1", "000000000000", "sales", "cpu.v1");
        assert_eq!(
            parse(&t),
            Some(Resource::Table("sales".into(), "cpu.v1".into()))
        );
        assert_eq!(parse("arn:aws:s3:::bucket"), None);
        assert_eq!(parse("arn:aws:timestream:us-east-1:1:database/"), None);
        assert_eq!(
            parse("arn:aws:timestream:us-east-1:1:scheduled-query/x"),
            None
        );
    }
}
