//! Cinder's default policy rules, for the API hearth serves.
//!
//! The names and check strings are Cinder's (`cinder/policies/*.py`, the secure-RBAC
//! defaults): a project **reader** may read its project's objects, a project
//! **member** may also change them, and an **admin** (the `admin` role) may do
//! everything, in every project. Each entry lists the API calls it guards; the README's
//! policy table is this list.

/// A rule and its default.
#[derive(Clone, Copy, Debug)]
pub struct RuleDefault {
    /// The rule's name, as Cinder spells it.
    pub name: &'static str,
    /// The default check string.
    pub check: &'static str,
    /// The API calls it guards (empty for base rules that others refer to).
    pub operations: &'static str,
}

const READER: &str = "rule:xena_system_admin_or_project_reader";
const MEMBER: &str = "rule:xena_system_admin_or_project_member";
const ADMIN: &str = "rule:admin_api";

macro_rules! rules {
    ($($(#[$doc:meta])* $konst:ident = $name:literal, $check:expr, $ops:literal;)*) => {
        $($(#[$doc])* pub const $konst: &str = $name;)*
        /// Every rule, in the order the README lists them.
        pub const DEFAULTS: &[RuleDefault] = &[$(RuleDefault { name: $name, check: $check, operations: $ops },)*];
    };
}

rules! {
    /// Who counts as an admin (`is_admin:True`).
    CONTEXT_IS_ADMIN = "context_is_admin", "role:admin", "";
    /// Admins, or the owner of the target.
    ADMIN_OR_OWNER = "admin_or_owner",
        "is_admin:True or (role:admin and is_admin_project:True) or project_id:%(project_id)s", "";
    /// The default of the admin-only APIs.
    ADMIN_API = "admin_api", "is_admin:True or (role:admin and is_admin_project:True)", "";
    /// Admins, or readers of the target's project.
    PROJECT_READER = "xena_system_admin_or_project_reader",
        "(role:admin) or (role:reader and project_id:%(project_id)s)", "";
    /// Admins, or members of the target's project.
    PROJECT_MEMBER = "xena_system_admin_or_project_member",
        "(role:admin) or (role:member and project_id:%(project_id)s)", "";

    VOLUME_CREATE = "volume:create", MEMBER, "POST /volumes";
    VOLUME_MULTIATTACH = "volume:multiattach", MEMBER, "POST /volumes with a multiattach type";
    VOLUME_GET = "volume:get", READER, "GET /volumes/{id}";
    VOLUME_GET_ALL = "volume:get_all", READER, "GET /volumes, /volumes/detail, /volumes/summary";
    VOLUME_UPDATE = "volume:update", MEMBER, "PUT /volumes/{id}; os-set_bootable";
    VOLUME_DELETE = "volume:delete", MEMBER, "DELETE /volumes/{id}";
    VOLUME_FORCE_DELETE = "volume:force_delete", ADMIN, "DELETE /volumes/{id}?force=true";
    VOLUME_HOST_ATTRIBUTE = "volume_extension:volume_host_attribute", ADMIN,
        "os-vol-host-attr:host in GET /volumes/{id}, /volumes/detail";
    VOLUME_TENANT_ATTRIBUTE = "volume_extension:volume_tenant_attribute", READER,
        "os-vol-tenant-attr:tenant_id in GET /volumes/{id}, /volumes/detail";
    VOLUME_MIG_STATUS_ATTRIBUTE = "volume_extension:volume_mig_status_attribute", ADMIN,
        "os-vol-mig-status-attr:* in GET /volumes/{id}, /volumes/detail";
    VOLUME_GET_METADATA = "volume:get_volume_metadata", READER, "GET /volumes/{id}/metadata[/{key}]";
    VOLUME_CREATE_METADATA = "volume:create_volume_metadata", MEMBER, "POST /volumes/{id}/metadata";
    VOLUME_UPDATE_METADATA = "volume:update_volume_metadata", MEMBER, "PUT /volumes/{id}/metadata[/{key}]";
    VOLUME_DELETE_METADATA = "volume:delete_volume_metadata", MEMBER, "DELETE /volumes/{id}/metadata/{key}";
    VOLUME_UPDATE_ADMIN_METADATA = "volume:update_volume_admin_metadata", ADMIN,
        "os-update_readonly_flag, os-attach (the volume's admin metadata)";
    VOLUME_EXTEND = "volume:extend", MEMBER, "os-extend";
    VOLUME_EXTEND_ATTACHED = "volume:extend_attached_volume", MEMBER, "os-extend of an in-use volume (3.42)";
    VOLUME_REVERT = "volume:revert_to_snapshot", MEMBER, "revert (3.40)";
    VOLUME_RETYPE = "volume:retype", MEMBER, "os-retype";
    VOLUME_RESET_STATUS = "volume_extension:volume_admin_actions:reset_status", ADMIN, "os-reset_status";
    VOLUME_UPDATE_READONLY = "volume:update_readonly_flag", MEMBER, "os-update_readonly_flag";
    VOLUME_ADMIN_FORCE_DELETE = "volume_extension:volume_admin_actions:force_delete", ADMIN, "os-force_delete";
    VOLUME_FORCE_DETACH = "volume_extension:volume_admin_actions:force_detach", ADMIN, "os-force_detach";
    VOLUME_INITIALIZE_CONNECTION = "volume_extension:volume_actions:initialize_connection", MEMBER,
        "os-initialize_connection";
    VOLUME_TERMINATE_CONNECTION = "volume_extension:volume_actions:terminate_connection", MEMBER,
        "os-terminate_connection";
    VOLUME_ROLL_DETACHING = "volume_extension:volume_actions:roll_detaching", MEMBER, "os-roll_detaching";
    VOLUME_RESERVE = "volume_extension:volume_actions:reserve", MEMBER, "os-reserve";
    VOLUME_UNRESERVE = "volume_extension:volume_actions:unreserve", MEMBER, "os-unreserve";
    VOLUME_BEGIN_DETACHING = "volume_extension:volume_actions:begin_detaching", MEMBER, "os-begin_detaching";
    VOLUME_ATTACH = "volume_extension:volume_actions:attach", MEMBER, "os-attach";
    VOLUME_DETACH = "volume_extension:volume_actions:detach", MEMBER, "os-detach";
    VOLUME_ENCRYPTION_METADATA = "volume_extension:volume_encryption_metadata", READER,
        "GET /volumes/{id}/encryption[/{key}]";

    ATTACHMENT_CREATE = "volume:attachment_create", MEMBER, "POST /attachments";
    ATTACHMENT_UPDATE = "volume:attachment_update", MEMBER, "PUT /attachments/{id}";
    ATTACHMENT_DELETE = "volume:attachment_delete", MEMBER, "DELETE /attachments/{id}";
    ATTACHMENT_COMPLETE = "volume:attachment_complete", MEMBER, "os-complete on /attachments/{id}";
    MULTIATTACH_BOOTABLE = "volume:multiattach_bootable_volume", MEMBER,
        "POST /attachments of a bootable multiattach volume";

    SNAPSHOT_GET_ALL = "volume:get_all_snapshots", READER, "GET /snapshots, /snapshots/detail";
    SNAPSHOT_EXTENDED_ATTRIBUTES = "volume_extension:extended_snapshot_attributes", READER,
        "os-extended-snapshot-attributes:* in GET /snapshots/{id}, /snapshots/detail";
    SNAPSHOT_CREATE = "volume:create_snapshot", MEMBER, "POST /snapshots";
    SNAPSHOT_GET = "volume:get_snapshot", READER, "GET /snapshots/{id}";
    SNAPSHOT_UPDATE = "volume:update_snapshot", MEMBER, "PUT /snapshots/{id}";
    SNAPSHOT_DELETE = "volume:delete_snapshot", MEMBER, "DELETE /snapshots/{id}";
    SNAPSHOT_RESET_STATUS = "volume_extension:snapshot_admin_actions:reset_status", ADMIN,
        "os-reset_status on /snapshots/{id}";
    SNAPSHOT_UPDATE_STATUS = "snapshot_extension:snapshot_actions:update_snapshot_status", MEMBER,
        "os-update_snapshot_status";
    SNAPSHOT_FORCE_DELETE = "volume_extension:snapshot_admin_actions:force_delete", ADMIN,
        "os-force_delete on /snapshots/{id}";
    SNAPSHOT_GET_METADATA = "volume:get_snapshot_metadata", READER, "GET /snapshots/{id}/metadata[/{key}]";
    SNAPSHOT_UPDATE_METADATA = "volume:update_snapshot_metadata", MEMBER,
        "POST /snapshots/{id}/metadata, PUT /snapshots/{id}/metadata[/{key}]";
    SNAPSHOT_DELETE_METADATA = "volume:delete_snapshot_metadata", MEMBER, "DELETE /snapshots/{id}/metadata/{key}";

    TRANSFER_GET_ALL = "volume:get_all_transfers", READER,
        "GET /os-volume-transfer[/detail], /volume-transfers[/detail] (3.55)";
    TRANSFER_CREATE = "volume:create_transfer", MEMBER, "POST /os-volume-transfer, /volume-transfers (3.55)";
    TRANSFER_GET = "volume:get_transfer", READER, "GET /os-volume-transfer/{id}, /volume-transfers/{id} (3.55)";
    /// Checked against the accepter's own project (the accepter is of another
    /// project than the volume, as in Cinder).
    TRANSFER_ACCEPT = "volume:accept_transfer", MEMBER,
        "POST /os-volume-transfer/{id}/accept, /volume-transfers/{id}/accept (3.55), in the accepter's project";
    TRANSFER_DELETE = "volume:delete_transfer", MEMBER,
        "DELETE /os-volume-transfer/{id}, /volume-transfers/{id} (3.55)";

    BACKUP_GET_ALL = "backup:get_all", READER, "GET /backups, /backups/detail";
    BACKUP_PROJECT_ATTRIBUTE = "backup:backup_project_attribute", ADMIN,
        "os-backup-project-attr:project_id (3.18) and user_id (3.56) in GET /backups/{id}, /backups/detail";
    BACKUP_CREATE = "backup:create", MEMBER, "POST /backups";
    BACKUP_GET = "backup:get", READER, "GET /backups/{id}";
    BACKUP_UPDATE = "backup:update", MEMBER, "PUT /backups/{id} (3.9)";
    BACKUP_DELETE = "backup:delete", MEMBER, "DELETE /backups/{id}";
    BACKUP_RESTORE = "backup:restore", MEMBER, "POST /backups/{id}/restore";
    BACKUP_IMPORT = "backup:backup-import", ADMIN, "POST /backups/import_record";
    BACKUP_EXPORT = "backup:export-import", ADMIN, "GET /backups/{id}/export_record";
    BACKUP_RESET_STATUS = "volume_extension:backup_admin_actions:reset_status", ADMIN,
        "os-reset_status on /backups/{id}";
    BACKUP_FORCE_DELETE = "volume_extension:backup_admin_actions:force_delete", ADMIN,
        "os-force_delete on /backups/{id}";
    /// hearth's own rule (Cinder has no verify action).
    BACKUP_VERIFY = "hearth:backup_verify", ADMIN, "os-verify on /backups/{id} (hearth's)";

    TYPE_CREATE = "volume_extension:type_create", ADMIN, "POST /types";
    TYPE_UPDATE = "volume_extension:type_update", ADMIN, "PUT /types/{id}";
    TYPE_DELETE = "volume_extension:type_delete", ADMIN, "DELETE /types/{id}";
    TYPE_GET = "volume_extension:type_get", READER, "GET /types/{id}, /types/default";
    TYPE_GET_ALL = "volume_extension:type_get_all", READER, "GET /types";
    TYPE_ACCESS_EXTRA_SPECS = "volume_extension:access_types_extra_specs", READER,
        "extra_specs in GET /types, /types/{id}";
    TYPE_ACCESS_QOS_SPECS_ID = "volume_extension:access_types_qos_specs_id", ADMIN,
        "qos_specs_id in GET /types, /types/{id}";
    TYPE_ACCESS = "volume_extension:volume_type_access", MEMBER,
        "os-volume-type-access:is_public in GET /types, /types/{id}; private types of the project";
    TYPE_ADD_PROJECT_ACCESS = "volume_extension:volume_type_access:addProjectAccess", ADMIN, "addProjectAccess";
    TYPE_REMOVE_PROJECT_ACCESS = "volume_extension:volume_type_access:removeProjectAccess", ADMIN,
        "removeProjectAccess";
    TYPE_ACCESS_GET_ALL_FOR_TYPE = "volume_extension:volume_type_access:get_all_for_type", ADMIN,
        "GET /types/{id}/os-volume-type-access";
    EXTRA_SPECS_INDEX = "volume_extension:types_extra_specs:index", READER, "GET /types/{id}/extra_specs";
    EXTRA_SPECS_CREATE = "volume_extension:types_extra_specs:create", ADMIN, "POST /types/{id}/extra_specs";
    EXTRA_SPECS_SHOW = "volume_extension:types_extra_specs:show", READER, "GET /types/{id}/extra_specs/{key}";
    EXTRA_SPECS_READ_SENSITIVE = "volume_extension:types_extra_specs:read_sensitive", ADMIN,
        "extra specs other than the user-visible ones in every view of a type";
    EXTRA_SPECS_UPDATE = "volume_extension:types_extra_specs:update", ADMIN, "PUT /types/{id}/extra_specs/{key}";
    EXTRA_SPECS_DELETE = "volume_extension:types_extra_specs:delete", ADMIN,
        "DELETE /types/{id}/extra_specs/{key}";
    DEFAULT_TYPE_SET = "volume_extension:default_set_or_update", ADMIN, "PUT /default-types/{project} (3.62)";
    DEFAULT_TYPE_GET = "volume_extension:default_get", ADMIN, "GET /default-types/{project} (3.62)";
    DEFAULT_TYPE_GET_ALL = "volume_extension:default_get_all", ADMIN, "GET /default-types (3.62)";
    DEFAULT_TYPE_UNSET = "volume_extension:default_unset", ADMIN, "DELETE /default-types/{project} (3.62)";
    TYPE_ENCRYPTION = "volume_extension:volume_type_encryption", ADMIN, "";
    TYPE_ENCRYPTION_CREATE = "volume_extension:volume_type_encryption:create", ADMIN, "POST /types/{id}/encryption";
    TYPE_ENCRYPTION_GET = "volume_extension:volume_type_encryption:get", ADMIN,
        "GET /types/{id}/encryption[/{key}]";
    TYPE_ENCRYPTION_UPDATE = "volume_extension:volume_type_encryption:update", ADMIN,
        "PUT /types/{id}/encryption/{encryption_id}";
    TYPE_ENCRYPTION_DELETE = "volume_extension:volume_type_encryption:delete", ADMIN,
        "DELETE /types/{id}/encryption/{encryption_id}";

    QOS_GET_ALL = "volume_extension:qos_specs_manage:get_all", ADMIN, "GET /qos-specs, /qos-specs/{id}/associations";
    QOS_GET = "volume_extension:qos_specs_manage:get", ADMIN, "GET /qos-specs/{id}";
    QOS_CREATE = "volume_extension:qos_specs_manage:create", ADMIN, "POST /qos-specs";
    QOS_UPDATE = "volume_extension:qos_specs_manage:update", ADMIN,
        "PUT /qos-specs/{id}; GET /qos-specs/{id}/associate, /disassociate, /disassociate_all";
    QOS_DELETE = "volume_extension:qos_specs_manage:delete", ADMIN,
        "DELETE /qos-specs/{id}; PUT /qos-specs/{id}/delete_keys";

    GROUP_TYPE_CREATE = "group:group_types:create", ADMIN, "POST /group_types (3.11)";
    GROUP_TYPE_UPDATE = "group:group_types:update", ADMIN, "PUT /group_types/{id}";
    GROUP_TYPE_DELETE = "group:group_types:delete", ADMIN, "DELETE /group_types/{id}";
    GROUP_TYPE_ACCESS_SPECS = "group:access_group_types_specs", ADMIN,
        "group_specs in GET /group_types, /group_types/{id}";
    GROUP_SPECS_GET_ALL = "group:group_types_specs:get_all", ADMIN, "GET /group_types/{id}/group_specs";
    GROUP_SPECS_GET = "group:group_types_specs:get", ADMIN, "GET /group_types/{id}/group_specs/{key}";
    GROUP_SPECS_CREATE = "group:group_types_specs:create", ADMIN, "POST /group_types/{id}/group_specs";
    GROUP_SPECS_UPDATE = "group:group_types_specs:update", ADMIN, "PUT /group_types/{id}/group_specs/{key}";
    GROUP_SPECS_DELETE = "group:group_types_specs:delete", ADMIN, "DELETE /group_types/{id}/group_specs/{key}";
    GROUP_GET_ALL = "group:get_all", READER, "GET /groups, /groups/detail (3.13)";
    GROUP_CREATE = "group:create", MEMBER, "POST /groups; create-from-src on /groups/action (3.14)";
    GROUP_GET = "group:get", READER, "GET /groups/{id}";
    GROUP_UPDATE = "group:update", MEMBER, "PUT /groups/{id}";
    GROUP_PROJECT_ATTRIBUTE = "group:group_project_attribute", ADMIN,
        "project_id in GET /groups/{id}, /groups/detail (3.58)";
    GROUP_DELETE = "group:delete", MEMBER, "delete on /groups/{id}/action";
    GROUP_RESET_STATUS = "group:reset_status", ADMIN, "reset_status on /groups/{id}/action (3.20)";
    GROUP_SNAPSHOT_GET_ALL = "group:get_all_group_snapshots", READER,
        "GET /group_snapshots, /group_snapshots/detail (3.14)";
    GROUP_SNAPSHOT_CREATE = "group:create_group_snapshot", MEMBER, "POST /group_snapshots";
    GROUP_SNAPSHOT_GET = "group:get_group_snapshot", READER, "GET /group_snapshots/{id}";
    GROUP_SNAPSHOT_DELETE = "group:delete_group_snapshot", MEMBER, "DELETE /group_snapshots/{id}";
    GROUP_SNAPSHOT_PROJECT_ATTRIBUTE = "group:group_snapshot_project_attribute", ADMIN,
        "project_id in GET /group_snapshots/{id}, /group_snapshots/detail (3.58)";
    GROUP_SNAPSHOT_RESET_STATUS = "group:reset_group_snapshot_status", ADMIN,
        "reset_status on /group_snapshots/{id}/action (3.19)";

    QUOTAS_SHOW = "volume_extension:quotas:show", READER,
        "GET /os-quota-sets/{project}[?usage=True], /os-quota-sets/{project}/defaults";
    QUOTAS_UPDATE = "volume_extension:quotas:update", ADMIN, "PUT /os-quota-sets/{project}";
    QUOTAS_DELETE = "volume_extension:quotas:delete", ADMIN, "DELETE /os-quota-sets/{project}";
    QUOTA_CLASSES_GET = "volume_extension:quota_classes:get", ADMIN, "GET /os-quota-class-sets/{class}";
    QUOTA_CLASSES_UPDATE = "volume_extension:quota_classes:update", ADMIN, "PUT /os-quota-class-sets/{class}";
    USED_LIMITS = "limits_extension:used_limits", READER, "GET /limits";

    SERVICES_INDEX = "volume_extension:services:index", ADMIN, "GET /os-services";
    SERVICES_UPDATE = "volume_extension:services:update", ADMIN,
        "PUT /os-services/{enable,disable,disable-log-reason,set-log,get-log}";
    FREEZE_HOST = "volume:freeze_host", ADMIN, "PUT /os-services/freeze";
    THAW_HOST = "volume:thaw_host", ADMIN, "PUT /os-services/thaw";
    GET_POOLS = "scheduler_extension:scheduler_stats:get_pools", ADMIN, "GET /scheduler-stats/get_pools";
    CAPABILITIES = "volume_extension:capabilities", ADMIN, "GET /capabilities/{host}";
    HOSTS = "volume_extension:hosts", ADMIN, "GET /os-hosts, /os-hosts/{host}, PUT /os-hosts/{host}";
    /// hearth's own: Cinder has no metrics endpoint.
    METRICS = "hearth:metrics", ADMIN, "GET /metrics (hearth's; also on `metrics_listen`)";

    MESSAGE_GET_ALL = "message:get_all", READER, "GET /messages (3.3)";
    MESSAGE_GET = "message:get", READER, "GET /messages/{id} (3.3)";
    MESSAGE_DELETE = "message:delete", MEMBER, "DELETE /messages/{id} (3.3)";
}

/// The README's policy table: each rule that guards API calls, and whether a project
/// reader, a project member and an admin pass it under the defaults (on their own
/// project's objects).
pub fn readme_table() -> String {
    use super::{Credentials, Policy};
    let policy = Policy::new(&Default::default()).expect("the defaults parse");
    let persona = |roles: &[&str]| Credentials {
        user_id: "u".into(),
        project_id: Some("p".into()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        is_admin_project: true,
        ..Default::default()
    };
    let people = [persona(&["reader"]), persona(&["member", "reader"]), persona(&["admin", "member", "reader"])];
    let mut out = String::from("| API call | rule | reader | member | admin |\n|---|---|---|---|---|\n");
    for r in DEFAULTS.iter().filter(|r| !r.operations.is_empty()) {
        let marks: Vec<&str> = people
            .iter()
            .map(|c| if policy.allows(r.name, c, policy.is_admin(c), "p") { "yes" } else { "no" })
            .collect();
        out.push_str(&format!("| {} | `{}` | {} |\n", r.operations, r.name, marks.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README shows exactly the rules hearth enforces, with who passes them.
    #[test]
    fn readme_lists_every_rule() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let table = readme_table();
        assert!(readme.contains(&table), "README.md's policy table is out of date; it should read:\n{table}");
    }

    #[test]
    fn names_are_unique_and_checks_parse() {
        let mut seen = std::collections::BTreeSet::new();
        for r in DEFAULTS {
            assert!(seen.insert(r.name), "{} twice", r.name);
            crate::policy::expr::Expr::parse(r.check).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        }
    }
}
