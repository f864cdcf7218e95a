//! hearth: a lean block-storage daemon that serves the OpenStack Block Storage v3 API.
//!
//! One process does what Cinder spreads over cinder-api, cinder-scheduler and
//! cinder-volume. The layers, from the outside in:
//!
//! - [`api`]: HTTP (hyper on smol, optional TLS, limits); parses requests, calls the
//!   core, renders views; [`auth`] says who is calling (noauth, Keystone tokens,
//!   http_basic) and [`policy`] what they may do (Cinder's rules);
//! - [`volume`]: the core; state machines, quotas, types, services, reconcile, and
//!   the pools' capacity figures, kept by each change without walking the pools; on a
//!   shared PostgreSQL store, nodes hand each other what needs their disks
//!   ([`volume::fleet`]) and place new volumes on every node's pools
//!   ([`volume::placement`]);
//! - [`flow`] and [`scheduler`]: multi-step work with undo, and pool placement;
//! - [`store`]: state in SQLite or PostgreSQL (one SQL text over both, [`store::db`]),
//!   concurrent writes sharing one commit; [`query`] is what lists ask of it;
//! - [`backend`]: where volumes live (`file`: sparse files; `lvm`: thick or thin LVs);
//! - [`backup`]: backups of volumes into a deduplicated repository on a directory or
//!   an S3 bucket;
//! - [`export`]: how hosts reach them (`local` paths; `lio`: iSCSI through LIO's
//!   configfs);
//! - [`cmd`] runs external programs, [`names`] names everything hearth creates on the
//!   host.

pub mod api;
pub mod auth;
pub mod backend;
pub mod backup;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod error;
pub mod events;
pub mod export;
pub mod faults;
pub mod flow;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod names;
pub mod notify;
pub mod policy;
pub mod query;
pub mod scheduler;
pub mod status;
pub mod store;
pub mod volume;
