//! The backup repository a fleet shares.
//!
//! A backup, a restore, a delete or a verify may run on any node of a fleet (the one
//! that owns the volume, or the one that took the request), so every node must read
//! and write one repository: an S3 bucket, or a `backup_posix_path` every node
//! mounts. Two nodes each with a directory of its own (the default, under
//! `data_dir`) would each keep backups the other cannot find: a restore through the
//! other fails, a delete there forgets data it never sees.
//!
//! So on a shared store each node publishes the repository it opened (its random
//! id, [`crate::backup::Repository::id`], and where it is) to `backup_repositories`
//! ([`crate::store::repositories`]) at start-up and at its first use, and backup
//! work is refused, with a sentence naming each node's repository, while the nodes
//! whose services are up do not all use the same one. Nothing is recorded by a
//! refused request. A node that left the fleet stops counting once its heartbeat is
//! stale. On a single node nothing is published or checked.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Core;
use crate::backup::Repository;
use crate::error::{Error, Result};
use crate::store::repositories::{self as sr, RepositoryRow};

impl Core {
    /// The backup repository, opened at first use; on a shared store published for
    /// the fleet once per start, and refused while the fleet's live nodes use
    /// different repositories.
    pub(super) fn backup_repo(&self) -> Result<Arc<Repository>> {
        let repo = self.backups.repo(&self.config)?;
        if self.hands_over() {
            if !self.backups.published.swap(true, Ordering::SeqCst) {
                let published = self.store.write(|tx| sr::publish(tx, &self.host, repo.id(), &repo.describe()));
                if let Err(e) = published {
                    self.backups.published.store(false, Ordering::SeqCst);
                    return Err(e);
                }
                log::info!("backup repository {} ({}) published for the fleet", repo.describe(), repo.id());
            }
            self.check_fleet_repository()?;
        }
        Ok(repo)
    }

    /// Refuse backup work while the live nodes of a fleet published different backup
    /// repositories (400, each node's repository named); Ok on a single node.
    pub(super) fn check_fleet_repository(&self) -> Result<()> {
        if !self.hands_over() {
            return Ok(());
        }
        let rows = self.store.read(sr::list)?;
        if rows.len() < 2 {
            return Ok(());
        }
        let up: BTreeSet<String> = self
            .services_with_liveness()?
            .into_iter()
            .filter(|s| s.up)
            .map(|s| s.service.host.split('@').next().unwrap_or_default().to_string())
            .collect();
        match disagreement(&self.host, &rows, &up) {
            None => Ok(()),
            Some(which) => Err(Error::Invalid(format!(
                "Invalid backup: the nodes of this fleet use different backup repositories ({which}), so a backup \
                 made by one would be missing on the others. Configure one repository every node shares \
                 (backup_driver = \"s3\" with one bucket, or a backup_posix_path every node mounts) and restart \
                 the nodes that differ."
            ))),
        }
    }

    /// Open and publish the repository in the background at start-up (a shared store
    /// only), so that a fleet's differing repositories show before the first backup;
    /// a failure is logged (the first backup tries again).
    pub(super) fn publish_backup_repository(self: &Arc<Core>) {
        if !self.hands_over() {
            return;
        }
        self.spawn_blocking("publish the backup repository", |core| {
            if let Err(e) = core.backup_repo() {
                log::error!("backup repository: {e}");
            }
        });
    }
}

/// The repositories of `rows` that the nodes counted (this node, and the nodes in
/// `up`) disagree on, described (`node-a: posix:/x (id 1f2e...)`); None when they
/// all use one.
fn disagreement(me: &str, rows: &[RepositoryRow], up: &BTreeSet<String>) -> Option<String> {
    let counted: Vec<&RepositoryRow> = rows.iter().filter(|r| r.node == me || up.contains(&r.node)).collect();
    let first = counted.first()?;
    if counted.iter().all(|r| r.repository == first.repository) {
        return None;
    }
    Some(
        counted
            .iter()
            .map(|r| format!("node {}: {} (id {})", r.node, r.target, &r.repository[..r.repository.len().min(8)]))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;

    fn row(node: &str, repository: &str, target: &str) -> RepositoryRow {
        RepositoryRow {
            node: node.into(),
            repository: repository.into(),
            target: target.into(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn live_nodes_must_agree_and_departed_ones_do_not_count() {
        let up: BTreeSet<String> = ["node-b".to_string()].into();
        let shared = [row("node-a", "11aa", "s3:b"), row("node-b", "11aa", "s3:b")];
        assert_eq!(disagreement("node-a", &shared, &up), None);
        let split = [row("node-a", "11aa22bb33cc", "posix:/x"), row("node-b", "99ff", "posix:/x")];
        let which = disagreement("node-a", &split, &up).unwrap();
        assert_eq!(which, "node node-a: posix:/x (id 11aa22bb); node node-b: posix:/x (id 99ff)");
        // node-c is down (or gone): its old repository does not count.
        let departed = [row("node-a", "11aa", "s3:b"), row("node-b", "11aa", "s3:b"), row("node-c", "77", "posix:/c")];
        assert_eq!(disagreement("node-a", &departed, &up), None);
        // This node alone counted: nothing to disagree with.
        assert!(disagreement("node-a", &split, &BTreeSet::new()).is_none());
        let none_up = [row("node-a", "11aa", "s3:b"), row("node-c", "77", "posix:/c")];
        assert!(disagreement("node-c", &none_up, &["node-a".to_string()].into()).is_some());
    }
}
