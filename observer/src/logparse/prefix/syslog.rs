//! Syslog files (`/var/log/kern.log`, `/var/log/messages`) and the `journalctl` formats that
//! share their header:
//! - BSD syslog (RFC 3164, rsyslog's `RSYSLOG_TraditionalFileFormat`, `journalctl -o short`):
//!   `Dec  1 02:16:37 host kernel: [   12.345678] text`: no year; rsyslog's `imklog` keeps
//!   the printk stamp inside the message, which then is the line's time;
//! - `journalctl -o short-precise`: `Dec 01 02:16:37.123456 host kernel: text`;
//! - RFC 3339 (rsyslog's default file format, `journalctl -o short-iso[-precise]`,
//!   `dmesg --time-format iso` without host and identifier):
//!   `2026-12-01T02:16:37.123456+01:00 host kernel: text`.
use super::{WallClock, month_number, split_host_ident};
use crate::logparse::num::parse_dec;

/// `Dec  1 02:16:37[.123456] host ident: rest` → wall clock and the message.
pub(crate) fn split_bsd(text: &str) -> Option<(WallClock, &str)> {
    let month = month_number(text.get(..3)?)?;
    let rest = text.get(3..)?.strip_prefix(' ')?.trim_start_matches(' ');
    let (day, rest) = rest.split_once(' ')?;
    let (time, rest) = rest.split_once(' ')?;
    let wall = WallClock::from_parts(None, month, parse_dec(day)?, time)?;
    Some((wall, split_host_ident(rest)?))
}

/// `2026-12-01T02:16:37[.,]frac(+01:00|+0100|Z) [host ident: ]rest` → wall clock (the
/// local time as printed; the offset is the same for a whole file) and the message. Without
/// a host and identifier (`dmesg --time-format iso`) the rest is the message.
pub(crate) fn split_iso(text: &str) -> Option<(WallClock, &str)> {
    let (stamp, rest) = text.split_once(' ')?;
    if stamp.len() < 19 || stamp.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let year: i32 = parse_dec(stamp.get(..4)?)?;
    if stamp.as_bytes()[4] != b'-' || stamp.as_bytes()[7] != b'-' {
        return None;
    }
    let month: u32 = parse_dec(stamp.get(5..7)?)?;
    let day: u32 = parse_dec(stamp.get(8..10)?)?;
    let clock = stamp.get(11..)?;
    let end = clock.find(['+', '-', 'Z']).unwrap_or(clock.len());
    let time = clock[..end].replace(',', ".");
    let wall = WallClock::from_parts(Some(year), month, day, &time)?;
    Some((wall, split_host_ident(rest).unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsd_header() {
        let (a, text) = split_bsd("Dec  1 02:16:37 host kernel: [   12.300000] x").unwrap();
        assert_eq!(text, "[   12.300000] x");
        let (b, text) = split_bsd("Dec 01 02:16:38.250000 host kernel: y").unwrap();
        assert_eq!(text, "y");
        assert_eq!(b.nanos - a.nanos, 1_250_000_000);
        assert_eq!(
            split_bsd("May  1 09:46:33 kdumplab kdump-tools[299]: makedumpfile Failed.")
                .map(|w| w.1),
            Some("kdump-tools[299]: makedumpfile Failed.")
        );
        assert!(split_bsd("Decimal 1 02:16:37 host kernel: x").is_none());
        assert!(split_bsd("Dec  1 02:16:37 no-identifier-here").is_none());
    }

    #[test]
    fn iso_header() {
        let (a, text) = split_iso("2026-12-01T02:16:37.123456+01:00 host kernel: x").unwrap();
        assert_eq!(text, "x");
        let (b, text) = split_iso("2026-12-01T02:16:38,123456+00:00 z").unwrap();
        assert_eq!(text, "z");
        assert_eq!(b.nanos - a.nanos, 1_000_000_000);
        assert!(split_iso("2026-12-01 02:16:37 host kernel: x").is_none());
    }
}
