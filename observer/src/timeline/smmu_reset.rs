//! Folding the boot trace's SMMU register writes into the reset they belong to.
//!
//! The driver's reset of an SMMU it found enabled writes `CR0 = 0` (translation off: in-flight
//! DMA now meets `GBPA.ABORT`), sets up the queues, and ends with a CR0 write that sets SMMUEN
//! again. The kernel log announces it (`SMMU currently enabled! Resetting...`); the boot trace
//! holds the writes with their exact times. This step makes them one `smmu_reset` event.
use crate::{
    event::{Detail, Event, RegWrite, Source},
    smmu,
};

/// Within this distance before the first write of a sequence, a log line announcing the reset
/// belongs to it (the warning is printed just before the disable).
const ANNOUNCE_WINDOW_NS: u64 = 1_000_000_000;

/// Attaches boot-trace writes to the resets in `events` and removes the attached writes.
/// In a capture kernel, a disable→enable sequence the log did not announce (e.g. because the
/// log wrapped) still becomes a reset, witnessed by the boot trace alone.
pub fn attach_writes(events: &mut Vec<Event>, capture_kernel: bool) {
    let mut instances: Vec<String> = events
        .iter()
        .filter_map(|e| match (&e.detail, e.source) {
            (Detail::SmmuRegWrite { smmu, .. }, Source::BootTrace) => Some(smmu.clone()),
            _ => None,
        })
        .collect();
    instances.sort();
    instances.dedup();
    for instance in instances {
        let Some(sequence) = first_reset_sequence(events, &instance) else {
            continue;
        };
        let writes: Vec<RegWrite> = sequence.iter().map(|&i| reg_write(&events[i])).collect();
        let first_ts = writes[0].ts_ns;
        let announced = events.iter().position(|e| {
            matches!(&e.detail, Detail::SmmuReset { smmu, writes } if *smmu == instance && writes.is_empty())
                && e.ts_ns <= first_ts + ANNOUNCE_WINDOW_NS
                && first_ts <= e.ts_ns + ANNOUNCE_WINDOW_NS
        });
        match announced {
            Some(index) => {
                let reset = &mut events[index];
                if let Detail::SmmuReset { writes: slot, .. } = &mut reset.detail {
                    *slot = writes;
                }
                if reset.sources.is_empty() {
                    reset.sources.push(reset.source);
                }
                reset.sources.push(Source::BootTrace);
                reset.sources.sort();
                reset.sources.dedup();
                if first_ts < reset.ts_ns {
                    reset.ts_ns = first_ts;
                }
            }
            None if capture_kernel => events.push(Event::new(
                first_ts,
                Source::BootTrace,
                Detail::SmmuReset {
                    smmu: instance.clone(),
                    writes,
                },
            )),
            None => continue,
        }
        remove_indices(events, &sequence);
    }
}

/// Indices of the first CR0 disable → CR0 enable sequence of `instance` (GBPA updates just
/// before it included), in time order.
fn first_reset_sequence(events: &[Event], instance: &str) -> Option<Vec<usize>> {
    let mut writes: Vec<(u64, usize, &str, u64)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match (&e.detail, e.source) {
            (
                Detail::SmmuRegWrite {
                    smmu,
                    register,
                    value,
                    ..
                },
                Source::BootTrace,
            ) if smmu == instance => {
                let value = u64::from_str_radix(value.trim_start_matches("0x"), 16).ok()?;
                Some((e.ts_ns, i, register.as_str(), value))
            }
            _ => None,
        })
        .collect();
    writes.sort_by_key(|w| (w.0, w.1));
    let start = writes
        .iter()
        .position(|&(_, _, reg, val)| reg == "CR0" && val & smmu::CR0_SMMUEN == 0)?;
    let end = start
        + writes[start..]
            .iter()
            .position(|&(_, _, reg, val)| reg == "CR0" && val & smmu::CR0_SMMUEN != 0)?;
    // A GBPA update right before the disable is the ABORT of the same reset (6.1 only).
    let first = writes[..start]
        .iter()
        .rposition(|&(_, _, reg, _)| reg != "GBPA")
        .map_or(0, |p| p + 1);
    Some(writes[first..=end].iter().map(|w| w.1).collect())
}

fn reg_write(event: &Event) -> RegWrite {
    match &event.detail {
        Detail::SmmuRegWrite {
            register,
            value,
            meaning,
            ..
        } => RegWrite {
            ts_ns: event.ts_ns,
            register: register.clone(),
            value: value.clone(),
            meaning: meaning.clone(),
        },
        _ => unreachable!("only register writes are collected"),
    }
}

fn remove_indices(events: &mut Vec<Event>, indices: &[usize]) {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    for i in sorted.into_iter().rev() {
        events.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::boot_trace;

    const WRITES: &str = "\
 swapper/0-1 [000] d.... 1.352980: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"9050000.smmuv3\" val=0x0 reg=0x20
 swapper/0-1 [000] d.... 1.353379: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"9050000.smmuv3\" val=0x8 reg=0x20
 swapper/0-1 [000] d.... 1.354044: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"9050000.smmuv3\" val=0x0 reg=0x50
 swapper/0-1 [000] dN... 1.356895: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"9050000.smmuv3\" val=0x9 reg=0x20
 swapper/0-1 [000] d.... 5.000000: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"9050000.smmuv3\" val=0x1 reg=0x50
";

    fn kmsg_reset(ts_ns: u64) -> Event {
        Event::new(
            ts_ns,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: "9050000.smmuv3".into(),
                writes: Vec::new(),
            },
        )
        .with_raw("arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...")
    }

    #[test]
    fn announced_reset_gets_its_writes_and_both_sources() {
        let mut events = boot_trace::parse(WRITES);
        events.push(kmsg_reset(1_352_700_000));
        attach_writes(&mut events, true);
        assert_eq!(
            events.len(),
            2,
            "four writes folded, the later IRQ_CTRL write stays"
        );
        let reset = events
            .iter()
            .find(|e| e.detail.kind() == "smmu_reset")
            .unwrap();
        assert_eq!(reset.sources, [Source::BootTrace, Source::Kmsg]);
        assert_eq!(reset.ts_ns, 1_352_700_000);
        let Detail::SmmuReset { smmu, writes } = &reset.detail else {
            panic!()
        };
        assert_eq!(smmu, "9050000.smmuv3");
        let seq: Vec<_> = writes
            .iter()
            .map(|w| (w.register.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            seq,
            [
                ("CR0", "0x0"),
                ("CR0", "0x8"),
                ("IRQ_CTRL", "0x0"),
                ("CR0", "0x9")
            ]
        );
    }

    #[test]
    fn unannounced_sequence_is_a_reset_only_in_a_capture_kernel() {
        let mut normal = boot_trace::parse(WRITES);
        attach_writes(&mut normal, false);
        assert_eq!(
            normal.len(),
            5,
            "a normal boot's init writes stay plain writes"
        );

        let mut capture = boot_trace::parse(WRITES);
        attach_writes(&mut capture, true);
        let reset = capture
            .iter()
            .find(|e| e.detail.kind() == "smmu_reset")
            .unwrap();
        assert_eq!(reset.source, Source::BootTrace);
        let found = &reset.sources;
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(reset.ts_ns, 1_352_980_000);
    }

    /// A server's capture kernel (Grace, Kunpeng: a dozen SMMUv3 instances, named
    /// `arm-smmu-v3.<n>.auto` from the IORT): each instance resets on its own, interleaved.
    const MANY: &str = "\
 swapper/0-1 [000] d.... 2.100000: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.0.auto\" val=0x0 reg=0x20
 swapper/0-1 [000] d.... 2.100400: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.0.auto\" val=0xd reg=0x20
 swapper/0-1 [000] d.... 2.300000: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.9.auto\" val=0x0 reg=0x20
 swapper/0-1 [000] d.... 2.300100: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.10.auto\" val=0x0 reg=0x20
 swapper/0-1 [000] d.... 2.300500: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.9.auto\" val=0x8 reg=0x20
 swapper/0-1 [000] d.... 2.300600: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.10.auto\" val=0xd reg=0x20
 swapper/0-1 [000] d.... 2.300900: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu=\"arm-smmu-v3.9.auto\" val=0xd reg=0x20
";

    /// A reset as seen: instance, its writes as (time in 100 µs, value), sources.
    type Seen = (String, Vec<(u64, String)>, Vec<Source>);

    fn announced(smmu: &str, ts_ns: u64) -> Event {
        Event::new(
            ts_ns,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: smmu.into(),
                writes: Vec::new(),
            },
        )
    }

    #[test]
    fn several_instances_each_get_their_own_writes() {
        let mut events = boot_trace::parse(MANY);
        // Announced: .0 and .9 (the log kept those lines); .10's line was lost.
        events.push(announced("arm-smmu-v3.0.auto", 2_099_000_000));
        events.push(announced("arm-smmu-v3.9.auto", 2_299_000_000));
        attach_writes(&mut events, true);
        let mut resets: Vec<Seen> = events
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::SmmuReset { smmu, writes } => Some((
                    smmu.clone(),
                    writes
                        .iter()
                        .map(|w| (w.ts_ns / 100_000, w.value.clone()))
                        .collect(),
                    e.sources.clone(),
                )),
                _ => None,
            })
            .collect();
        resets.sort();
        let both = vec![Source::BootTrace, Source::Kmsg];
        assert_eq!(
            resets,
            [
                (
                    "arm-smmu-v3.0.auto".to_owned(),
                    vec![(21_000, "0x0".to_owned()), (21_004, "0xd".to_owned())],
                    both.clone()
                ),
                (
                    "arm-smmu-v3.10.auto".to_owned(),
                    vec![(23_001, "0x0".to_owned()), (23_006, "0xd".to_owned())],
                    Vec::new()
                ),
                (
                    "arm-smmu-v3.9.auto".to_owned(),
                    vec![
                        (23_000, "0x0".to_owned()),
                        (23_005, "0x8".to_owned()),
                        (23_009, "0xd".to_owned())
                    ],
                    both
                ),
            ]
        );
        assert_eq!(events.len(), 3, "every write folded into its own reset");
    }

    #[test]
    fn a_distant_announcement_is_not_matched() {
        let mut events = boot_trace::parse(WRITES);
        events.push(kmsg_reset(9_000_000_000));
        attach_writes(&mut events, false);
        let reset = events
            .iter()
            .find(|e| e.detail.kind() == "smmu_reset")
            .unwrap();
        assert!(reset.sources.is_empty(), "stays a kmsg-only reset");
    }
}
