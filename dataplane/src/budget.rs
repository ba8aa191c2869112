//! The gateway-wide memory budget for request bytes in flight: bodies being read, their decompressed
//! and JSON-decoded forms, and the queued spans that are slices of them. It plays the part of the
//! Collector's `memory_limiter` in Kyma's gateway (75 % of the container's limit, 15 % spike): a
//! request that would take the gateway past the budget is refused with 503 / `UNAVAILABLE` and a
//! retry hint, and the client backs off, instead of the kernel killing the pod with every queue in it.
//!
//! A [`Reservation`] is taken as bytes arrive and grows with them; it is then attached to the
//! buffer that holds them ([`crate::buffer::PooledBuf::charge`]), so it is released exactly when the
//! last slice of that buffer is dropped, after its spans were exported or given up on. What a
//! client can make the gateway hold is therefore bounded however slowly it sends or however long
//! its spans wait in a queue.

use std::path::Path;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::gauge_value;

/// Kyma's gateway memory limiter: the limit as a share of the container's memory limit...
pub const MEMORY_LIMIT_PERCENT: u64 = 75;
/// ...less this spike allowance, is where the Collector starts refusing data; the same share of
/// the container's memory is the budget for request bytes here.
pub const MEMORY_SPIKE_PERCENT: u64 = 15;
/// The budget when no memory limit can be read (no cgroup limit and no `/proc/meminfo`).
pub const FALLBACK_BUDGET_BYTES: usize = 512 * 1024 * 1024;
/// cgroup v1 reports "no limit" as a number near `i64::MAX`; anything above this means unlimited.
const CGROUP_V1_UNLIMITED_BYTES: u64 = 1 << 60;

/// The budget: a limit and the bytes reserved against it, both exported as gauges.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// Reserved bytes; also the exported gauge, so accounting costs one atomic per change.
    in_use: Gauge,
}

/// Bytes reserved against a [`MemoryBudget`]; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

/// Where the budget came from, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetSource {
    /// Set by flag.
    Configured,
    /// A share of the cgroup memory limit (bytes).
    Cgroup(u64),
    /// A share of the machine's memory (bytes), no cgroup limit being set.
    Machine(u64),
    /// Nothing could be read.
    Fallback,
}

// === impl MemoryBudget ===

impl MemoryBudget {
    /// A budget of `limit` bytes whose use is exported through `in_use` (and the limit through
    /// `limit_gauge`).
    pub fn new(limit: usize, in_use: Gauge, limit_gauge: &Gauge) -> Arc<Self> {
        limit_gauge.set(gauge_value(limit));
        Arc::new(Self { limit, in_use })
    }

    /// A budget for tests and tools that export nothing.
    pub fn unmetered(limit: usize) -> Arc<Self> {
        Self::new(limit, Gauge::default(), &Gauge::default())
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        usize::try_from(self.in_use.get()).unwrap_or(0)
    }

    /// A reservation of nothing, to grow as bytes arrive.
    pub fn empty(self: &Arc<Self>) -> Reservation {
        Reservation { budget: Arc::clone(self), bytes: 0 }
    }

    /// Reserves `bytes`, or `None` when that would pass the limit.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut reservation = self.empty();
        reservation.try_grow(bytes).then_some(reservation)
    }

    /// Takes `bytes` if the total stays within the limit. One atomic add; a refusal undoes it.
    fn take(&self, bytes: usize) -> bool {
        let n = gauge_value(bytes);
        let before = self.in_use.inc_by(n);
        if usize::try_from(before).unwrap_or(usize::MAX).saturating_add(bytes) > self.limit {
            self.in_use.dec_by(n);
            return false;
        }
        true
    }

    fn give(&self, bytes: usize) {
        if bytes > 0 {
            self.in_use.dec_by(gauge_value(bytes));
        }
    }
}

// === impl Reservation ===

impl Reservation {
    /// Grows by `bytes`; `false` (and unchanged) when the budget has no room.
    pub fn try_grow(&mut self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        if !self.budget.take(bytes) {
            return false;
        }
        self.bytes += bytes;
        true
    }

    /// Grows to at least `bytes` in total; `false` when the budget has no room.
    pub fn try_grow_to(&mut self, bytes: usize) -> bool {
        self.try_grow(bytes.saturating_sub(self.bytes))
    }

    /// Gives back what is held beyond `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.budget.give(self.bytes - bytes);
            self.bytes = bytes;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

// === free functions ===

/// The default budget: `(MEMORY_LIMIT_PERCENT - MEMORY_SPIKE_PERCENT) %` of the container's memory
/// limit (cgroup v2, then v1), or of the machine's memory when no limit is set.
pub fn default_budget() -> (usize, BudgetSource) {
    default_budget_from(Path::new("/"))
}

/// [`default_budget`] with `/sys` and `/proc` read under `root` (tests give a temporary tree).
pub fn default_budget_from(root: &Path) -> (usize, BudgetSource) {
    let share = |bytes: u64| {
        let budget = bytes / 100 * (MEMORY_LIMIT_PERCENT - MEMORY_SPIKE_PERCENT);
        usize::try_from(budget).unwrap_or(usize::MAX)
    };
    if let Some(limit) = cgroup_limit(root) {
        return (share(limit), BudgetSource::Cgroup(limit));
    }
    if let Some(total) = machine_memory(root) {
        return (share(total), BudgetSource::Machine(total));
    }
    (FALLBACK_BUDGET_BYTES, BudgetSource::Fallback)
}

/// The cgroup memory limit of this process: v2's `memory.max`, else v1's `memory.limit_in_bytes`;
/// `None` when neither is set (or reads as unlimited).
fn cgroup_limit(root: &Path) -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    if let Some(v2) = read("sys/fs/cgroup/memory.max") {
        return v2.trim().parse::<u64>().ok();
    }
    read("sys/fs/cgroup/memory/memory.limit_in_bytes")
        .and_then(|v1| v1.trim().parse::<u64>().ok())
        .filter(|&limit| limit < CGROUP_V1_UNLIMITED_BYTES)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn machine_memory(root: &Path) -> Option<u64> {
    let meminfo = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib = line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: reservations taken, grown and dropped against a 1,000-byte budget.
    /// Guarantees: the limit is never passed (a refused growth changes nothing), and dropping a
    /// reservation gives back exactly what it held.
    #[test]
    fn reservations_stay_within_the_limit() {
        let budget = MemoryBudget::unmetered(1000);
        let mut a = budget.try_reserve(600).unwrap();
        assert!(budget.try_reserve(401).is_none());
        let b = budget.try_reserve(400).unwrap();
        assert_eq!(budget.in_use(), 1000);
        assert!(!a.try_grow(1));
        assert_eq!((a.bytes(), budget.in_use()), (600, 1000));
        drop(b);
        assert!(a.try_grow_to(900));
        assert!(a.try_grow_to(800), "growing to less than held is a no-op");
        assert_eq!((a.bytes(), budget.in_use()), (900, 900));
        drop(a);
        assert_eq!(budget.in_use(), 0);
    }

    /// Scenario: the memory limit as cgroup v2, cgroup v1 (limited and unlimited) and a machine
    /// without either report it.
    /// Guarantees: the budget is 60 % (Kyma's 75 % limit less its 15 % spike) of the first limit
    /// found, and of MemTotal when no cgroup limit is set.
    #[test]
    fn default_budget_follows_the_memory_limit() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        assert_eq!(default_budget_from(root.path()), (FALLBACK_BUDGET_BYTES, BudgetSource::Fallback));
        write("proc/meminfo", "MemTotal:       1000000 kB\nMemFree: 1 kB\n");
        assert_eq!(default_budget_from(root.path()), (614_400_000, BudgetSource::Machine(1_024_000_000)));
        write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
        assert_eq!(default_budget_from(root.path()).1, BudgetSource::Machine(1_024_000_000));
        write("sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n");
        assert_eq!(default_budget_from(root.path()), (1_288_490_160, BudgetSource::Cgroup(2_147_483_648)));
        write("sys/fs/cgroup/memory.max", "1073741824\n");
        assert_eq!(default_budget_from(root.path()), (644_245_080, BudgetSource::Cgroup(1_073_741_824)));
        write("sys/fs/cgroup/memory.max", "max\n");
        assert_eq!(default_budget_from(root.path()).1, BudgetSource::Machine(1_024_000_000));
    }
}
