//! The kernel half of kdump-dma-observer.
//!
//! Every program turns one kernel event into one fixed-size [`Record`] in the `EVENTS` ring
//! buffer and counts it in the per-CPU `COUNTERS` map: submitted, or dropped when the ring is
//! full. Programs never block, never loop over unbounded data, and read every kernel-version
//! dependent offset from a global the loader fills in from tracefs.
#![no_std]
#![no_main]
#![expect(
    clippy::inline_always,
    reason = "BPF helpers run in one stack frame; calls between BPF functions cost verifier budget"
)]
#![expect(
    clippy::needless_pass_by_value,
    reason = "aya's program macros pass the context by value"
)]

use aya_ebpf::{
    EbpfContext as _, Global,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::bpf_probe_read_kernel_str,
    },
    macros::{kprobe, map, tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::{ProbeContext, TracePointContext},
};
use observer_common::{
    FunctionRole, PRESENT_SLOT, Record, RecordKind, TEXT_LEN, TracepointLayout, counter,
};

/// Default ring size (1 MiB, about 10 900 records); the loader sets the real one (`--ring-buffer-bytes`).
const RING_BYTES: u32 = 1 << 20;

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::LEN, 0);

#[unsafe(no_mangle)]
static SELFTEST_TGID: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static AER_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);
#[unsafe(no_mangle)]
static IOMMU_ATTACH_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);
#[unsafe(no_mangle)]
static IOMMU_GROUP_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);
#[unsafe(no_mangle)]
static ARM_EVENT_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);
#[unsafe(no_mangle)]
static NON_STANDARD_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);
#[unsafe(no_mangle)]
static MC_EVENT_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);
#[unsafe(no_mangle)]
static MCE_LAYOUT: Global<TracepointLayout> = Global::new(TracepointLayout::EMPTY);

#[inline(always)]
fn count(slot: u32) {
    if let Some(value) = COUNTERS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, and programs of one CPU do not preempt each other here.
        unsafe { *value += 1 };
    }
}

/// A record stamped with time, CPU and task; the caller fills the kind-specific part.
#[inline(always)]
fn record(kind: RecordKind) -> Record {
    let pid_tgid = bpf_get_current_pid_tgid();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the low half is the thread id"
    )]
    let tid = pid_tgid as u32;
    Record {
        // SAFETY: helpers without preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        kind: kind as u32,
        cpu: unsafe { bpf_get_smp_processor_id() },
        tid,
        tgid: (pid_tgid >> 32) as u32,
        ..Record::ZERO
    }
}

#[inline(always)]
fn submit(rec: &Record) {
    match EVENTS.reserve::<Record>(0) {
        Some(mut entry) => {
            // Word by word, with volatile accesses LLVM cannot turn back into a `memmove`
            // call: a struct copy with a run-time string in it became a call to a byte-loop
            // `memmove` subprogram, which the verifier walked byte by byte in every program
            // that fills `text` (20-50 ms per program to load under QEMU TCG, against 2 ms for
            // the others).
            let src = core::ptr::from_ref(rec).cast::<u64>();
            let dst = entry.as_mut_ptr().cast::<u64>();
            for i in 0..Record::SIZE / 8 {
                // SAFETY: both are `Record`s (8-byte aligned, `Record::SIZE` bytes); the
                // ring entry is ours until submitted.
                unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
            }
            entry.submit(0);
            count(counter::SUBMITTED);
        }
        None => count(counter::DROPPED),
    }
}

/// Reads an integer field of `size` bytes at `offset` of a tracepoint record, widened to u64.
///
/// One 8-byte read masked to `size`, not one read per size: each branch here multiplies the
/// paths the verifier walks (three fields of four sizes each), and verifying took ~2 ms per
/// tracepoint program on hardware and 20-50 ms under QEMU TCG, at every start. Both targets
/// are little-endian, so the low bytes are the field. The read may run up to 7 bytes past a
/// field at the end of the record; the record sits in the kernel's per-CPU trace buffer
/// (`perf_trace_buf_alloc`, 8 KiB), so those bytes are readable, and masked off.
#[inline(always)]
fn read_field(ctx: &TracePointContext, offset: u16, size: u8) -> u64 {
    if offset == TracepointLayout::ABSENT {
        return 0;
    }
    // SAFETY: reads through bpf_probe_read_kernel; a bad offset yields an error, not a fault.
    let raw = unsafe { ctx.read_at::<u64>(usize::from(offset)) }.unwrap_or(0);
    let bits = u32::from(size) * 8;
    if bits >= 64 {
        raw
    } else {
        raw & ((1 << bits) - 1)
    }
}

/// Copies the NUL-terminated kernel string at `src` into `dest` (truncated, NUL padded).
///
/// The raw helper, not `bpf_probe_read_kernel_str_bytes`: that wrapper turns the returned
/// length into a slice, whose bounds checks the verifier walks again in every program, for a
/// result nobody reads (the record is NUL padded already).
#[inline(always)]
fn read_str(src: *const u8, dest: &mut [u8; TEXT_LEN]) {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "TEXT_LEN is 32 (observer-common)"
    )]
    const LEN: u32 = TEXT_LEN as u32;
    // SAFETY: bounded by `dest`'s length; faults are reported by the helper, not taken.
    unsafe {
        bpf_probe_read_kernel_str(dest.as_mut_ptr().cast(), LEN, src.cast());
    }
}

/// Fills `rec` from a tracepoint record laid out as `layout` says (the integer fields and
/// their presence mask), and submits it.
#[inline(always)]
fn submit_tracepoint(ctx: &TracePointContext, layout: &TracepointLayout, mut rec: Record) {
    for i in 0..3 {
        rec.args[i] = read_field(ctx, layout.fields[i], layout.sizes[i]);
        if layout.fields[i] != TracepointLayout::ABSENT {
            rec.args[PRESENT_SLOT] |= 1 << i;
        }
    }
    read_text(ctx, layout, &mut rec);
    submit(&rec);
}

/// Copies the layout's `__data_loc` string field into `rec.text`, if it has one.
#[inline(always)]
fn read_text(ctx: &TracePointContext, layout: &TracepointLayout, rec: &mut Record) {
    if layout.text_loc != TracepointLayout::ABSENT {
        // A `__data_loc` field holds (length << 16 | offset) of the string within the record.
        // SAFETY: as in read_field.
        if let Ok(loc) = unsafe { ctx.read_at::<u32>(usize::from(layout.text_loc)) } {
            let start = (loc & 0xffff) as usize;
            // SAFETY: the kernel wrote a NUL-terminated string there; the read is bounded by
            // `rec.text` and faults are reported, not taken.
            let src = unsafe { ctx.as_ptr().cast::<u8>().add(start) };
            read_str(src, &mut rec.text);
        }
    }
}

/// Pipeline self-test and benchmark source: `syscalls:sys_enter_getpgid` from one process.
#[tracepoint]
fn selftest(ctx: TracePointContext) -> u32 {
    let target = SELFTEST_TGID.load();
    if target == 0 || (bpf_get_current_pid_tgid() >> 32) as u32 != target {
        return 0;
    }
    let mut rec = record(RecordKind::SelfTest);
    // `pid_t pid` sits at offset 16 of every sys_enter_getpgid record (after the common header
    // and `__syscall_nr`); the format file confirms it before this program is attached.
    // SAFETY: bounded kernel read.
    rec.args[0] = unsafe { ctx.read_at::<u64>(16) }.unwrap_or(u64::MAX);
    submit(&rec);
    0
}

/// `ras:aer_event`: every AER error the kernel reports, native or firmware-first.
#[tracepoint]
fn aer_event(ctx: TracePointContext) -> u32 {
    let layout = AER_LAYOUT.load();
    submit_tracepoint(&ctx, &layout, record(RecordKind::AerEvent));
    0
}

/// `ras:arm_event`: a firmware-reported ARM processor error section.
#[tracepoint]
fn arm_event(ctx: TracePointContext) -> u32 {
    let layout = ARM_EVENT_LAYOUT.load();
    submit_tracepoint(&ctx, &layout, record(RecordKind::ArmEvent));
    0
}

/// `ras:mc_event`: a memory-controller (EDAC) error.
#[tracepoint]
fn mc_event(ctx: TracePointContext) -> u32 {
    let layout = MC_EVENT_LAYOUT.load();
    submit_tracepoint(&ctx, &layout, record(RecordKind::McEvent));
    0
}

/// `ras:non_standard_event`: a firmware-reported section of a type the kernel does not decode;
/// its 16-byte type GUID goes to `args[2..4]` instead of a presence mask.
#[tracepoint]
fn non_standard_event(ctx: TracePointContext) -> u32 {
    let layout = NON_STANDARD_LAYOUT.load();
    let mut rec = record(RecordKind::NonStandardEvent);
    for i in 0..2 {
        rec.args[i] = read_field(&ctx, layout.fields[i], layout.sizes[i]);
    }
    let guid = layout.fields[2];
    if guid != TracepointLayout::ABSENT {
        rec.args[2] = read_field(&ctx, guid, 8);
        rec.args[3] = read_field(&ctx, guid.saturating_add(8), 8);
    }
    read_text(&ctx, &layout, &mut rec);
    submit(&rec);
    0
}

/// `iommu:attach_device_to_domain`.
#[tracepoint]
fn iommu_attach(ctx: TracePointContext) -> u32 {
    let layout = IOMMU_ATTACH_LAYOUT.load();
    submit_tracepoint(&ctx, &layout, record(RecordKind::IommuAttach));
    0
}

/// `iommu:add_device_to_group`.
#[tracepoint]
fn iommu_group_add(ctx: TracePointContext) -> u32 {
    let layout = IOMMU_GROUP_LAYOUT.load();
    submit_tracepoint(&ctx, &layout, record(RecordKind::IommuGroupAdd));
    0
}

/// `mce:mce_record` (x86): a machine check the kernel logged (`status`, `addr`, `bank`).
#[tracepoint]
fn mce_record(ctx: TracePointContext) -> u32 {
    let layout = MCE_LAYOUT.load();
    submit_tracepoint(&ctx, &layout, record(RecordKind::MceRecord));
    0
}

/// A kernel function probe hit: the role of the program that fired and the function's first
/// three arguments; userspace interprets them by role. Each role has its own program (below),
/// so no address has to be mapped back to a function name, and `bpf_get_func_ip` (5.15+) is
/// not needed.
#[inline(always)]
fn function_hit(ctx: &ProbeContext, role: FunctionRole) {
    let mut rec = record(RecordKind::FunctionHit);
    rec.args[0] = role as u64;
    rec.args[1] = ctx.arg::<u64>(0).unwrap_or(0);
    rec.args[2] = ctx.arg::<u64>(1).unwrap_or(0);
    rec.args[3] = ctx.arg::<u64>(2).unwrap_or(0);
    submit(&rec);
}

/// One kprobe program per [`FunctionRole`], named by [`FunctionRole::program_name`] (a
/// mismatch fails the daemon's object test).
macro_rules! role_programs {
    ($($name:ident => $role:ident),* $(,)?) => {$(
        #[kprobe]
        fn $name(ctx: ProbeContext) -> u32 {
            function_hit(&ctx, FunctionRole::$role);
            0
        }
    )*};
}

role_programs! {
    hit_smmu_reg_write => SmmuRegWrite,
    hit_smmu_gerror => SmmuGerror,
    hit_external_abort => ExternalAbort,
    hit_serror => Serror,
    hit_serror_panic => SerrorPanic,
    hit_ghes => Ghes,
    hit_ghes_fatal => GhesFatal,
    hit_aer_recovery => AerRecovery,
    hit_dpc => Dpc,
    hit_dmar_fault => DmarFault,
    hit_amd_vi_interrupt => AmdViInterrupt,
}

/// `panic(fmt, ...)`: a function hit plus the first bytes of the panic message.
#[kprobe]
fn hit_panic(ctx: ProbeContext) -> u32 {
    let mut rec = record(RecordKind::FunctionHit);
    rec.args[0] = FunctionRole::Panic as u64;
    let fmt = ctx.arg::<*const u8>(0).unwrap_or(core::ptr::null());
    rec.args[1] = fmt as u64;
    if !fmt.is_null() {
        read_str(fmt, &mut rec.text);
    }
    submit(&rec);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
