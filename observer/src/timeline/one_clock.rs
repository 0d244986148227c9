//! One clock for the timeline: `CLOCK_MONOTONIC`, the clock of the boot trace
//! (`trace_clock=mono`), of eBPF records (`bpf_ktime_get_ns()`) and of the daemon's own events.
//! Kernel-log records carry the printk clock instead; with the offset measured on the running
//! kernel ([`crate::kernel::clock_offset`]) they are moved onto `CLOCK_MONOTONIC` before they
//! are compared with anything else.
use crate::{
    event::{Event, Source},
    kernel::clock_offset::ClockOffset,
};

/// Whether `source` stamps its events with the printk clock (in a live run, only `/dev/kmsg`;
/// console and dmesg text are recorded inputs, on one clock of their own).
#[must_use]
pub fn on_printk_clock(source: Source) -> bool {
    source == Source::Kmsg
}

/// Moves `event` onto `CLOCK_MONOTONIC` if its source stamped it with the printk clock.
pub fn onto_monotonic(event: &mut Event, offset: &ClockOffset) {
    if on_printk_clock(event.source) {
        event.ts_ns = offset.to_monotonic(event.ts_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{Detail, RegWrite},
        timeline::Fusion,
    };

    const SMMU: &str = "9050000.smmuv3";

    fn kmsg(ts_ns: u64, detail: Detail) -> Event {
        Event::new(ts_ns, Source::Kmsg, detail)
    }

    fn write(ts_ns: u64, value: &str) -> RegWrite {
        RegWrite {
            ts_ns,
            register: "CR0".into(),
            value: value.into(),
            meaning: String::new(),
        }
    }

    /// The run: the boot trace stamped the reset's CR0 writes at 1.804 s
    /// (`CLOCK_MONOTONIC`), the kernel log the probe line at 1.986 s and the reset line at
    /// 1.990 s (printk clock, 200 ms ahead).
    fn sightings() -> Vec<Event> {
        vec![
            Event::new(
                1_804_000_000,
                Source::BootTrace,
                Detail::SmmuReset {
                    smmu: SMMU.into(),
                    writes: vec![write(1_804_000_000, "0x0"), write(1_806_000_000, "0x9")],
                },
            ),
            kmsg(
                1_986_000_000,
                Detail::SmmuProbe {
                    smmu: SMMU.into(),
                    ias_bits: Some(44),
                    oas_bits: 44,
                    features: String::new(),
                },
            ),
            kmsg(
                2_003_000_000,
                Detail::SmmuReset {
                    smmu: SMMU.into(),
                    writes: Vec::new(),
                },
            ),
        ]
    }

    fn fused(mut fusion: Fusion) -> Vec<Event> {
        let mut out: Vec<Event> = sightings()
            .into_iter()
            .filter_map(|e| fusion.push(e, 0))
            .collect();
        out.extend(fusion.finish());
        out.sort_by_key(|e| e.ts_ns);
        out
    }

    #[test]
    fn with_the_offset_the_fused_order_follows_the_driver() {
        let offset = ClockOffset {
            offset_ns: -200_000_000,
            uncertainty_ns: 10_000,
        };
        let out = fused(Fusion::with_clock_offset(offset));
        let order: Vec<(&str, u64)> = out
            .iter()
            .map(|e| (e.detail.kind(), e.ts_ns / 1_000_000))
            .collect();
        assert_eq!(order, [("smmu_probe", 1786), ("smmu_reset", 1803)]);
        let reset = &out[1];
        assert_eq!(reset.source, Source::Kmsg, "the reset line comes first");
        assert_eq!(reset.sources, [Source::BootTrace, Source::Kmsg]);
        let Detail::SmmuReset { writes, .. } = &reset.detail else {
            panic!("{reset:?}")
        };
        assert!(
            writes[0].ts_ns - reset.ts_ns < 10_000_000,
            "the line and the first CR0 write are within 10 ms"
        );
    }

    #[test]
    fn without_it_the_probe_line_lands_after_the_reset() {
        let out = fused(Fusion::new());
        let order: Vec<&str> = out.iter().map(|e| e.detail.kind()).collect();
        assert_eq!(order, ["smmu_reset", "smmu_probe"]);
    }

    #[test]
    fn only_kernel_log_sightings_move() {
        let offset = ClockOffset {
            offset_ns: 5_000,
            uncertainty_ns: 0,
        };
        for (source, moved) in [
            (Source::Kmsg, true),
            (Source::BootTrace, false),
            (Source::Ebpf, false),
            (Source::Observer, false),
            (Source::Console, false),
        ] {
            let mut e = Event::new(1_000, source, Detail::GhesFatal);
            onto_monotonic(&mut e, &offset);
            assert_eq!(e.ts_ns, if moved { 6_000 } else { 1_000 }, "{source:?}");
        }
    }
}
