//! `hearthd`: the hearth daemon's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use hearth::config::Config;

/// jemalloc instead of glibc's malloc: a create's request and its background work
/// make many small allocations across a dozen threads, where glibc's arenas spent ~7%
/// of the CPU (benches/scale.rs: p50 2.1 ms with glibc, 1.7 ms with jemalloc).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: two arenas (not four per CPU, each keeping
/// free pages of its own) and freed pages given back at once, so that hearthd stays as
/// small as it was on glibc (~26 MiB with 100,000 volumes, where the defaults held
/// 47 MiB and mimalloc 150). `_RJEM_MALLOC_CONF` in the environment overrides them.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
static malloc_conf: &[u8; 44] = b"narenas:2,dirty_decay_ms:0,muzzy_decay_ms:0\0";

/// A lean block-storage daemon that serves the OpenStack Block Storage v3 API.
///
/// Without --config, hearthd runs its embedded default: one file-backed pool under
/// the data directory, the API on 127.0.0.1:8776, noauth.
#[derive(Parser, Debug)]
#[command(name = "hearthd", version)]
struct Cli {
    /// The TOML configuration file (default: the embedded default).
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this address instead of the configured one (port 0: any free port).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Keep state in this directory instead of the configured one.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the store in this PostgreSQL database instead of the configured store
    /// (`[database] connection`; a URL without its password).
    #[arg(long, global = true, value_name = "URL")]
    database_connection: Option<String>,
    /// Seconds to let background work finish on SIGTERM.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    stop_grace: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Read and check the configuration, the backends and the backup target, then
    /// exit.
    CheckConfig,
    /// Re-read every chunk of a backup from the backup repository and check it; print
    /// the report and exit with status 1 when chunks are missing or corrupt. Read-only:
    /// the backup's record is left as it is (the API's `os-verify` marks it `error`).
    BackupVerify {
        /// The backup's id.
        id: String,
    },
    /// Print what a person wants to see at a glance: services and their last report,
    /// pools with a bar of their fill, volumes, snapshots and backups by status, work
    /// under way (oldest first) and the last errors. Reads the store read-only and
    /// measures the pools; works whether hearthd runs or not.
    Status,
}

fn load(cli: &Cli) -> Result<Config, String> {
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(path) = &cli.config {
        warn_if_readable(path, &config);
    }
    if let Some(l) = cli.listen {
        config.listen = l;
    }
    if let Some(url) = &cli.database_connection {
        config.database.connection = Some(url.clone());
    }
    if let Some(d) = &cli.data_dir {
        config.data_dir = Some(d.clone());
    }
    // The overrides are checked like the file (noauth on a non-loopback address, ...).
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// A config that holds a password should be readable by its owner only.
fn warn_if_readable(path: &std::path::Path, config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    if config.keystone_authtoken.password.is_none() {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            log::warn!(
                "{} holds a password (keystone_authtoken.password) but its mode is {mode:o}: make it 0600 \
                 (chmod 600) so that only hearthd's user can read it",
                path.display()
            );
        }
    }
}

fn check_config(config: &Config) -> Result<(), String> {
    println!("listen: {}", config.listen);
    println!("data_dir: {}", config.data_dir().display());
    println!("host: {}", config.host());
    let mut failed = false;
    match hearth::auth::Auth::from_config(config) {
        Ok(_) => println!("auth_strategy {:?}: ok", config.auth_strategy),
        Err(e) => {
            println!("auth_strategy {:?}: FAILED: {e}", config.auth_strategy);
            failed = true;
        }
    }
    for (name, bc) in &config.backends {
        let result = hearth::backend::from_config(config, name, bc).and_then(|b| {
            b.check()?;
            hearth::export::from_config(bc).check()?;
            Ok(b.pools())
        });
        match result {
            Ok(pools) => println!("backend {name} ({:?}): ok, pools {}", bc.driver, pools.join(", ")),
            Err(e) => {
                println!("backend {name} ({:?}): FAILED: {e}", bc.driver);
                failed = true;
            }
        }
    }
    match hearth::volume::backups::open_repository(config) {
        Ok(r) => println!("backup_driver {:?}: ok, repository {}", config.backup_driver, r.describe()),
        Err(e) => {
            println!("backup_driver {:?}: FAILED: {e}", config.backup_driver);
            failed = true;
        }
    }
    if failed {
        Err("some checks failed".into())
    } else {
        println!("configuration ok");
        Ok(())
    }
}

/// Keep the C allocator to two arenas. glibc otherwise gives each of hearthd's
/// threads its own arena, and memory freed after rendering a large list stays
/// resident in each of them (measured: 127 MiB RSS instead of ~40 MiB).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called once, before any
    // other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}

fn backup_verify(config: &Config, id: &str) -> Result<bool, String> {
    let (intact, report) = hearth::volume::backups::verify_offline(config, id).map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_else(|_| report.to_string()));
    println!("backup {id}: {}", if intact { "intact" } else { "DAMAGED: chunks are missing or corrupt" });
    Ok(intact)
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    hearth::logging::init();
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hearthd: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => check_config(&config),
        Command::BackupVerify { id } => match backup_verify(&config, &id) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Status => hearth::status::report(&config).map(|r| print!("{r}")).map_err(|e| e.to_string()),
        Command::Serve => hearth::daemon::run(config, Duration::from_secs(cli.stop_grace)).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearthd: {e}");
            ExitCode::FAILURE
        }
    }
}
