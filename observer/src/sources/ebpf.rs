//! Live eBPF source: drains the ring buffer when the kernel says it is readable (no polling)
//! and accounts for every record the kernel side could not store.
use aya::maps::{MapData, PerCpuArray, RingBuf};
use observer_common::counter;
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, watch},
    time::{Duration, MissedTickBehavior, interval},
};

use crate::{
    event::{Detail, Event, Source},
    probes::Decoder,
};

/// How often the drop counter is checked while running.
pub const DROP_CHECK_PERIOD: Duration = Duration::from_secs(1);
/// Largest batch handed to the writer at once (bounds memory during a storm).
const MAX_BATCH: usize = 4096;

/// Totals of the kernel-side counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub submitted: u64,
    pub dropped: u64,
}

/// Userspace totals of this source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceTotals {
    /// Records decoded into events.
    pub received: u64,
    /// Records that could not be decoded.
    pub undecodable: u64,
}

/// Errors of the eBPF source.
#[derive(Debug, thiserror::Error)]
pub enum EbpfSourceError {
    #[error("eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("cannot register the ring buffer with the event loop: {0}")]
    Poll(std::io::Error),
}

/// The ring buffer reader.
pub struct EbpfSource {
    ring: AsyncFd<RingBuf<MapData>>,
    counters: PerCpuArray<MapData, u64>,
    decoder: Decoder,
    totals: SourceTotals,
    dropped_reported: u64,
}

impl EbpfSource {
    /// Takes the ring buffer and counter maps out of a loaded object.
    pub fn new(ebpf: &mut aya::Ebpf, decoder: Decoder) -> Result<Self, EbpfSourceError> {
        use observer_common::names::{COUNTERS_MAP, EVENTS_MAP};
        let take = |ebpf: &mut aya::Ebpf, name| {
            ebpf.take_map(name).ok_or(EbpfSourceError::MissingMap(name))
        };
        let ring =
            RingBuf::try_from(take(ebpf, EVENTS_MAP)?).map_err(|source| EbpfSourceError::Map {
                name: EVENTS_MAP,
                source,
            })?;
        let counters = PerCpuArray::try_from(take(ebpf, COUNTERS_MAP)?).map_err(|source| {
            EbpfSourceError::Map {
                name: COUNTERS_MAP,
                source,
            }
        })?;
        // SAFETY: the RingBuf owns its map fd; it stays open, and the same, until the AsyncFd
        // (which owns the RingBuf) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| EbpfSourceError::Poll(e.into_parts().1))?;
        Ok(Self {
            ring,
            counters,
            decoder,
            totals: SourceTotals::default(),
            dropped_reported: 0,
        })
    }

    /// Sums the per-CPU counters.
    pub fn kernel_counters(&self) -> Result<KernelCounters, EbpfSourceError> {
        let sum = |slot| {
            self.counters
                .get(&slot, 0)
                .map(|values| values.iter().sum())
                .map_err(|source| EbpfSourceError::Map {
                    name: observer_common::names::COUNTERS_MAP,
                    source,
                })
        };
        Ok(KernelCounters {
            submitted: sum(counter::SUBMITTED)?,
            dropped: sum(counter::DROPPED)?,
        })
    }

    /// This source's userspace totals so far.
    #[must_use]
    pub fn totals(&self) -> SourceTotals {
        self.totals
    }

    /// Streams events into `tx` until `stop` turns true, then drains what is left.
    pub async fn run(
        &mut self,
        tx: &mpsc::Sender<Vec<Event>>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), EbpfSourceError> {
        let mut drop_check = interval(DROP_CHECK_PERIOD);
        drop_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ready = self.ring.readable_mut() => {
                    let mut guard = ready.map_err(EbpfSourceError::Poll)?;
                    let (batch, more) = drain(guard.get_inner_mut(), &self.decoder, &mut self.totals);
                    if !more {
                        guard.clear_ready();
                    }
                    if !batch.is_empty() && tx.send(batch).await.is_err() {
                        return Ok(());
                    }
                }
                _ = drop_check.tick() => self.report_drops(tx).await?,
                _ = stop.changed() => break,
            }
        }
        loop {
            let (batch, more) = drain(self.ring.get_mut(), &self.decoder, &mut self.totals);
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                return Ok(());
            }
            if !more {
                break;
            }
        }
        self.report_drops(tx).await
    }

    /// Emits a `ring_buffer_drops` event when the kernel's drop counter grew.
    async fn report_drops(&mut self, tx: &mpsc::Sender<Vec<Event>>) -> Result<(), EbpfSourceError> {
        let counters = self.kernel_counters()?;
        if counters.dropped > self.dropped_reported {
            let event = Event::new(
                crate::clock::monotonic_ns(),
                Source::Observer,
                Detail::RingBufferDrops {
                    dropped_total: counters.dropped,
                    new: counters.dropped - self.dropped_reported,
                },
            );
            tracing::warn!(
                dropped_total = counters.dropped,
                "the ring buffer overflowed: events lost in the kernel (consider --ring-buffer-bytes)"
            );
            self.dropped_reported = counters.dropped;
            let _ = tx.send(vec![event]).await;
        }
        Ok(())
    }
}

/// Decodes up to [`MAX_BATCH`] records; the flag says whether more may be waiting.
fn drain(
    ring: &mut RingBuf<MapData>,
    decoder: &Decoder,
    totals: &mut SourceTotals,
) -> (Vec<Event>, bool) {
    let mut batch = Vec::new();
    while batch.len() < MAX_BATCH {
        let Some(item) = ring.next() else {
            return (batch, false);
        };
        match decoder.decode(&item) {
            Ok(event) => {
                totals.received += 1;
                batch.push(event);
            }
            Err(e) => {
                totals.undecodable += 1;
                tracing::warn!(error = %e, "skipping a ring buffer record");
            }
        }
    }
    (batch, true)
}
