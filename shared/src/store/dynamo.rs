//! The real [`Store`]: DynamoDB through `aws-sdk-dynamodb`. The endpoint
//! comes from the SDK's standard settings (`AWS_ENDPOINT_URL_DYNAMODB` for
//! DynamoDB Local); timeouts are short so a dead table answers in seconds.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use aws_sdk_dynamodb::Client;

use super::{Store, StoreError};
use crate::session::UnixTime;

const PK: &str = "pk";
const DATA: &str = "data";
const EXPIRES_AT: &str = "expires_at";
const COUNT: &str = "n";

/// A table accessed through one shared SDK client.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// Timeouts and retries for table calls: a few seconds at most end to end,
/// well inside the function's own timeout.
pub fn sdk_config_overrides(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(800))
                .operation_attempt_timeout(Duration::from_millis(1500))
                .operation_timeout(Duration::from_millis(3500))
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
}

impl DynamoStore {
    /// A store over an existing SDK client.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Loads the SDK configuration from the environment (region, credentials,
    /// endpoint) with this crate's timeouts.
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config =
            sdk_config_overrides(aws_config::defaults(aws_config::BehaviorVersion::latest()))
                .load()
                .await;
        Self::new(Client::new(&config), table)
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: UnixTime) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn fail<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError(DisplayErrorContext(&err).to_string())
}

/// The `data` of an item if its `expires_at` is still in the future.
fn live_data(item: &HashMap<String, AttributeValue>, now: UnixTime) -> Option<String> {
    let expires_at = item
        .get(EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<UnixTime>().ok())?;
    if expires_at <= now {
        return None;
    }
    item.get(DATA)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .or(Some(String::new()))
}

impl Store for DynamoStore {
    async fn insert_new(
        &self,
        pk: &str,
        data: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(pk))
            .item(DATA, s(data))
            .item(EXPIRES_AT, n(expires_at))
            .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(fail(e)),
        }
    }

    async fn put(&self, pk: &str, data: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(pk))
            .item(DATA, s(data))
            .item(EXPIRES_AT, n(expires_at))
            .send()
            .await
            .map(|_| ())
            .map_err(fail)
    }

    async fn take(&self, pk: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        // One conditional delete, not get-then-delete: two callers racing for
        // the same record must not both succeed.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .condition_expression("attribute_exists(#pk) AND #exp > :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes().and_then(|item| live_data(item, now))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(fail(e)),
        }
    }

    async fn get(&self, pk: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(fail)?;
        Ok(out.item().and_then(|item| live_data(item, now)))
    }

    async fn get_many(
        &self,
        pks: &[String],
        now: UnixTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut unique: Vec<&String> = pks.iter().collect();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let keys = unique
            .iter()
            .map(|pk| HashMap::from([(PK.to_owned(), s(pk))]))
            .collect::<Vec<_>>();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError(e.to_string()))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(fail)?;
        // A handful of tiny items never exceeds BatchGetItem's limits; if the
        // service still defers some, the answer would be incomplete: fail closed.
        if out
            .unprocessed_keys()
            .and_then(|u| u.get(&self.table))
            .is_some_and(|k| !k.keys().is_empty())
        {
            return Err(StoreError("batch read incomplete".into()));
        }
        Ok(out
            .responses()
            .and_then(|r| r.get(&self.table))
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let pk = item.get(PK)?.as_s().ok()?.clone();
                        live_data(item, now).map(|d| (pk, d))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn delete(&self, pk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .send()
            .await
            .map(|_| ())
            .map_err(fail)
    }

    async fn increment(&self, pk: &str, expires_at: UnixTime) -> Result<u64, StoreError> {
        // One atomic ADD, no read-modify-write.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .update_expression("ADD #n :one SET #exp = if_not_exists(#exp, :exp)")
            .expression_attribute_names("#n", COUNT)
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(fail)?;
        out.attributes()
            .and_then(|a| a.get(COUNT))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StoreError("counter missing from response".into()))
    }
}
