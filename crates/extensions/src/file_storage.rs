//! `file_storage`: a directory per component for state that survives restarts (otelcol
//! contrib's `extension/storage/filestorage`, same keys and defaults).
//!
//! otelcol keeps one bbolt database file per component; Redline hands each component a
//! directory of its own instead (`<directory>/<kind>_<type>_<name>_<purpose>`, sanitized the
//! way otelcol sanitizes its file names) and lets the component choose its file format. The
//! OTLP exporter's persistent sending queue keeps an append-only log there.
//!
//! Each directory handed out is locked (an advisory `flock` on `<subdir>/LOCK`, waited for up
//! to `timeout`, as otelcol waits for bbolt's file lock) until the extension is dropped, so two
//! Redline processes pointed at the same directory cannot interleave writes to one queue.

use std::collections::BTreeMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::config::ConfigError;
use redline_pipeline::config::Unsupported;
use redline_pipeline::duration;
use redline_pipeline::extension::{ExtensionCapabilities, Storage};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ExtensionFactory, RunningComponent,
    ShutdownError,
};
use serde::Deserialize;

pub use redline_pipeline::Invalid;

/// otelcol's default on Linux. An otelcol file that relies on it runs unchanged, and fails the
/// same way (at start, naming the path) when the directory does not exist.
pub const DEFAULT_DIRECTORY: &str = "/var/lib/otelcol/file_storage";

/// The `file_storage` extension.
pub struct FileStorageFactory;

/// The extension's section, e.g. `extensions.file_storage/queue`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub directory: String,
    /// How long to wait for another process to release a component directory's lock.
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// fsync every write before it is acknowledged: survives power loss. Writes that arrive
    /// together share one disk flush (the OTLP exporter's queue commits them in groups).
    /// Without it, data survives a crash of Redline but not of the machine.
    pub fsync: bool,
    /// Create `directory` (and its parents) at start when missing.
    pub create_directory: bool,
    /// Octal mode for the directories created, minus the process umask.
    pub directory_permissions: String,
    /// Accepted for compatibility; nothing to do (see [`CompactionConfig`]).
    pub compaction: CompactionConfig,
    /// Accepted for compatibility: Redline always recovers from a damaged file (see README).
    pub recreate: bool,
    /// otelcol's cap on the database file; the queue's own byte limit bounds it here.
    pub max_size: Option<Unsupported>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            directory: DEFAULT_DIRECTORY.to_owned(),
            timeout: Duration::from_secs(1),
            fsync: false,
            create_directory: false,
            directory_permissions: "0750".to_owned(),
            compaction: CompactionConfig::default(),
            recreate: false,
            max_size: None,
        }
    }
}

/// otelcol compacts its bbolt files to give back space freed by deleted entries. Redline's
/// queue files are segments deleted as soon as every record in them is acknowledged, so space
/// is given back continuously: these keys are validated as otelcol validates them and need no
/// effect.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    pub on_start: bool,
    pub on_rebound: bool,
    pub directory: Option<String>,
    pub max_transaction_size: i64,
    pub rebound_needed_threshold_mib: i64,
    pub rebound_trigger_threshold_mib: i64,
    #[serde(deserialize_with = "duration::deserialize")]
    pub check_interval: Duration,
    pub cleanup_on_start: bool,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            on_start: false,
            on_rebound: false,
            directory: None,
            max_transaction_size: 65536,
            rebound_needed_threshold_mib: 100,
            rebound_trigger_threshold_mib: 10,
            check_interval: Duration::from_secs(5),
            cleanup_on_start: false,
        }
    }
}

impl Config {
    /// The checks that need no file system.
    pub fn check(&self) -> Result<u32, Invalid> {
        if self.directory.trim().is_empty() {
            return Err(Invalid::new("directory", "must not be empty"));
        }
        let mode = parse_mode(&self.directory_permissions)
            .map_err(|reason| Invalid::new("directory_permissions", reason))?;
        if self.compaction.max_transaction_size < 0 {
            return Err(Invalid::new(
                "compaction.max_transaction_size",
                "must not be negative",
            ));
        }
        if self.compaction.on_rebound && self.compaction.check_interval.is_zero() {
            return Err(Invalid::new(
                "compaction.check_interval",
                "must be positive when compaction.on_rebound is set",
            ));
        }
        Ok(mode)
    }
}

/// An octal permission string such as `0750`: permission bits only.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(s.trim(), 8)
        .map_err(|_| format!("`{s}` is not an octal number such as `0750`"))?;
    if mode & !0o777 != 0 {
        return Err(format!(
            "`{s}` has bits other than permissions (allowed: 0000 to 0777)"
        ));
    }
    Ok(mode)
}

/// The directory name a component gets, as otelcol names its files: `kind_type_name[_purpose]`
/// with every character outside `[A-Za-z0-9._~-]` replaced by `~`.
pub fn component_dir_name(kind: &str, component: &ComponentId, purpose: &str) -> String {
    let base = format!(
        "{kind}_{}_{}",
        component.type_name(),
        component.name().unwrap_or("")
    );
    let raw = if purpose.is_empty() {
        base
    } else {
        format!("{base}_{purpose}")
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~') {
                c
            } else {
                '~'
            }
        })
        .collect()
}

/// The running extension.
pub struct FileStorage {
    root: PathBuf,
    mode: u32,
    fsync: bool,
    timeout: Duration,
    /// Lock files of the directories handed out, held while the extension lives.
    locks: Mutex<BTreeMap<PathBuf, File>>,
}

impl FileStorage {
    /// Checks `config` against the file system and creates the root when asked to.
    pub fn open(config: &Config) -> Result<Self, Invalid> {
        let mode = config.check()?;
        let root = PathBuf::from(config.directory.trim());
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Invalid::new(
                    "directory",
                    format!("`{}` exists and is not a directory", root.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && config.create_directory => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(mode)
                    .create(&root)
                    .map_err(|e| {
                        Invalid::new(
                            "directory",
                            format!("cannot create `{}`: {e}", root.display()),
                        )
                    })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Invalid::new(
                    "directory",
                    format!(
                        "`{}` does not exist; create it or set create_directory: true",
                        root.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(Invalid::new(
                    "directory",
                    format!("cannot access `{}`: {e}", root.display()),
                ))
            }
        }
        probe_writable(&root).map_err(|e| {
            Invalid::new(
                "directory",
                format!("`{}` is not writable: {e}", root.display()),
            )
        })?;
        Ok(Self {
            root,
            mode,
            fsync: config.fsync,
            timeout: config.timeout,
            locks: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Creates and removes a file: permissions and read-only mounts show up at start rather than
/// at the first write of a queue, when data is already accepted.
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".redline-probe-{}", std::process::id()));
    File::create(&probe)?;
    std::fs::remove_file(&probe)
}

impl Storage for FileStorage {
    fn directory(&self, kind: &str, component: &ComponentId, name: &str) -> io::Result<PathBuf> {
        let dir = self.root.join(component_dir_name(kind, component, name));
        let mut locks = self.locks.lock();
        if locks.contains_key(&dir) {
            return Ok(dir);
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                // Most likely otelcol's bbolt file for the same component: Redline cannot read
                // it, and must not overwrite it.
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "`{}` exists and is not a directory (an otelcol database file?); move it away",
                        dir.display()
                    ),
                ));
            }
            Err(_) => DirBuilder::new().mode(self.mode).create(&dir)?,
        }
        let lock_path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "`{}` is locked by another process (another Redline using the same \
                             directory?); gave up after timeout {:?}",
                            lock_path.display(),
                            self.timeout
                        ),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        locks.insert(dir.clone(), file);
        Ok(dir)
    }

    fn fsync(&self) -> bool {
        self.fsync
    }
}

fn parse(config: &ComponentConfig) -> Result<Config, ConfigError> {
    let parsed: Config = config.parse()?;
    parsed.check().map_err(|e| config.locate(e))?;
    Ok(parsed)
}

impl FactoryInfo for FileStorageFactory {
    fn type_name(&self) -> &'static str {
        "file_storage"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
    }
}

impl ExtensionFactory for FileStorageFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = parse(config);
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            let storage = FileStorage::open(&parsed).map_err(|e| BuildError::new(&id, e))?;
            tracing::debug!(
                extension = %id,
                directory = %storage.root.display(),
                fsync = storage.fsync,
                "file_storage started"
            );
            let storage = Arc::new(storage);
            let caps = ExtensionCapabilities {
                storage: Some(storage.clone()),
                ..ExtensionCapabilities::default()
            };
            Ok((
                caps,
                Box::new(Running { storage }) as Box<dyn RunningComponent>,
            ))
        })
    }
}

/// Releases the directory locks at shutdown: extensions stop last, after every component that
/// wrote to them, so the next process may take the directories at once.
struct Running {
    storage: Arc<FileStorage>,
}

impl RunningComponent for Running {
    fn shutdown(self: Box<Self>, _: Instant) -> BoxFuture<'static, Result<(), ShutdownError>> {
        self.storage.locks.lock().clear();
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(dir: &Path) -> Config {
        Config {
            directory: dir.display().to_string(),
            timeout: Duration::from_millis(50),
            ..Config::default()
        }
    }

    fn section(yaml: &str) -> ComponentConfig {
        crate::test_config::extension_section("file_storage", yaml)
    }

    #[test]
    fn directory_names_follow_otelcol() {
        let tempo = ComponentId::new("otlp", Some("tempo"));
        assert_eq!(
            component_dir_name("exporter", &tempo, "traces"),
            "exporter_otlp_tempo_traces"
        );
        let plain = ComponentId::new("otlp", None);
        assert_eq!(
            component_dir_name("exporter", &plain, "traces"),
            "exporter_otlp__traces"
        );
        let odd = ComponentId::new("otlp", Some("a b/../c:d"));
        assert_eq!(
            component_dir_name("exporter", &odd, ""),
            "exporter_otlp_a~b~..~c~d"
        );
    }

    #[test]
    fn permissions_are_octal_permission_bits() {
        assert_eq!(parse_mode("0750"), Ok(0o750));
        assert_eq!(parse_mode("700"), Ok(0o700));
        assert!(parse_mode("0x1ff").is_err());
        assert!(parse_mode("0789").is_err());
        assert!(
            parse_mode("01777").is_err(),
            "sticky bit is not a permission"
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it_unless_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("queue/nested");
        let err = FileStorage::open(&config(&missing))
            .err()
            .expect("missing directory");
        assert_eq!(err.key_path, "directory");
        assert!(err.reason.contains(&missing.display().to_string()), "{err}");
        assert!(err.reason.contains("create_directory"), "{err}");

        let cfg = Config {
            create_directory: true,
            directory_permissions: "0700".into(),
            ..config(&missing)
        };
        let storage = FileStorage::open(&cfg).expect("created");
        let mode = std::fs::metadata(storage.root())
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777 & !0o700, 0, "mode {mode:o} within 0700");

        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").expect("writes");
        let err = FileStorage::open(&config(&file)).err().expect("not a dir");
        assert!(err.reason.contains("not a directory"), "{err}");
    }

    #[test]
    fn each_component_gets_a_locked_directory_of_its_own() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let id = ComponentId::new("otlp", Some("tempo"));
        let a = FileStorage::open(&config(tmp.path())).expect("opens");
        let dir = a.directory("exporter", &id, "traces").expect("a directory");
        assert_eq!(dir, tmp.path().join("exporter_otlp_tempo_traces"));
        assert!(dir.is_dir());
        assert_eq!(a.directory("exporter", &id, "traces").expect("again"), dir);

        // Another process (or storage) on the same directory waits for the lock, then fails.
        let b = FileStorage::open(&config(tmp.path())).expect("opens");
        let err = b.directory("exporter", &id, "traces").expect_err("locked");
        assert!(err.to_string().contains("locked"), "{err}");
        let other = ComponentId::new("otlp", Some("other"));
        b.directory("exporter", &other, "traces")
            .expect("other components are not affected");
        drop(a);
        b.directory("exporter", &id, "traces")
            .expect("free once the first is gone");
    }

    #[test]
    fn a_file_where_the_directory_goes_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("exporter_otlp__traces"), b"bbolt").expect("writes");
        let s = FileStorage::open(&config(tmp.path())).expect("opens");
        let err = s
            .directory("exporter", &ComponentId::new("otlp", None), "traces")
            .expect_err("a file is in the way");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn otelcol_keys_parse_and_bad_values_name_their_key() {
        let f = FileStorageFactory;
        f.validate(&section(
            "    directory: /tmp\n    timeout: 2s\n    fsync: true\n    create_directory: true\n    \
             directory_permissions: \"0700\"\n    recreate: true\n    compaction:\n      on_start: true\n      \
             on_rebound: true\n      directory: /tmp\n      max_transaction_size: 2048\n      \
             rebound_needed_threshold_mib: 128\n      rebound_trigger_threshold_mib: 16\n      \
             check_interval: 1s\n      cleanup_on_start: true",
        ))
        .expect("every otelcol key is accepted");
        let parsed: Config = section("").parse().expect("empty section");
        assert_eq!(parsed.directory, DEFAULT_DIRECTORY);
        assert_eq!(parsed.timeout, Duration::from_secs(1));
        assert!(!parsed.fsync && !parsed.create_directory);

        let err = f
            .validate(&section("    directory_permissions: \"999\""))
            .expect_err("not octal");
        assert!(
            err.to_string()
                .contains("extensions.file_storage.directory_permissions"),
            "{err}"
        );
        let err = f
            .validate(&section(
                "    compaction:\n      on_rebound: true\n      check_interval: 0s",
            ))
            .expect_err("zero interval");
        assert!(
            err.to_string()
                .contains("extensions.file_storage.compaction.check_interval"),
            "{err}"
        );
        let err = f
            .validate(&section("    directry: /tmp"))
            .expect_err("typo");
        assert!(err.to_string().contains("directry"), "{err}");
    }

    #[tokio::test]
    async fn the_factory_offers_storage_and_releases_locks_at_shutdown() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let yaml = format!("    directory: {}\n    fsync: true", tmp.path().display());
        let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
        let (caps, running) = FileStorageFactory
            .build(&section(&yaml), &ctx)
            .await
            .expect("builds");
        let storage = caps.storage.expect("a storage extension");
        assert!(storage.fsync());
        let id = ComponentId::new("otlp", None);
        storage
            .directory("exporter", &id, "traces")
            .expect("a directory");
        running
            .shutdown(Instant::now() + Duration::from_secs(1))
            .await
            .expect("stops");
        let next = FileStorage::open(&config(tmp.path())).expect("opens");
        next.directory("exporter", &id, "traces")
            .expect("the lock was released at shutdown");

        let missing = format!("    directory: {}/nope", tmp.path().display());
        let err = match FileStorageFactory.build(&section(&missing), &ctx).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("must not start on a missing directory"),
        };
        assert!(
            err.contains("file_storage") && err.contains("directory"),
            "{err}"
        );
    }
}
