//! The one `match` from (method, path) to a resource handler.
//!
//! The path is matched first, then the method, so that a known path with another
//! method is a 405 and an unknown path a 404.

use tiny_http::Method;

use crate::api::{bad_method, limits, quotas, services, types, volumes, Ctx, Reply};
use crate::error::{Error, Result};

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
        ["volumes", id, "metadata"] => match m {
            Get => volumes::metadata_show(ctx, id),
            Post => volumes::metadata_set(ctx, id, false),
            Put => volumes::metadata_set(ctx, id, true),
            _ => bad_method(m),
        },
        ["volumes", id, "metadata", key] => match m {
            Get => volumes::metadata_key_show(ctx, id, key),
            Put => volumes::metadata_key_set(ctx, id, key),
            Delete => volumes::metadata_key_delete(ctx, id, key),
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
        ["os-services", action] => match m {
            Put => services::update(ctx, action),
            _ => bad_method(m),
        },
        ["extensions"] => match m {
            Get => services::extensions(ctx),
            _ => bad_method(m),
        },
        _ => Err(Error::NotFound(format!("The resource /{} could not be found.", path.join("/")))),
    }
}
