//! The measurements. Each takes the run's settings and fixture and produces figures
//! (`figures::Stats`, as JSON); none reads another's. Processes are timed from just before
//! spawn, and their peak RSS and CPU come from the kernel (`process`).

pub mod auditor;
pub mod cleanup;
pub mod cold;
pub mod django;
pub mod django_client;
pub mod load;
pub mod memory;
pub mod requests;
pub mod revocation;
pub mod sizes;
pub mod warm;

/// different configuration each time, so that drift hits all alike.
pub fn rotated(run: usize, len: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |i| (i + run) % len)
}
