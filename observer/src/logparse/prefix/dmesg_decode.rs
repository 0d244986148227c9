//! `dmesg -x` (`--decode`, util-linux `sys-utils/dmesg.c`): the facility and level in front,
//! each left-aligned in a padded column, then the usual stamp:
//! `kern  :err   : [    4.427993] pcieport 0000:00:03.0: AER: ...`. The facility names are
//! syslog's (`kern`, `user`, `daemon`, ...), the level names `emerg` .. `debug`.

const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// `kern  :info  : rest` → the level number and `rest`.
pub(crate) fn split(text: &str) -> Option<(u8, &str)> {
    let (facility, rest) = text.split_once(':')?;
    let facility = facility.trim_end();
    if facility.is_empty()
        || facility.len() > 8
        || !facility.bytes().all(|b| b.is_ascii_lowercase())
    {
        return None;
    }
    let (level, rest) = rest.split_once(':')?;
    let level = LEVELS.iter().position(|l| *l == level.trim_end())?;
    Some((
        u8::try_from(level).ok()?,
        rest.strip_prefix(' ').unwrap_or(rest),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_prefix() {
        assert_eq!(
            split("kern  :err   : [    4.427993] pcieport x"),
            Some((3, "[    4.427993] pcieport x"))
        );
        assert_eq!(split("daemon:notice: y"), Some((5, "y")));
        assert_eq!(split("kern  :bogus : y"), None);
        assert_eq!(split("pcieport 0000:00:03.0: AER: x"), None);
    }
}
