//! `cmdline`: the kernel command-line additions that arm the boot-time instrumentation.
use std::process::ExitCode;

/// The boot-time instrumentation for this kernel, with what was left out on stderr.
pub(crate) fn instrumentation_plan() -> anyhow::Result<observer::kernel::boot_instrumentation::Plan>
{
    use observer::{
        kernel::{boot_instrumentation, build_id, kallsyms, tracefs::Tracefs},
        probes::name_check::NameCheck,
    };
    let wanted = observer::probes::wanted_symbols();
    let kallsyms =
        kallsyms::Kallsyms::load_only(std::path::Path::new(kallsyms::KALLSYMS), &wanted)?;
    let tracefs = Tracefs::find_or_mount().ok().map(|(t, _)| t);
    let mut plan = boot_instrumentation::plan(&kallsyms, |category, name| {
        tracefs
            .as_ref()
            .is_some_and(|t| t.has_event(category, name))
    });
    // The daemon's kprobe names, checked here so the capture kernel (the same build) need not
    // read its kallsyms while the dump waits.
    match build_id::read(std::path::Path::new(build_id::NOTES)) {
        Ok(Some(id)) => {
            let check = NameCheck::run(&kallsyms, &id);
            eprintln!("checked   kprobe names of the daemon for build {id}");
            plan.cmdline.push(' ');
            plan.cmdline.push_str(&check.to_param());
        }
        Ok(None) => eprintln!(
            "left out  kprobe name check: this kernel has no build ID (the capture kernel \
             reads its kallsyms)"
        ),
        Err(e) => eprintln!(
            "left out  kprobe name check: cannot read {}: {e} (the capture kernel reads its \
             kallsyms)",
            build_id::NOTES
        ),
    }
    for d in &plan.decisions {
        match &d.excluded {
            None => eprintln!("included  {:<18} kprobe {}", d.event, d.symbol),
            Some(why) => eprintln!("left out  {:<18} kprobe {}: {why}", d.event, d.symbol),
        }
    }
    Ok(plan)
}

pub(crate) fn execute() -> anyhow::Result<ExitCode> {
    let plan = instrumentation_plan()?;
    println!("{}", plan.cmdline);
    Ok(ExitCode::SUCCESS)
}
