//! Whether the pipeline is serving: what the health check extension reports.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Life cycle of the service as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceState {
    Starting,
    Ready,
    Stopping,
    /// A component failed while running (e.g. a server task died); the process keeps
    /// serving what it can but must not be reported healthy.
    Failed,
}

/// Shared, cheap-to-read state of the pipeline.
#[derive(Clone, Default)]
pub struct PipelineStatus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: AtomicU8,
    failure: Mutex<Option<String>>,
}

impl PipelineStatus {
    pub fn state(&self) -> ServiceState {
        match self.inner.state.load(Ordering::Acquire) {
            0 => ServiceState::Starting,
            1 => ServiceState::Ready,
            2 => ServiceState::Stopping,
            _ => ServiceState::Failed,
        }
    }

    pub fn set(&self, state: ServiceState) {
        // A failure sticks: stopping after a failure is still a failure for health checks.
        if self.state() == ServiceState::Failed {
            return;
        }
        let v = match state {
            ServiceState::Starting => 0,
            ServiceState::Ready => 1,
            ServiceState::Stopping => 2,
            ServiceState::Failed => 3,
        };
        self.inner.state.store(v, Ordering::Release);
    }

    /// Records that `component` failed while running.
    pub fn report_failure(&self, component: &str, reason: impl std::fmt::Display) {
        let message = format!("{component}: {reason}");
        tracing::error!(%component, %reason, "component failed; the pipeline is no longer healthy");
        *self.inner.failure.lock() = Some(message);
        self.inner.state.store(3, Ordering::Release);
    }

    /// Why the pipeline failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.inner.failure.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_sticks() {
        let s = PipelineStatus::default();
        assert_eq!(s.state(), ServiceState::Starting);
        s.set(ServiceState::Ready);
        assert_eq!(s.state(), ServiceState::Ready);
        s.report_failure("receivers.otlp", "accept loop ended");
        s.set(ServiceState::Stopping);
        assert_eq!(s.state(), ServiceState::Failed);
        assert_eq!(
            s.failure().as_deref(),
            Some("receivers.otlp: accept loop ended")
        );
    }
}
