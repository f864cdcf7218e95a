//! hearth: a lean block-storage daemon that serves the OpenStack Block Storage v3 API.
//!
//! One process does what Cinder spreads over cinder-api, cinder-scheduler and
//! cinder-volume. The layers, from the outside in:
//!
//! - [`api`]: HTTP; parses requests, calls the core, renders views;
//! - [`volume`]: the core; state machines, quotas, types, services;
//! - [`flow`] and [`scheduler`]: multi-step work with undo, and pool placement;
//! - [`store`]: state in SQLite;
//! - [`backend`]: where volumes live (sparse files; LVM later).

pub mod api;
pub mod auth;
pub mod backend;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod error;
pub mod export;
pub mod flow;
pub mod ids;
pub mod model;
pub mod names;
pub mod notify;
pub mod policy;
pub mod scheduler;
pub mod store;
pub mod volume;
