//! Numbers as the kernel prints them.
use crate::event::hex;

/// `0x1f01`, `1f01`, `0X1F01` → 0x1f01. At most 16 digits; nothing else allowed.
pub(crate) fn parse_hex(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// A printed hex value in the timeline's one spelling (`0x` + lower case, no padding).
pub(crate) fn normalize_hex(text: &str) -> Option<String> {
    parse_hex(text).map(hex)
}

/// Decimal digits only (no sign), as in `CPU%d` or `%u-bit`.
pub(crate) fn parse_dec<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_spellings() {
        assert_eq!(parse_hex("0x00088705"), Some(0x88705));
        assert_eq!(parse_hex("0000000092000010"), Some(0x9200_0010));
        assert_eq!(parse_hex("0XfF"), Some(0xff));
        assert_eq!(parse_hex("+5"), None);
        assert_eq!(parse_hex("0x"), None);
        assert_eq!(parse_hex("0x10000000000000000"), None);
        assert_eq!(normalize_hex("0x00000100").as_deref(), Some("0x100"));
    }

    #[test]
    fn decimal_rejects_signs() {
        assert_eq!(parse_dec::<u32>("44"), Some(44));
        assert_eq!(parse_dec::<u32>("+44"), None);
        assert_eq!(parse_dec::<u32>(""), None);
        assert_eq!(parse_dec::<u32>("99999999999"), None);
    }
}
