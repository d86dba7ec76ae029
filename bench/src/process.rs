//! The measured processes as the kernel sees them: peak RSS from `wait4`, CPU time from
//! the process CPU clock and `/proc`.

use std::process::Child;

use crate::figures::Error;

/// How a process ended: its peak RSS and its CPU time, from `wait4`.
pub struct Exit {
    pub max_rss_kib: i64,
}

pub fn kill_and_reap(child: &mut Child) -> Exit {
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain syscalls on a child this process spawned and has not reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    reap(pid)
}

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
