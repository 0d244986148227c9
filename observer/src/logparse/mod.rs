//! Kernel log text → timeline events.
//!
//! Two framings feed one line parser:
//! - `/dev/kmsg` records ([`kmsg_record`]): `<prio>,<seq>,<ts_usec>,<flags>[,...];<text>` plus
//!   ` KEY=value` continuation lines; [`KmsgDecoder`] adds the sequence-number accounting.
//! - plain text ([`text_line`]): `dmesg`, serial console, pstore and `vmcore-dmesg` lines
//!   `[    1.637153] text`, with or without `<6>` and a `[    T1]` caller id.
//!
//! [`LogParser`] matches the message text, one family of lines per module (`boot`, `smmu`,
//! `aer`, `dpc`, `ras`, `x86_iommu`), and folds multi-line groups into one event: an AER error
//! with its detail lines, a GHES record with its CPER lines, an SMMU event-queue record with
//! its dump, a DPC event with its reason, a boot with its `Linux version`.
//!
//! Every event carries `raw`: the message text without timestamp or record header; for a
//! folded group, its lines joined by `\n` (capped at [`MAX_GROUP_RAW`] bytes).
//!
//! Lines written by this daemon's own kmsg mirror ([`is_mirrored_line`]) are never parsed as
//! evidence.
use std::path::Path;

use crate::event::{Event, Source};

mod aer;
mod boot;
mod device;
mod dpc;
mod kmsg_decoder;
pub mod kmsg_record;
pub mod mirror;
mod num;
mod parser;
mod ras;
mod smmu;
pub mod text_line;
mod x86_iommu;

pub use kmsg_decoder::{KmsgDecoder, KmsgTotals};
pub use kmsg_record::{KmsgRecord, RecordError, parse_record, split_records};
pub use mirror::{MIRROR_PREFIX, is_mirrored_line, mirrored_payload};
pub use parser::LogParser;
pub use text_line::{TextLine, parse_text_line};

/// Longest line (or record text) looked at; the rest of a longer line is ignored.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest `raw` kept for a folded group of lines; later lines still fold, unrecorded.
pub const MAX_GROUP_RAW: usize = 16 * 1024;

/// Parses a plain-text kernel log (`dmesg`, serial console, pstore, `vmcore-dmesg`). Lines
/// without a `[seconds.micros]` timestamp are ignored. `path` names the file in diagnostics.
#[must_use]
pub fn parse_text_log(path: &Path, text: &str) -> Vec<Event> {
    parse_text_log_bytes(path, text.as_bytes())
}

/// [`parse_text_log`] for bytes that may not be UTF-8 (decoded lossily, line by line).
#[must_use]
pub fn parse_text_log_bytes(path: &Path, bytes: &[u8]) -> Vec<Event> {
    let mut parser = LogParser::new();
    let mut events = Vec::new();
    let (mut lines, mut framed) = (0_u64, 0_u64);
    for line in bytes.split(|&b| b == b'\n') {
        lines += 1;
        if let Some(framed_line) = parse_text_line(line) {
            framed += 1;
            parser.push(
                framed_line.ts_ns,
                Source::Console,
                &framed_line.text,
                &mut events,
            );
        }
    }
    parser.flush(&mut events);
    tracing::debug!(
        path = %path.display(),
        lines,
        timestamped = framed,
        events = events.len(),
        "parsed a text kernel log"
    );
    events
}

/// Parses a file of raw `/dev/kmsg` records (as read from the device, one record per line
/// plus its ` KEY=value` lines). Sequence gaps become `kmsg_lost` events.
#[must_use]
pub fn parse_kmsg_dump(path: &Path, bytes: &[u8]) -> Vec<Event> {
    let mut decoder = KmsgDecoder::new();
    let mut events = Vec::new();
    for record in split_records(bytes) {
        decoder.push_record(record, &mut events);
    }
    decoder.finish(&mut events);
    let totals = decoder.totals();
    tracing::debug!(
        path = %path.display(),
        records = totals.records,
        undecodable = totals.undecodable,
        lost = totals.lost,
        events = events.len(),
        "parsed a kmsg dump"
    );
    events
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cap(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests;
