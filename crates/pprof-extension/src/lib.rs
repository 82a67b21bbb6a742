//! `pprof`: CPU profiles of the running collector over HTTP, in Go's pprof format, on the
//! paths of Go's net/http/pprof (otelcol-contrib's `pprof` extension, v0.161.0 keys).
//!
//! `/debug/pprof/profile?seconds=N` samples every thread 100 times a second for N seconds
//! (30 by default, at most an hour) and answers a gzipped `perftools.profiles.Profile` that
//! `go tool pprof` reads; `save_to_file` profiles from start to shutdown into a file.
//! `/debug/pprof/cmdline` and the index page are Go's. The rest of Go's endpoints (heap,
//! goroutine, block, mutex, trace, symbol, ...) are views of the Go runtime: Redline is a
//! Rust process and answers them 404, saying so; `block_profile_fraction` and
//! `mutex_profile_fraction` set Go runtime rates, so they are accepted and logged as having
//! no effect.
//!
//! The profiler is one per process (SIGPROF and a global sample store), so, as in otelcol,
//! only one `pprof` extension may run and one profile at a time.

mod config;
mod cpu;
mod encode;
mod http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::future::BoxFuture;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::extension::ExtensionCapabilities;
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ExtensionFactory,
    RunningComponent, ShutdownError,
};
use tokio::sync::watch;

use crate::cpu::ProfileError;
pub use config::{Config, DEFAULT_ENDPOINT};
pub use http::{DEFAULT_SECONDS, MAX_SECONDS};

/// One running extension per process: a second one would share the profiler and, in Go, the
/// runtime rates; otelcol refuses it at start with this message.
static INSTANCE: AtomicBool = AtomicBool::new(false);

const SECOND_INSTANCE: &str = "only a single pprof extension instance can be running per process";

pub struct PprofFactory;

impl FactoryInfo for PprofFactory {
    fn type_name(&self) -> &'static str {
        "pprof"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config::parse(config).map(drop)
    }
}

/// The claim on [`INSTANCE`]; dropping it lets another pprof extension start.
struct Instance;

impl Instance {
    fn claim() -> Option<Self> {
        INSTANCE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            .then_some(Instance)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        INSTANCE.store(false, Ordering::Release);
    }
}

impl ExtensionFactory for PprofFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = config::parse(config);
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            let instance =
                Instance::claim().ok_or_else(|| BuildError::new(&id, SECOND_INSTANCE))?;
            let listener = redline_pipeline::endpoint::listen(&parsed.endpoint)
                .await
                .map_err(|e| BuildError::new(&id, format!("endpoint: {e}")))?;
            let local = listener.local_addr().map_err(|e| BuildError::new(&id, e))?;
            for (key, value) in parsed.go_runtime_settings() {
                tracing::warn!(
                    extension = %id,
                    key,
                    value,
                    "{key} has no effect in Redline: it sets a Go runtime profiling rate, and \
                     Redline (Rust) has no block or mutex profiles"
                );
            }
            let save = match parsed.save_to_file.as_str() {
                "" => None,
                path => Some(SaveToFile::start(&id, path).await?),
            };

            let (stop_tx, stopping) = watch::channel(false);
            let app = http::router(http::Serving {
                id: id.clone(),
                stopping: stopping.clone(),
            });
            let mut server_stop = stopping;
            let server_id = id.clone();
            let server = tokio::spawn(async move {
                let shutdown = async move {
                    let _ = server_stop.wait_for(|stop| *stop).await;
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(extension = %server_id, error = %e, "pprof server failed");
                }
            });
            tracing::info!(
                extension = %id,
                addr = %local,
                save_to_file = %parsed.save_to_file,
                "pprof serving CPU profiles on /debug/pprof/profile"
            );
            let running: Box<dyn RunningComponent> = Box::new(Running {
                id,
                addr: local,
                stop: stop_tx,
                server,
                save,
                _instance: instance,
            });
            Ok((ExtensionCapabilities::default(), running))
        })
    }
}

/// `save_to_file`: a profile from start to shutdown, and the file it goes to, created at
/// start so that a path that cannot be written fails the start, as in otelcol.
struct SaveToFile {
    path: String,
    file: std::fs::File,
    profile: cpu::CpuProfile,
}

impl SaveToFile {
    async fn start(id: &ComponentId, path: &str) -> Result<Self, BuildError> {
        let owned = path.to_owned();
        // The file first: a path that cannot be written fails the start before profiling.
        let (file, profile) = cpu::blocking(move || {
            let file = std::fs::File::create(&owned).map_err(|e| ProfileError::Create(owned, e))?;
            Ok((file, cpu::CpuProfile::start()?))
        })
        .await
        .map_err(|e| BuildError::new(id, format!("save_to_file: {e}")))?;
        tracing::info!(extension = %id, path, "CPU profile to file started");
        Ok(Self {
            path: path.to_owned(),
            file,
            profile,
        })
    }

    /// Blocks: symbolizes, compresses and writes.
    fn finish(self) -> Result<(String, usize), ProfileError> {
        use std::io::Write;
        let body = self.profile.finish()?;
        let mut file = self.file;
        file.write_all(&body)
            .and_then(|()| file.sync_all())
            .map_err(|e| ProfileError::Write(self.path.clone(), e))?;
        Ok((self.path, body.len()))
    }
}

struct Running {
    id: ComponentId,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    save: Option<SaveToFile>,
    /// Held until the extension is gone, then frees the one-per-process slot.
    _instance: Instance,
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("pprof", self.addr)]
    }

    fn shutdown(
        mut self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        // Profiles in progress end now and are answered; the server then stops once they are.
        let _ = self.stop.send(true);
        Box::pin(async move {
            let mut result = Ok(());
            if let Some(save) = self.save.take() {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let written =
                    tokio::time::timeout(remaining, cpu::blocking(|| save.finish())).await;
                let failure = match written {
                    Ok(Ok((path, bytes))) => {
                        tracing::info!(extension = %self.id, path, bytes, "CPU profile written");
                        None
                    }
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("the CPU profile was not written before the deadline".into()),
                };
                if let Some(reason) = failure {
                    tracing::error!(extension = %self.id, error = %reason, "save_to_file failed");
                    result = Err(ShutdownError {
                        component: self.id.to_string(),
                        reason,
                    });
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(remaining, &mut self.server)
                .await
                .is_err()
            {
                self.server.abort();
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redline_pipeline::telemetry::Telemetry;

    use super::*;
    use crate::config::tests::component;
    use crate::cpu::tests::SERIAL;

    fn ctx() -> BuildContext {
        BuildContext::new(Telemetry::new())
    }

    async fn start(section: &str) -> Result<Box<dyn RunningComponent>, BuildError> {
        PprofFactory
            .build(&component(section), &ctx())
            .await
            .map(|(_, running)| running)
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("sends");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("reads");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head[9..12].parse().expect("a status code");
        (status, head, raw[split + 4..].to_vec())
    }

    fn addr(running: &dyn RunningComponent) -> SocketAddr {
        let addrs = running.local_addrs();
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0].0, "pprof");
        addrs[0].1
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_pprof_paths_on_a_free_port() {
        let _serial = SERIAL.lock().await;
        let running = start(" {endpoint: 127.0.0.1:0}").await.expect("starts");
        let at = addr(&*running);
        assert_ne!(at.port(), 0);

        let (status, head, body) = get(at, "/debug/pprof/").await;
        assert_eq!(status, 200);
        assert!(head.contains("text/html"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("profile"));

        let (status, head, body) = get(at, "/debug/pprof/cmdline").await;
        assert_eq!(status, 200);
        assert!(head.contains("text/plain"), "{head}");
        assert_eq!(body, http::command_line(std::env::args_os()));

        let (status, head, body) = get(at, "/debug/pprof/profile?seconds=1").await;
        assert_eq!(status, 200, "{head}");
        assert!(head.contains("application/octet-stream"), "{head}");
        assert!(head.contains("attachment; filename=\"profile\""), "{head}");
        assert_eq!(&body[..2], [0x1f, 0x8b], "gzip");

        let (status, head, body) = get(at, "/debug/pprof/heap").await;
        assert_eq!(status, 404);
        assert!(
            head.to_ascii_lowercase().contains("x-go-pprof: 1"),
            "{head}"
        );
        assert!(
            String::from_utf8_lossy(&body).contains("CPU profiles only"),
            "{body:?}"
        );
        let (status, _, body) = get(at, "/debug/pprof/nonexistent").await;
        assert_eq!((status, body), (404, b"Unknown profile\n".to_vec()));
        let (status, _, body) = get(at, "/debug/pprof/%ff%zz/x").await;
        assert_eq!((status, body), (404, b"Unknown profile\n".to_vec()));
        let (status, _, body) = get(at, "/debug/pprof/he%61p").await;
        assert_eq!(status, 404);
        assert!(String::from_utf8_lossy(&body).contains("`heap` is a Go runtime profile"));
        let (status, _, _) = get(at, "/elsewhere").await;
        assert_eq!(status, 404);
        let (status, head, _) = get(at, "/debug/pprof").await;
        assert_eq!(status, 307);
        assert!(head.contains("/debug/pprof/"), "{head}");

        running.shutdown(soon()).await.expect("stops");
        assert!(
            tokio::net::TcpStream::connect(at).await.is_err(),
            "the port is closed after shutdown"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_profile_is_refused_while_one_runs_and_shutdown_ends_it() {
        let _serial = SERIAL.lock().await;
        let running = start(" {endpoint: 127.0.0.1:0}").await.expect("starts");
        let at = addr(&*running);
        let long = tokio::spawn(async move { get(at, "/debug/pprof/profile?seconds=600").await });
        // Nothing else profiles meanwhile (SERIAL): the profiler in use is the long one's.
        tokio::time::timeout(Duration::from_secs(20), async {
            while !cpu::tests::in_use() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the long profile starts");
        let (status, _, body) = get(at, "/debug/pprof/profile?seconds=1").await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            b"Could not enable CPU profiling: cpu profiling already in use\n"
        );
        let began = Instant::now();
        running.shutdown(soon()).await.expect("stops");
        let (status, _, body) = long.await.expect("the long request");
        assert_eq!(status, 200, "the long profile is answered at shutdown");
        assert_eq!(&body[..2], [0x1f, 0x8b]);
        assert!(began.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_one_instance_per_process() {
        let _serial = SERIAL.lock().await;
        let first = start(" {endpoint: 127.0.0.1:0}").await.expect("starts");
        let e = match start(" {endpoint: 127.0.0.1:0}").await {
            Ok(_) => panic!("a second instance started"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(SECOND_INSTANCE), "{e}");
        first.shutdown(soon()).await.expect("stops");
        let again = start(" {endpoint: 127.0.0.1:0}")
            .await
            .expect("starts once the first is gone");
        again.shutdown(soon()).await.expect("stops");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_start_frees_the_instance() {
        let _serial = SERIAL.lock().await;
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let port = taken.local_addr().expect("bound").port();
        let e = match start(&format!(" {{endpoint: 127.0.0.1:{port}}}")).await {
            Ok(_) => panic!("started on a port in use"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("endpoint"), "{e}");
        let running = start(" {endpoint: 127.0.0.1:0}")
            .await
            .expect("the failed one left nothing claimed");
        running.shutdown(soon()).await.expect("stops");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn save_to_file_writes_the_profile_at_shutdown() {
        let _serial = SERIAL.lock().await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("cpu.prof");
        let running = start(&format!(
            " {{endpoint: 127.0.0.1:0, save_to_file: {}}}",
            path.display()
        ))
        .await
        .expect("starts");
        assert!(path.exists(), "created at start");
        let at = addr(&*running);
        let (status, _, body) = get(at, "/debug/pprof/profile?seconds=1").await;
        assert_eq!(status, 500, "the file's profile holds the profiler");
        assert!(String::from_utf8_lossy(&body).contains("already in use"));
        running.shutdown(soon()).await.expect("stops");
        let written = std::fs::read(&path).expect("readable");
        assert_eq!(&written[..2], [0x1f, 0x8b], "a gzipped profile");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn save_to_file_that_cannot_be_created_fails_the_start() {
        let _serial = SERIAL.lock().await;
        let e = match start(" {endpoint: 127.0.0.1:0, save_to_file: /nonexistent/dir/cpu.prof}")
            .await
        {
            Ok(_) => panic!("started without its file"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("save_to_file"), "{e}");
        let running = start(" {endpoint: 127.0.0.1:0}")
            .await
            .expect("nothing left claimed");
        running.shutdown(soon()).await.expect("stops");
    }
}
