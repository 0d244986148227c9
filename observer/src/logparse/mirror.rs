//! Lines this daemon wrote into the kernel log itself (`sinks::kmsg_mirror`). They repeat
//! events already in the timeline, so they are never parsed as new evidence.

/// Start of every mirrored record's text (the mirror adds a format version after it).
pub const MIRROR_PREFIX: &str = "kdump-dma-observer: ";

/// Whether `text` (a record's text, or a console line after its timestamp) is a mirror line.
#[must_use]
pub fn is_mirrored_line(text: &str) -> bool {
    mirrored_payload(text).is_some()
}

/// What follows [`MIRROR_PREFIX`] in a mirror line (e.g. `v1 {...}`), for reading a console or
/// pstore copy of the timeline back.
#[must_use]
pub fn mirrored_payload(text: &str) -> Option<&str> {
    text.trim_start().strip_prefix(MIRROR_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_mirror_prefix_only_at_the_start() {
        assert!(is_mirrored_line(
            "kdump-dma-observer: v1 {\"kind\":\"aer\"}"
        ));
        assert_eq!(
            mirrored_payload(" kdump-dma-observer: v1 {}"),
            Some("v1 {}")
        );
        assert!(!is_mirrored_line("kdump-dma-observer v1"));
        assert!(!is_mirrored_line("foo kdump-dma-observer: v1 {}"));
    }

    #[test]
    fn agrees_with_the_mirror_sink() {
        assert!(crate::sinks::kmsg_mirror::PREFIX.starts_with(MIRROR_PREFIX));
    }
}
