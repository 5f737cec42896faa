//! The Linux guest's `/init`: a busybox shell script that loads the NIC modules, brings
//! up `eth0`, starts `iperf3 -s`, prints CPU accounting lines and leaves a shell on the
//! console.

/// The guest's address on its NIC (the same as the Tessera iperf component's).
pub const GUEST_ADDRESS: &str = "10.0.2.15";
/// The guest's default gateway (QEMU's user-networking host, the TAP peer under `--net tap`).
pub const GATEWAY: &str = "10.0.2.2";
/// The port `iperf3 -s` listens on.
pub const IPERF_PORT: u16 = 5201;
/// The line the guest prints once `eth0` is up and `iperf3 -s` runs.
pub const READY: &str = "linux: iperf3 server up";

/// The kernel command-line parameter that sets the period of the `STAT` lines (0: none).
pub const STAT_MS_PARAM: &str = "stat_ms";

/// The `/init` script. `modules` are module file names under `/lib/modules`, in load order.
///
/// Every `stat_ms` milliseconds (a kernel command-line parameter; 0 turns it off) the
/// guest prints `STAT up_us=U idle_us=I` ([`iperf::stat`]): microseconds since boot from `/proc/uptime`,
/// and idle plus iowait time from the `cpu` line of `/proc/stat` (USER_HZ = 100), so
/// that CPU utilisation over a window is 1 - Δidle/Δup.
pub fn script(modules: &[String]) -> String {
    use iperf::stat::{IDLE_KEY, PREFIX, UP_KEY};
    let modules = modules.join(" ");
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in {modules}; do
    insmod /lib/modules/$m || echo "linux: insmod $m failed"
done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
ip addr add {GUEST_ADDRESS}/24 dev eth0
ip link set eth0 up
ip route add default via {GATEWAY}
n=0
while [ "$(cat /sys/class/net/eth0/operstate)" != up ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
iperf3 -s -p {IPERF_PORT} >/dev/null 2>&1 &
sleep 0.5
echo "{READY} on {GUEST_ADDRESS}:{IPERF_PORT} (eth0 $(cat /sys/class/net/eth0/operstate), driver $(basename $(readlink /sys/class/net/eth0/device/driver)))"
stat_ms=500
for w in $(cat /proc/cmdline); do
    case $w in {STAT_MS_PARAM}=*) stat_ms=${{w#*=}};; esac
done
if [ "$stat_ms" -gt 0 ]; then
    period=$((stat_ms / 1000)).$(printf %03d $((stat_ms % 1000)))
    (
        while :; do
            read up rest </proc/uptime
            read cpu user nice system idle iowait rest </proc/stat
            frac=${{up#*.}}
            echo "{PREFIX}{UP_KEY}=$(( ${{up%.*}} * 1000000 + ${{frac#0}} * 10000 )) {IDLE_KEY}=$(( (idle + iowait) * 10000 ))"
            sleep $period
        done
    ) &
fi
while :; do setsid cttyhack sh; done
"#
    )
}

/// The guest's disk benchmark command (`/bin/disk-bench MIB RAW_MIB`), for `cargo xtask
/// bench files`: what Tessera's `fs` and `records` measure, done by Linux on its virtio-blk
/// disk `/dev/vda`.
pub const DISK_BENCH: &str = "disk-bench";
/// The line the disk benchmark ends with.
pub const DISK_BENCH_DONE: &str = "linux: disk bench done";

/// The disk benchmark script ([`DISK_BENCH`]). For 4 KiB and 64 KiB requests: `MIB` MiB
/// written raw with `O_DIRECT` at `RAW_MIB` MiB into the disk (past the FAT volume) and
/// flushed, then read back with `O_DIRECT`; then on the FAT volume mounted with the vfat
/// module, a `MIB` MiB file written and synced, the page cache dropped, and the file read.
/// Then, on the volume remounted `sync`, 1000 files of 4 KiB made in a directory (each by
/// one write, synchronous) and removed (`fs-small-create`, `fs-small-remove`, with
/// `files=1000`). Each step prints `BENCH linux-NAME bytes=B us=U busy_permille=P`: the
/// time from `/proc/uptime` (10 ms steps; the guest kernel has no `/proc/timer_list`), the
/// busy share from the idle and iowait jiffies of `/proc/stat` (one CPU).
pub fn disk_bench_script() -> String {
    format!(
        r#"#!/bin/busybox sh
mib=$1; raw=$2
now() {{ read up rest </proc/uptime; f=${{up#*.}}; echo $(( ${{up%.*}} * 1000000000 + ${{f#0}} * 10000000 )); }}
idle() {{ read cpu user nice system idle iowait rest </proc/stat; echo $((idle + iowait)); }}
run() {{
    name=$1; shift
    i0=$(idle); t0=$(now)
    if "$@" >/dev/null 2>&1; then
        t1=$(now); i1=$(idle)
        us=$(( (t1 - t0) / 1000 )); [ $us -gt 0 ] || us=1
        busy=$(( 1000 - (i1 - i0) * 10000 * 1000 / us ))
        [ $busy -ge 0 ] || busy=0
        echo "BENCH linux-$name bytes=$bytes$extra us=$us busy_permille=$busy"
    else
        echo "BENCH-ERROR linux-$name: $*"
    fi
}}
create_small() {{
    i=0
    while [ $i -lt $files ]; do echo -n "$small" >/mnt/small/F$i.DAT || return 1; i=$((i + 1)); done
}}
remove_small() {{ rm /mnt/small/*; }}
mkdir -p /mnt
bytes=$((mib * 1048576)); extra=
for k in 4 64; do
    count=$((mib * 1024 / k))
    run blk-write-${{k}}k dd if=/dev/zero of=/dev/vda bs=${{k}}k count=$count seek=$((raw * 1024 / k)) oflag=direct conv=fsync
    run blk-read-${{k}}k dd if=/dev/vda of=/dev/null bs=${{k}}k count=$count skip=$((raw * 1024 / k)) iflag=direct
done
if mount -t vfat /dev/vda /mnt; then
    for k in 4 64; do
        count=$((mib * 1024 / k))
        run fs-write-${{k}}k dd if=/dev/zero of=/mnt/bench.dat bs=${{k}}k count=$count conv=fsync
        echo 3 >/proc/sys/vm/drop_caches
        run fs-read-${{k}}k dd if=/mnt/bench.dat of=/dev/null bs=${{k}}k
        rm -f /mnt/bench.dat
    done
    files=1000; small=$(printf '%4096s' x); bytes=$((files * 4096)); extra=" files=$files"
    mount -o remount,sync /mnt && mkdir /mnt/small
    run fs-small-create create_small
    run fs-small-remove remove_small
    rmdir /mnt/small
    umount /mnt
else
    echo "BENCH-ERROR linux-fs: mount -t vfat /dev/vda failed"
fi
echo "{DISK_BENCH_DONE}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the disk benchmark's `run` on the host's shell over a stand-in `/proc`.
    #[test]
    fn the_disk_bench_prints_bench_lines() {
        let text = disk_bench_script();
        assert!(text.contains("oflag=direct conv=fsync"));
        assert!(text.contains("iflag=direct"));
        assert!(text.contains("mount -t vfat /dev/vda /mnt"));
        assert!(text
            .trim_end()
            .ends_with(&format!("echo \"{DISK_BENCH_DONE}\"")));
        // The helper functions, with the clock and the idle counter replaced.
        let start = text.find("run() {").unwrap();
        let end = text.find("mkdir -p /mnt").unwrap();
        let check = format!(
            "mib=2; bytes=2097152; extra=; c=$(mktemp); echo 0 >$c\n\
             now() {{ n=$(($(cat $c) + 1)); echo $n >$c; echo $((n * 500000000)); }}\n\
             idle() {{ echo $(($(cat $c) * 10)); }}\n\
             {}run blk-write-4k true\nrun fs-read-4k false\nrm -f $c\n",
            &text[start..end]
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &check])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        // 0.5 s apart, 20 idle jiffies (0.2 s) of them: 600 per mille busy.
        assert_eq!(
            out,
            "BENCH linux-blk-write-4k bytes=2097152 us=500000 busy_permille=600\n\
             BENCH-ERROR linux-fs-read-4k: false\n"
        );
    }

    #[test]
    fn the_script_loads_the_modules_in_order_and_serves_iperf3() {
        let text = script(&["failover.ko".into(), "net_failover.ko".into()]);
        assert!(text.starts_with("#!/bin/busybox sh\n"));
        assert!(text.contains("for m in failover.ko net_failover.ko; do"));
        assert!(text.contains("ip addr add 10.0.2.15/24 dev eth0"));
        assert!(text.contains("iperf3 -s -p 5201"));
        assert!(text.contains("echo \"STAT up_us="));
    }

    /// Runs the script's STAT arithmetic with the host's shell on sample inputs.
    #[test]
    fn stat_arithmetic_gives_microseconds() {
        let text = script(&[]);
        let body = text
            .lines()
            .find(|l| l.contains("echo \"STAT"))
            .unwrap()
            .trim();
        let check = format!(
            "up=12.05; idle=300; iowait=7; frac=${{up#*.}}; {body}\n\
             up=3.90; idle=0; iowait=0; frac=${{up#*.}}; {body}\n\
             up=0.00; idle=0; iowait=0; frac=${{up#*.}}; {body}"
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &check])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out,
            "STAT up_us=12050000 idle_us=3070000\n\
             STAT up_us=3900000 idle_us=0\n\
             STAT up_us=0 idle_us=0\n"
        );
        // The lines are the ones the benchmark reads.
        let parsed: Vec<_> = out.lines().filter_map(iperf::stat::Stat::parse).collect();
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            (parsed[0].up_us, parsed[0].idle_us),
            (12_050_000, 3_070_000)
        );
    }
}
