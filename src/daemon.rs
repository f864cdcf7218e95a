//! Running hearthd: build the core, reconcile, listen, notify, and stop on a signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::api::server::{self, Server};
use crate::api::{Api, MetricsOnly};
use crate::auth::Auth;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::volume::Core;

/// Serve until SIGTERM or SIGINT; on the signal, stop accepting requests and give
/// background work up to `grace` to finish (whatever is cut short is reconciled at
/// the next start).
pub fn run(config: Config, grace: Duration) -> Result<()> {
    // Block the signals before any thread starts, so only the waiter below sees them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(|e| Error::internal("blocking signals", e))?;

    let started = Instant::now();
    let threads = config.api_threads;
    let listen = config.listen;
    let metrics_listen = config.metrics_listen;
    let limits = config.limits();
    let config_tls = (config.ssl_cert_file.clone(), config.ssl_key_file.clone());
    let auth = Arc::new(Auth::from_config(&config)?);
    if let Some(hook) = &config.event_webhook {
        crate::events::start_webhook(hook);
    }
    let core: Arc<Core> = Core::new(config)?;
    core.start()?;
    crate::api::serve_handed(&core, auth.clone())?;
    let tls = match (&config_tls.0, &config_tls.1) {
        (Some(cert), Some(key)) => Some(server::tls_acceptor(cert, key)?),
        _ => None,
    };
    let server = Server::bind(listen, tls)?;
    let addr = server.addr();
    let scheme = if server.is_tls() { "https" } else { "http" };
    // Log in to Keystone now, without holding up readiness: it may come up later.
    let a = auth.clone();
    std::thread::Builder::new()
        .name("hearth-auth-warm-up".into())
        .spawn(move || a.warm_up())
        .map_err(|e| Error::internal("starting a thread", e))?;
    let metrics = match metrics_listen {
        Some(addr) => {
            let server = Server::bind(addr, None)?;
            log::info!("metrics on http://{}/metrics", server.addr());
            Some(server.serve(Arc::new(MetricsOnly::new(core.clone())), 1, limits.clone())?)
        }
        None => None,
    };
    let running = server.serve(Arc::new(Api::new(core.clone(), auth)), threads, limits)?;
    log::info!("ready in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    // The line tests and scripts wait for; printed once the API answers.
    println!("hearthd: listening on {scheme}://{addr}");
    if let Err(e) = crate::notify::notify("READY=1") {
        log::warn!("sd_notify failed: {e}");
    }

    let sig = signals.wait().map_err(|e| Error::internal("waiting for signals", e))?;
    log::info!("{sig:?}: stopping");
    let _ = crate::notify::notify("STOPPING=1");
    running.stop();
    if let Some(m) = metrics {
        m.stop();
    }
    let deadline = Instant::now() + grace;
    while core.background_jobs() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if core.background_jobs() > 0 {
        log::warn!("{} background jobs still running at exit; reconcile will finish them", core.background_jobs());
    }
    Ok(())
}
