//! The `<driver> <device>: ` prefix of `dev_printk()` lines.

/// A line printed by `dev_printk()`: `virtio-pci 0000:02:00.0: <message>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DevLine<'a> {
    pub driver: &'a str,
    pub device: &'a str,
    /// Everything after `": "`, leading spaces kept.
    pub message: &'a str,
}

/// Splits a `dev_printk()` line; `None` if the text does not start with `<word> <word>: `.
pub(crate) fn split_dev_line(text: &str) -> Option<DevLine<'_>> {
    // `<driver> <device>: <message>`: the device is the second word, ending in `:`.
    let (driver, rest) = text.split_once(' ')?;
    let (device, message) = rest.split_once(' ')?;
    let device = device.strip_suffix(':')?;
    if driver.is_empty() || driver.ends_with(':') || device.is_empty() {
        return None;
    }
    Some(DevLine {
        driver,
        device,
        message,
    })
}

/// [`split_dev_line`] for a device that is a PCI address (AER, DPC, firmware-first AER lines;
/// the parser filters the one split it makes per line the same way).
#[cfg(test)]
pub(crate) fn pci_line(text: &str) -> Option<DevLine<'_>> {
    split_dev_line(text).filter(|line| is_bdf(line.device))
}

/// A PCI address as the kernel prints it: `%04x:%02x:%02x.%d` (domain may be longer).
pub(crate) fn is_bdf(text: &str) -> bool {
    let Some((domain, rest)) = text.split_once(':') else {
        return false;
    };
    let Some((bus, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((slot, function)) = rest.split_once('.') else {
        return false;
    };
    let hex = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    hex(domain, 4, 8)
        && hex(bus, 2, 2)
        && hex(slot, 2, 2)
        && function.len() == 1
        && function.bytes().all(|b| (b'0'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_driver_device_message() {
        let line = split_dev_line("virtio-pci 0000:02:00.0:   device [1af4:1041] x").unwrap();
        assert_eq!(line.driver, "virtio-pci");
        assert_eq!(line.device, "0000:02:00.0");
        assert_eq!(line.message, "  device [1af4:1041] x");
        assert!(split_dev_line("Kernel command line: x").is_none());
        assert!(split_dev_line("OF: fdt: Reserving").is_none());
        assert!(split_dev_line("no separator at all").is_none());
        // The same answers as splitting at the first `": "`, then at the one space before it.
        for text in [
            "drv dev: ",
            "drv dev:",
            "drv  dev: x",
            "drv: dev: x",
            "a b:c d: x",
            "a b:c: x",
        ] {
            let old = text.split_once(": ").and_then(|(head, message)| {
                let (driver, device) = head.split_once(' ')?;
                (!driver.is_empty() && !device.is_empty() && !device.contains(' '))
                    .then_some((driver, device, message))
            });
            let new = split_dev_line(text).map(|l| (l.driver, l.device, l.message));
            assert_eq!(new, old, "{text}");
        }
    }

    #[test]
    fn bdf_shapes() {
        assert!(is_bdf("0000:02:00.0"));
        assert!(is_bdf("10000:af:1f.7"));
        assert!(!is_bdf("0000:02:00.8"));
        assert!(!is_bdf("9050000.smmuv3"));
        assert!(!is_bdf("0000:2:00.0"));
        assert!(!is_bdf("0000:02:00.0 "));
    }
}
