#!/bin/bash
# dracut module for kdump-utils (Fedora, RHEL, CentOS Stream): runs kdump-dma-observer in the
# kdump initramfs, before kdump-capture.service saves the dump. Enable it in /etc/kdump.conf:
#     dracut_args --add kdump-dma-observer
# then `kdumpctl rebuild` (or `kdumpctl restart`).
#
# The daemon writes its timeline under /run/kdump-dma-observer (the initramfs) and mirrors every
# event into the kernel log; kdump-utils saves that log as kexec-dmesg.log next to the vmcore,
# which `kdump-dma-observer recover` reads on the next boot.

check() {
    require_binaries /usr/sbin/kdump-dma-observer || return 1
    # Only when asked for (dracut_args --add): never in an ordinary initramfs.
    return 255
}

depends() {
    echo systemd-initrd
}

install() {
    inst_binary /usr/sbin/kdump-dma-observer
    inst_simple "$moddir/kdump-dma-observer-initrd.service" \
        "$systemdsystemunitdir/kdump-dma-observer.service"
    $SYSTEMCTL -q --root "$initdir" add-wants initrd.target kdump-dma-observer.service
}
