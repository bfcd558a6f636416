//! Failure budgets per client: how many failed attempts (SCEP envelopes that do not open, EST
//! passwords that do not match) a client address or an account may make per minute before it
//! is refused without any further work. Memory is bounded: at most [`MAX_TRACKED`] keys, and
//! past that, new keys are not counted until expired windows make room (an attacker with that
//! many addresses gains nothing a limit per key would have stopped). IPv6 addresses count per
//! /64, since one host commonly holds the whole prefix; IPv4-mapped IPv6 counts as IPv4.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Keys tracked at most by one [`FailureBudget`].
pub const MAX_TRACKED: usize = 65_536;
const WINDOW: Duration = Duration::from_secs(60);

/// Failures per key in one-minute windows.
pub struct FailureBudget<K> {
    per_minute: u32,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> FailureBudget<K> {
    /// A budget of `per_minute` failures per key (0: no limit).
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// True when `key` has used up its failures for the current minute.
    pub fn exhausted(&self, key: &K) -> bool {
        if self.per_minute == 0 {
            return false;
        }
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.get(key).is_some_and(|(start, n)| start.elapsed() < WINDOW && *n >= self.per_minute)
    }

    /// Spends one failure of `key` before an attempt whose outcome is not known yet (so that
    /// attempts running at once cannot overspend); false, spending nothing, when the budget is
    /// used up. Give it back with [`FailureBudget::refund`] when the attempt succeeds.
    pub fn try_spend(&self, key: &K) -> bool
    where
        K: Clone,
    {
        self.count(key.clone(), false)
    }

    /// Returns a failure spent by [`FailureBudget::try_spend`] for an attempt that succeeded.
    pub fn refund(&self, key: &K) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = windows.get_mut(key) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Counts a failure of `key`; true while it was still within its budget.
    pub fn failed(&self, key: K) -> bool {
        self.count(key, true)
    }

    /// Adds one to `key`'s count if it is within the budget (or `always`); true if it was.
    fn count(&self, key: K, always: bool) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_TRACKED {
                return true;
            }
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        let within = entry.1 < self.per_minute;
        if within || always {
            entry.1 = entry.1.saturating_add(1);
        }
        within
    }
}

/// The unit a client address is counted under: IPv4 (also IPv4-mapped IPv6) itself, IPv6 its
/// /64.
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_key_and_ipv6_per_64() {
        let l = FailureBudget::new(2);
        let key = |s: &str| address_key(s.parse().unwrap());
        assert!(l.failed(key("192.0.2.1")));
        assert!(!l.exhausted(&key("192.0.2.1")));
        assert!(l.failed(key("192.0.2.1")));
        assert!(l.exhausted(&key("192.0.2.1")));
        assert!(!l.failed(key("192.0.2.1")), "a third failure is past the budget");
        assert!(!l.exhausted(&key("192.0.2.2")));
        assert!(l.exhausted(&key("::ffff:192.0.2.1")));
        l.failed(key("2001:db8::1"));
        l.failed(key("2001:db8::2"));
        assert!(l.exhausted(&key("2001:db8::ffff")));
        assert!(!l.exhausted(&key("2001:db8:0:1::1")));
        let off = FailureBudget::new(0);
        off.failed(key("192.0.2.1"));
        off.failed(key("192.0.2.1"));
        assert!(!off.exhausted(&key("192.0.2.1")));
    }

    #[test]
    fn attempts_spend_before_they_run_and_successes_are_refunded() {
        let l = FailureBudget::new(2);
        assert!(l.try_spend(&"u"));
        assert!(l.try_spend(&"u"));
        assert!(!l.try_spend(&"u"), "two attempts in flight use up a budget of two");
        l.refund(&"u");
        assert!(l.try_spend(&"u"), "a success gives its failure back");
    }

    #[test]
    fn memory_stays_bounded() {
        let l = FailureBudget::new(1);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            l.failed(i);
        }
        assert_eq!(l.windows.lock().unwrap().len(), MAX_TRACKED);
        assert!(!l.exhausted(&(MAX_TRACKED as u32 + 5)), "keys past the bound are not tracked");
    }
}
