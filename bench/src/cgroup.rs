//! Lambda's CPU share on this machine: a CPU bandwidth quota of memory ÷ 1,769 MB of one
//! core (AWS Lambda Developer Guide, "Configuring Lambda function memory": at 1,769 MB a
//! function has the equivalent of one vCPU), set through cgroup v2 `cpu.max` or v1
//! `cpu.cfs_quota_us` / `cpu.cfs_period_us`, whichever this machine lets us write.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::figures::Error;

/// The memory size at which Lambda gives a function one full vCPU.
pub const FULL_CORE_MB: u32 = 1769;

/// The kernel refuses a quota below 1 ms per period (v1 and v2 alike).
const MIN_QUOTA_US: u64 = 1000;

/// The quota per `period_us` that gives `memory_mb` its share of one core.
pub fn quota_us(memory_mb: u32, period_us: u64) -> Result<u64, Error> {
    let quota = (period_us as u128 * memory_mb as u128 / FULL_CORE_MB as u128) as u64;
    if quota < MIN_QUOTA_US {
        return Err(format!(
            "{memory_mb} MB over a {period_us} µs period is a quota of {quota} µs, under the \
             kernel's 1 ms minimum: use a longer period"
        )
        .into());
    }
    Ok(quota)
}

/// Which cgroup interface this machine offers for the CPU controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v2: the unified hierarchy's root, where `cpu.max` lives in each group.
    V2(PathBuf),
    /// cgroup v1: the `cpu` controller's mount.
    V1(PathBuf),
}

impl Hierarchy {
    /// The writable CPU hierarchy, or why there is none.
    pub fn detect() -> Result<Self, String> {
        let v2 = Path::new("/sys/fs/cgroup");
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu"))
        {
            return probe(Self::V2(v2.to_owned()));
        }
        if v1.join("cpu.cfs_quota_us").exists() {
            return probe(Self::V1(v1.to_owned()));
        }
        Err("no cgroup CPU controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us)".into())
    }

    fn root(&self) -> &Path {
        match self {
            Self::V2(p) | Self::V1(p) => p,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::V2(_) => "cgroup v2 cpu.max",
            Self::V1(_) => "cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us",
        }
    }
}

/// Creating a group proves the hierarchy writable; it is removed at once.
fn probe(h: Hierarchy) -> Result<Hierarchy, String> {
    let group = CpuQuota::create(&h, "probe", FULL_CORE_MB, 100_000)
        .map_err(|e| format!("{} is not writable here: {e}", h.name()))?;
    drop(group);
    Ok(h)
}

/// A cgroup with a CPU quota; the processes spawned through [`CpuQuota::command`] run in
/// it from their first instruction. Removed when dropped (its processes gone by then).
#[derive(Debug)]
pub struct CpuQuota {
    dir: PathBuf,
    pub memory_mb: u32,
    pub quota_us: u64,
}

impl CpuQuota {
    pub fn create(
        h: &Hierarchy,
        label: &str,
        memory_mb: u32,
        period_us: u64,
    ) -> Result<Self, Error> {
        let quota = quota_us(memory_mb, period_us)?;
        let dir = h
            .root()
            .join(format!("session-bench-{}-{label}", std::process::id()));
        if let Hierarchy::V2(root) = h {
            // The CPU controller must be enabled for the root's children.
            std::fs::write(root.join("cgroup.subtree_control"), "+cpu")?;
        }
        std::fs::create_dir_all(&dir)?;
        let written = match h {
            Hierarchy::V2(_) => std::fs::write(dir.join("cpu.max"), format!("{quota} {period_us}")),
            Hierarchy::V1(_) => {
                std::fs::write(dir.join("cpu.cfs_period_us"), period_us.to_string())
                    .and_then(|()| std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()))
            }
        };
        let group = Self {
            dir,
            memory_mb,
            quota_us: quota,
        };
        written?;
        Ok(group)
    }

    /// `program` started inside the group: a shell moves itself in, then becomes it.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"echo $$ > "$1" && shift && exec "$@""#)
            .arg("sh")
            .arg(self.dir.join("cgroup.procs"))
            .arg(program);
        command
    }
}

impl Drop for CpuQuota {
    /// Ends what is still in the group (a measurement that failed midway), then removes
    /// it; says so when it cannot.
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .lines()
            .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: a plain signal; the group holds only processes this run started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("bench: could not remove {}", self.dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_the_memorys_share_of_one_core_per_period() {
        assert_eq!(quota_us(1769, 100_000).unwrap(), 100_000);
        assert_eq!(quota_us(128, 100_000).unwrap(), 7_235);
        assert_eq!(quota_us(128, 20_000).unwrap(), 1_447);
        assert_eq!(quota_us(512, 20_000).unwrap(), 5_788);
        assert_eq!(quota_us(3538, 50_000).unwrap(), 100_000, "two cores");
    }

    #[test]
    fn a_quota_under_the_kernels_minimum_is_refused() {
        assert!(quota_us(128, 10_000).is_err());
        assert!(quota_us(128, 13_820).is_err());
        assert!(quota_us(128, 13_821).is_ok());
    }
}
