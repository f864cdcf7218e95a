//! hearthd's configuration: one TOML file, or the embedded default.
//!
//! Option names are Cinder's wherever Cinder has one (`volume_backend_name`,
//! `reserved_percentage`, `max_over_subscription_ratio`, `volume_clear`, ...), so that a
//! Cinder operator recognises them. Unknown keys and bad values are refused when the
//! file is read, with a message that names the key; nothing is silently ignored.
//!
//! ```toml
//! listen = "127.0.0.1:8776"
//! data_dir = "/var/lib/hearth"
//!
//! [backends.file-1]
//! driver = "file"
//! volume_backend_name = "file"
//! path = "/srv/hearth/volumes"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's description, which names the key and position.
        message: String,
    },
    /// A value is of the right type but not acceptable.
    #[error("config key `{key}`: {message}")]
    Value {
        /// The dotted key, e.g. `backends.file-1.reserved_percentage`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

fn value_err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Value { key: key.into(), message: message.into() }
}

/// How callers are authenticated (Cinder's `auth_strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStrategy {
    /// Cinder's `noauth`: the token names `user:project` or nothing at all. For labs.
    #[default]
    Noauth,
    /// Keystone tokens, validated with Keystone (keystonemiddleware's behaviour).
    Keystone,
    /// HTTP basic authentication against an htpasswd file (Ironic's `http_basic`).
    HttpBasic,
}

/// keystonemiddleware's `[keystone_authtoken]` options, the ones hearth uses.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeystoneAuthtoken {
    /// Where clients authenticate; named in the `WWW-Authenticate` header of a 401.
    pub www_authenticate_uri: Option<String>,
    /// Keystone's URL for hearth's own login and token validation.
    pub auth_url: Option<String>,
    /// Only `password` is supported.
    pub auth_type: Option<String>,
    /// hearth's service user.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// A file holding the password instead (hearth's key: a secret outside the config,
    /// e.g. a systemd credential); one trailing newline is ignored.
    pub password_file: Option<PathBuf>,
    /// The project hearth's service user logs in to.
    pub project_name: Option<String>,
    /// The service user's domain.
    pub user_domain_name: String,
    /// The service project's domain.
    pub project_domain_name: String,
    /// A service token (`X-Service-Token`) must hold one of these roles to count.
    pub service_token_roles: Vec<String>,
    /// Refuse (401) service tokens without one of `service_token_roles`.
    pub service_token_roles_required: bool,
    /// Seconds a validated token is cached (never past its expiry); -1: no cache.
    pub token_cache_time: i64,
    /// Largest number of tokens cached.
    pub token_cache_size: usize,
    /// PEM CA bundle to verify Keystone's certificate.
    pub cafile: Option<PathBuf>,
    /// Do not verify Keystone's certificate.
    pub insecure: bool,
    /// Seconds to wait for Keystone (connect and answer).
    pub http_connect_timeout: u64,
}

impl Default for KeystoneAuthtoken {
    fn default() -> Self {
        KeystoneAuthtoken {
            www_authenticate_uri: None,
            auth_url: None,
            auth_type: None,
            username: None,
            password: None,
            password_file: None,
            project_name: None,
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            service_token_roles: vec!["service".into()],
            service_token_roles_required: false,
            token_cache_time: 300,
            token_cache_size: 10_000,
            cafile: None,
            insecure: false,
            http_connect_timeout: 10,
        }
    }
}

/// One account of `auth_strategy = "http_basic"`: the project it acts in and its roles.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    /// The project the user's requests act in.
    pub project_id: String,
    /// Its roles (`reader`, `member`, `admin`; `admin` implies `member`, which implies
    /// `reader`, as Keystone's default roles do).
    pub roles: Vec<String>,
}

/// The backend implementation a `[backends.NAME]` table selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Sparse files in a directory.
    File,
    /// Logical volumes in an LVM volume group.
    Lvm,
}

/// How the `lvm` driver provisions (Cinder's `lvm_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LvmType {
    /// Thick LVs (`default` is Cinder's name for it).
    #[serde(alias = "default")]
    Thick,
    /// Thin LVs in a thin pool.
    Thin,
    /// Thin when a thin pool exists or the VG is empty, else thick (as Cinder does).
    #[default]
    Auto,
}

/// How hosts reach a backend's volumes (Cinder's `target_helper`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetHelper {
    /// A path on this host (os-brick's LOCAL connector).
    #[default]
    Local,
    /// iSCSI through the kernel's LIO target (Cinder's `lioadm`; `lio` also works).
    #[serde(alias = "lio")]
    Lioadm,
}

/// What happens to a volume's data when it is deleted (Cinder's `volume_clear`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeClear {
    /// Free the space without overwriting.
    None,
    /// Overwrite the written data with zeroes first.
    #[default]
    Zero,
}

/// Cinder's `max_over_subscription_ratio`: a number >= 1, or `"auto"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OverSubscription {
    /// A fixed ratio.
    Ratio(f64),
    /// Derived from the pool's use, as Cinder computes it.
    Auto,
}

impl<'de> Deserialize<'de> for OverSubscription {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(OverSubscription::Ratio(n)),
            Raw::Text(t) if t == "auto" => Ok(OverSubscription::Auto),
            Raw::Text(t) => t
                .parse()
                .map(OverSubscription::Ratio)
                .map_err(|_| serde::de::Error::custom(format!("expected a number or \"auto\", found \"{t}\""))),
        }
    }
}

/// Where backups are kept (Cinder's `backup_driver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum BackupDriver {
    /// A directory: a local disk or a mounted NFS export (`backup_posix_path`).
    #[default]
    #[serde(rename = "posix", alias = "cinder.backup.drivers.posix.PosixBackupDriver")]
    Posix,
    /// An S3 bucket (`backup_s3_*`).
    #[serde(rename = "s3", alias = "cinder.backup.drivers.s3.S3BackupDriver")]
    S3,
}

impl BackupDriver {
    /// Cinder's name of the driver, which backup records carry (`service`) and
    /// `export_record` gives as `backup_service`.
    pub fn cinder_name(self) -> &'static str {
        match self {
            BackupDriver::Posix => "cinder.backup.drivers.posix.PosixBackupDriver",
            BackupDriver::S3 => "cinder.backup.drivers.s3.S3BackupDriver",
        }
    }
}

/// Default quotas (Cinder's `quota_*` options).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Volumes per project.
    pub quota_volumes: i64,
    /// Snapshots per project.
    pub quota_snapshots: i64,
    /// GiB of volumes and snapshots per project.
    pub quota_gigabytes: i64,
    /// Backups per project.
    pub quota_backups: i64,
    /// GiB of backups per project.
    pub quota_backup_gigabytes: i64,
    /// Groups per project.
    pub quota_groups: i64,
    /// Largest volume, in GiB (-1: no limit).
    pub per_volume_size_limit: i64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            quota_volumes: 10,
            quota_snapshots: 10,
            quota_gigabytes: 1000,
            quota_backups: 10,
            quota_backup_gigabytes: 1000,
            quota_groups: 10,
            per_volume_size_limit: -1,
        }
    }
}

/// One `[backends.NAME]` table as written. Keys that belong to another driver are
/// refused by [`Config::validate`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Which implementation.
    pub driver: Driver,
    /// The name volume types pin with `volume_backend_name` (default: the table's name).
    pub volume_backend_name: Option<String>,
    /// Per cent of the pool kept free of new volumes.
    #[serde(default)]
    pub reserved_percentage: u8,
    /// Over-subscription for thin provisioning.
    #[serde(default = "default_over_subscription")]
    pub max_over_subscription_ratio: OverSubscription,
    /// Wipe policy on delete.
    #[serde(default)]
    pub volume_clear: VolumeClear,
    /// MiB wiped from the start of a volume on delete; 0 wipes all of it.
    #[serde(default)]
    pub volume_clear_size: u64,
    /// The zone this backend's pools are in (default: `storage_availability_zone`).
    pub backend_availability_zone: Option<String>,
    /// The pool's name (default: the table's name).
    pub pool_name: Option<String>,
    /// How hosts reach the volumes.
    #[serde(default)]
    pub target_helper: TargetHelper,
    /// lioadm: the primary portal's address (required).
    pub target_ip_address: Option<std::net::IpAddr>,
    /// lioadm: more portal addresses (multipath).
    pub target_secondary_ip_addresses: Option<Vec<std::net::IpAddr>>,
    /// lioadm: the portals' TCP port (3260).
    pub target_port: Option<u16>,
    /// lioadm: the IQN prefix of targets (`iqn.2010-10.org.openstack:`).
    pub target_prefix: Option<String>,
    /// lioadm: LIO's configfs directory (`/sys/kernel/config/target`).
    pub configfs_path: Option<PathBuf>,
    /// file: the directory that holds the volume files.
    pub path: Option<PathBuf>,
    /// file: the pool's capacity in GiB (default: the filesystem's size).
    pub size_gb: Option<u64>,
    /// lvm: the volume group (one pool, named after it).
    pub volume_group: Option<String>,
    /// lvm: thick, thin or auto.
    pub lvm_type: Option<LvmType>,
    /// lvm: seconds an LVM command may take.
    pub lvm_command_timeout: Option<u64>,
}

fn default_over_subscription() -> OverSubscription {
    OverSubscription::Ratio(20.0)
}

/// Cinder's `[database]` section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `postgresql://user:password@host1:5432,host2:5432/hearth?target_session_attrs=read-write`
    /// (libpq's URL syntax): the store is this PostgreSQL database, shared by every
    /// node configured with it. Unset: the SQLite file in `data_dir`.
    pub connection: Option<String>,
    /// hearth's own: a file whose first line is the password of `connection`'s user
    /// (so that it need not be in the configuration; the NixOS module passes it as a
    /// systemd credential).
    pub password_file: Option<PathBuf>,
}

/// The whole configuration, as read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Where state lives (the SQLite file, and file volumes by default).
    pub data_dir: Option<PathBuf>,
    /// Cinder's `[database]`: a PostgreSQL store shared by a fleet of nodes.
    pub database: DatabaseSection,
    /// This host's name in pool names `host@backend#pool` (default: the hostname).
    pub host: Option<String>,
    /// The default availability zone.
    pub storage_availability_zone: String,
    /// How callers are authenticated.
    pub auth_strategy: AuthStrategy,
    /// noauth: projects whose callers are admins; empty: everyone is.
    pub admin_projects: Vec<String>,
    /// noauth: allow listening on an address other than loopback.
    pub noauth_allow_remote: bool,
    /// keystone: keystonemiddleware's options.
    pub keystone_authtoken: KeystoneAuthtoken,
    /// http_basic: the Apache htpasswd file (bcrypt entries only).
    pub http_basic_auth_user_file: Option<PathBuf>,
    /// http_basic: each user's project and roles.
    pub http_basic_users: BTreeMap<String, BasicUser>,
    /// Policy overrides: rule name -> check string.
    pub policy: BTreeMap<String, String>,
    /// Project used for requests that name none (no project in URL or token).
    pub noauth_default_project: String,
    /// The volume type used when a request names none.
    pub default_volume_type: String,
    /// The group type `GET /group_types/default` shows (Cinder's `default_group_type`);
    /// none by default.
    pub default_group_type: Option<String>,
    /// Seconds between capacity reports of the pools.
    pub report_interval: u64,
    /// Seconds a fleet's node waits for the node it handed a request to (Cinder's
    /// RPC option): to take it, and again to answer it.
    pub rpc_response_timeout: u64,
    /// Threads serving HTTP requests.
    pub api_threads: usize,
    /// Largest request body accepted, in bytes.
    pub max_request_body_size: usize,
    /// Largest request line and headers accepted, in bytes (431 past it).
    pub max_header_size: usize,
    /// Seconds a client has to send a request's headers, and again its body; idle
    /// keep-alive connections are closed after it too.
    pub client_socket_timeout: u64,
    /// Requests handled or waiting at once; past it, 503 with `Retry-After`.
    pub max_in_flight_requests: usize,
    /// Open client connections; past it, new ones are closed at once.
    pub max_connections: usize,
    /// A PEM certificate chain: with `ssl_key_file`, the API speaks HTTPS.
    pub ssl_cert_file: Option<PathBuf>,
    /// The PEM private key of `ssl_cert_file`.
    pub ssl_key_file: Option<PathBuf>,
    /// Largest page of a list.
    pub osapi_max_limit: usize,
    /// Attempts to place a volume before it goes to `error`.
    pub scheduler_max_attempts: u32,
    /// Multiplier of the capacity weigher (positive spreads, negative stacks).
    pub capacity_weight_multiplier: f64,
    /// Seconds a user message is kept at least (its `guaranteed_until`).
    pub message_ttl: u64,
    /// Seconds between purges of expired user messages.
    pub message_reap_interval: u64,
    /// Default quotas.
    pub quota: QuotaConfig,
    /// Where backups are kept: `posix` (a directory) or `s3`.
    pub backup_driver: BackupDriver,
    /// posix: the directory of the backup repository (default `<data_dir>/backups`).
    pub backup_posix_path: Option<PathBuf>,
    /// s3: the store's URL (`https://s3.example.org`; path-style addressing).
    pub backup_s3_endpoint_url: Option<String>,
    /// s3: the access key.
    pub backup_s3_store_access_key: Option<String>,
    /// s3: the secret key.
    pub backup_s3_store_secret_key: Option<String>,
    /// s3: a file holding the secret key instead (hearth's key, as `password_file`);
    /// one trailing newline is ignored.
    pub backup_s3_store_secret_key_file: Option<PathBuf>,
    /// s3: the bucket (Cinder's default `volumebackups`); it must exist.
    pub backup_s3_store_bucket: String,
    /// s3: the SigV4 signing region (hearth's; Cinder has none).
    pub backup_s3_region: String,
    /// s3: objects larger than this many bytes are uploaded in parts.
    pub backup_s3_object_size: u64,
    /// s3: send each object's MD5 for the store to check.
    pub backup_s3_md5_validation: bool,
    /// s3: a PEM CA bundle to verify the store's certificate.
    pub backup_s3_ca_cert_file: Option<PathBuf>,
    /// s3: verify the store's certificate.
    pub backup_s3_verify_ssl: bool,
    /// A file of 32 random bytes (raw, or 64 hex digits) that encrypts the backup
    /// repository's chunks and manifests (hearth's key); none: not encrypted.
    pub backup_encryption_key_file: Option<PathBuf>,
    /// Backups and restores that run at once; more wait their turn (0: no limit).
    pub backup_max_operations: usize,
    /// Where lifecycle events are POSTed as JSON (`http://` or `https://` URL; see
    /// [`crate::events`]); none by default (they are logged either way).
    pub event_webhook: Option<String>,
    /// A second listener that answers only `GET /metrics`, without authentication
    /// (for a Prometheus on a management network); none by default (`GET /metrics`
    /// on the API is for admins).
    pub metrics_listen: Option<SocketAddr>,
    /// The backends, by name (Cinder's `enabled_backends` sections).
    pub backends: BTreeMap<String, BackendConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8776".parse().expect("static address"),
            data_dir: None,
            database: DatabaseSection::default(),
            host: None,
            storage_availability_zone: "nova".into(),
            auth_strategy: AuthStrategy::Noauth,
            admin_projects: Vec::new(),
            noauth_allow_remote: false,
            event_webhook: None,
            metrics_listen: None,
            keystone_authtoken: KeystoneAuthtoken::default(),
            http_basic_auth_user_file: None,
            http_basic_users: BTreeMap::new(),
            policy: BTreeMap::new(),
            noauth_default_project: "admin".into(),
            default_volume_type: "__DEFAULT__".into(),
            default_group_type: None,
            report_interval: 60,
            rpc_response_timeout: 60,
            api_threads: 8,
            max_request_body_size: 114_688,
            max_header_size: 16_384,
            client_socket_timeout: 30,
            max_in_flight_requests: 256,
            max_connections: 1024,
            ssl_cert_file: None,
            ssl_key_file: None,
            osapi_max_limit: 1000,
            scheduler_max_attempts: 3,
            capacity_weight_multiplier: 1.0,
            message_ttl: 2_592_000,
            message_reap_interval: 86_400,
            quota: QuotaConfig::default(),
            backup_driver: BackupDriver::Posix,
            backup_posix_path: None,
            backup_s3_endpoint_url: None,
            backup_s3_store_access_key: None,
            backup_s3_store_secret_key: None,
            backup_s3_store_secret_key_file: None,
            backup_s3_store_bucket: "volumebackups".into(),
            backup_s3_region: "us-east-1".into(),
            backup_s3_object_size: 52_428_800,
            backup_s3_md5_validation: true,
            backup_s3_ca_cert_file: None,
            backup_s3_verify_ssl: true,
            backup_encryption_key_file: None,
            backup_max_operations: 15,
            backends: BTreeMap::new(),
        }
    }
}

/// The embedded default: one file backend under the data directory.
pub const EMBEDDED_DEFAULT: &str = r#"
[backends.file]
driver = "file"
volume_backend_name = "file"
"#;

impl Config {
    /// Parse TOML text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.into(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Read a file, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::parse(EMBEDDED_DEFAULT, "<embedded default>"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.into(), source })?;
                Config::parse(&text, &p.display().to_string())
            }
        }
    }

    /// Check every value that the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(value_err("backends", "at least one backend must be configured"));
        }
        if self.storage_availability_zone.is_empty() {
            return Err(value_err("storage_availability_zone", "must not be empty"));
        }
        if self.api_threads == 0 || self.api_threads > 256 {
            return Err(value_err("api_threads", "must be between 1 and 256"));
        }
        if self.report_interval == 0 {
            return Err(value_err("report_interval", "must be at least 1 second"));
        }
        if self.rpc_response_timeout == 0 || self.rpc_response_timeout > 3600 {
            return Err(value_err("rpc_response_timeout", "must be between 1 and 3600 seconds"));
        }
        if let Some(hook) = &self.event_webhook {
            let ok = url::Url::parse(hook).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(value_err("event_webhook", format!("{hook:?} is not an http:// or https:// URL")));
            }
        }
        if self.message_ttl > 3_153_600_000 {
            return Err(value_err("message_ttl", "must be at most 3153600000 seconds (100 years)"));
        }
        if self.message_reap_interval == 0 {
            return Err(value_err("message_reap_interval", "must be at least 1 second"));
        }
        if self.osapi_max_limit == 0 {
            return Err(value_err("osapi_max_limit", "must be at least 1"));
        }
        if self.max_request_body_size < 1024 {
            return Err(value_err("max_request_body_size", "must be at least 1024 bytes"));
        }
        if !(1024..=1_048_576).contains(&self.max_header_size) {
            return Err(value_err("max_header_size", "must be between 1024 and 1048576 bytes"));
        }
        if self.client_socket_timeout == 0 {
            return Err(value_err("client_socket_timeout", "must be at least 1 second"));
        }
        if self.max_in_flight_requests < self.api_threads {
            return Err(value_err("max_in_flight_requests", "must be at least api_threads"));
        }
        if self.max_connections == 0 {
            return Err(value_err("max_connections", "must be at least 1"));
        }
        match (&self.ssl_cert_file, &self.ssl_key_file) {
            (Some(_), None) => return Err(value_err("ssl_key_file", "is required with ssl_cert_file")),
            (None, Some(_)) => return Err(value_err("ssl_cert_file", "is required with ssl_key_file")),
            _ => {}
        }
        self.validate_auth()?;
        self.validate_database()?;
        if let Err(e) = crate::policy::Policy::new(&self.policy) {
            return Err(value_err("policy", e));
        }
        if self.scheduler_max_attempts == 0 {
            return Err(value_err("scheduler_max_attempts", "must be at least 1"));
        }
        if !self.capacity_weight_multiplier.is_finite() {
            return Err(value_err("capacity_weight_multiplier", "must be a finite number"));
        }
        if let Some(host) = &self.host {
            if host.is_empty() || host.contains(['@', '#', '/']) {
                return Err(value_err("host", "must be non-empty and contain no '@', '#' or '/'"));
            }
        }
        let q = &self.quota;
        for (key, v) in [
            ("quota.quota_volumes", q.quota_volumes),
            ("quota.quota_snapshots", q.quota_snapshots),
            ("quota.quota_gigabytes", q.quota_gigabytes),
            ("quota.quota_backups", q.quota_backups),
            ("quota.quota_backup_gigabytes", q.quota_backup_gigabytes),
            ("quota.quota_groups", q.quota_groups),
            ("quota.per_volume_size_limit", q.per_volume_size_limit),
        ] {
            if v < -1 {
                return Err(value_err(key, "must be -1 (unlimited) or a count >= 0"));
            }
        }
        self.validate_backup()?;
        for (name, b) in &self.backends {
            let key = |k: &str| format!("backends.{name}.{k}");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(value_err(
                    format!("backends.{name}"),
                    "backend names may use only letters, digits, '-', '_' and '.'",
                ));
            }
            if b.reserved_percentage > 100 {
                return Err(value_err(key("reserved_percentage"), "must be between 0 and 100"));
            }
            if let OverSubscription::Ratio(r) = b.max_over_subscription_ratio {
                if !(r.is_finite() && r >= 1.0) {
                    return Err(value_err(key("max_over_subscription_ratio"), "must be a number >= 1.0 or \"auto\""));
                }
            }
            if let Some(vbn) = &b.volume_backend_name {
                if vbn.is_empty() {
                    return Err(value_err(key("volume_backend_name"), "must not be empty"));
                }
            }
            if let Some(p) = &b.pool_name {
                if p.is_empty() || p.contains(['@', '#', '/']) {
                    return Err(value_err(key("pool_name"), "must be non-empty and contain no '@', '#' or '/'"));
                }
            }
            if let Some(az) = &b.backend_availability_zone {
                if az.is_empty() {
                    return Err(value_err(key("backend_availability_zone"), "must not be empty"));
                }
            }
            let only = |k: &str, set: bool, driver: &str| {
                if set {
                    Err(value_err(key(k), format!("is a key of the {driver} driver, not of {:?}", b.driver)))
                } else {
                    Ok(())
                }
            };
            match b.target_helper {
                TargetHelper::Local => {
                    for (k, set) in [
                        ("target_ip_address", b.target_ip_address.is_some()),
                        ("target_secondary_ip_addresses", b.target_secondary_ip_addresses.is_some()),
                        ("target_port", b.target_port.is_some()),
                        ("target_prefix", b.target_prefix.is_some()),
                        ("configfs_path", b.configfs_path.is_some()),
                    ] {
                        if set {
                            return Err(value_err(key(k), "is a key of target_helper = \"lioadm\", not of \"local\""));
                        }
                    }
                }
                TargetHelper::Lioadm => {
                    let Some(primary) = b.target_ip_address else {
                        return Err(value_err(
                            key("target_ip_address"),
                            "is required with target_helper = \"lioadm\" (the address initiators log in to)",
                        ));
                    };
                    if primary.is_unspecified() {
                        return Err(value_err(key("target_ip_address"), "must be an address initiators can reach"));
                    }
                    let secondary = b.target_secondary_ip_addresses.as_deref().unwrap_or_default();
                    if secondary.contains(&primary)
                        || secondary.iter().enumerate().any(|(i, a)| a.is_unspecified() || secondary[..i].contains(a))
                    {
                        return Err(value_err(
                            key("target_secondary_ip_addresses"),
                            "must be distinct addresses, other than target_ip_address",
                        ));
                    }
                    if b.target_port == Some(0) {
                        return Err(value_err(key("target_port"), "must be a TCP port between 1 and 65535"));
                    }
                    if let Some(prefix) = &b.target_prefix {
                        let ok = prefix.starts_with("iqn.")
                            && prefix.len() <= 160
                            && prefix
                                .bytes()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".:-".contains(&c));
                        if !ok {
                            return Err(value_err(
                                key("target_prefix"),
                                "must be an IQN prefix: \"iqn.\" then lower-case letters, digits, '.', ':' and '-'",
                            ));
                        }
                    }
                    if b.configfs_path.as_ref().is_some_and(|p| !p.is_absolute()) {
                        return Err(value_err(key("configfs_path"), "must be an absolute path"));
                    }
                }
            }
            match b.driver {
                Driver::File => {
                    if b.size_gb == Some(0) {
                        return Err(value_err(key("size_gb"), "must be at least 1"));
                    }
                    only("volume_group", b.volume_group.is_some(), "lvm")?;
                    only("lvm_type", b.lvm_type.is_some(), "lvm")?;
                    only("lvm_command_timeout", b.lvm_command_timeout.is_some(), "lvm")?;
                }
                Driver::Lvm => {
                    only("path", b.path.is_some(), "file")?;
                    only("size_gb", b.size_gb.is_some(), "file")?;
                    match &b.volume_group {
                        None => return Err(value_err(key("volume_group"), "is required for the lvm driver")),
                        Some(vg)
                            if vg.is_empty()
                                || vg.starts_with('-')
                                || !vg.chars().all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c)) =>
                        {
                            return Err(value_err(key("volume_group"), "is not a valid volume group name"))
                        }
                        Some(_) => {}
                    }
                    if b.lvm_command_timeout == Some(0) {
                        return Err(value_err(key("lvm_command_timeout"), "must be at least 1 second"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The backup keys: those of the other driver are refused, the chosen driver's
    /// required ones must be there.
    fn validate_backup(&self) -> Result<(), ConfigError> {
        let s3_set = [
            ("backup_s3_endpoint_url", self.backup_s3_endpoint_url.is_some()),
            ("backup_s3_store_access_key", self.backup_s3_store_access_key.is_some()),
            ("backup_s3_store_secret_key", self.backup_s3_store_secret_key.is_some()),
            ("backup_s3_store_secret_key_file", self.backup_s3_store_secret_key_file.is_some()),
            ("backup_s3_ca_cert_file", self.backup_s3_ca_cert_file.is_some()),
        ];
        match self.backup_driver {
            BackupDriver::Posix => {
                if let Some((k, _)) = s3_set.iter().find(|(_, set)| *set) {
                    return Err(value_err(*k, "is a key of backup_driver = \"s3\", not of \"posix\""));
                }
            }
            BackupDriver::S3 => {
                if self.backup_posix_path.is_some() {
                    return Err(value_err("backup_posix_path", "is a key of backup_driver = \"posix\", not of \"s3\""));
                }
                match &self.backup_s3_endpoint_url {
                    None => return Err(value_err("backup_s3_endpoint_url", "is required with backup_driver = \"s3\"")),
                    Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                        return Err(value_err("backup_s3_endpoint_url", "must be an http:// or https:// URL"))
                    }
                    Some(_) => {}
                }
                if self.backup_s3_store_access_key.as_deref().is_none_or(str::is_empty) {
                    return Err(value_err("backup_s3_store_access_key", "is required with backup_driver = \"s3\""));
                }
                match (&self.backup_s3_store_secret_key, &self.backup_s3_store_secret_key_file) {
                    (Some(_), Some(_)) => {
                        return Err(value_err(
                            "backup_s3_store_secret_key_file",
                            "give backup_s3_store_secret_key or backup_s3_store_secret_key_file, not both",
                        ))
                    }
                    (None, None) => {
                        return Err(value_err(
                            "backup_s3_store_secret_key",
                            "is required with backup_driver = \"s3\" (or backup_s3_store_secret_key_file)",
                        ))
                    }
                    _ => {}
                }
                let b = &self.backup_s3_store_bucket;
                let ok = (3..=63).contains(&b.len())
                    && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
                    && !b.starts_with(['-', '.'])
                    && !b.ends_with(['-', '.']);
                if !ok {
                    return Err(value_err(
                        "backup_s3_store_bucket",
                        "must be an S3 bucket name: 3 to 63 lower-case letters, digits, '-' and '.'",
                    ));
                }
                if self.backup_s3_object_size < (5 << 20) {
                    return Err(value_err(
                        "backup_s3_object_size",
                        "must be at least 5242880 bytes (S3's smallest part)",
                    ));
                }
            }
        }
        if self.backup_posix_path.as_ref().is_some_and(|p| !p.is_absolute()) {
            return Err(value_err("backup_posix_path", "must be an absolute path"));
        }
        Ok(())
    }

    /// The directory of the posix backup repository.
    pub fn backup_posix_path(&self) -> PathBuf {
        self.backup_posix_path.clone().unwrap_or_else(|| self.data_dir().join("backups"))
    }

    fn validate_database(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.database.connection else {
            if self.database.password_file.is_some() {
                return Err(value_err("database.password_file", "is set but database.connection is not"));
            }
            return Ok(());
        };
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(value_err(
                "database.connection",
                "must be a PostgreSQL URL (postgresql://user@host:port/dbname; SQLAlchemy's driver suffix, \
                 as in postgresql+psycopg2://, is not libpq's syntax); leave it unset for SQLite",
            ));
        }
        let (driver_url, _) =
            crate::store::pg_target::split_url(url).map_err(|e| value_err("database.connection", e))?;
        driver_url
            .parse::<postgres::Config>()
            .map_err(|e| value_err("database.connection", format!("is not a PostgreSQL connection URL: {e}")))?;
        if self.database.password_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            return Err(value_err("database.password_file", "must be an absolute path"));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let k = &self.keystone_authtoken;
        let keystone_set = *k != KeystoneAuthtoken::default();
        let basic_set = self.http_basic_auth_user_file.is_some() || !self.http_basic_users.is_empty();
        let noauth_set = !self.admin_projects.is_empty() || self.noauth_allow_remote;
        match self.auth_strategy {
            AuthStrategy::Noauth => {
                if keystone_set {
                    return Err(value_err("keystone_authtoken", "is set but auth_strategy is \"noauth\""));
                }
                if basic_set {
                    return Err(value_err("http_basic_auth_user_file", "is set but auth_strategy is \"noauth\""));
                }
                if !self.listen.ip().is_loopback() && !self.noauth_allow_remote {
                    return Err(value_err(
                        "listen",
                        format!(
                            "{} is not a loopback address and auth_strategy is \"noauth\": anyone who can reach it \
                             would be admin; use keystone or http_basic, or set noauth_allow_remote = true",
                            self.listen
                        ),
                    ));
                }
            }
            AuthStrategy::Keystone => {
                if basic_set {
                    return Err(value_err("http_basic_auth_user_file", "is set but auth_strategy is \"keystone\""));
                }
                if noauth_set {
                    return Err(value_err("admin_projects", "is a noauth key; with keystone, roles decide"));
                }
                for (key, v) in
                    [("auth_url", &k.auth_url), ("username", &k.username), ("project_name", &k.project_name)]
                {
                    if v.as_deref().is_none_or(str::is_empty) {
                        return Err(value_err(
                            format!("keystone_authtoken.{key}"),
                            "is required with auth_strategy = \"keystone\"",
                        ));
                    }
                }
                match (&k.password, &k.password_file) {
                    (Some(_), Some(_)) => {
                        return Err(value_err(
                            "keystone_authtoken.password_file",
                            "give password or password_file, not both",
                        ))
                    }
                    (None, None) => {
                        return Err(value_err(
                            "keystone_authtoken.password",
                            "is required with auth_strategy = \"keystone\" (or password_file)",
                        ))
                    }
                    _ => {}
                }
                for (key, v) in [("auth_url", &k.auth_url), ("www_authenticate_uri", &k.www_authenticate_uri)] {
                    if let Some(url) = v {
                        if !(url.starts_with("http://") || url.starts_with("https://")) {
                            return Err(value_err(
                                format!("keystone_authtoken.{key}"),
                                "must be an http:// or https:// URL",
                            ));
                        }
                    }
                }
                if k.auth_type.as_deref().is_some_and(|t| t != "password") {
                    return Err(value_err("keystone_authtoken.auth_type", "only \"password\" is supported"));
                }
                if k.token_cache_time < -1 {
                    return Err(value_err(
                        "keystone_authtoken.token_cache_time",
                        "must be -1 (no cache) or seconds >= 0",
                    ));
                }
                if k.token_cache_size == 0 {
                    return Err(value_err("keystone_authtoken.token_cache_size", "must be at least 1"));
                }
                if k.http_connect_timeout == 0 {
                    return Err(value_err("keystone_authtoken.http_connect_timeout", "must be at least 1 second"));
                }
            }
            AuthStrategy::HttpBasic => {
                if keystone_set {
                    return Err(value_err("keystone_authtoken", "is set but auth_strategy is \"http_basic\""));
                }
                if noauth_set {
                    return Err(value_err("admin_projects", "is a noauth key; with http_basic, roles decide"));
                }
                if self.http_basic_auth_user_file.is_none() {
                    return Err(value_err(
                        "http_basic_auth_user_file",
                        "is required with auth_strategy = \"http_basic\"",
                    ));
                }
                for (name, u) in &self.http_basic_users {
                    if u.project_id.is_empty() {
                        return Err(value_err(format!("http_basic_users.{name}.project_id"), "must not be empty"));
                    }
                    if u.roles.iter().any(|r| r.is_empty()) {
                        return Err(value_err(format!("http_basic_users.{name}.roles"), "must not hold an empty name"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The pool name of a backend.
    pub fn pool_name(&self, backend: &str) -> String {
        self.backends.get(backend).and_then(|b| b.pool_name.clone()).unwrap_or_else(|| backend.to_string())
    }

    /// The data directory: configured, else `/var/lib/hearth` for root and
    /// `./var/hearth` for everyone else.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            if nix::unistd::geteuid().is_root() {
                PathBuf::from("/var/lib/hearth")
            } else {
                PathBuf::from("./var/hearth")
            }
        })
    }

    /// This host's name in pool names.
    pub fn host(&self) -> String {
        self.host.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .map(|h| h.replace(['@', '#', '/'], "-"))
                .unwrap_or_else(|| "hearth".into())
        })
    }

    /// The limits the API's server enforces.
    pub fn limits(&self) -> crate::api::server::Limits {
        crate::api::server::Limits {
            max_header_size: self.max_header_size,
            max_body_size: self.max_request_body_size,
            read_timeout: std::time::Duration::from_secs(self.client_socket_timeout),
            max_in_flight: self.max_in_flight_requests,
            max_connections: self.max_connections,
        }
    }

    /// Whether the project's callers are admins.
    pub fn is_admin_project(&self, project: &str) -> bool {
        self.admin_projects.is_empty() || self.admin_projects.iter().any(|p| p == project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8776");
        assert_eq!(c.backends.len(), 1);
        assert_eq!(c.backends["file"].driver, Driver::File);
        assert_eq!(c.quota, QuotaConfig::default());
    }

    #[test]
    fn fixtures_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 3);
    }

    /// Each bad configuration is refused with a message naming the key.
    #[test]
    fn bad_configs_name_the_key() {
        let file = "[backends.f]\ndriver = \"file\"\n";
        let table: &[(&str, &str)] = &[
            ("listen = \"nowhere\"\n", "listen"),
            ("[database]\nconnection = \"mysql+pymysql://c@db/cinder\"\n", "database.connection"),
            ("[database]\nconnection = \"postgresql://h@db:notaport/hearth\"\n", "database.connection"),
            ("[database]\nconnection = \"postgresql://h@db/hearth?sslmode=verify-full\"\n", "database.connection"),
            ("[database]\npassword_file = \"/run/pw\"\n", "database.password_file"),
            ("[database]\nconnection = \"postgresql://h@db/hearth\"\npassword_file = \"pw\"\n", "database.password_file"),
            ("[database]\nhost = \"db\"\n", "host"),
            ("event_webhook = \"ftp://x/\"\n", "event_webhook"),
            ("metrics_listen = \"nowhere\"\n", "metrics_listen"),
            ("event_webhook = \"not a url\"\n", "event_webhook"),
            ("listen = \"0.0.0.0:8776\"\n", "listen"),
            ("listen = \"192.0.2.1:8776\"\nauth_strategy = \"noauth\"\n", "noauth_allow_remote"),
            ("auth_strategy = \"kerberos\"\n", "kerberos"),
            ("auth_strategy = \"keystone\"\n", "keystone_authtoken.auth_url"),
            (
                "auth_strategy = \"keystone\"\n[keystone_authtoken]\nauth_url = \"http://k:5000\"\nusername = \"h\"\n\
                 project_name = \"service\"\n",
                "keystone_authtoken.password",
            ),
            (
                "auth_strategy = \"keystone\"\n[keystone_authtoken]\nauth_url = \"k:5000\"\nusername = \"h\"\n\
                 password = \"p\"\nproject_name = \"service\"\n",
                "keystone_authtoken.auth_url",
            ),
            ("[keystone_authtoken]\nauth_url = \"http://k:5000\"\n", "keystone_authtoken"),
            (
                "auth_strategy = \"keystone\"\n[keystone_authtoken]\nauth_url = \"http://k:5000\"\nusername = \"h\"\n\
                 password = \"p\"\npassword_file = \"/p\"\nproject_name = \"service\"\n",
                "keystone_authtoken.password_file",
            ),
            ("[keystone_authtoken]\nmemcached_servers = \"x\"\n", "memcached_servers"),
            ("auth_strategy = \"http_basic\"\n", "http_basic_auth_user_file"),
            ("auth_strategy = \"http_basic\"\nadmin_projects = [\"a\"]\n", "admin_projects"),
            ("[policy]\n\"volume:explode\" = \"@\"\n", "volume:explode"),
            ("[policy]\n\"volume:create\" = \"role:\"\n", "volume:create"),
            ("bogus = 1\n", "bogus"),
            ("report_interval = 0\n", "report_interval"),
            ("rpc_response_timeout = 0\n", "rpc_response_timeout"),
            ("message_reap_interval = 0\n", "message_reap_interval"),
            ("message_ttl = 9999999999\n", "message_ttl"),
            ("api_threads = 0\n", "api_threads"),
            ("[quota]\nquota_volumes = -5\n", "quota.quota_volumes"),
            ("[quota]\nquota_vols = 5\n", "quota_vols"),
            ("[backends.f]\ndriver = \"tape\"\n", "tape"),
            ("[backends.f]\ndriver = \"file\"\nreserved_percentage = 101\n", "backends.f.reserved_percentage"),
            (
                "[backends.f]\ndriver = \"file\"\nmax_over_subscription_ratio = 0.5\n",
                "backends.f.max_over_subscription_ratio",
            ),
            (
                "[backends.f]\ndriver = \"file\"\nmax_over_subscription_ratio = \"lots\"\n",
                "max_over_subscription_ratio",
            ),
            ("[backends.f]\ndriver = \"file\"\nvolume_clear = \"shred\"\n", "volume_clear"),
            ("[backends.f]\ndriver = \"file\"\nsize_gb = 0\n", "backends.f.size_gb"),
            ("[backends.f]\ndriver = \"file\"\ncolour = \"red\"\n", "colour"),
            ("[backends.\"a b\"]\ndriver = \"file\"\n", "backends.a b"),
            ("", "backends"),
            ("[backends.l]\ndriver = \"lvm\"\n", "backends.l.volume_group"),
            ("[backends.l]\ndriver = \"lvm\"\nvolume_group = \"-bad\"\n", "backends.l.volume_group"),
            ("[backends.l]\ndriver = \"lvm\"\nvolume_group = \"vg\"\npath = \"/x\"\n", "backends.l.path"),
            ("[backends.l]\ndriver = \"lvm\"\nvolume_group = \"vg\"\nlvm_type = \"fat\"\n", "lvm_type"),
            ("[backends.f]\ndriver = \"file\"\nvolume_group = \"vg\"\n", "backends.f.volume_group"),
            ("backup_driver = \"tape\"\n", "tape"),
            ("backup_s3_endpoint_url = \"http://s3:8080\"\n", "backup_s3_endpoint_url"),
            ("backup_driver = \"s3\"\n", "backup_s3_endpoint_url"),
            ("backup_driver = \"s3\"\nbackup_s3_endpoint_url = \"s3:8080\"\n", "backup_s3_endpoint_url"),
            (
                "backup_driver = \"s3\"\nbackup_s3_endpoint_url = \"http://s3:8080\"\n",
                "backup_s3_store_access_key",
            ),
            (
                "backup_driver = \"s3\"\nbackup_s3_endpoint_url = \"http://s3:8080\"\nbackup_s3_store_access_key = \"a\"\n",
                "backup_s3_store_secret_key",
            ),
            (
                "backup_driver = \"s3\"\nbackup_s3_endpoint_url = \"http://s3:8080\"\nbackup_s3_store_access_key = \"a\"\n\
                 backup_s3_store_secret_key = \"s\"\nbackup_s3_store_bucket = \"Bad_Bucket\"\n",
                "backup_s3_store_bucket",
            ),
            (
                "backup_driver = \"s3\"\nbackup_s3_endpoint_url = \"http://s3:8080\"\nbackup_s3_store_access_key = \"a\"\n\
                 backup_s3_store_secret_key = \"s\"\nbackup_posix_path = \"/b\"\n",
                "backup_posix_path",
            ),
            ("backup_posix_path = \"relative\"\n", "backup_posix_path"),
            ("[backends.f]\ndriver = \"file\"\ntarget_helper = \"tgtadm\"\n", "tgtadm"),
            ("[backends.f]\ndriver = \"file\"\ntarget_helper = \"lioadm\"\n", "backends.f.target_ip_address"),
            ("[backends.f]\ndriver = \"file\"\ntarget_port = 3260\n", "backends.f.target_port"),
            (
                "[backends.f]\ndriver = \"file\"\ntarget_helper = \"lioadm\"\ntarget_ip_address = \"10.0.0\"\n",
                "target_ip_address",
            ),
            (
                "[backends.f]\ndriver = \"file\"\ntarget_helper = \"lioadm\"\ntarget_ip_address = \"0.0.0.0\"\n",
                "backends.f.target_ip_address",
            ),
            (
                "[backends.f]\ndriver = \"file\"\ntarget_helper = \"lio\"\ntarget_ip_address = \"10.0.0.1\"\n\
                 target_secondary_ip_addresses = [\"10.0.0.1\"]\n",
                "backends.f.target_secondary_ip_addresses",
            ),
            (
                "[backends.f]\ndriver = \"file\"\ntarget_helper = \"lio\"\ntarget_ip_address = \"10.0.0.1\"\n\
                 target_port = 0\n",
                "backends.f.target_port",
            ),
            (
                "[backends.f]\ndriver = \"file\"\ntarget_helper = \"lio\"\ntarget_ip_address = \"10.0.0.1\"\n\
                 target_prefix = \"IQN.Bad Prefix\"\n",
                "backends.f.target_prefix",
            ),
            (
                "[backends.f]\ndriver = \"file\"\ntarget_helper = \"lio\"\ntarget_ip_address = \"10.0.0.1\"\n\
                 configfs_path = \"relative\"\n",
                "backends.f.configfs_path",
            ),
        ];
        for (text, key) in table {
            let text =
                if text.contains("[backends") || text.is_empty() { text.to_string() } else { format!("{text}{file}") };
            let err = Config::parse(&text, "t.toml").expect_err(&text).to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn lioadm_takes_cinders_keys() {
        let c = Config::parse(
            "[backends.l]\ndriver = \"lvm\"\nvolume_group = \"vg\"\ntarget_helper = \"lioadm\"\n\
             target_ip_address = \"192.0.2.1\"\ntarget_secondary_ip_addresses = [\"2001:db8::1\"]\n\
             target_port = 3261\ntarget_prefix = \"iqn.2026-11.org.example:\"\n",
            "t",
        )
        .unwrap();
        let b = &c.backends["l"];
        assert_eq!(b.target_helper, TargetHelper::Lioadm);
        assert_eq!(b.target_secondary_ip_addresses.as_deref().unwrap().len(), 1);
        assert_eq!(b.target_port, Some(3261));
    }

    #[test]
    fn backup_drivers_take_cinders_names() {
        let c = Config::parse(
            "backup_driver = \"cinder.backup.drivers.s3.S3BackupDriver\"\n\
             backup_s3_endpoint_url = \"http://127.0.0.1:8080\"\nbackup_s3_store_access_key = \"test:tester\"\n\
             backup_s3_store_secret_key = \"testing\"\n[backends.f]\ndriver = \"file\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.backup_driver, BackupDriver::S3);
        assert_eq!(c.backup_s3_store_bucket, "volumebackups");
        let d = Config::load(None).unwrap();
        assert_eq!(d.backup_driver, BackupDriver::Posix);
        assert_eq!(d.backup_posix_path(), d.data_dir().join("backups"));
        assert_eq!(d.backup_driver.cinder_name(), "cinder.backup.drivers.posix.PosixBackupDriver");
    }

    #[test]
    fn auto_over_subscription_is_accepted() {
        let c =
            Config::parse("[backends.f]\ndriver = \"file\"\nmax_over_subscription_ratio = \"auto\"\n", "t").unwrap();
        assert_eq!(c.backends["f"].max_over_subscription_ratio, OverSubscription::Auto);
    }
}
