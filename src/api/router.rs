//! The one `match` from (method, path) to a resource handler.
//!
//! The path is matched first, then the method, so that a known path with another
//! method is a 405 and an unknown path a 404.

use crate::api::metadata::{self, Owner};
use crate::api::transfers::{self, Route};
use crate::api::{
    attachments, backups, bad_method, encryption, group_snapshots, group_types, groups, limits, messages, qos, quotas,
    services, snapshots, types, volumes, Ctx, Method, Reply,
};
use crate::error::{Error, Result};

/// A path segment with its percent-escapes decoded (`vm%40lvm%23pool`).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The fixed segments of the paths routed here after the resource name (the rest are
/// ids, names and keys): a metrics route label keeps these and writes `{id}` for
/// anything else ([`crate::api::route_label`]).
pub const LITERALS: &[&str] = &[
    "accept",
    "action",
    "associate",
    "associations",
    "default",
    "defaults",
    "delete_keys",
    "detail",
    "disable",
    "disable-log-reason",
    "disassociate",
    "disassociate_all",
    "enable",
    "encryption",
    "export_record",
    "extra_specs",
    "freeze",
    "get-log",
    "get_pools",
    "group_specs",
    "import_record",
    "metadata",
    "os-volume-type-access",
    "restore",
    "set-log",
    "summary",
    "thaw",
];

/// Route one request.
pub fn dispatch(ctx: &mut Ctx<'_>, m: &Method, path: &[&str]) -> Result<Reply> {
    use Method::{Delete, Get, Post, Put};
    match path {
        ["volumes"] => match m {
            Get => volumes::list(ctx, false),
            Post => volumes::create(ctx),
            _ => bad_method(m),
        },
        ["volumes", "detail"] => match m {
            Get => volumes::list(ctx, true),
            _ => bad_method(m),
        },
        ["volumes", "summary"] if ctx.version.at_least(12) => match m {
            Get => volumes::summary(ctx),
            _ => bad_method(m),
        },
        ["volumes", id] => match m {
            Get => volumes::show(ctx, id),
            Put => volumes::update(ctx, id),
            Delete => volumes::delete(ctx, id),
            _ => bad_method(m),
        },
        ["volumes", id, "action"] => match m {
            Post => volumes::action(ctx, id),
            _ => bad_method(m),
        },
        ["volumes", id, "encryption"] => match m {
            Get => encryption::volume_metadata(ctx, id),
            _ => bad_method(m),
        },
        ["volumes", id, "encryption", key] => match m {
            Get => encryption::volume_metadata_key(ctx, id, key),
            _ => bad_method(m),
        },
        [kind @ ("volumes" | "snapshots"), id, "metadata"] => {
            let owner = if *kind == "volumes" { Owner::Volume } else { Owner::Snapshot };
            match m {
                Get => metadata::show(ctx, owner, id),
                Post => metadata::update(ctx, owner, id, false),
                Put => metadata::update(ctx, owner, id, true),
                _ => bad_method(m),
            }
        }
        [kind @ ("volumes" | "snapshots"), id, "metadata", key] => {
            let owner = if *kind == "volumes" { Owner::Volume } else { Owner::Snapshot };
            match m {
                Get => metadata::key_show(ctx, owner, id, key),
                Put => metadata::key_set(ctx, owner, id, key),
                Delete => metadata::key_delete(ctx, owner, id, key),
                _ => bad_method(m),
            }
        }
        ["snapshots"] => match m {
            Get => snapshots::list(ctx, false),
            Post => snapshots::create(ctx),
            _ => bad_method(m),
        },
        ["snapshots", "detail"] => match m {
            Get => snapshots::list(ctx, true),
            _ => bad_method(m),
        },
        ["snapshots", id] => match m {
            Get => snapshots::show(ctx, id),
            Put => snapshots::update(ctx, id),
            Delete => snapshots::delete(ctx, id),
            _ => bad_method(m),
        },
        ["snapshots", id, "action"] => match m {
            Post => snapshots::action(ctx, id),
            _ => bad_method(m),
        },
        ["attachments", ..] if !ctx.version.at_least(27) => {
            Err(Error::NotFound("The attachments API needs microversion 3.27 or later.".into()))
        }
        ["attachments"] => match m {
            Get => attachments::list(ctx, false),
            Post => attachments::create(ctx),
            _ => bad_method(m),
        },
        ["attachments", "detail"] => match m {
            Get => attachments::list(ctx, true),
            _ => bad_method(m),
        },
        ["attachments", id] => match m {
            Get => attachments::show(ctx, id),
            Put => attachments::update(ctx, id),
            Delete => attachments::delete(ctx, id),
            _ => bad_method(m),
        },
        ["attachments", id, "action"] => match m {
            Post => attachments::action(ctx, id),
            _ => bad_method(m),
        },
        ["backups"] => match m {
            Get => backups::list(ctx, false),
            Post => backups::create(ctx),
            _ => bad_method(m),
        },
        ["backups", "detail"] => match m {
            Get => backups::list(ctx, true),
            _ => bad_method(m),
        },
        ["backups", "import_record"] => match m {
            Post => backups::import_record(ctx),
            _ => bad_method(m),
        },
        ["backups", id] => match m {
            Get => backups::show(ctx, id),
            Put if ctx.version.at_least(9) => backups::update(ctx, id),
            Put => Err(Error::NotFound("Updating a backup needs microversion 3.9 or later.".into())),
            Delete => backups::delete(ctx, id),
            _ => bad_method(m),
        },
        ["backups", id, "restore"] => match m {
            Post => backups::restore(ctx, id),
            _ => bad_method(m),
        },
        ["backups", id, "export_record"] => match m {
            Get => backups::export_record(ctx, id),
            _ => bad_method(m),
        },
        ["backups", id, "action"] => match m {
            Post => backups::action(ctx, id),
            _ => bad_method(m),
        },
        ["volume-transfers", ..] if !ctx.version.at_least(55) => {
            Err(Error::NotFound("The volume-transfers API needs microversion 3.55 or later.".into()))
        }
        [kind @ ("os-volume-transfer" | "volume-transfers")] => match m {
            Get => transfers::list(ctx, Route::of(kind), false),
            Post => transfers::create(ctx, Route::of(kind)),
            _ => bad_method(m),
        },
        [kind @ ("os-volume-transfer" | "volume-transfers"), "detail"] => match m {
            Get => transfers::list(ctx, Route::of(kind), true),
            _ => bad_method(m),
        },
        ["os-volume-transfer" | "volume-transfers", id] => match m {
            Get => transfers::show(ctx, id),
            Delete => transfers::delete(ctx, id),
            _ => bad_method(m),
        },
        ["os-volume-transfer" | "volume-transfers", id, "accept"] => match m {
            Post => transfers::accept(ctx, id),
            _ => bad_method(m),
        },
        ["types"] => match m {
            Get => types::list(ctx),
            Post => types::create(ctx),
            _ => bad_method(m),
        },
        ["types", "default"] => match m {
            Get => types::show_default(ctx),
            _ => bad_method(m),
        },
        ["types", id] => match m {
            Get => types::show(ctx, id),
            Put => types::update(ctx, id),
            Delete => types::delete(ctx, id),
            _ => bad_method(m),
        },
        ["types", id, "extra_specs"] => match m {
            Get => types::specs_show(ctx, id),
            Post => types::specs_set(ctx, id),
            _ => bad_method(m),
        },
        ["types", id, "extra_specs", key] => match m {
            Get => types::spec_show(ctx, id, key),
            Put => types::spec_set(ctx, id, key),
            Delete => types::spec_delete(ctx, id, key),
            _ => bad_method(m),
        },
        ["types", id, "action"] => match m {
            Post => types::action(ctx, id),
            _ => bad_method(m),
        },
        ["types", id, "os-volume-type-access"] => match m {
            Get => types::access_list(ctx, id),
            _ => bad_method(m),
        },
        ["types", id, "encryption"] => match m {
            Get => encryption::show(ctx, id),
            Post => encryption::create(ctx, id),
            _ => bad_method(m),
        },
        ["types", id, "encryption", key] => match m {
            Get => encryption::show_key(ctx, id, key),
            Put => encryption::update(ctx, id),
            Delete => encryption::delete(ctx, id),
            _ => bad_method(m),
        },
        ["qos-specs"] => match m {
            Get => qos::list(ctx),
            Post => qos::create(ctx),
            _ => bad_method(m),
        },
        ["qos-specs", id] => match m {
            Get => qos::show(ctx, id),
            Put => qos::update(ctx, id),
            Delete => qos::delete(ctx, id),
            _ => bad_method(m),
        },
        ["qos-specs", id, "delete_keys"] => match m {
            Put => qos::delete_keys(ctx, id),
            _ => bad_method(m),
        },
        ["qos-specs", id, "associations"] => match m {
            Get => qos::associations(ctx, id),
            _ => bad_method(m),
        },
        ["qos-specs", id, "associate"] => match m {
            Get => qos::associate(ctx, id),
            _ => bad_method(m),
        },
        ["qos-specs", id, "disassociate"] => match m {
            Get => qos::disassociate(ctx, id),
            _ => bad_method(m),
        },
        ["qos-specs", id, "disassociate_all"] => match m {
            Get => qos::disassociate_all(ctx, id),
            _ => bad_method(m),
        },
        ["messages", ..] if !ctx.version.at_least(3) => {
            Err(Error::NotFound("The messages API needs microversion 3.3 or later.".into()))
        }
        ["messages"] => match m {
            Get => messages::list(ctx),
            _ => bad_method(m),
        },
        ["messages", id] => match m {
            Get => messages::show(ctx, id),
            Delete => messages::delete(ctx, id),
            _ => bad_method(m),
        },
        ["default-types", ..] if !ctx.version.at_least(62) => {
            Err(Error::NotFound("The default-types API needs microversion 3.62 or later.".into()))
        }
        ["default-types"] => match m {
            Get => types::default_list(ctx),
            _ => bad_method(m),
        },
        ["default-types", project] => match m {
            Get => types::default_show(ctx, project),
            Put => types::default_set(ctx, project),
            Delete => types::default_unset(ctx, project),
            _ => bad_method(m),
        },
        ["group_types", ..] if !ctx.version.at_least(11) => {
            Err(Error::NotFound("The group types API needs microversion 3.11 or later.".into()))
        }
        ["group_types"] => match m {
            Get => group_types::list(ctx),
            Post => group_types::create(ctx),
            _ => bad_method(m),
        },
        ["group_types", "default"] => match m {
            Get => group_types::show_default(ctx),
            _ => bad_method(m),
        },
        ["group_types", id] => match m {
            Get => group_types::show(ctx, id),
            Put => group_types::update(ctx, id),
            Delete => group_types::delete(ctx, id),
            _ => bad_method(m),
        },
        ["group_types", id, "group_specs"] => match m {
            Get => group_types::specs_show(ctx, id),
            Post => group_types::specs_set(ctx, id),
            _ => bad_method(m),
        },
        ["group_types", id, "group_specs", key] => match m {
            Get => group_types::spec_show(ctx, id, key),
            Put => group_types::spec_set(ctx, id, key),
            Delete => group_types::spec_delete(ctx, id, key),
            _ => bad_method(m),
        },
        ["groups", ..] if !ctx.version.at_least(13) => {
            Err(Error::NotFound("The groups API needs microversion 3.13 or later.".into()))
        }
        ["groups"] => match m {
            Get => groups::list(ctx, false),
            Post => groups::create(ctx),
            _ => bad_method(m),
        },
        ["groups", "detail"] => match m {
            Get => groups::list(ctx, true),
            _ => bad_method(m),
        },
        ["groups", "action"] if *m == Post => groups::collection_action(ctx),
        ["groups", id] => match m {
            Get => groups::show(ctx, id),
            Put => groups::update(ctx, id),
            _ => bad_method(m),
        },
        ["groups", id, "action"] => match m {
            Post => groups::action(ctx, id),
            _ => bad_method(m),
        },
        ["group_snapshots", ..] if !ctx.version.at_least(14) => {
            Err(Error::NotFound("The group snapshots API needs microversion 3.14 or later.".into()))
        }
        ["group_snapshots"] => match m {
            Get => group_snapshots::list(ctx, false),
            Post => group_snapshots::create(ctx),
            _ => bad_method(m),
        },
        ["group_snapshots", "detail"] => match m {
            Get => group_snapshots::list(ctx, true),
            _ => bad_method(m),
        },
        ["group_snapshots", id] => match m {
            Get => group_snapshots::show(ctx, id),
            Delete => group_snapshots::delete(ctx, id),
            _ => bad_method(m),
        },
        ["group_snapshots", id, "action"] => match m {
            Post => group_snapshots::action(ctx, id),
            _ => bad_method(m),
        },
        ["resource_filters"] if ctx.version.at_least(33) => match m {
            Get => services::resource_filters(ctx),
            _ => bad_method(m),
        },
        ["limits"] => match m {
            Get => limits::show(ctx),
            _ => bad_method(m),
        },
        ["os-quota-sets", project] => match m {
            Get => quotas::show(ctx, project),
            Put => quotas::update(ctx, project),
            Delete => quotas::delete(ctx, project),
            _ => bad_method(m),
        },
        ["os-quota-sets", project, "defaults"] => match m {
            Get => quotas::defaults(ctx, project),
            _ => bad_method(m),
        },
        ["os-quota-class-sets", class] => match m {
            Get => quotas::class_show(ctx, class),
            Put => quotas::class_update(ctx, class),
            _ => bad_method(m),
        },
        ["scheduler-stats", "get_pools"] => match m {
            Get => services::pools(ctx),
            _ => bad_method(m),
        },
        ["os-availability-zone"] => match m {
            Get => services::zones(ctx),
            _ => bad_method(m),
        },
        ["os-services"] => match m {
            Get => services::list(ctx),
            _ => bad_method(m),
        },
        ["os-services", action @ ("set-log" | "get-log")] if ctx.version.at_least(32) => match m {
            Put => services::log_levels(ctx, action),
            _ => bad_method(m),
        },
        ["os-services", action] => match m {
            Put => services::update(ctx, action),
            _ => bad_method(m),
        },
        ["os-hosts"] => match m {
            Get => services::hosts(ctx),
            _ => bad_method(m),
        },
        ["os-hosts", host] => match m {
            Get => services::host_show(ctx, &decode(host)),
            Put => services::host_update(ctx, &decode(host)),
            _ => bad_method(m),
        },
        ["capabilities", host] => match m {
            Get => services::capabilities(ctx, &decode(host)),
            _ => bad_method(m),
        },
        ["extensions"] => match m {
            Get => services::extensions(ctx),
            _ => bad_method(m),
        },
        _ => Err(Error::NotFound(format!("The resource /{} could not be found.", path.join("/")))),
    }
}
