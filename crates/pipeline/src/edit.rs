//! Processors that read or change the data of a batch: `transform`, `filter`, `resource`,
//! `attributes`, `probabilistic_sampler`.
//!
//! Such a processor is a [`BatchEditor`]; [`EditingProcessor`] turns it into a
//! [`Consumer`]. The edit runs in `reserve`, before anything downstream takes capacity, so
//! the downstream reservation is sized by (and commits) the batch that will actually travel,
//! and a refusal anywhere still leaves nothing counted. An editor that changes nothing
//! answers [`Edited::Unchanged`] and the original bytes travel on untouched: only a processor
//! that changes a request pays for decoding and re-encoding it. An editor with counters of its
//! own records them in [`BatchEditor::edit_counted`]'s commit hook, with the batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::component::{
    BuildContext, BuildError, BuildResult, NoopRunning, RunningComponent, Signal,
};
use crate::config::ComponentConfig;
use crate::consumer::{CommitFn, Consumer, Refused, Reservation};
use crate::telemetry::ProcessorCounters;
use crate::Batch;

/// What an editor made of one batch.
#[derive(Debug)]
pub enum Edited {
    /// Forward the original bytes.
    Unchanged,
    /// Forward this batch instead (re-encoded; `items` recounted).
    Replaced(Batch),
    /// Nothing is left (every item was dropped): the batch ends here, successfully.
    Dropped,
}

/// What an editor records about a batch (its own counters) once that batch is committed.
pub type OnCommit = Box<dyn FnOnce() + Send>;

/// The data-changing half of a processor. Must be pure with respect to the outside world
/// until the batch is committed: `edit` may run for a batch that is then refused downstream
/// and retried by the client.
pub trait BatchEditor: Send + Sync + 'static {
    /// Edits one batch. An error refuses the request (otelcol's `error_mode: propagate`):
    /// the client is told to retry, as otelcol's receivers answer a processor error.
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused>;

    /// [`edit`](Self::edit), plus what to record once the batch is committed; a batch
    /// refused downstream records nothing, so the client's retry is not counted twice.
    fn edit_counted(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        Ok((self.edit(batch)?, None))
    }
}

/// The refusal of a request an editor cannot decode. Never for a batch the receiver
/// validated, so the client is told to retry rather than its data being dropped or forwarded
/// unprocessed.
pub fn undecodable(component: &str, error: impl std::fmt::Display) -> Refused {
    tracing::error!(processor = %component, %error, "cannot decode a validated batch");
    Refused {
        component: component.to_owned(),
        reason: format!("cannot decode the request: {error}"),
        retry_after: std::time::Duration::from_secs(1),
        permanent: false,
    }
}

/// A [`Consumer`] running a [`BatchEditor`] in front of `next`.
pub struct EditingProcessor<E> {
    editor: E,
    next: Arc<dyn Consumer>,
    counters: Arc<ProcessorCounters>,
}

impl<E: BatchEditor> EditingProcessor<E> {
    pub fn new(editor: E, next: Arc<dyn Consumer>, counters: Arc<ProcessorCounters>) -> Self {
        Self {
            editor,
            next,
            counters,
        }
    }

    pub fn editor(&self) -> &E {
        &self.editor
    }
}

/// A processor's `build` for an editor: `make` turns the config into the editor (a config
/// error becomes the build error of this component), which then runs in front of `next`
/// with the processor counters of its id and signal. Editors hold no tasks, so nothing is
/// left to stop at shutdown.
pub fn build_editor<E: BatchEditor, Error: std::fmt::Display>(
    config: &ComponentConfig,
    ctx: &BuildContext,
    signal: Signal,
    next: Arc<dyn Consumer>,
    make: impl FnOnce() -> Result<E, Error>,
) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
    let id = config.id().clone();
    let built = make()
        .map(|editor| {
            let counters = ctx.telemetry.processor(&id.to_string(), signal);
            let consumer: Arc<dyn Consumer> =
                Arc::new(EditingProcessor::new(editor, next, counters));
            let running: Box<dyn RunningComponent> = Box::new(NoopRunning);
            (consumer, running)
        })
        .map_err(|e| BuildError::new(&id, e));
    Box::pin(async move { built })
}

struct Counted {
    inner: Box<dyn Reservation>,
    replacement: Option<Batch>,
    counters: Arc<ProcessorCounters>,
    incoming: usize,
    on_commit: Option<OnCommit>,
}

impl Reservation for Counted {
    fn commit(self: Box<Self>, batch: Batch) {
        if let Some(record) = self.on_commit {
            record();
        }
        let batch = self.replacement.unwrap_or(batch);
        self.counters
            .incoming
            .fetch_add(self.incoming as u64, Ordering::Relaxed);
        self.counters
            .outgoing
            .fetch_add(batch.items as u64, Ordering::Relaxed);
        self.inner.commit(batch);
    }
}

impl<E: BatchEditor> Consumer for EditingProcessor<E> {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let incoming = batch.items;
        let (edited, on_commit) = self.editor.edit_counted(batch)?;
        let (inner, replacement) = match edited {
            Edited::Unchanged => (self.next.reserve(batch)?, None),
            Edited::Replaced(mut edited) => {
                // An edit changes the data, never who sent it.
                edited.set_client(batch.client().cloned());
                (self.next.reserve(&edited)?, Some(edited))
            }
            Edited::Dropped => {
                let counters = self.counters.clone();
                return Ok(Box::new(CommitFn(move |_: Batch| {
                    if let Some(record) = on_commit {
                        record();
                    }
                    counters
                        .incoming
                        .fetch_add(incoming as u64, Ordering::Relaxed);
                })));
            }
        };
        Ok(Box::new(Counted {
            inner,
            replacement,
            counters: self.counters.clone(),
            incoming,
            on_commit,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::component::Signal;

    struct Sink(Arc<Mutex<Vec<Batch>>>);
    impl Consumer for Sink {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            let got = self.0.clone();
            Ok(Box::new(CommitFn(move |b: Batch| {
                got.lock().expect("test lock").push(b)
            })))
        }
    }

    /// Keeps batches with an even item count, halves the others' items, drops empty ones.
    struct Halve;
    impl BatchEditor for Halve {
        fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
            Ok(match batch.items {
                0 => Edited::Dropped,
                n if n % 2 == 0 => Edited::Unchanged,
                n => Edited::Replaced(Batch::new(batch.signal, Bytes::from_static(b"x"), n / 2)),
            })
        }
    }

    #[test]
    fn forwards_original_replacement_or_nothing_and_counts_items() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(ProcessorCounters::default());
        let p = EditingProcessor::new(Halve, Arc::new(Sink(got.clone())), counters.clone());
        let original = Bytes::from_static(b"original");
        for items in [4, 5, 0] {
            p.consume(Batch::new(Signal::Traces, original.clone(), items))
                .expect("sink never refuses");
        }
        let got = got.lock().expect("test lock");
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].raw.as_ref(), got[0].items), (&b"original"[..], 4));
        assert_eq!((got[1].raw.as_ref(), got[1].items), (&b"x"[..], 2));
        assert_eq!(counters.incoming.load(Ordering::Relaxed), 9);
        assert_eq!(counters.outgoing.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_replacement_keeps_the_client_of_the_request_it_stands_for() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(ProcessorCounters::default());
        let p = EditingProcessor::new(Halve, Arc::new(Sink(got.clone())), counters);
        let tenant = crate::ClientMetadata::from_pairs([("x-scope-orgid", "acme")]);
        let batch = Batch::new(Signal::Traces, Bytes::from_static(b"original"), 5);
        p.consume(batch.with_client(tenant.clone()))
            .expect("sink never refuses");
        let got = got.lock().expect("test lock");
        assert_eq!(got[0].raw.as_ref(), b"x");
        assert_eq!(got[0].client(), Some(&tenant));
    }

    /// Counts the batches it saw, but only those committed downstream.
    struct Tally(Arc<std::sync::atomic::AtomicU64>);
    impl BatchEditor for Tally {
        fn edit(&self, _: &Batch) -> Result<Edited, Refused> {
            Ok(Edited::Unchanged)
        }
        fn edit_counted(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
            let seen = self.0.clone();
            let edited = if batch.items == 0 {
                Edited::Dropped
            } else {
                Edited::Unchanged
            };
            let record: OnCommit = Box::new(move || {
                seen.fetch_add(1, Ordering::Relaxed);
            });
            Ok((edited, Some(record)))
        }
    }

    struct Refusing;
    impl Consumer for Refusing {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            Err(Refused {
                component: "next".into(),
                reason: "full".into(),
                retry_after: std::time::Duration::from_secs(1),
                permanent: false,
            })
        }
    }

    #[test]
    fn an_editors_own_counts_are_recorded_on_commit_only() {
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counters = Arc::new(ProcessorCounters::default());
        let refusing = EditingProcessor::new(Tally(seen.clone()), Arc::new(Refusing), counters);
        assert!(refusing
            .consume(Batch::new(Signal::Traces, Bytes::from_static(b"r"), 3))
            .is_err());
        assert_eq!(seen.load(Ordering::Relaxed), 0);

        let got = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(ProcessorCounters::default());
        let taking = EditingProcessor::new(Tally(seen.clone()), Arc::new(Sink(got)), counters);
        for items in [3, 0] {
            taking
                .consume(Batch::new(Signal::Traces, Bytes::from_static(b"r"), items))
                .expect("sink never refuses");
        }
        assert_eq!(seen.load(Ordering::Relaxed), 2);
    }
}
