//! AWS clients from the environment Lambda gives every function: region, credentials
//! and, locally, endpoint overrides. Built directly rather than through `aws-config`,
//! whose provider chains (profiles, SSO, STS, IMDS) a Lambda function never uses and
//! whose code and start-up work every cold start would otherwise pay for.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::ConfigError;

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
            .http_client(https_client());
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
