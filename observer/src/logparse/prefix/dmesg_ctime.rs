//! `dmesg -T` (`--ctime`, util-linux `sys-utils/dmesg.c` `print_record()`, `ctime`-style
//! `"%a %b %e %H:%M:%S %Y"`): `[Fri May  1 09:46:33 2026] text`. The wall clock is the boot
//! time plus the record's monotonic stamp, so differences between lines are real seconds
//! (whole seconds only). `dmesg --time-format iso` prints `2026-05-01T09:46:33,123456+00:00
//! text` (see [`super::syslog::split_iso`]).
use super::{WallClock, month_number};
use crate::logparse::num::parse_dec;

/// `[Fri May  1 09:46:33 2026] rest` → the wall clock and `rest` (without the space).
pub(crate) fn frame(text: &str) -> Option<(WallClock, &str)> {
    let inner = text.strip_prefix('[')?;
    let (stamp, rest) = inner.split_once(']')?;
    let mut words = stamp.split_ascii_whitespace();
    let weekday = words.next()?;
    if weekday.len() != 3 {
        return None;
    }
    let month = month_number(words.next()?)?;
    let day: u32 = parse_dec(words.next()?)?;
    let time = words.next()?;
    let year: i32 = parse_dec(words.next()?)?;
    if words.next().is_some() {
        return None;
    }
    let wall = WallClock::from_parts(Some(year), month, day, time)?;
    Some((wall, rest.strip_prefix(' ').unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_stamp() {
        let (a, text) = frame("[Fri May  1 09:46:33 2026] pcieport 0000:00:03.0: AER: x").unwrap();
        assert_eq!(text, "pcieport 0000:00:03.0: AER: x");
        let (b, _) = frame("[Sat May  2 09:46:34 2026] y").unwrap();
        assert_eq!(b.nanos - a.nanos, 86_401_000_000_000);
        assert!(frame("[Fri Foo  1 09:46:33 2026] x").is_none());
        assert!(frame("[Fri May  1 09:46 2026] x").is_none());
        assert!(frame("[    1.000000] x").is_none());
    }
}
