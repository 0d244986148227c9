#!/bin/sh
# /init of the kdump-dma-observer QEMU lab (busybox sh), packed by `cargo xtask lab`.
#
# The host follows the serial console and drives the scenario from the `LAB: ` lines this
# script prints (through the kernel log, so they carry its time stamp): INIT <boot>, READY <boot>, CRASHING, DONE
# (capture-panic: FATAL-AER-SEEN, then the capture kernel panics), and FAIL <reason> (the host stops
# at once). <boot> is `first`, or `capture` when /proc/vmcore exists (a kdump capture kernel).
# Results go to the host's 9p share, mounted at /lab, under /lab/<boot>/.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s

# Markers go through the kernel log once /dev/kmsg exists: printk prints each record whole (a
# line written to the console tty can be split by kernel messages), and flushes them at a panic.
say() {
	if [ -w /dev/kmsg ]; then
		echo "LAB: $*" >/dev/kmsg
	else
		echo "LAB: $*"
	fi
}
up() { cut -d' ' -f1 /proc/uptime; }
fail() {
	say "FAIL $*"
	sync
	# The host quits QEMU when it reads FAIL; never return (init must not exit).
	while :; do sleep 3600; done
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null

SCENARIO=boot
for arg in $(cat /proc/cmdline); do
	case $arg in lab=*) SCENARIO=${arg#lab=} ;; esac
done
BOOT=first
[ -e /proc/vmcore ] && BOOT=capture
say "INIT $BOOT scenario=$SCENARIO kernel=$(uname -r) uptime=$(up)"

# Modules, dependencies first (the list is written by the host from modules.dep).
while read -r module; do
	[ -n "$module" ] || continue
	out=$(insmod "$module" 2>&1) || say "insmod $module failed: $out"
done </etc/lab/modules

# The 9p share that brings the results home (its virtio device may bind a moment late).
tries=0
until mount -t 9p -o trans=virtio,version=9p2000.L lab /lab 2>/tmp/mount.err; do
	tries=$((tries + 1))
	[ $tries -ge 20 ] && fail "cannot mount the 9p share: $(cat /tmp/mount.err)"
	sleep 0.25
done
OUT=/lab/$BOOT
mkdir -p "$OUT" || fail "cannot create $OUT on the 9p share"

STARTED=$(up)
/bin/kdump-dma-observer run --output "$OUT/timeline.jsonl" --status "$OUT/status.json" \
	2>"$OUT/observer.stderr" &
OBSERVER=$!

alive() { # the observer runs (and is not a zombie waiting to be reaped)
	# Shell builtins only: this runs every 100 ms while the observer starts, and on the
	# capture kernel's one emulated CPU every fork (sed, cut) is time taken from the observer
	# (it made its measured start-up up to ~40 % slower).
	read -r stat <"/proc/$OBSERVER/stat" 2>/dev/null || return 1
	state=${stat##*) }
	[ "${state%% *}" != Z ]
}

# Ready once it has written status.json (60 s bound: eBPF loading is slow under TCG). The
# READY line says when the observer was started (the lab's time to ready, to 0.1 s).
tries=0
until [ -s "$OUT/status.json" ]; do
	alive || fail "the observer exited before it was ready: $(tail -n 3 "$OUT/observer.stderr" | tr '\n' ' ')"
	tries=$((tries + 1))
	[ $tries -ge 600 ] && fail "the observer wrote no $OUT/status.json within 60 s"
	sleep 0.1
done
say "READY $BOOT uptime=$(up) observer_started=$STARTED"

stop_observer() { # SIGTERM, then wait (bounded) for its clean stop
	kill -TERM "$OBSERVER" 2>/dev/null
	tries=0
	while alive; do
		tries=$((tries + 1))
		if [ $tries -ge 100 ]; then
			say "observer ignored SIGTERM for 10 s; killing it"
			kill -KILL "$OBSERVER"
			break
		fi
		sleep 0.1
	done
	wait "$OBSERVER"
	say "observer exited with status $? uptime=$(up)"
}

finish() { # stop the observer, save the kernel log, flush the share, report DONE
	stop_observer
	dmesg >"$OUT/dmesg.txt"
	sync
	say "dmesg saved, share synced uptime=$(up)"
	cd / && umount /lab || say "umount /lab failed"
	say "DONE uptime=$(up)"
	# The host sends QMP quit now (poweroff can hang on 6.1 after a fatal AER).
	while :; do sleep 3600; done
}

if [ "$SCENARIO" = boot ]; then
	sleep 2
	finish
fi

if [ "$BOOT" = first ]; then
	# Arm the capture kernel, with this kernel's boot-time instrumentation, then crash.
	if ! EXTRA=$(/bin/kdump-dma-observer cmdline 2>/tmp/cmdline.err); then
		say "NOTE kdump-dma-observer cmdline failed, continuing without boot-time instrumentation: $(head -c 400 /tmp/cmdline.err | tr '\n' ' ')"
		EXTRA=
	fi
	EXTRA=$(echo "$EXTRA" | tr '\n' ' ')
	# The capture kernel keeps this kernel's console (ttyAMA0 on arm64, ttyS0 on x86) and IOMMU
	# switches (x86: intel_iommu=on / amd_iommu=on; without them it would not take the tables over).
	KEEP=
	for arg in $(cat /proc/cmdline); do
		case $arg in console=* | intel_iommu=* | amd_iommu=* | iommu=*) KEEP="$KEEP $arg" ;; esac
	done
	APPEND="${KEEP# } earlycon reset_devices maxcpus=1 nr_cpus=1 panic=-1 lab=$SCENARIO $EXTRA"
	# RHEL's x86 kdump line: native PCIe port services (AER, DPC) off in the capture kernel.
	[ "$SCENARIO" = kdump-compat ] && APPEND="$APPEND pcie_ports=compat"
	say "kexec -p --append=\"$APPEND\""
	kexec -i -p /boot/Image --initrd=/boot/capture.cpio --append="$APPEND" >/tmp/kexec.out 2>&1 ||
		fail "kexec -p failed: $(tail -n 5 /tmp/kexec.out | tr '\n' ' ')"
	[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || fail "kexec -p loaded no capture kernel"
	sync
	say "CRASHING uptime=$(up)"
	echo 1 >/proc/sys/kernel/sysrq
	echo c >/proc/sysrq-trigger
	fail "still alive after sysrq-trigger c"
fi

# The capture kernel. The dump itself is not the lab's subject, but its size tells whether
# this kernel's vmcore is sane (6.1's is not in this lab).
say "NOTE /proc/vmcore is $(stat -c %s /proc/vmcore) bytes"
case $SCENARIO in
kdump-aer)
	# The host injects correctable, non-fatal and fatal errors after READY capture; wait until
	# the timeline holds all three severities (or 30 s).
	tries=0
	while [ $tries -lt 60 ]; do
		seen=0
		for severity in correctable nonfatal fatal; do
			grep -q "\"kind\":\"aer\".*\"severity\":\"$severity\"" "$OUT/timeline.jsonl" && seen=$((seen + 1))
		done
		[ $seen -eq 3 ] && break
		tries=$((tries + 1))
		sleep 0.5
	done
	say "aer severities in the timeline: $seen of 3"
	sleep 1
	;;
capture-panic)
	# The host injects one fatal AER error after READY capture. Once the observer has it in its
	# timeline AND has mirrored it to the kernel log (what the serial console keeps), this
	# capture kernel panics: the host then judges the console log alone. panic=-1 is on the
	# capture command line and QEMU runs with -no-reboot, so the machine stops there.
	tries=0
	until grep -q '"kind":"aer".*"severity":"fatal"' "$OUT/timeline.jsonl" 2>/dev/null &&
		dmesg | grep -q 'kdump-dma-observer: v1 .*"kind":"aer".*"severity":"fatal"'; do
		tries=$((tries + 1))
		[ $tries -ge 60 ] && fail "no fatal AER in the capture timeline and kernel log within 30 s"
		sleep 0.5
	done
	say "FATAL-AER-SEEN uptime=$(up)"
	sync
	# Time for the serial console to print the marker and the mirror lines before the panic.
	sleep 1
	echo 1 >/proc/sys/kernel/sysrq
	echo c >/proc/sysrq-trigger
	fail "still alive after sysrq-trigger c in the capture kernel"
	;;
kdump-compat)
	# The host injects one fatal AER error after READY capture. Nothing in this kernel reports
	# it; wait until the observer's rescan finds it in config space (or 30 s).
	tries=0
	until grep -q '"kind":"pci_device".*"new_since_start"' "$OUT/timeline.jsonl" 2>/dev/null; do
		tries=$((tries + 1))
		[ $tries -ge 60 ] && break
		sleep 0.5
	done
	say "config-space error in the timeline after $tries polls"
	;;
external-abort)
	# An unassigned physical address: TCG raises a synchronous external abort (SIGBUS here).
	devmem 0x09100000 32
	say "devmem 0x09100000 exited with status $?"
	sleep 2
	;;
*)
	sleep 2
	;;
esac
finish
