//! `/dev/kmsg` records → events, with loss accounting by sequence number.
//!
//! A reader learns of overwritten records in two ways: `read()` fails once with `EPIPE`, and
//! the next record's sequence number jumps. Both become one `kmsg_lost` event, stamped with the
//! time of the first record after the gap, `count` = the jump when known. The first record
//! read counts from sequence 0: a buffer that wrapped before the daemon opened it lost the
//! records before it.
use super::{LogParser, is_mirrored_line, parse_record};
use crate::event::{Detail, Event, Source};

/// What a [`KmsgDecoder`] has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmsgTotals {
    /// Records decoded.
    pub records: u64,
    /// Records whose header could not be decoded (skipped).
    pub undecodable: u64,
    /// Records written by this daemon's mirror (skipped).
    pub mirrored: u64,
    /// Records known lost (sum of sequence gaps).
    pub lost: u64,
    /// `EPIPE` reports (the kernel overwrote records before they were read).
    pub overruns: u64,
}

/// Decodes records one at a time and keeps the parser and sequence state between them.
#[derive(Debug, Default)]
pub struct KmsgDecoder {
    parser: LogParser,
    next_seq: u64,
    /// `EPIPE` seen, no record read since.
    overrun: bool,
    totals: KmsgTotals,
}

impl KmsgDecoder {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one record (as one `read()` of `/dev/kmsg` returns it) and appends the events
    /// it completes.
    pub fn push_record(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        let record = match parse_record(bytes) {
            Ok(record) => record,
            Err(e) => {
                self.totals.undecodable += 1;
                tracing::debug!(error = %e, "skipping a kmsg record");
                return;
            }
        };
        self.totals.records += 1;
        let ts_ns = record.ts_ns();
        self.account(record.seq, ts_ns, out);
        if is_mirrored_line(&record.text) {
            self.totals.mirrored += 1;
            return;
        }
        self.parser.push(ts_ns, Source::Kmsg, &record.text, out);
    }

    /// The kernel reported overwritten records (`read()` failed with `EPIPE`).
    pub fn note_overrun(&mut self) {
        self.totals.overruns += 1;
        self.overrun = true;
    }

    /// Emits the parser's pending group (call when no record is waiting).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        self.parser.flush(out);
    }

    /// Flushes, and reports an overrun no record followed (count unknown), stamped `now_ns`.
    pub fn finish_at(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        self.parser.flush(out);
        if std::mem::take(&mut self.overrun) {
            out.push(lost(now_ns, None));
        }
    }

    /// [`finish_at`](Self::finish_at) for a file: an unmatched overrun is stamped 0.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.finish_at(0, out);
    }

    /// Whether a multi-line group is waiting.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        self.parser.has_pending()
    }

    /// The sequence number expected next.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    #[must_use]
    pub fn totals(&self) -> KmsgTotals {
        self.totals
    }

    fn account(&mut self, seq: u64, ts_ns: u64, out: &mut Vec<Event>) {
        let gap = seq.checked_sub(self.next_seq).filter(|&g| g > 0);
        let overrun = std::mem::take(&mut self.overrun);
        if gap.is_some() || overrun {
            // Lines are missing: whatever group was open is as complete as it will get.
            self.parser.flush(out);
            self.totals.lost += gap.unwrap_or(0);
            tracing::warn!(
                lost = gap,
                next = seq,
                "kernel log records were overwritten before they were read"
            );
            out.push(lost(ts_ns, gap));
        }
        // A sequence going backwards (a dump holding two boots) is a new stream, not a loss.
        self.next_seq = seq.saturating_add(1);
    }
}

fn lost(ts_ns: u64, count: Option<u64>) -> Event {
    Event::new(ts_ns, Source::Observer, Detail::KmsgLost { count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.detail.kind()).collect()
    }

    #[test]
    fn gaps_and_overruns_become_kmsg_lost() {
        let mut d = KmsgDecoder::new();
        let mut out = Vec::new();
        d.push_record(b"6,0,10,-;a", &mut out);
        d.push_record(b"6,1,20,-;b", &mut out);
        let found = &out;
        assert!(found.is_empty(), "{found:?}");
        d.note_overrun();
        d.push_record(b"6,5,30,-;c", &mut out);
        assert_eq!(
            out,
            [Event::new(
                30_000,
                Source::Observer,
                Detail::KmsgLost { count: Some(3) }
            )]
        );
        out.clear();
        // EPIPE without a visible gap: count unknown.
        d.note_overrun();
        d.push_record(b"6,6,40,-;d", &mut out);
        assert_eq!(out[0].detail, Detail::KmsgLost { count: None });
        out.clear();
        // An overrun with nothing after it is reported at the end.
        d.note_overrun();
        d.finish_at(99, &mut out);
        assert_eq!(
            out,
            [Event::new(
                99,
                Source::Observer,
                Detail::KmsgLost { count: None }
            )]
        );
        let totals = d.totals();
        assert_eq!((totals.records, totals.lost, totals.overruns), (4, 3, 3));
        assert_eq!(d.next_seq(), 7);
    }

    #[test]
    fn a_wrapped_buffer_reports_the_records_before_the_first() {
        let mut d = KmsgDecoder::new();
        let mut out = Vec::new();
        d.push_record(b"6,1200,10,-;oldest left", &mut out);
        assert_eq!(out[0].detail, Detail::KmsgLost { count: Some(1200) });
    }

    #[test]
    fn a_gap_flushes_the_open_group_first() {
        let mut d = KmsgDecoder::new();
        let mut out = Vec::new();
        d.push_record(
            b"3,0,4427993,-;pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0",
            &mut out,
        );
        assert!(d.has_pending());
        d.push_record(b"6,9,4500000,-;unrelated", &mut out);
        assert_eq!(kinds(&out), ["aer", "kmsg_lost"]);
    }

    #[test]
    fn mirror_records_and_bad_records_are_skipped() {
        let mut d = KmsgDecoder::new();
        let mut out = Vec::new();
        d.push_record(
            b"13,0,10,-;kdump-dma-observer: v1 {\"ts_ns\":1,\"kind\":\"panic\",\"source\":\"kmsg\",\"message\":\"x\"}",
            &mut out,
        );
        d.push_record(b"garbage without header", &mut out);
        d.push_record(b"0,1,20,-;Kernel panic - not syncing: real", &mut out);
        assert_eq!(kinds(&out), ["panic"]);
        assert_eq!(out[0].source, Source::Kmsg);
        assert_eq!(out[0].ts_ns, 20_000);
        let totals = d.totals();
        assert_eq!((totals.mirrored, totals.undecodable), (1, 1));
    }
}
