//! An in-memory [`Store`] for unit tests; the same contract tests run
//! against it and against DynamoDB Local.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Store, StoreError};
use crate::session::UnixTime;

/// A map behind a mutex, with the same expiry semantics as the table.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, (String, UnixTime)>>,
}

impl MemoryStore {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, (String, UnixTime)>) -> T,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .items
            .lock()
            .map_err(|_| StoreError("memory store poisoned".into()))?;
        Ok(f(&mut guard))
    }

    /// Number of records, live or not (tests check for leftovers).
    pub fn len(&self) -> usize {
        self.with(|m| m.len()).unwrap_or_default()
    }

    /// Whether the store holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    async fn insert_new(
        &self,
        pk: &str,
        data: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.with(|m| match m.get(pk) {
            Some((_, exp)) if *exp > now => false,
            _ => {
                m.insert(pk.to_owned(), (data.to_owned(), expires_at));
                true
            }
        })
    }

    async fn put(&self, pk: &str, data: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        self.with(|m| {
            m.insert(pk.to_owned(), (data.to_owned(), expires_at));
        })
    }

    async fn take(&self, pk: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.with(|m| match m.get(pk) {
            Some((_, exp)) if *exp > now => m.remove(pk).map(|(d, _)| d),
            _ => None,
        })
    }

    async fn get(&self, pk: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.with(|m| {
            m.get(pk)
                .filter(|(_, exp)| *exp > now)
                .map(|(d, _)| d.clone())
        })
    }

    async fn get_many(
        &self,
        pks: &[String],
        now: UnixTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|m| {
            pks.iter()
                .filter_map(|pk| {
                    m.get(pk)
                        .filter(|(_, exp)| *exp > now)
                        .map(|(d, _)| (pk.clone(), d.clone()))
                })
                .collect()
        })
    }

    async fn delete(&self, pk: &str) -> Result<(), StoreError> {
        self.with(|m| {
            m.remove(pk);
        })
    }

    async fn increment(&self, pk: &str, expires_at: UnixTime) -> Result<u64, StoreError> {
        self.with(|m| {
            let entry = m.entry(pk.to_owned()).or_insert(("0".into(), expires_at));
            let n = entry.0.parse::<u64>().unwrap_or(0) + 1;
            entry.0 = n.to_string();
            n
        })
    }
}
