//! The measured processes as the kernel sees them: peak RSS from `wait4`, CPU time from
//! the process CPU clock and `/proc`.

use std::process::Child;

use crate::figures::Error;

/// How a process ended: its peak RSS.
pub struct Exit {
    pub max_rss_kib: i64,
}

/// Ends a function still running, with its peak RSS read from its own memory map
/// (`VmHWM`) just before. `wait4`'s `ru_maxrss` would not do: Linux keeps there the
/// largest RSS of the process across `exec`, and a child starts as a copy of the harness
/// (or shares its memory, with `vfork`), so every function would read at least the
/// harness's RSS.
pub fn kill_and_reap(child: &mut Child) -> Exit {
    let pid = child.id() as libc::pid_t;
    let own_peak = peak_rss_kib(pid);
    // SAFETY: plain syscalls on a child this process spawned and has not reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let reaped = reap(pid);
    Exit {
        max_rss_kib: own_peak.unwrap_or(reaped.max_rss_kib),
    }
}

/// A running process's peak resident set since its `exec`, from `/proc/<pid>/status`.
fn peak_rss_kib(pid: libc::pid_t) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm_kib(&status)
}

fn vm_hwm_kib(status: &str) -> Option<i64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// Waits for a process that ends by itself. Its `ru_maxrss` is at least the harness's
/// RSS when it was spawned (see [`kill_and_reap`]): a true peak only for a process that
/// grows past that, as the Django backend's Python does.
pub fn reap(pid: libc::pid_t) -> Exit {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; the pointers live for the call.
    unsafe {
        libc::wait4(pid, &mut status, 0, &mut usage);
    }
    Exit {
        max_rss_kib: usage.ru_maxrss,
    }
}

/// CPU time (user + system) of another process so far, in nanoseconds.
pub fn cpu_ns(pid: u32) -> Result<u128, Error> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: out-pointers to locals.
    let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    if rc != 0 {
        return Err(format!("clock_getcpuclockid: {rc}").into());
    }
    // SAFETY: as above.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err("clock_gettime of the function's CPU clock failed".into());
    }
    Ok(ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128)
}

/// User and system CPU seconds of another process so far, from `/proc` (clock ticks of
/// 10 ms: coarse, but enough over thousands of requests).
pub fn user_and_system(pid: u32) -> Result<(f64, f64), Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let field = |i: usize| -> Result<f64, Error> {
        Ok(fields.get(i).ok_or("short /proc stat")?.parse::<f64>()? / ticks)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    Ok((field(11)?, field(12)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_the_status_lines_in_kib() {
        let status =
            "Name:\tsession-api\nVmPeak:\t  20000 kB\nVmHWM:\t    8616 kB\nVmRSS:\t 8000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(8616));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
    }

    #[test]
    fn a_killed_functions_peak_is_its_own_not_the_harnesss() {
        // The harness grows well past what the child will ever hold, before the spawn.
        let ballast = vec![1u8; 96 << 20];
        // `spawn` returns once the child has exec'd, so its own memory map is there to read.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let exit = kill_and_reap(&mut child);
        assert!(ballast.iter().step_by(4096).all(|b| *b == 1));
        assert!(
            exit.max_rss_kib < 32 << 10,
            "sleep's peak read as {} KiB",
            exit.max_rss_kib
        );
    }
}
