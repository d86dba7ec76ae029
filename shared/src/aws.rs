//! AWS clients from the environment Lambda gives every function: region, credentials
//! and, locally, endpoint overrides. Built directly rather than through `aws-config`,
//! whose provider chains (profiles, SSO, STS, IMDS) a Lambda function never uses and
//! whose code and start-up work every cold start would otherwise pay for.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::SecretSource;
use crate::error::ConfigError;

#[derive(Clone)]
pub struct AwsEnv {
    region: Region,
    credentials: Credentials,
    dynamodb_endpoint: Option<String>,
    ssm_endpoint: Option<String>,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv")
            .field("region", &self.region)
            .field("dynamodb_endpoint", &self.dynamodb_endpoint)
            .field("ssm_endpoint", &self.ssm_endpoint)
            .finish_non_exhaustive()
    }
}

impl AwsEnv {
    /// Every variable `from_env` reads; Lambda sets the region and credentials itself.
    pub const VARIABLES: &'static [&'static str] = &[
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SSM",
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let missing = |name: &'static str| ConfigError {
            name,
            reason: "not set; Lambda sets it, and locally it must be exported".into(),
        };
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| missing("AWS_REGION"))?;
        let key = get("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
        let secret =
            get("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
        let token = get("AWS_SESSION_TOKEN");
        let shared = get("AWS_ENDPOINT_URL");
        Ok(Self {
            region: Region::new(region.trim().to_owned()),
            credentials: Credentials::new(key, secret, token, None, "environment"),
            dynamodb_endpoint: get("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| shared.clone()),
            ssm_endpoint: get("AWS_ENDPOINT_URL_SSM").or(shared),
        })
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(self.region.clone())
            .credentials_provider(self.credentials.clone())
            .http_client(https_client())
            .retry_config(dynamodb_retries())
            .timeout_config(dynamodb_timeouts());
        config.set_endpoint_url(self.dynamodb_endpoint.clone());
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// An SSM parameter's decrypted value.
    pub async fn get_parameter(&self, name: &str) -> Result<String, crate::ssm::SsmError> {
        crate::ssm::SsmTarget {
            region: self.region.as_ref(),
            credentials: &self.credentials,
            endpoint: self.ssm_endpoint.as_deref(),
        }
        .get_parameter(name)
        .await
    }
}

impl SecretSource for AwsEnv {
    async fn secret_parameter(&self, name: &str) -> Result<String, String> {
        self.get_parameter(name).await.map_err(|e| e.to_string())
    }
}

/// Three tries with short backoff: a throttled API request should answer 503 within a
/// second or two, not after the SDK's default backoff of up to 20 s.
fn dynamodb_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

/// A DynamoDB that stops answering must not hold a function until Lambda kills it: three
/// tries of 2 s and their backoff end well inside the API function's 10 s timeout.
fn dynamodb_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// The SDK's client on rustls with ring. Root certificates load on the first HTTPS
/// connection, not here, so a cold start does not read them before it needs them.
fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_and_credentials_are_required_and_endpoints_are_optional() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            AwsEnv::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(env(&[]).unwrap_err().name, "AWS_REGION");
        let no_key = env(&[("AWS_REGION", "eu-west-1")]);
        assert_eq!(no_key.unwrap_err().name, "AWS_ACCESS_KEY_ID");
        let ok = env(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2"),
        ])
        .unwrap();
        assert_eq!(ok.dynamodb_endpoint.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(ok.ssm_endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert!(!format!("{ok:?}").contains("very-secret"));
    }
}
