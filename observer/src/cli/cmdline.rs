//! `cmdline`: the kernel command-line additions that arm the boot-time instrumentation.
use std::process::ExitCode;

/// The boot-time instrumentation for this kernel, with what was left out on stderr.
pub(crate) fn instrumentation_plan() -> anyhow::Result<observer::kernel::boot_instrumentation::Plan>
{
    use observer::kernel::{boot_instrumentation, kallsyms, tracefs::Tracefs};
    let wanted = observer::probes::wanted_symbols();
    let kallsyms =
        kallsyms::Kallsyms::load_only(std::path::Path::new(kallsyms::KALLSYMS), &wanted)?;
    let tracefs = Tracefs::find_or_mount().ok().map(|(t, _)| t);
    let plan = boot_instrumentation::plan(&kallsyms, |category, name| {
        tracefs
            .as_ref()
            .is_some_and(|t| t.has_event(category, name))
    });
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
