//! CPU time of other processes, read from `/proc`, and a wait for them to go quiet.

use std::time::{Duration, Instant};

/// Longest wait for processes to go quiet.
const SETTLE_CAP: Duration = Duration::from_secs(120);

/// Waits until two consecutive 2 s intervals cost each process at most 1 % of a core (an agent
/// may still be signing SVIDs beyond the one a benchmark waited for), at most [`SETTLE_CAP`]; returns
/// the time it took.
pub(crate) async fn settle(pids: &[u32]) -> anyhow::Result<Duration> {
    const STEP: Duration = Duration::from_secs(2);
    let quiet_ticks = clock_ticks_per_sec() * STEP.as_secs() / 100;
    let started = Instant::now();
    let mut quiet = 0;
    let mut last = cpu_ticks_all(pids)?;
    while quiet < 2 && started.elapsed() < SETTLE_CAP {
        tokio::time::sleep(STEP).await;
        let now = cpu_ticks_all(pids)?;
        let busy = now
            .iter()
            .zip(&last)
            .any(|(n, l)| n.saturating_sub(*l) > quiet_ticks);
        quiet = if busy { 0 } else { quiet + 1 };
        last = now;
    }
    Ok(started.elapsed())
}

pub(crate) fn cpu_ticks_all(pids: &[u32]) -> anyhow::Result<Vec<u64>> {
    pids.iter().map(|p| cpu_ticks(*p)).collect()
}

/// User plus system CPU time of process `pid` (all its threads, dead ones included), in
/// clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    stat_cpu_ticks(&stat)
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no utime/stime fields: {stat}"))
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself, so counting starts after
/// the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second (`AT_CLKTCK` from this process's auxiliary vector),
/// 100 when unreadable (the value Linux uses on every common architecture).
pub(crate) fn clock_ticks_per_sec() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| auxv_value(&auxv, AT_CLKTCK))
        .filter(|hz| *hz > 0)
        .unwrap_or(100)
}

/// The `AT_CLKTCK` key of the auxiliary vector (`<elf.h>`).
const AT_CLKTCK: u64 = 17;

/// The value of `key` in an auxiliary vector: pairs of native words.
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = size_of::<usize>();
    let word = |b: &[u8]| -> Option<u64> { Some(usize::from_ne_bytes(b.try_into().ok()?) as u64) };
    auxv.chunks_exact(2 * WORD)
        .find(|pair| word(&pair[..WORD]) == Some(key))
        .and_then(|pair| word(&pair[WORD..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (lan yard) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    37 5 0 0 20 0 12 0 100 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(42));
    }

    #[test]
    fn a_truncated_stat_line_has_no_cpu_ticks() {
        assert_eq!(stat_cpu_ticks("4242 (lanyard) S 1 4242"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn finds_a_key_in_an_auxiliary_vector() {
        let mut auxv = Vec::new();
        for (k, v) in [(6usize, 4096usize), (17, 250), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(auxv_value(&auxv, AT_CLKTCK), Some(250));
        assert_eq!(auxv_value(&auxv, 99), None);
    }

    #[test]
    fn this_process_reports_its_own_cpu_time() {
        assert!(cpu_ticks(std::process::id()).is_ok());
        assert!(clock_ticks_per_sec() > 0);
    }
}
