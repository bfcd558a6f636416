//! In-memory copies of ledger rows that protocol requests read again and again (an ACME
//! account on every JWS request, an authorization on every order poll).
//!
//! A copy is only as good as the rule that keeps it current, which each user states: the
//! process that changes a row puts the new value ([`Cache::put`]) or drops the copy
//! ([`Cache::remove`]) once the change is durable. A read of the ledger that overlapped such a
//! change must not fill the cache with what it read before the change: every change moves an
//! epoch, and [`Cache::fill`] only stores if the epoch is still the one [`Cache::get`] returned.

use std::{collections::HashMap, future::Future, sync::Mutex};

/// Copies by id, at most [`Cache::CAPACITY`] of them.
pub(crate) struct Cache<T> {
    inner: Mutex<Map<T>>,
}

struct Map<T> {
    by_id: HashMap<String, T>,
    /// Moved by every change; a read fills the map only if none happened while it ran.
    epoch: u64,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self { inner: Mutex::new(Map { by_id: HashMap::new(), epoch: 0 }) }
    }
}

impl<T: Clone> Cache<T> {
    /// Beyond this many entries the map starts over (a bound, not an eviction policy).
    pub(crate) const CAPACITY: usize = 65_536;

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The copy of `id`, or the epoch to pass to [`Cache::fill`] after reading the ledger.
    pub(crate) fn get(&self, id: &str) -> Result<T, u64> {
        let map = self.lock();
        map.by_id.get(id).cloned().ok_or(map.epoch)
    }

    /// The copy of `id`, or what `read` returns (stored unless a change overlapped the read).
    pub(crate) async fn get_or_read<E, F>(&self, id: &str, read: impl FnOnce() -> F) -> Result<Option<T>, E>
    where
        F: Future<Output = Result<Option<T>, E>>,
    {
        let epoch = match self.get(id) {
            Ok(value) => return Ok(Some(value)),
            Err(epoch) => epoch,
        };
        let value = read().await?;
        if let Some(v) = &value {
            self.fill(id, v, epoch);
        }
        Ok(value)
    }

    /// Stores what a read of the ledger returned, unless a change happened since `epoch`.
    pub(crate) fn fill(&self, id: &str, value: &T, epoch: u64) {
        let mut map = self.lock();
        if map.epoch == epoch {
            Self::insert(&mut map, id, value.clone());
        }
    }

    /// Stores the value a change of this process has just made (authoritative).
    pub(crate) fn put(&self, id: &str, value: T) {
        let mut map = self.lock();
        map.epoch += 1;
        Self::insert(&mut map, id, value);
    }

    /// Drops the copy of `id` (it changed, or may have).
    pub(crate) fn remove(&self, id: &str) {
        let mut map = self.lock();
        map.epoch += 1;
        map.by_id.remove(id);
    }

    /// Drops the copy of `id` and returns the epoch to pass to [`Cache::fill`] after reading
    /// the ledger (the copy may be stale: the caller reads the ledger whatever the cache holds).
    pub(crate) fn invalidate(&self, id: &str) -> u64 {
        let mut map = self.lock();
        map.epoch += 1;
        map.by_id.remove(id);
        map.epoch
    }

    fn insert(map: &mut Map<T>, id: &str, value: T) {
        if map.by_id.len() >= Self::CAPACITY && !map.by_id.contains_key(id) {
            map.by_id.clear();
        }
        map.by_id.insert(id.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::Cache;

    #[test]
    fn a_read_that_overlapped_a_change_does_not_fill_the_cache() {
        let cache = Cache::<&str>::default();
        let Err(epoch) = cache.get("a") else { panic!("empty cache had an entry") };
        // The ledger was read (old value), then the row changed and the copy was dropped.
        cache.remove("a");
        cache.fill("a", &"old", epoch);
        let Err(epoch) = cache.get("a") else { panic!("a stale copy was kept") };
        cache.fill("a", &"new", epoch);
        assert_eq!(cache.get("a"), Ok("new"));
        // A change that puts its value wins over a read that overlapped it.
        let Err(epoch) = cache.get("b") else { panic!("empty entry") };
        cache.put("b", "written");
        cache.fill("b", &"read before", epoch);
        assert_eq!(cache.get("b"), Ok("written"));
        cache.remove("a");
        assert!(cache.get("a").is_err());
        // A read of the ledger forced past a copy replaces it; one that began before does not.
        let Err(before) = cache.get("c") else { panic!("empty entry") };
        cache.put("c", "stale");
        let epoch = cache.invalidate("c");
        assert!(cache.get("c").is_err(), "invalidate keeps the copy");
        cache.fill("c", &"older read", before);
        assert!(cache.get("c").is_err());
        cache.fill("c", &"ledger", epoch);
        assert_eq!(cache.get("c"), Ok("ledger"));
    }

    #[test]
    fn the_cache_starts_over_beyond_its_capacity() {
        let cache = Cache::<u32>::default();
        for i in 0..Cache::<u32>::CAPACITY {
            cache.put(&i.to_string(), 1);
        }
        cache.put("0", 2);
        assert_eq!(cache.get("1"), Ok(1), "replacing an entry keeps the others");
        cache.put("one more", 3);
        assert!(cache.get("1").is_err());
        assert_eq!(cache.get("one more"), Ok(3));
    }
}
