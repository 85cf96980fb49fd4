//! One test binary: every integration test against DynamoDB Local and the
//! oidc-provider test IdP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod backchannel;
mod budgets;
mod concurrency;
mod exchange;
mod faults;
mod hostile;
mod lifecycle;
mod login;
mod protected;
