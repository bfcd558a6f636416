//! Shared pieces of privca's load generators (`acme-load`, `post-load`): server CPU time from
//! `/proc` and latency percentiles.

use std::time::Duration;

/// Boxed error for the generators' `main`s.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// utime + stime of process `pid` in seconds (fields 14 and 15 of `/proc/<pid>/stat`, in
/// USER_HZ = 100 ticks per second on Linux).
pub fn cpu_seconds(pid: u32) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, BoxError> { Ok(fields.get(i).ok_or("short /proc stat")?.parse()?) };
    Ok((field(11)? + field(12)?) as f64 / 100.0)
}

/// The JSON line every generator prints: completed and failed operations, operations/s, p50
/// and p99 latency, and the server's CPU time per operation when it was measured.
pub fn report(
    label: &str,
    concurrency: usize,
    mut latencies: Vec<Duration>,
    failed: usize,
    elapsed: f64,
    server_cpu: Option<f64>,
) -> serde_json::Value {
    latencies.sort();
    let ok = latencies.len();
    serde_json::json!({
        "label": label,
        "concurrency": concurrency,
        "ok": ok,
        "failed": failed,
        "seconds": elapsed,
        "per_s": ok as f64 / elapsed,
        "p50_ms": quantile_ms(&latencies, 0.50),
        "p99_ms": quantile_ms(&latencies, 0.99),
        "server_cpu_ms_per_op": server_cpu.filter(|_| ok > 0).map(|c| c * 1000.0 / ok as f64),
    })
}

/// The `q` quantile of sorted `latencies`, in milliseconds.
pub fn quantile_ms(latencies: &[Duration], q: f64) -> Option<f64> {
    let i = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
    latencies.get(i).map(|d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let l: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&l, 0.5), Some(50.0));
        assert_eq!(quantile_ms(&l, 0.99), Some(99.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }
}
