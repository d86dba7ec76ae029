//! AWS clients, from the SDK's standard configuration: `aws-config` resolves region,
//! credentials, endpoints, FIPS/dual-stack and retry mode the way every AWS SDK does
//! (environment, shared profile and SSO, web identity, container and instance
//! credentials). The project's own retry backoff and timeouts go on top, per client.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient,
};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::SecretSource;
use crate::error::ConfigError;

#[derive(Clone, Debug)]
pub struct AwsEnv {
    sdk: SdkConfig,
    /// Per-service endpoints given to [`AwsEnv::from_lookup`]; [`AwsEnv::load`] leaves
    /// them to `AWS_ENDPOINT_URL_<SERVICE>`, which the SDK reads itself.
    dynamodb_endpoint: Option<String>,
    ssm_endpoint: Option<String>,
}

impl AwsEnv {
    /// The standard provider chains, as any AWS SDK resolves them; in Lambda the region
    /// and credentials come from the function's environment.
    pub async fn load() -> Result<Self, ConfigError> {
        Self::loaded(aws_config::defaults(BehaviorVersion::latest())).await
    }

    async fn loaded(loader: aws_config::ConfigLoader) -> Result<Self, ConfigError> {
        let sdk = loader.http_client(https_client()).load().await;
        if sdk.region().is_none() {
            return Err(ConfigError {
                name: "AWS_REGION",
                reason: "no region in the environment or the shared config; Lambda sets \
                         AWS_REGION, and locally it must be exported or set in a profile"
                    .into(),
            });
        }
        Ok(Self {
            sdk,
            dynamodb_endpoint: None,
            ssm_endpoint: None,
        })
    }

    /// Region, static credentials and endpoints from `lookup`, with no provider chain:
    /// for tests and the bench, which aim at a local emulator and must not pick up a
    /// developer's profile or the process environment.
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
        let credentials = Credentials::new(key, secret, get("AWS_SESSION_TOKEN"), None, "lookup");
        let mut sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.trim().to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .http_client(https_client())
            .retry_config(RetryConfig::standard());
        sdk.set_endpoint_url(get("AWS_ENDPOINT_URL"));
        Ok(Self {
            sdk: sdk.build(),
            dynamodb_endpoint: get("AWS_ENDPOINT_URL_DYNAMODB"),
            ssm_endpoint: get("AWS_ENDPOINT_URL_SSM"),
        })
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(&self.sdk)
            .retry_config(short_backoff(self.sdk.retry_config()))
            .timeout_config(timeouts())
            // The attempt and operation timeouts already end a stalled call, so the
            // SDK's stalled-stream watch on every body is work without a use: turning
            // it off took 8% of the API's CPU per request and 1.2 ms of its cold start
            // over TLS (`session-bench --compare`, docs/performance.md).
            .stalled_stream_protection(
                aws_sdk_dynamodb::config::StalledStreamProtectionConfig::disabled(),
            );
        if self.dynamodb_endpoint.is_some() {
            config.set_endpoint_url(self.dynamodb_endpoint.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::from_conf(self.ssm_config().build())
    }

    fn ssm_config(&self) -> aws_sdk_ssm::config::Builder {
        let mut config = aws_sdk_ssm::config::Builder::from(&self.sdk).timeout_config(timeouts());
        if self.ssm_endpoint.is_some() {
            config.set_endpoint_url(self.ssm_endpoint.clone());
        }
        config
    }
}

impl SecretSource for AwsEnv {
    /// One `GetParameter` with decryption, over HTTPS to the regional endpoint unless an
    /// endpoint is set explicitly (`AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`).
    async fn secret_parameter(&self, name: &str) -> Result<String, String> {
        let answer = self
            .ssm()
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_ssm::error::ProvideErrorMetadata;
                match (e.code(), e.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_owned(),
                    _ => aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                }
            })?;
        answer
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| "the answer holds no value".into())
    }
}

/// The retry mode and attempts the environment asks for (`AWS_RETRY_MODE`,
/// `AWS_MAX_ATTEMPTS`; three by default) with short backoff: a throttled API request
/// should answer 503 within a second or two, not after the SDK's default backoff of up
/// to 20 s.
fn short_backoff(configured: Option<&RetryConfig>) -> RetryConfig {
    configured
        .cloned()
        .unwrap_or_else(RetryConfig::standard)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

/// A service that stops answering must not hold a function until Lambda kills it: three
/// tries of 2 s and their backoff end well inside the API function's 10 s timeout.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// The SDK's client on rustls with ring. The system's root certificates (or those in
/// `SSL_CERT_FILE`) are read with the first connection, whatever its scheme: with a
/// bundle of 145 roots, about as many as Lambda's image holds, that is about 2 ms of the
/// cold start (`make bench`).
fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use aws_sdk_ssm::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_ssm::config::{ConfigBag, Intercept, RuntimeComponents};

    #[test]
    fn the_dynamodb_client_leaves_stalls_to_its_timeouts() {
        let env = AwsEnv::from_lookup(|name| match name {
            "AWS_REGION" => Some("eu-west-1".into()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
            _ => None,
        })
        .unwrap();
        let client = env.dynamodb();
        let config = client.config();
        let stalls = config.stalled_stream_protection();
        assert_eq!(stalls.map(|c| c.is_enabled()), Some(false));
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(8)));
    }

    /// Notes the address of the request about to be sent, then stops it.
    #[derive(Debug, Clone, Default)]
    struct Destination(Arc<Mutex<String>>);

    impl Intercept for Destination {
        fn name(&self) -> &'static str {
            "Destination"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), aws_sdk_ssm::error::BoxError> {
            *self.0.lock().unwrap() = context.request().uri().to_owned();
            Err("stopped before sending".into())
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Result<AwsEnv, ConfigError> {
        AwsEnv::from_lookup(move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn region_and_credentials_are_required_and_endpoints_are_optional() {
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
        assert_eq!(ok.sdk.region().map(Region::as_ref), Some("eu-west-1"));
        assert_eq!(ok.dynamodb_endpoint.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(ok.sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        assert!(!format!("{ok:?}").contains("very-secret"));
    }

    /// Where the secret's request goes, captured before anything is sent.
    async fn secret_request_uri(aws: &AwsEnv) -> String {
        let destination = Destination::default();
        let config = aws.ssm_config().interceptor(destination.clone()).build();
        let sent = aws_sdk_ssm::Client::from_conf(config)
            .get_parameter()
            .name("/sessions/django-secret")
            .with_decryption(true)
            .send()
            .await;
        assert!(sent.is_err(), "the interceptor stops every request");
        destination.0.lock().unwrap().clone()
    }

    /// The standard chains over a made-up environment and no shared config files.
    async fn loaded(vars: &[(&str, &str)]) -> Result<AwsEnv, ConfigError> {
        let loader = aws_config::defaults(BehaviorVersion::latest())
            .env(aws_types::os_shim_internal::Env::from_slice(vars))
            .fs(aws_types::os_shim_internal::Fs::from_slice(&[]));
        AwsEnv::loaded(loader).await
    }

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret"),
    ];

    #[tokio::test]
    async fn the_secret_is_fetched_over_tls_unless_a_local_endpoint_is_set() {
        let in_aws = loaded(LAMBDA).await.unwrap();
        let regional = "https://ssm.eu-west-1.amazonaws.com/";
        assert_eq!(secret_request_uri(&in_aws).await, regional);
        let fips = loaded(&[LAMBDA, &[("AWS_USE_FIPS_ENDPOINT", "true")]].concat())
            .await
            .unwrap();
        let fips_endpoint = "https://ssm-fips.eu-west-1.amazonaws.com/";
        assert_eq!(secret_request_uri(&fips).await, fips_endpoint);
        let local = [LAMBDA, &[("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:1")]].concat();
        let local = loaded(&local).await.unwrap();
        assert_eq!(secret_request_uri(&local).await, "http://127.0.0.1:1/");
        let from_lookup = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ])
        .unwrap();
        assert_eq!(secret_request_uri(&from_lookup).await, regional);
    }

    #[tokio::test]
    async fn the_standard_chains_need_a_region_and_honour_the_retry_settings() {
        let none = loaded(&LAMBDA[1..]).await.unwrap_err();
        assert_eq!(none.name, "AWS_REGION");
        let aws = loaded(&[LAMBDA, &[("AWS_MAX_ATTEMPTS", "5")]].concat())
            .await
            .unwrap();
        let retries = short_backoff(aws.sdk.retry_config());
        assert_eq!(retries.max_attempts(), 5);
        assert_eq!(retries.max_backoff(), Duration::from_secs(1));
        let default = short_backoff(loaded(LAMBDA).await.unwrap().sdk.retry_config());
        assert_eq!(default.max_attempts(), 3);
    }
}
