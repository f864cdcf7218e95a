//! systemd readiness notification (`sd_notify`), without libsystemd.
//!
//! When `NOTIFY_SOCKET` names a datagram socket (a path, or `@name` in the abstract
//! namespace), hearthd sends `READY=1` there once its API listens and reconcile is
//! done, which is what `Type=notify` units wait for.

use std::os::unix::net::UnixDatagram;

use crate::error::{Error, Result};

/// Send `state` (e.g. `"READY=1"`) to `$NOTIFY_SOCKET`; does nothing without it.
pub fn notify(state: &str) -> Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let path = path.to_string_lossy().into_owned();
    let sock = UnixDatagram::unbound().map_err(|e| Error::internal("creating a notify socket", e))?;
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| Error::internal("NOTIFY_SOCKET", e))?;
        sock.send_to_addr(state.as_bytes(), &addr)
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    sent.map_err(|e| Error::internal(format!("notifying {path}"), e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test owns the environment variable, so the cases run in sequence.
    #[test]
    fn sends_ready_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        // SAFETY of set_var: this is the only test in the crate that touches
        // NOTIFY_SOCKET, and nothing else reads it concurrently.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        assert!(notify("READY=1").unwrap());
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        assert!(!notify("READY=1").unwrap());
    }
}
