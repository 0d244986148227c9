//! How a line of pasted kernel log is framed, separate from what it says.
//!
//! One module per framing; [`frame`] tries them on each line, so one file may mix them:
//! - [`printk`]: `[    1.637153] text`, `<6>` priorities, caller ids (dmesg, serial consoles,
//!   pstore, `vmcore-dmesg`);
//! - [`dmesg_ctime`]: `dmesg -T` wall clock; [`dmesg_decode`]: `dmesg -x` facility and level;
//! - [`journal`]: `journalctl` short, short-precise, short-monotonic, short-iso, boot separators;
//! - [`syslog`]: `/var/log/kern.log` BSD and RFC 3339 headers;
//! - none: a line with no stamp at all, placed by its position in the file.
//!
//! `/dev/kmsg` records have their own framing in `kmsg_record`. Before any framing, a line
//! loses what copying added: CR, NUL and other control bytes, ANSI escapes, leading blanks and
//! `> ` mail-quote markers.
pub(crate) mod dmesg_ctime;
pub(crate) mod dmesg_decode;
pub(crate) mod journal;
pub(crate) mod printk;
pub(crate) mod syslog;

use std::{borrow::Cow, ops::Range};

use super::{MAX_LINE_BYTES, num::parse_dec};

/// Which framing a line had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `[    1.637153] text` (also after `<N>`, with a caller id).
    Printk,
    /// `dmesg -T`: `[Fri May  1 09:46:33 2026] text`.
    DmesgCtime,
    /// `journalctl -o short-monotonic`: `[   12.345678] host kernel: text`.
    JournalMonotonic,
    /// `Dec  1 02:16:37[.frac] host ident: text` without a printk stamp inside
    /// (`journalctl -o short`/`short-precise`, syslog without kernel stamps).
    JournalShort,
    /// `Dec  1 02:16:37 host kernel: [   12.345678] text`: syslog with the printk stamp.
    Syslog,
    /// `2026-12-01T02:16:37+01:00 [host ident: ]text` (RFC 3339 syslog, `short-iso`, `dmesg
    /// --time-format iso`).
    Iso,
    /// `-- Boot <id> --` between boots in `journalctl` output.
    BootSeparator,
    /// No stamp: the line is placed by position.
    None,
}

/// When a line was logged, as its framing says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// The kernel's monotonic clock (printk, short-monotonic), nanoseconds.
    Monotonic(u64),
    /// A wall clock; only differences between lines of one boot mean something.
    Wall(WallClock),
    /// No stamp.
    Unknown,
}

/// A wall-clock stamp as nanoseconds on a proleptic calendar; without a year (BSD syslog)
/// the year is taken as 2000, so only differences within one year are right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock {
    pub nanos: i128,
}

impl WallClock {
    /// From a date and `HH:MM:SS[.frac]`.
    pub(crate) fn from_parts(year: Option<i32>, month: u32, day: u32, time: &str) -> Option<Self> {
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut parts = hms.split(':');
        let h: u32 = parse_dec(parts.next()?)?;
        let m: u32 = parse_dec(parts.next()?)?;
        let s: u32 = parse_dec(parts.next()?)?;
        if parts.next().is_some() || h > 23 || m > 59 || s > 60 || frac.len() > 9 {
            return None;
        }
        let frac_ns: i128 = if frac.is_empty() {
            0
        } else {
            let digits: i128 = parse_dec(frac)?;
            digits * 10_i128.pow(9 - u32::try_from(frac.len()).ok()?)
        };
        let days = days_from_civil(year.unwrap_or(2000), month, day);
        let secs = i128::from(days) * 86_400 + i128::from(h * 3600 + m * 60 + s);
        Some(Self {
            nanos: secs * 1_000_000_000 + frac_ns,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the classic civil-days formula).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Jan` .. `Dec` → 1 .. 12.
pub(crate) fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == name)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// `host ident[pid]: text` → the text to parse: the message for the kernel's own records
/// (`kernel:`), `ident[pid]: message` for a program's (as a console shows it).
pub(crate) fn split_host_ident(text: &str) -> Option<&str> {
    split_host_ident_with(text, false)
}

/// [`split_host_ident`]; with `strict`, a program's identifier must carry its `[pid]` (after a
/// bare `[ts]` stamp, `<word> <word>: ` is just as often a kernel device line).
pub(crate) fn split_host_ident_with(text: &str, strict: bool) -> Option<&str> {
    let (host, rest) = text.split_once(' ')?;
    if host.is_empty() {
        return None;
    }
    let (ident, message) = super::scan::split_colon_space(rest)
        .or_else(|| rest.strip_suffix(':').map(|ident| (ident, "")))?;
    let name = match ident.split_once('[') {
        Some((name, pid)) => {
            parse_dec::<u32>(pid.strip_suffix(']')?)?;
            name
        }
        None if strict && ident != "kernel" => return None,
        None => ident,
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@/".contains(&b));
    if !valid {
        return None;
    }
    Some(if ident == "kernel" { message } else { rest })
}

/// One framed line: the cleaned text and where its message lies in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framed<'a> {
    /// Borrowed from the input when the line needed no cleaning (nearly every line): framing
    /// copies nothing then.
    clean: Cow<'a, str>,
    message: Range<usize>,
    pub framing: Framing,
    pub stamp: Stamp,
    /// Console log level, when the framing carries one (`<N>`, `dmesg -x`).
    pub level: Option<u8>,
    /// The line was not wholly read: invalid UTF-8 (replaced) or longer than
    /// [`MAX_LINE_BYTES`] (cut).
    pub damaged: bool,
}

impl Framed<'_> {
    /// The message: what the kernel (or the program) printed, without any framing.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.clean[self.message.clone()]
    }

    /// Moves the message out.
    #[must_use]
    pub fn into_text(self) -> String {
        match self.clean {
            Cow::Borrowed(s) => s[self.message].to_owned(),
            Cow::Owned(mut s) => {
                s.truncate(self.message.end);
                s.split_off(self.message.start)
            }
        }
    }
}

/// Frames one line (without its `\n`), trying every framing. Never fails: a line no framing
/// recognises is [`Framing::None`] with its whole (cleaned) text.
#[must_use]
pub fn frame(line: &[u8]) -> Framed<'_> {
    let cut = line.len() > MAX_LINE_BYTES;
    let line = &line[..line.len().min(MAX_LINE_BYTES)];
    // Nearly every line is printable ASCII: one scan proves it valid and clean.
    let (clean, lossy) = match std::str::from_utf8(line) {
        Ok(text) if is_plain(text) => (Cow::Borrowed(text), false),
        Ok(text) => (sanitize(text), false),
        Err(_) => (
            Cow::Owned(sanitize(&String::from_utf8_lossy(line)).into_owned()),
            true,
        ),
    };
    let body = unquote(&clean);
    let (framing, stamp, level, message) = frame_body(body);
    // `message` is a slice of `clean` (or an empty literal for lines without content).
    let start = (message.as_ptr() as usize).wrapping_sub(clean.as_ptr() as usize);
    let message = if message.is_empty() || start > clean.len() {
        0..0
    } else {
        start..start + message.len()
    };
    Framed {
        clean,
        message,
        framing,
        stamp,
        level,
        damaged: cut || lossy,
    }
}

/// Leading blanks and `>` mail-quote markers (`> > text`, `>> text`).
fn unquote(text: &str) -> &str {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix('>') {
        rest = after.trim_start();
    }
    rest
}

type Parts<'a> = (Framing, Stamp, Option<u8>, &'a str);

fn frame_body<'a>(body: &'a str) -> Parts<'a> {
    let (decoded_level, body) = match dmesg_decode::split(body) {
        Some((level, rest)) => (Some(level), rest),
        None => (None, body),
    };
    let with_level = |parts: Parts<'a>| -> Parts<'a> {
        let (framing, stamp, level, text) = parts;
        (framing, stamp, level.or(decoded_level), text)
    };
    let first = body.as_bytes().first().copied();
    if matches!(first, Some(b'[' | b'<')) {
        // `[secs.micros]` is read once: a journal line (`host ident:` after it) or printk's.
        let (level, stamped) = printk::split_level(body);
        if let Some((ts, after)) = printk::split_timestamp(stamped) {
            if level.is_none()
                && let Some(message) = journal::message_after_stamp(after)
            {
                return with_level((
                    Framing::JournalMonotonic,
                    Stamp::Monotonic(ts),
                    None,
                    message,
                ));
            }
            let message = printk::message_after_stamp(after);
            return with_level((Framing::Printk, Stamp::Monotonic(ts), level, message));
        }
        if let Some((wall, message)) = dmesg_ctime::frame(body) {
            return with_level((Framing::DmesgCtime, Stamp::Wall(wall), None, message));
        }
    }
    if matches!(first, Some(b'A'..=b'S'))
        && let Some((wall, message)) = syslog::split_bsd(body)
    {
        return with_level(inner_printk(wall, message, Framing::JournalShort));
    }
    if matches!(first, Some(b'0'..=b'9'))
        && let Some((wall, message)) = syslog::split_iso(body)
    {
        return with_level(inner_printk(wall, message, Framing::Iso));
    }
    if journal::is_boot_separator(body) {
        return (Framing::BootSeparator, Stamp::Unknown, None, "");
    }
    if journal::is_banner(body) {
        return (Framing::None, Stamp::Unknown, None, "");
    }
    with_level((Framing::None, Stamp::Unknown, None, body))
}

/// A syslog message that still holds printk's stamp: that stamp is the line's time.
fn inner_printk(wall: WallClock, message: &str, outer: Framing) -> Parts<'_> {
    match printk::frame(message) {
        Some((level, ts, text)) => (Framing::Syslog, Stamp::Monotonic(ts), level, text),
        None => (outer, Stamp::Wall(wall), None, message),
    }
}

/// Printable ASCII and tab only: nothing to clean (C1 controls are multi-byte, so not here).
fn is_plain(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\t')
}

/// Drops what a terminal would not print: NUL, CR, other C0 controls except tab, DEL, and
/// ANSI/VT100 escape sequences (CSI `ESC [ ... final`, or `ESC x`).
pub(crate) fn sanitize(text: &str) -> Cow<'_, str> {
    if is_plain(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            // `ESC x` drops two characters; CSI drops its parameters and intermediates, then
            // one final byte in @..~.
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(line: &str) -> (Framing, Stamp, String) {
        let f = frame(line.as_bytes());
        (f.framing, f.stamp, f.text().to_owned())
    }

    #[test]
    fn every_framing_yields_the_message() {
        let msg =
            "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0";
        for (line, framing) in [
            (format!("[    4.427993] {msg}"), Framing::Printk),
            (format!("<4>[    4.427993][    T1] {msg}"), Framing::Printk),
            (
                format!("kern  :warn  : [    4.427993] {msg}"),
                Framing::Printk,
            ),
            (
                format!("[Fri May  1 09:46:33 2026] {msg}"),
                Framing::DmesgCtime,
            ),
            (
                format!("kern  :warn  : [Fri May  1 09:46:33 2026] {msg}"),
                Framing::DmesgCtime,
            ),
            (
                format!("[    4.427993] host kernel: {msg}"),
                Framing::JournalMonotonic,
            ),
            (
                format!("May 01 09:46:33 host kernel: {msg}"),
                Framing::JournalShort,
            ),
            (
                format!("May 01 09:46:33.123456 host kernel: {msg}"),
                Framing::JournalShort,
            ),
            (
                format!("Dec  1 02:16:37 host kernel: [    4.427993] {msg}"),
                Framing::Syslog,
            ),
            (
                format!("2026-12-01T02:16:37.123456+01:00 host kernel: {msg}"),
                Framing::Iso,
            ),
            (
                format!("2026-12-01T02:16:37,123456+00:00 {msg}"),
                Framing::Iso,
            ),
            (msg.to_owned(), Framing::None),
            (format!("> > {msg}"), Framing::None),
            (format!(">   [    4.427993] {msg}\r"), Framing::Printk),
            (format!("\0\0  {msg}\r\n"), Framing::None),
        ] {
            let (f, _, text) = framed(&line);
            assert_eq!((f, text.as_str()), (framing, msg), "{line}");
        }
    }

    #[test]
    fn stamps() {
        assert_eq!(
            framed("[    4.427993] x").1,
            Stamp::Monotonic(4_427_993_000)
        );
        assert_eq!(
            framed("Dec  1 02:16:37 host kernel: [   12.000001] x").1,
            Stamp::Monotonic(12_000_001_000)
        );
        assert_eq!(framed("no stamp").1, Stamp::Unknown);
        let (Stamp::Wall(a), Stamp::Wall(b)) = (
            framed("[Thu Dec 31 23:59:59 2026] x").1,
            framed("[Fri Jan  1 00:00:01 2027] x").1,
        ) else {
            panic!("wall clocks expected");
        };
        assert_eq!(b.nanos - a.nanos, 2_000_000_000);
    }

    #[test]
    fn program_records_keep_their_identifier() {
        assert_eq!(
            framed("May 01 09:46:33 kdumplab kdump-tools[299]: makedumpfile Failed.").2,
            "kdump-tools[299]: makedumpfile Failed."
        );
    }

    #[test]
    fn separators_and_damage() {
        assert_eq!(framed("-- Boot 0741e28c5c4d --").0, Framing::BootSeparator);
        assert_eq!(framed("-- No entries --").2, "");
        assert!(frame(b"[    2.000000] bad \xff bytes").damaged);
        assert!(!frame(b"[    2.000000] good").damaged);
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert!(frame(&long).damaged);
    }

    #[test]
    fn c1_controls_are_dropped() {
        // Found by the pasted_log fuzz target: U+008B survived the ASCII fast path.
        assert_eq!(
            framed("Kernel command line: consol\u{8b}e=ttyAMA0").2,
            "Kernel command line: console=ttyAMA0"
        );
    }

    #[test]
    fn days_from_civil_matches_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            days_from_civil(2026, 12, 4) - days_from_civil(2026, 1, 1),
            337
        );
    }
}
