//! Short-lived records in one DynamoDB table: partition key `pk`, TTL
//! attribute `expires_at`, an opaque `data` string.
//!
//! DynamoDB deletes expired items lazily (hours to days later), so every read
//! here treats `expires_at <= now` as absent. One-time records are consumed
//! with one conditional write, never read-then-delete. Nothing stored here is
//! a plaintext token: keys of one-time values are hashes, session material is
//! sealed before it arrives.

use std::future::Future;

use crate::session::UnixTime;

pub mod dynamo;
pub mod memory;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// Record kinds are prefixes of `pk`; IAM policies scope each function to
/// the prefixes it uses (`dynamodb:LeadingKeys`).
pub mod keys {
    /// Login transactions, keyed by a hash of `state`.
    pub const LOGIN: &str = "login#";
    /// One-time exchange codes, keyed by a hash of the code.
    pub const EXCHANGE: &str = "exchange#";
    /// Refresh single-flight claims and their sealed results.
    pub const REFRESH: &str = "refresh#";
    /// Sessions ended by our logout, keyed by session id.
    pub const REVOKED: &str = "revoked#";
    /// Sessions ended by the provider's back-channel logout, by provider `sid`.
    pub const REVOKED_IDP_SID: &str = "revoked-sid#";
    /// All sessions of a subject ended before a time (back-channel, no `sid`).
    pub const REVOKED_SUB: &str = "revoked-sub#";
    /// Back-channel logout token ids already used.
    pub const JTI: &str = "jti#";
    /// Rate-limit counters.
    pub const RATE: &str = "rate#";
}

/// The table did not answer, or answered with an error. The cause is kept
/// for the log; it never holds item data.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

/// What the handlers need from the table.
pub trait Store: Send + Sync {
    /// Writes a record that must not exist yet (or exists but has expired).
    /// `Ok(false)` when a live one is already there.
    fn insert_new(
        &self,
        pk: &str,
        data: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes or overwrites a record.
    fn put(
        &self,
        pk: &str,
        data: &str,
        expires_at: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes and returns a live record with one conditional delete: of two
    /// racing callers at most one gets it.
    fn take(
        &self,
        pk: &str,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Reads a live record (strongly consistent).
    fn get(
        &self,
        pk: &str,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Reads several live records in one round trip; returns `(pk, data)` of
    /// those that exist.
    fn get_many(
        &self,
        pks: &[String],
        now: UnixTime,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Deletes a record if it exists.
    fn delete(&self, pk: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically adds one to a counter (created with `expires_at` if new)
    /// and returns the new value.
    fn increment(
        &self,
        pk: &str,
        expires_at: UnixTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
