//! `AppState`: everything a function builds once per cold start.

use crate::config::{Config, ConfigError, ConfigErrors, Env, Handoff, Source};
use crate::cookies::Scope;
use crate::oidc::{ClientSettings, IdpError, Oidc};
use crate::session::Timeouts;
use crate::store::{DynamoStore, Store};

/// Configuration, table and provider client, shared by warm invocations.
#[derive(Debug)]
pub struct AppState<S: Store = DynamoStore> {
    /// Validated configuration.
    pub config: Config,
    /// The table.
    pub store: S,
    /// The provider client and its caches.
    pub oidc: Oidc,
}

/// Why a cold start failed; names the variable or dependency.
#[derive(thiserror::Error)]
pub enum InitError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// A secret could not be read from Secrets Manager.
    #[error("{var}: could not read the secret: {reason}")]
    Secret {
        /// The `*_ARN` variable.
        var: &'static str,
        /// Why (no secret material).
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Idp(#[from] IdpError),
}

// `main` returns this error, and Rust prints a returned error with `Debug`:
// make that the readable message (it names the variable, never a value).
impl std::fmt::Debug for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Secrets that, in AWS, come from Secrets Manager: `<VAR>_ARN` names the
/// secret whose `SecretString` is the value (never a plain environment
/// variable or template parameter there).
const SECRET_VARS: [(&str, &str); 3] = [
    ("OIDC_CLIENT_SECRET", "OIDC_CLIENT_SECRET_ARN"),
    ("COOKIE_KEYS", "COOKIE_KEYS_SECRET_ARN"),
    (
        "CLOUDFRONT_PRIVATE_KEY",
        "CLOUDFRONT_PRIVATE_KEY_SECRET_ARN",
    ),
];

struct WithSecrets {
    resolved: std::collections::HashMap<&'static str, String>,
}

impl Source for WithSecrets {
    fn var(&self, name: &str) -> Option<String> {
        self.resolved.get(name).cloned().or_else(|| Env.var(name))
    }
}

/// Which function is starting: each gets only the secrets it uses (least
/// privilege), and fails at cold start naming the one it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `GET /auth/login`.
    Authorize,
    /// `GET /auth/callback`.
    Callback,
    /// `GET|POST /auth/session`.
    Session,
    /// `POST /auth/refresh`.
    Refresh,
    /// `POST /auth/logout`, `POST /auth/backchannel-logout`.
    Logout,
    /// The dev-only local gateway, which runs them all.
    LocalGateway,
}

impl Function {
    /// Talks to the token or revocation endpoint.
    fn needs_client_secret(self) -> bool {
        !matches!(self, Function::Authorize | Function::Session)
    }

    /// Signs CloudFront cookies (when protected paths are configured).
    fn needs_signing_key(self) -> bool {
        matches!(
            self,
            Function::Callback | Function::Refresh | Function::LocalGateway
        )
    }
}

impl AppState<DynamoStore> {
    /// Reads the environment (and Secrets Manager where `*_ARN` is set),
    /// builds the DynamoDB and provider clients. Makes no call to the provider.
    pub async fn from_env(function: Function) -> Result<Self, InitError> {
        let sdk = crate::store::dynamo::sdk_config_overrides(aws_config::defaults(
            aws_config::BehaviorVersion::latest(),
        ))
        .load()
        .await;
        let mut resolved = std::collections::HashMap::new();
        let arns: Vec<_> = SECRET_VARS
            .iter()
            .filter_map(|(var, arn_var)| {
                Env.var(arn_var)
                    .filter(|a| !a.is_empty())
                    .map(|a| (*var, *arn_var, a))
            })
            .collect();
        if !arns.is_empty() {
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            for (var, arn_var, arn) in arns {
                let value = client
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await
                    .map_err(|e| InitError::Secret {
                        var: arn_var,
                        reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                    })?
                    .secret_string
                    .ok_or(InitError::Secret {
                        var: arn_var,
                        reason: "the secret has no SecretString".into(),
                    })?;
                resolved.insert(var, value);
            }
        }
        let config = Config::from_source(&WithSecrets { resolved })?;
        let mut missing = Vec::new();
        if function.needs_client_secret() && config.client_secret.is_none() {
            missing.push(ConfigError::new(
                "OIDC_CLIENT_SECRET",
                "is required (or OIDC_CLIENT_SECRET_ARN)",
            ));
        }
        if function.needs_signing_key()
            && !config.protected_paths.is_empty()
            && config.cloudfront.is_none()
        {
            missing.push(ConfigError::new(
                "CLOUDFRONT_PRIVATE_KEY",
                "is required with PROTECTED_PATHS (or CLOUDFRONT_PRIVATE_KEY_SECRET_ARN, CLOUDFRONT_PRIVATE_KEY_FILE)",
            ));
        }
        if !missing.is_empty() {
            return Err(ConfigErrors(missing).into());
        }
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table_name.clone(),
        );
        Self::new(config, store)
    }
}

impl<S: Store> AppState<S> {
    /// State over any store (tests use the in-memory one).
    pub fn new(config: Config, store: S) -> Result<Self, InitError> {
        let oidc = Oidc::new(ClientSettings {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            redirect_uri: config.redirect_uri.clone(),
        })?;
        Ok(Self {
            config,
            store,
            oidc,
        })
    }

    /// Session timeouts.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            idle: self.config.idle_timeout,
            absolute: self.config.absolute_timeout,
        }
    }

    /// Session cookies are cross-site in exchange mode.
    pub fn cookie_scope(&self) -> Scope {
        match self.config.handoff {
            Handoff::Cookie => Scope::FirstParty,
            Handoff::Exchange => Scope::CrossSite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Function;

    #[test]
    fn each_function_needs_only_its_secrets() {
        use Function::*;
        let needs: Vec<_> = [Authorize, Callback, Session, Refresh, Logout, LocalGateway]
            .iter()
            .map(|f| (f.needs_client_secret(), f.needs_signing_key()))
            .collect();
        assert_eq!(
            needs,
            [
                (false, false),
                (true, true),
                (false, false),
                (true, true),
                (true, false),
                (true, true)
            ]
        );
    }
}
