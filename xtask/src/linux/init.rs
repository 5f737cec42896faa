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

#[cfg(test)]
mod tests {
    use super::*;

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
