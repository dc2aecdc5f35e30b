//! CPU time from /proc (Linux; NaN elsewhere): this process's, and the local PostgreSQL's.

/// User + system CPU time of this process so far, in seconds.
pub(crate) fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat").map_or(f64::NAN, |stat| stat_cpu_seconds(&stat))
}

/// User + system CPU time so far of every process named `postgres` this user may read
/// (the server and its backends, when it runs on this machine), in seconds; NaN when
/// there is none.
pub(crate) fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut total = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        if stat.contains("(postgres)") {
            *total.get_or_insert(0.0) += stat_cpu_seconds(&stat);
        }
    }
    total.unwrap_or(f64::NAN)
}

/// utime + stime of a /proc/PID/stat line, in seconds.
fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // The kernel reports in USER_HZ, 100 on Linux.
    ticks / 100.0
}
