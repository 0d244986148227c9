//! Kernel log text → timeline events.
//!
//! Two framings feed one line parser:
//! - `/dev/kmsg` records ([`kmsg_record`]): `<prio>,<seq>,<ts_usec>,<flags>[,...];<text>` plus
//!   ` KEY=value` continuation lines; [`KmsgDecoder`] adds the sequence-number accounting.
//! - pasted text ([`prefix`]): `dmesg` (`[ts]`, `-T`, `-x`), serial console, pstore,
//!   `vmcore-dmesg`, journal and syslog lines, mail quotes, lines with no stamp at all.
//!
//! [`LogParser`] matches the message text, one family of lines per module (`boot`, `smmu`,
//! `aer` (native), `cper_aer` (firmware-first), `ghes`, `dpc`, `serror`, `ras`, `x86_iommu`,
//! `platform`, `dump_tool`), and folds multi-line groups into one event: an AER error with
//! its detail lines, a GHES record with its CPER lines (kept apart by `{N}`), an SMMU
//! event-queue record with its dump, a DPC event with its reason, a boot with its `Linux
//! version`.
//!
//! Every event carries `raw`: the message text without timestamp or record header; for a
//! folded group, its lines joined by `\n` (capped at [`MAX_GROUP_RAW`] bytes).
//!
//! Lines written by this daemon's own kmsg mirror ([`is_mirrored_line`]) are never parsed as
//! evidence.
use std::path::Path;

use crate::event::{Detail, Event, Source};

mod aer;
mod boot;
mod cper_aer;
mod device;
mod dpc;
mod dump_tool;
mod edac;
mod ghes;
mod kmsg_decoder;
pub mod kmsg_record;
pub mod mirror;
mod num;
mod parser;
mod platform;
pub mod prefix;
mod ras;
mod scan;
mod serror;
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

/// Parses a pasted kernel log: `dmesg` (also `-T`, `-x`), serial console, pstore,
/// `vmcore-dmesg`, `journalctl -k` (short, short-precise, short-monotonic, short-iso), syslog,
/// a mail quote, or bare messages; the framing is found per line ([`prefix::frame`]).
/// `path` names the file in diagnostics and in the closing `log_read` event.
#[must_use]
pub fn parse_text_log(path: &Path, text: &str) -> Vec<Event> {
    parse_text_log_bytes(path, text.as_bytes())
}

/// [`parse_text_log`] for bytes that may not be UTF-8 (decoded lossily, line by line).
///
/// Times: a monotonic stamp (printk, short-monotonic, syslog with the kernel's stamp) is the
/// event's time; a wall clock (`dmesg -T`, journal, syslog) becomes the time since the first
/// wall-clock line of its boot; a line without a stamp takes the time of the line before it
/// (0 at the start), so order is kept.
#[must_use]
pub fn parse_text_log_bytes(path: &Path, bytes: &[u8]) -> Vec<Event> {
    let mut events = read_text_log(path, bytes);
    events.pop();
    events
}

/// [`parse_text_log_bytes`] followed by one `log_read` event counting the lines, those not
/// wholly read, and those without a stamp: what `report` shows about its input.
#[must_use]
pub fn read_text_log(path: &Path, bytes: &[u8]) -> Vec<Event> {
    let mut parser = LogParser::new();
    let mut events = Vec::new();
    let mut clock = TextClock::default();
    let (mut lines, mut unreadable, mut untimed, mut timed) = (0_u64, 0_u64, 0_u64, 0_u64);
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for line in bytes.split(|&b| b == b'\n') {
        lines += 1;
        let framed = prefix::frame(line);
        if framed.damaged {
            unreadable += 1;
        }
        let text = framed.text();
        let new_boot = framed.framing == prefix::Framing::BootSeparator
            || text.starts_with("Linux version ")
            || text.starts_with("Booting Linux on physical CPU ");
        if new_boot {
            clock.wall_base = None;
            clock.last = 0;
        }
        let ts_ns = match framed.stamp {
            prefix::Stamp::Unknown => {
                if !text.is_empty() {
                    untimed += 1;
                }
                clock.last
            }
            stamp => {
                timed += 1;
                clock.time_of(stamp)
            }
        };
        if !text.is_empty() {
            parser.push(ts_ns, Source::Console, text, &mut events);
        }
    }
    parser.flush(&mut events);
    tracing::debug!(
        path = %path.display(),
        lines,
        timed,
        untimed,
        unreadable,
        events = events.len(),
        "parsed a text kernel log"
    );
    events.push(Event::new(
        clock.last,
        Source::Console,
        Detail::LogRead {
            file: path.display().to_string(),
            lines,
            unreadable,
            untimed,
            timed,
        },
    ));
    events
}

/// The clock of a text log: the last time seen, and the first wall-clock stamp of this boot
/// with the time it was given (the time of the line before it, so a wall-clock line after
/// monotonic ones keeps the order).
#[derive(Debug, Default)]
struct TextClock {
    last: u64,
    wall_base: Option<(i128, u64)>,
}

impl TextClock {
    fn time_of(&mut self, stamp: prefix::Stamp) -> u64 {
        self.last = match stamp {
            prefix::Stamp::Monotonic(ns) => ns,
            prefix::Stamp::Wall(wall) => {
                let (base, offset) = *self.wall_base.get_or_insert((wall.nanos, self.last));
                let since = u64::try_from((wall.nanos - base).max(0)).unwrap_or(u64::MAX);
                offset.saturating_add(since)
            }
            prefix::Stamp::Unknown => self.last,
        };
        self.last
    }
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

/// Appends one more line of a folded group to its `raw`, unless that would pass
/// [`MAX_GROUP_RAW`]: then `full` is set and this and every later line are left out.
pub(crate) fn append_raw(raw: &mut Option<String>, full: &mut bool, text: &str) {
    if *full {
        return;
    }
    let raw = raw.get_or_insert_with(String::new);
    if raw.len() + 1 + text.len() > MAX_GROUP_RAW {
        *full = true;
        return;
    }
    raw.push('\n');
    raw.push_str(text);
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cap(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests;
