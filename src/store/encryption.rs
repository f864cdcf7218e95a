//! Volume type encryption rows: at most one per type.

use crate::store::db::{params, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::ids::Id;
use crate::model::TypeEncryption;

use super::{bad_row, ts_col};

const COLUMNS: &str =
    "volume_type_id, encryption_id, provider, cipher, key_size, control_location, created_at, updated_at";

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<TypeEncryption> {
    let id = |i: usize| -> crate::store::db::DbResult<Id> {
        let s: String = row.get(i)?;
        Id::parse(&s).ok_or_else(|| bad_row("id", &s))
    };
    let location: String = row.get(5)?;
    let updated: Option<String> = row.get(7)?;
    Ok(TypeEncryption {
        volume_type_id: id(0)?,
        encryption_id: id(1)?,
        provider: row.get(2)?,
        cipher: row.get(3)?,
        key_size: row.get::<_, Option<i64>>(4)?.map(|n| n.max(0) as u64),
        control_location: location.parse().map_err(|_| bad_row("control_location", &location))?,
        created_at: ts_col(row, 6)?,
        updated_at: match updated {
            Some(_) => Some(ts_col(row, 7)?),
            None => None,
        },
    })
}

/// A type's encryption, if it has one.
pub fn get(conn: &Connection, type_id: Id) -> Result<Option<TypeEncryption>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM volume_type_encryption WHERE volume_type_id = ?1"))?
        .query_row([type_id.to_string()], from_row)
        .optional()?)
}

/// Insert or overwrite a type's encryption.
pub fn put(conn: &Connection, e: &TypeEncryption) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO volume_type_encryption (volume_type_id, encryption_id, provider, cipher, key_size,
             control_location, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (volume_type_id) DO UPDATE SET encryption_id = excluded.encryption_id,
             provider = excluded.provider, cipher = excluded.cipher, key_size = excluded.key_size,
             control_location = excluded.control_location, created_at = excluded.created_at,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        e.volume_type_id.to_string(),
        e.encryption_id.to_string(),
        e.provider,
        e.cipher,
        e.key_size.map(|n| n as i64),
        e.control_location.as_str(),
        e.created_at.to_string(),
        e.updated_at.map(|t| t.to_string()),
    ])?;
    Ok(())
}

/// Remove a type's encryption; whether it had one.
pub fn delete(conn: &Connection, type_id: Id) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM volume_type_encryption WHERE volume_type_id = ?1")?
        .execute([type_id.to_string()])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;
    use crate::model::ControlLocation;
    use crate::store::Store;

    #[test]
    fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let def: String = s
            .read(|tx| Ok(tx.query_row("SELECT id FROM volume_types WHERE name='__DEFAULT__'", [], |r| r.get(0))?))
            .unwrap();
        let mut e = TypeEncryption {
            volume_type_id: Id::parse(&def).unwrap(),
            encryption_id: Id::new(),
            provider: "luks".into(),
            cipher: Some("aes-xts-plain64".into()),
            key_size: Some(256),
            control_location: ControlLocation::FrontEnd,
            created_at: Timestamp::now(),
            updated_at: None,
        };
        s.write(|tx| put(tx, &e)).unwrap();
        assert_eq!(s.read(|tx| get(tx, e.volume_type_id)).unwrap(), Some(e.clone()));
        e.cipher = None;
        e.key_size = None;
        e.updated_at = Some(Timestamp::now());
        s.write(|tx| put(tx, &e)).unwrap();
        assert_eq!(s.read(|tx| get(tx, e.volume_type_id)).unwrap(), Some(e.clone()));
        assert!(s.write(|tx| delete(tx, e.volume_type_id)).unwrap());
        assert!(!s.write(|tx| delete(tx, e.volume_type_id)).unwrap());
    }
}
