# Sourced by compare-live.sh and compare-offline.sh (which define log()).
#
# On a VM whose virtio-balloon reports free pages to the host (virtio*-reporting_vq in
# /proc/interrupts), memory a process frees goes back to the host in passes every 2 s for
# some seconds, and the host's work on it is stolen from the guest: a tool timed right after
# another one (or after a build) that freed a lot loses CPU to it. settle waits that out.

# CPU time the hypervisor took from this machine, all CPUs, in ticks (0 on bare metal).
steal_ticks() { awk '/^cpu /{print $9 + 0}' /proc/stat; }
# Free-page reports sent to the host so far, or nothing when the machine has no such device.
reports() { awk '/reporting_vq/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i; found = 1 } END { if (found) print n }' /proc/interrupts; }
# Waits until free-page reporting has been quiet for 4 s (it runs every 2 s while freed
# memory is waiting), at most 60 s; returns at once without a reporting device.
settle() {
    local last now quiet=0
    last=$(reports)
    [ -n "$last" ] || return 0
    for _ in $(seq 60); do
        sleep 1
        now=$(reports)
        if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; last=$now; fi
        [ "$quiet" -lt 4 ] || return 0
    done
    log "free-page reporting still busy after 60 s; starting the next run anyway"
}
