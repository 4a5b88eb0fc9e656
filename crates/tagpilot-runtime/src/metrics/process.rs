//! The process families Prometheus's Go client exports (`process_*`, read from /proc at each scrape), and
//! the two Go families Flux's control-plane dashboard queries, with what they mean here: `go_info{version}`
//! names the toolchain (`rust`, tagpilot is not a Go program) so that the dashboard's "controllers" panel
//! counts tagpilot's; `go_memstats_alloc_bytes` is the heap in use as glibc's allocator reports it
//! (`mallinfo2`: bytes allocated and not yet freed, Go's `alloc_bytes` meaning).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

#[derive(Default)]
pub(super) struct Process {
    cpu: Counter<f64, AtomicU64>,
    open_fds: Gauge,
    max_fds: Gauge,
    virtual_bytes: Gauge,
    virtual_max: Gauge<f64, AtomicU64>,
    resident_bytes: Gauge,
    start_time: Gauge<f64, AtomicU64>,
    rx: Counter<f64, AtomicU64>,
    tx: Counter<f64, AtomicU64>,
    threads: Gauge,
    go_info: Family<VersionLabel, Gauge>,
    alloc: Gauge,
}

impl Process {
    pub fn register(&self, m: &super::Metrics) {
        m.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            self.cpu.clone(),
        );
        m.register(
            "process_open_fds",
            "Number of open file descriptors",
            self.open_fds.clone(),
        );
        m.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            self.max_fds.clone(),
        );
        m.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            self.virtual_bytes.clone(),
        );
        m.register(
            "process_virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes",
            self.virtual_max.clone(),
        );
        m.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            self.resident_bytes.clone(),
        );
        m.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            self.start_time.clone(),
        );
        m.register(
            "process_network_receive_bytes",
            "Number of bytes received by the process over the network",
            self.rx.clone(),
        );
        m.register(
            "process_network_transmit_bytes",
            "Number of bytes sent by the process over the network",
            self.tx.clone(),
        );
        m.register(
            "go_threads",
            "Number of OS threads created",
            self.threads.clone(),
        );
        m.register(
            "go_info",
            "Information about the toolchain (tagpilot: version=\"rust\")",
            self.go_info.clone(),
        );
        m.register(
            "go_memstats_alloc_bytes",
            "Number of heap bytes allocated and currently in use (glibc mallinfo2)",
            self.alloc.clone(),
        );
        self.go_info
            .get_or_create(&VersionLabel {
                version: "rust".into(),
            })
            .set(1);
        self.refresh();
    }

    /// Reads /proc/self once.
    pub fn refresh(&self) {
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as i64;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
        {
            // Fields after the command: state is 3rd overall; utime 14, stime 15, num_threads 20,
            // starttime 22, vsize 23, rss 24.
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| {
                f.get(i - 3)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let cpu = (num(14) + num(15)) / ticks;
            let seen = self.cpu.get();
            if cpu > seen {
                self.cpu.inc_by(cpu - seen);
            }
            self.threads.set(num(20) as i64);
            self.virtual_bytes.set(num(23) as i64);
            self.resident_bytes.set(num(24) as i64 * page);
            if let Some(boot) = boot_time() {
                self.start_time.set(boot + num(22) / ticks);
            }
        }
        if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(d.count() as i64);
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            self.max_fds.set(lim.rlim_cur.min(i64::MAX as u64) as i64);
        }
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0 {
            self.virtual_max
                .set(if lim.rlim_cur == libc::RLIM_INFINITY {
                    -1.0
                } else {
                    lim.rlim_cur as f64
                });
        }
        if let Ok(dev) = std::fs::read_to_string("/proc/self/net/dev") {
            let (mut rx, mut tx) = (0.0, 0.0);
            for line in dev.lines().skip(2) {
                let Some((_, v)) = line.split_once(':') else {
                    continue;
                };
                let v: Vec<f64> = v
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                rx += v.first().copied().unwrap_or(0.0);
                tx += v.get(8).copied().unwrap_or(0.0);
            }
            if rx > self.rx.get() {
                self.rx.inc_by(rx - self.rx.get());
            }
            if tx > self.tx.get() {
                self.tx.inc_by(tx - self.tx.get());
            }
        }
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let mi = unsafe { libc::mallinfo2() };
        self.alloc
            .set((mi.uordblks + mi.hblkhd).min(i64::MAX as usize) as i64);
    }
}

/// The boot time (seconds since the epoch) from /proc/stat.
fn boot_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
