//! Schema migrations, applied in order, each in its own transaction.
//!
//! A migration is never edited once it has shipped; a change is a new migration at the
//! end of [`MIGRATIONS`]. `schema_migrations` records which have run.

use super::db::{params, Connection};

use crate::error::Result;
use crate::ids::{Id, Timestamp};

type Migration = fn(&Connection<'_>) -> Result<()>;

const MIGRATIONS: &[Migration] = &[
    initial_schema,
    snapshots_and_attachments,
    project_default_types,
    quota_classes_and_frozen_services,
    qos_encryption_messages,
    generic_groups,
    volume_transfers,
    backups,
    quota_usage_counters,
    reservations_by_node,
    write_tokens,
    handed_requests,
    published_pools,
    backup_repositories,
];

/// How many migrations exist (the schema version of a current store).
pub fn count() -> usize {
    MIGRATIONS.len()
}

/// The advisory lock a PostgreSQL store's migrations (and writes) hold: nodes that
/// start together apply each migration once.
pub const PG_WRITE_LOCK: i64 = 0x6865_6172_7468; // "hearth"

/// Apply every migration the store has not seen, each in its own transaction.
pub fn migrate(conn: &Connection<'_>) -> Result<()> {
    const TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL)";
    loop {
        if conn.is_postgres() {
            conn.execute_batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK}); {TABLE}"))?;
        } else {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {TABLE}"))?;
        }
        let step = || -> Result<bool> {
            let done: i64 =
                conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
            let Some(m) = MIGRATIONS.get(done.max(0) as usize) else {
                return Ok(false);
            };
            m(conn)?;
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![done + 1, Timestamp::now().to_string()],
            )?;
            log::info!("store: applied migration {} of {}", done + 1, count());
            Ok(true)
        };
        match step() {
            Ok(more) => {
                conn.execute_batch("COMMIT")?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

fn initial_schema(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE volume_types (
             id TEXT PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             description TEXT,
             is_public INTEGER NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE TABLE volume_type_extra_specs (
             type_id TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (type_id, key));
         CREATE TABLE volume_type_projects (
             type_id TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE,
             project_id TEXT NOT NULL,
             PRIMARY KEY (type_id, project_id));
         CREATE TABLE volumes (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             user_id TEXT NOT NULL,
             name TEXT,
             description TEXT,
             size INTEGER NOT NULL,
             status TEXT NOT NULL,
             attach_status TEXT NOT NULL,
             migration_status TEXT,
             availability_zone TEXT NOT NULL,
             bootable INTEGER NOT NULL,
             multiattach INTEGER NOT NULL,
             volume_type_id TEXT NOT NULL REFERENCES volume_types(id),
             snapshot_id TEXT,
             source_volid TEXT,
             host TEXT,
             task TEXT,
             error_reason TEXT,
             consumes_quota INTEGER NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX volumes_project_created ON volumes (project_id, created_at, id);
         CREATE INDEX volumes_created ON volumes (created_at, id);
         CREATE INDEX volumes_task ON volumes (task);
         CREATE INDEX volumes_type ON volumes (volume_type_id);
         CREATE TABLE volume_metadata (
             volume_id TEXT NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (volume_id, key));
         CREATE TABLE volume_admin_metadata (
             volume_id TEXT NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (volume_id, key));
         CREATE TABLE quotas (
             project_id TEXT NOT NULL,
             resource TEXT NOT NULL,
             hard_limit INTEGER NOT NULL,
             PRIMARY KEY (project_id, resource));
         CREATE TABLE reservations (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             resource TEXT NOT NULL,
             delta INTEGER NOT NULL,
             created_at TEXT NOT NULL);
         CREATE INDEX reservations_project ON reservations (project_id);
         CREATE TABLE services (
             host TEXT NOT NULL,
             binary TEXT NOT NULL,
             zone TEXT NOT NULL,
             disabled INTEGER NOT NULL,
             disabled_reason TEXT,
             updated_at TEXT NOT NULL,
             PRIMARY KEY (host, binary));",
    )?;
    let now = Timestamp::now().to_string();
    tx.execute(
        "INSERT INTO volume_types (id, name, description, is_public, created_at, updated_at)
         VALUES (?1, '__DEFAULT__', 'Default Volume Type', 1, ?2, ?2)",
        params![Id::new().to_string(), now],
    )?;
    Ok(())
}

fn snapshots_and_attachments(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE snapshots (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             user_id TEXT NOT NULL,
             volume_id TEXT NOT NULL REFERENCES volumes(id),
             name TEXT,
             description TEXT,
             size INTEGER NOT NULL,
             status TEXT NOT NULL,
             progress TEXT NOT NULL,
             volume_type_id TEXT NOT NULL REFERENCES volume_types(id),
             host TEXT,
             task TEXT,
             error_reason TEXT,
             consumes_quota INTEGER NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX snapshots_project_created ON snapshots (project_id, created_at, id);
         CREATE INDEX snapshots_volume ON snapshots (volume_id, created_at);
         CREATE INDEX snapshots_task ON snapshots (task);
         CREATE TABLE snapshot_metadata (
             snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (snapshot_id, key));
         CREATE TABLE attachments (
             id TEXT PRIMARY KEY,
             volume_id TEXT NOT NULL REFERENCES volumes(id),
             project_id TEXT NOT NULL,
             instance_uuid TEXT,
             attached_host TEXT,
             mountpoint TEXT,
             attach_status TEXT NOT NULL,
             attach_mode TEXT NOT NULL,
             connector TEXT,
             connection_info TEXT,
             attach_time TEXT,
             detach_time TEXT,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX attachments_volume ON attachments (volume_id, created_at);
         CREATE INDEX attachments_project ON attachments (project_id, created_at);
         ALTER TABLE volumes ADD COLUMN provider_auth TEXT;
         CREATE INDEX volumes_quota ON volumes (project_id, consumes_quota, volume_type_id, size);
         CREATE INDEX volumes_source ON volumes (source_volid);
         CREATE INDEX volumes_snapshot ON volumes (snapshot_id);",
    )?;
    Ok(())
}

fn project_default_types(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE default_types (
             project_id TEXT PRIMARY KEY,
             volume_type_id TEXT NOT NULL REFERENCES volume_types(id),
             created_at TEXT NOT NULL);",
    )?;
    Ok(())
}

fn quota_classes_and_frozen_services(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE quota_classes (
             class_name TEXT NOT NULL,
             resource TEXT NOT NULL,
             hard_limit INTEGER NOT NULL,
             PRIMARY KEY (class_name, resource));
         ALTER TABLE services ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0;",
    )?;
    Ok(())
}

/// QoS specs (and the type's association), volume type encryption (and the volume's
/// key id), user messages.
fn qos_encryption_messages(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE qos_specs (
             id TEXT PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             consumer TEXT NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE TABLE qos_specs_keys (
             specs_id TEXT NOT NULL REFERENCES qos_specs(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT,
             PRIMARY KEY (specs_id, key));
         ALTER TABLE volume_types ADD COLUMN qos_specs_id TEXT REFERENCES qos_specs(id);
         CREATE INDEX volume_types_qos ON volume_types (qos_specs_id);
         CREATE TABLE volume_type_encryption (
             volume_type_id TEXT PRIMARY KEY REFERENCES volume_types(id) ON DELETE CASCADE,
             encryption_id TEXT NOT NULL,
             provider TEXT NOT NULL,
             cipher TEXT,
             key_size INTEGER,
             control_location TEXT NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT);
         ALTER TABLE volumes ADD COLUMN encryption_key_id TEXT;
         CREATE TABLE messages (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             request_id TEXT NOT NULL,
             resource_type TEXT NOT NULL,
             resource_uuid TEXT,
             action_id TEXT NOT NULL,
             detail_id TEXT NOT NULL,
             event_id TEXT NOT NULL,
             message_level TEXT NOT NULL,
             created_at TEXT NOT NULL,
             expires_at TEXT NOT NULL);
         CREATE INDEX messages_project_created ON messages (project_id, created_at, id);
         CREATE INDEX messages_created ON messages (created_at, id);
         CREATE INDEX messages_expires ON messages (expires_at);",
    )?;
    Ok(())
}

/// Generic volume groups: group types and their specs, groups (with the volume types
/// they allow), group snapshots; volumes name their group, snapshots their group
/// snapshot.
fn generic_groups(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE group_types (
             id TEXT PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             description TEXT,
             is_public INTEGER NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE TABLE group_type_specs (
             group_type_id TEXT NOT NULL REFERENCES group_types(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (group_type_id, key));
         CREATE TABLE groups (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             user_id TEXT NOT NULL,
             name TEXT,
             description TEXT,
             status TEXT NOT NULL,
             availability_zone TEXT NOT NULL,
             group_type_id TEXT NOT NULL REFERENCES group_types(id),
             host TEXT,
             group_snapshot_id TEXT,
             source_group_id TEXT,
             error_reason TEXT,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX groups_project_created ON groups (project_id, created_at, id);
         CREATE INDEX groups_status ON groups (status);
         CREATE TABLE group_volume_types (
             group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
             volume_type_id TEXT NOT NULL REFERENCES volume_types(id),
             position INTEGER NOT NULL,
             PRIMARY KEY (group_id, volume_type_id));
         CREATE INDEX group_volume_types_type ON group_volume_types (volume_type_id);
         CREATE TABLE group_snapshots (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             user_id TEXT NOT NULL,
             group_id TEXT NOT NULL REFERENCES groups(id),
             group_type_id TEXT NOT NULL REFERENCES group_types(id),
             name TEXT,
             description TEXT,
             status TEXT NOT NULL,
             error_reason TEXT,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX group_snapshots_project_created ON group_snapshots (project_id, created_at, id);
         CREATE INDEX group_snapshots_group ON group_snapshots (group_id);
         ALTER TABLE volumes ADD COLUMN group_id TEXT REFERENCES groups(id);
         CREATE INDEX volumes_group ON volumes (group_id);
         ALTER TABLE snapshots ADD COLUMN group_snapshot_id TEXT REFERENCES group_snapshots(id);
         CREATE INDEX snapshots_group_snapshot ON snapshots (group_snapshot_id);",
    )?;
    Ok(())
}

/// Open volume transfers: at most one per volume, gone with the volume's record;
/// `project_id` is the offering project. The auth key is kept as a salted SHA-256
/// only.
fn volume_transfers(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE transfers (
             id TEXT PRIMARY KEY,
             volume_id TEXT NOT NULL UNIQUE REFERENCES volumes(id) ON DELETE CASCADE,
             name TEXT,
             project_id TEXT NOT NULL,
             no_snapshots INTEGER NOT NULL,
             salt TEXT NOT NULL,
             key_sha256 TEXT NOT NULL,
             created_at TEXT NOT NULL);
         CREATE INDEX transfers_project_created ON transfers (project_id, created_at, id);
         CREATE INDEX transfers_created ON transfers (created_at, id);",
    )?;
    Ok(())
}

/// Backups and their metadata. A backup names its volume without a foreign key: it
/// outlives the volume. `service_metadata` is the repository's name of its data.
fn backups(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE backups (
             id TEXT PRIMARY KEY,
             project_id TEXT NOT NULL,
             user_id TEXT NOT NULL,
             volume_id TEXT NOT NULL,
             snapshot_id TEXT,
             name TEXT,
             description TEXT,
             status TEXT NOT NULL,
             size INTEGER NOT NULL,
             object_count INTEGER NOT NULL,
             container TEXT,
             availability_zone TEXT,
             parent_id TEXT,
             fail_reason TEXT,
             data_timestamp TEXT NOT NULL,
             service TEXT NOT NULL,
             service_metadata TEXT NOT NULL,
             restore_volume_id TEXT,
             temp_snapshot_id TEXT,
             temp_snapshot_host TEXT,
             bytes_done INTEGER NOT NULL,
             bytes_total INTEGER NOT NULL,
             stats TEXT,
             source_volume TEXT NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX backups_project_created ON backups (project_id, created_at, id);
         CREATE INDEX backups_created ON backups (created_at, id);
         CREATE INDEX backups_volume ON backups (volume_id, created_at);
         CREATE INDEX backups_parent ON backups (parent_id);
         CREATE INDEX backups_status ON backups (status);
         CREATE INDEX backups_service_metadata ON backups (service_metadata);
         CREATE TABLE backup_metadata (
             backup_id TEXT NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
             key TEXT NOT NULL,
             value TEXT NOT NULL,
             PRIMARY KEY (backup_id, key));",
    )?;
    Ok(())
}

/// The usage kept by triggers, per project, resource and volume type (`''` where no
/// type applies), so that a quota check reads a few rows instead of adding up every
/// volume of the project. The triggers fire in the transaction that changes a record,
/// so the counters are always what the records add up to.
fn quota_usage_counters(tx: &Connection<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE quota_usage (
             project_id TEXT NOT NULL,
             resource TEXT NOT NULL,
             volume_type_id TEXT NOT NULL,
             in_use INTEGER NOT NULL,
             PRIMARY KEY (project_id, resource, volume_type_id));",
    )?;
    // (table, condition on a row, [(resource, type expression, amount expression)])
    type Counted<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str, &'a str)]);
    let counted: [Counted<'_>; 4] = [
        (
            "volumes",
            "R.consumes_quota = 1",
            &[("volumes", "R.volume_type_id", "1"), ("volume_gigabytes", "R.volume_type_id", "R.size")],
        ),
        (
            "snapshots",
            "R.consumes_quota = 1",
            &[("snapshots", "R.volume_type_id", "1"), ("snapshot_gigabytes", "R.volume_type_id", "R.size")],
        ),
        ("backups", "1", &[("backups", "''", "1"), ("backup_gigabytes", "''", "R.size")]),
        ("groups", "1", &[("groups", "''", "1")]),
    ];
    for (table, cond, resources) in counted {
        let add = |row: &str| -> String {
            resources
                .iter()
                .map(|(res, ty, amount)| {
                    format!(
                        "INSERT INTO quota_usage (project_id, resource, volume_type_id, in_use)
                         VALUES ({row}.project_id, '{res}', {ty}, {amount})
                         ON CONFLICT (project_id, resource, volume_type_id)
                         DO UPDATE SET in_use = in_use + excluded.in_use;",
                        ty = ty.replace("R.", &format!("{row}.")),
                        amount = amount.replace("R.", &format!("{row}.")),
                    )
                })
                .collect()
        };
        let remove = |row: &str| -> String {
            resources
                .iter()
                .map(|(res, ty, amount)| {
                    format!(
                        "UPDATE quota_usage SET in_use = in_use - ({amount})
                         WHERE project_id = {row}.project_id AND resource = '{res}' AND volume_type_id = {ty};",
                        ty = ty.replace("R.", &format!("{row}.")),
                        amount = amount.replace("R.", &format!("{row}.")),
                    )
                })
                .collect()
        };
        let when = |row: &str| cond.replace("R.", &format!("{row}."));
        let columns = match table {
            "volumes" | "snapshots" => "project_id, size, volume_type_id, consumes_quota",
            "backups" => "project_id, size",
            _ => "project_id",
        };
        // An update names every column it writes, changed or not (a save writes them
        // all): its triggers run only when a counted column really changed. When none
        // did, taking the old row out and putting the new one in would cancel out.
        if tx.is_postgres() {
            // The same counters as PL/pgSQL triggers: one function per table.
            let changed = columns
                .split(", ")
                .map(|c| format!("OLD.{c} IS DISTINCT FROM NEW.{c}"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let pg = |sql: String| sql.replace("SET in_use = in_use", "SET in_use = quota_usage.in_use");
            tx.execute_batch(&format!(
                "CREATE FUNCTION {table}_usage() RETURNS trigger LANGUAGE plpgsql AS $body$
                 BEGIN
                     IF TG_OP = 'INSERT' THEN
                         IF {new} THEN {add_new} END IF;
                     ELSIF TG_OP = 'DELETE' THEN
                         IF {old} THEN {remove_old} END IF;
                     ELSIF {changed} THEN
                         IF {old} THEN {remove_old} END IF;
                         IF {new} THEN {add_new} END IF;
                     END IF;
                     RETURN NULL;
                 END $body$;
                 CREATE TRIGGER {table}_usage AFTER INSERT OR UPDATE OR DELETE ON {table}
                     FOR EACH ROW EXECUTE FUNCTION {table}_usage();",
                new = when("NEW"),
                old = when("OLD"),
                add_new = pg(add("NEW")),
                remove_old = remove("OLD"),
            ))?;
            continue;
        }
        let changed = columns.split(", ").map(|c| format!("OLD.{c} IS NOT NEW.{c}")).collect::<Vec<_>>().join(" OR ");
        tx.execute_batch(&format!(
            "CREATE TRIGGER {table}_usage_insert AFTER INSERT ON {table} WHEN {new} BEGIN {add_new} END;
             CREATE TRIGGER {table}_usage_delete AFTER DELETE ON {table} WHEN {old} BEGIN {remove_old} END;
             CREATE TRIGGER {table}_usage_update_old AFTER UPDATE OF {columns} ON {table}
                 WHEN ({old}) AND ({changed}) BEGIN {remove_old} END;
             CREATE TRIGGER {table}_usage_update_new AFTER UPDATE OF {columns} ON {table}
                 WHEN ({new}) AND ({changed}) BEGIN {add_new} END;",
            new = when("NEW"),
            old = when("OLD"),
            add_new = add("NEW"),
            remove_old = remove("OLD"),
        ))?;
    }
    // What the records hold now.
    tx.execute_batch(
        "INSERT INTO quota_usage SELECT project_id, 'volumes', volume_type_id, COUNT(*)
             FROM volumes WHERE consumes_quota = 1 GROUP BY project_id, volume_type_id;
         INSERT INTO quota_usage SELECT project_id, 'volume_gigabytes', volume_type_id, SUM(size)
             FROM volumes WHERE consumes_quota = 1 GROUP BY project_id, volume_type_id;
         INSERT INTO quota_usage SELECT project_id, 'snapshots', volume_type_id, COUNT(*)
             FROM snapshots WHERE consumes_quota = 1 GROUP BY project_id, volume_type_id;
         INSERT INTO quota_usage SELECT project_id, 'snapshot_gigabytes', volume_type_id, SUM(size)
             FROM snapshots WHERE consumes_quota = 1 GROUP BY project_id, volume_type_id;
         INSERT INTO quota_usage SELECT project_id, 'backups', '', COUNT(*) FROM backups GROUP BY project_id;
         INSERT INTO quota_usage SELECT project_id, 'backup_gigabytes', '', SUM(size) FROM backups GROUP BY project_id;
         INSERT INTO quota_usage SELECT project_id, 'groups', '', COUNT(*) FROM groups GROUP BY project_id;",
    )?;
    // It served the scans that quota_usage replaces; every insert and resize paid for it.
    tx.execute_batch("DROP INDEX volumes_quota;")?;
    Ok(())
}

/// 10: each reservation names the node whose request holds it, so that a node
/// starting up drops only its own (a fleet's other nodes have requests in flight).
/// Rows from before (`''`) were a single node's: any node may drop them.
fn reservations_by_node(tx: &Connection) -> Result<()> {
    tx.execute_batch("ALTER TABLE reservations ADD COLUMN node TEXT NOT NULL DEFAULT '';")?;
    Ok(())
}

/// 14: the backup repository each node uses (see [`super::repositories`]): a fleet's
/// nodes must share one.
fn backup_repositories(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE backup_repositories (
             node TEXT PRIMARY KEY,
             repository TEXT NOT NULL,
             target TEXT NOT NULL,
             updated_at TEXT NOT NULL);",
    )?;
    Ok(())
}

/// 13: each node's pools as its scheduler last saw them (see [`super::pools`]): what
/// the other nodes of a fleet schedule with; one node's own rows on a single node.
fn published_pools(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE published_pools (
             name TEXT PRIMARY KEY,
             node TEXT NOT NULL,
             state TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX published_pools_node ON published_pools (node);",
    )?;
    Ok(())
}

/// 12: requests a node handed to the node that owns the pool they need (see
/// [`super::handed`]): a fleet's durable work queue, idle on a single node.
fn handed_requests(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE handed_requests (
             id TEXT PRIMARY KEY,
             node TEXT NOT NULL,
             from_node TEXT NOT NULL,
             state TEXT NOT NULL,
             request TEXT NOT NULL,
             reply TEXT,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL);
         CREATE INDEX handed_requests_node ON handed_requests (node, state);",
    )?;
    Ok(())
}

/// 11: each writer's last committed batch (PostgreSQL), so that a writer whose
/// connection was lost while it committed can tell whether the batch was applied
/// (see [`super::writer`]). Unused on SQLite, whose commits are not sent anywhere.
fn write_tokens(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE write_tokens (
             writer TEXT PRIMARY KEY,
             token TEXT NOT NULL,
             updated_at TEXT NOT NULL);",
    )?;
    Ok(())
}
