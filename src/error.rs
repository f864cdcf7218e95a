//! Errors of the core, by kind.
//!
//! An [`Error`] says *what kind* of failure happened (not found, invalid input, wrong
//! state, over quota, ...) and carries a sentence for the client. The API layer maps the
//! kind to an HTTP status and Cinder's fault name in exactly one place
//! ([`Error::status`] and [`Error::fault_name`]); everything that is not a client's
//! fault becomes a 500 `computeFault` whose details stay in the log.

use std::fmt;

/// A failure of an operation, classified for the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist or is not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or asks for something impossible (400).
    #[error("{0}")]
    Invalid(String),
    /// The object is in a state that forbids the operation (400, as Cinder's
    /// `InvalidVolume` and friends).
    #[error("{0}")]
    InvalidState(String),
    /// The operation conflicts with another one or with an existing object (409).
    #[error("{0}")]
    Conflict(String),
    /// A quota would be exceeded (413 overLimit).
    #[error("{0}")]
    OverQuota(String),
    /// The request body is larger than the server accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The route exists but not for this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The asked microversion is outside the supported range (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// The body's media type is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The caller is not authenticated: no token, or one that is not valid (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The request did not arrive in time (408).
    #[error("{0}")]
    Timeout(String),
    /// hearth cannot answer now: overloaded, or a service it depends on (Keystone) is
    /// unreachable (503, with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
    /// The request needs the disks of a pool of another node of the fleet (409 when it
    /// cannot be handed to that node; see `crate::volume::fleet`).
    #[error("{message}")]
    Elsewhere {
        /// The node (`host`) that owns the pool.
        node: String,
        /// The sentence for the client.
        message: String,
    },
    /// Another node took a request handed to it and did not answer in time (504).
    #[error("{0}")]
    NoAnswer(String),
    /// A known Cinder feature that hearth does not provide (501).
    #[error("{0}")]
    NotImplemented(String),
    /// No pool can take the request (NoValidHost); only ever recorded, never a 4xx.
    #[error("No valid backend was found. {0}")]
    NoValidHost(String),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] crate::store::db::DbError),
    /// A backend or export operation failed.
    #[error("{0}")]
    Backend(String),
    /// Anything else that is hearth's fault, with context.
    #[error("{0}")]
    Internal(String),
}

/// The result of core operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status code for this kind of error.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Invalid(_) | Error::InvalidState(_) => 400,
            Error::Conflict(_) | Error::Elsewhere { .. } => 409,
            Error::NoAnswer(_) => 504,
            Error::OverQuota(_) | Error::TooLarge(_) => 413,
            Error::Forbidden(_) => 403,
            Error::Unauthorized(_) => 401,
            Error::Timeout(_) => 408,
            Error::Unavailable(_) => 503,
            Error::MethodNotAllowed(_) => 405,
            Error::NotAcceptable(_) => 406,
            Error::UnsupportedMediaType(_) => 415,
            Error::NotImplemented(_) => 501,
            Error::Store(_) if self.is_disk_full() || self.is_store_lost() => 503,
            Error::NoValidHost(_) | Error::Store(_) | Error::Backend(_) | Error::Internal(_) => 500,
        }
    }

    /// Cinder's fault name for a status code, as its error bodies carry it.
    pub fn fault_name(status: u16) -> &'static str {
        match status {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            406 => "notAcceptable",
            409 => "conflictingRequest",
            413 => "overLimit",
            415 => "badMediaType",
            501 => "notImplemented",
            503 => "serviceUnavailable",
            _ => "computeFault",
        }
    }

    /// Whether the store could not write because its filesystem is full (SQLite's
    /// `SQLITE_FULL`: the transaction was rolled back, nothing of it kept).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_disk_full())
    }

    /// Whether the store's connection was lost under the request (a PostgreSQL
    /// server restarting or failing over): its transaction was rolled back.
    pub fn is_store_lost(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_connection())
    }

    /// The sentence a client sees. Server-side failures are not explained to clients.
    pub fn client_message(&self) -> String {
        if self.is_disk_full() {
            return "The filesystem of hearth's data directory is full: the request could not be recorded and \
                    nothing of it was kept. Free space there and retry."
                .to_string();
        }
        if self.is_store_lost() {
            return "The state store could not be reached during the request. Retry later.".to_string();
        }
        match self.status() {
            500 => "The server has either erred or is incapable of performing the requested \
                    operation."
                .to_string(),
            _ => self.to_string(),
        }
    }

    /// Wrap any displayable failure as an internal error with context.
    pub fn internal(context: impl fmt::Display, err: impl fmt::Display) -> Error {
        Error::Internal(format!("{context}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_cinder_codes() {
        let table: Vec<(Error, u16, &str)> = vec![
            (Error::NotFound("x".into()), 404, "itemNotFound"),
            (Error::Invalid("x".into()), 400, "badRequest"),
            (Error::InvalidState("x".into()), 400, "badRequest"),
            (Error::Conflict("x".into()), 409, "conflictingRequest"),
            (Error::OverQuota("x".into()), 413, "overLimit"),
            (Error::TooLarge("x".into()), 413, "overLimit"),
            (Error::Forbidden("x".into()), 403, "forbidden"),
            (Error::MethodNotAllowed("x".into()), 405, "badMethod"),
            (Error::NotAcceptable("x".into()), 406, "notAcceptable"),
            (Error::UnsupportedMediaType("x".into()), 415, "badMediaType"),
            (Error::NotImplemented("x".into()), 501, "notImplemented"),
            (Error::Unauthorized("x".into()), 401, "unauthorized"),
            (Error::Timeout("x".into()), 408, "computeFault"),
            (Error::Unavailable("x".into()), 503, "serviceUnavailable"),
            (Error::Internal("x".into()), 500, "computeFault"),
            (Error::Backend("x".into()), 500, "computeFault"),
        ];
        for (err, code, fault) in table {
            assert_eq!(err.status(), code, "{err:?}");
            assert_eq!(Error::fault_name(code), fault, "{err:?}");
        }
    }

    #[test]
    fn internal_errors_are_not_explained_to_clients() {
        let e = Error::internal("creating volume-1", "disk on fire");
        assert!(!e.client_message().contains("fire"));
        assert!(e.to_string().contains("fire"));
    }
}
