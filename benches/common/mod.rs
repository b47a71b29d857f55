//! What the benches that run the real binary share: free ports, servers from Debian packages
//! killed when dropped, and the resident memory and CPU time of a process from /proc.

#![allow(dead_code)] // each bench uses its own part

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on (for a moment).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process, killed and reaped when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where `binary` is installed, if it is.
pub fn which(binary: &str) -> Option<String> {
    let out = Command::new("sh").args(["-c", &format!("command -v {binary}")]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Starts `binary` (on the path or in /usr/sbin, /usr/bin) with `args`, quiet; none when it is
/// not installed.
pub fn start(binary: &str, args: &[String]) -> Option<Server> {
    let path = which(binary).or_else(|| {
        ["/usr/sbin", "/usr/bin"]
            .iter()
            .map(|d| format!("{d}/{binary}"))
            .find(|p| std::path::Path::new(p).exists())
    })?;
    Command::new(path).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok().map(Server)
}

/// Waits until something listens on `port`.
pub fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (resident KiB, CPU ticks) of `pid`.
pub fn sample(pid: u32) -> (u64, u64) {
    (status_kib(pid, "VmRSS:").unwrap_or(0), cpu_ticks(pid))
}

/// The KiB figure on the `key` line (e.g. `VmRSS:`) of /proc/`pid`/status.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// utime + stime of `pid` in clock ticks (10 ms), threads that have ended included.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}
