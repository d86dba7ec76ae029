//! `SESSION_CODEC` and the Django keys it needs: from the environment, or from an SSM
//! SecureString parameter fetched once per container.

use std::future::Future;

use super::{ConfigError, StoreConfig};
use crate::codec::{Codec, JsonCodec};
use crate::django::{DjangoCodec, DjangoKeys, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyUse {
    SignAndVerify,
    ReadOnly,
}

/// `SESSION_CODEC` and, for `django`, where its keys come from. Every variable is read
/// whatever the codec, so that the list of names read stays fixed.
pub(super) fn codec(
    get: &dyn Fn(&str) -> Option<String>,
    use_: KeyUse,
) -> Result<CodecConfig, ConfigError> {
    let name = get("SESSION_CODEC");
    if use_ == KeyUse::ReadOnly {
        return match name.as_deref().map(str::trim) {
            None | Some("json") => Ok(CodecConfig::Json),
            Some("django") => Ok(CodecConfig::Django(DjangoSecrets::Unverified)),
            Some(other) => Err(unknown_codec(other)),
        };
    }
    let key = get("DJANGO_SECRET_KEY");
    let fallbacks = get("DJANGO_SECRET_KEY_FALLBACKS");
    let parameter = get("DJANGO_SECRET_KEY_PARAMETER");
    match name.as_deref().map(str::trim) {
        None | Some("json") => Ok(CodecConfig::Json),
        Some("django") => {
            let secrets = match (key, parameter) {
                (Some(key), None) => DjangoSecrets::Keys(DjangoKeys {
                    secret_key: Secret::new(key),
                    fallbacks: fallbacks
                        .iter()
                        .flat_map(|f| f.split(','))
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(Secret::new)
                        .collect(),
                }),
                (None, Some(parameter)) => DjangoSecrets::Parameter(parameter.trim().to_owned()),
                (Some(_), Some(_)) => {
                    return Err(ConfigError {
                        name: "DJANGO_SECRET_KEY_PARAMETER",
                        reason:
                            "set either DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_PARAMETER, not both"
                                .into(),
                    });
                }
                (None, None) => {
                    return Err(ConfigError {
                        name: "DJANGO_SECRET_KEY",
                        reason: "SESSION_CODEC=django needs DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_PARAMETER".into(),
                    });
                }
            };
            Ok(CodecConfig::Django(secrets))
        }
        Some(other) => Err(unknown_codec(other)),
    }
}

fn unknown_codec(name: &str) -> ConfigError {
    ConfigError {
        name: "SESSION_CODEC",
        reason: format!("unknown codec {name:?}; supported: json, django"),
    }
}

/// The codec chosen by `SESSION_CODEC`, with what it needs to work.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CodecConfig {
    #[default]
    Json,
    /// Django's signed format; the keys come from the environment or, in AWS, from a
    /// SecureString parameter fetched once per container.
    Django(DjangoSecrets),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DjangoSecrets {
    Keys(DjangoKeys),
    /// The name of an SSM SecureString parameter not fetched yet.
    Parameter(String),
    /// No key: the data is read without checking its signature and never written
    /// ([`StoreConfig::reader_from_env`]).
    Unverified,
}

/// The codec was configured but its secret is not at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Django secret key parameter {0:?} has not been fetched")]
pub struct SecretNotFetched(pub String);

impl CodecConfig {
    /// The codec, reading and writing at most `max_decompressed` bytes of JSON text.
    pub fn build(&self, max_decompressed: usize) -> Result<Box<dyn Codec>, SecretNotFetched> {
        let django = match self {
            Self::Json => return Ok(Box::new(JsonCodec)),
            Self::Django(DjangoSecrets::Keys(keys)) => DjangoCodec::new(keys),
            Self::Django(DjangoSecrets::Parameter(name)) => {
                return Err(SecretNotFetched(name.clone()));
            }
            Self::Django(DjangoSecrets::Unverified) => DjangoCodec::unverified(),
        };
        Ok(Box::new(django.with_max_decompressed(max_decompressed)))
    }
}

impl From<SecretNotFetched> for ConfigError {
    fn from(e: SecretNotFetched) -> Self {
        Self {
            name: "DJANGO_SECRET_KEY_PARAMETER",
            reason: e.to_string(),
        }
    }
}

/// Where [`StoreConfig::fetch_secrets`] reads a secret parameter: AWS's parameter store
/// in the functions.
pub trait SecretSource {
    /// The decrypted value of parameter `name`, or why it could not be read.
    fn secret_parameter(&self, name: &str) -> impl Future<Output = Result<String, String>> + Send;
}

impl StoreConfig {
    /// Fetches the Django keys when they are configured as a parameter: one read with
    /// decryption, once per container.
    pub async fn fetch_secrets(mut self, source: &impl SecretSource) -> Result<Self, ConfigError> {
        let CodecConfig::Django(DjangoSecrets::Parameter(name)) = &self.codec else {
            return Ok(self);
        };
        let failed = |reason: String| ConfigError {
            name: "DJANGO_SECRET_KEY_PARAMETER",
            reason,
        };
        let value = source
            .secret_parameter(name)
            .await
            .map_err(|e| failed(format!("could not read parameter {name:?}: {e}")))?;
        let keys = DjangoKeys::from_lines(&value)
            .ok_or_else(|| failed(format!("parameter {name:?} holds no key")))?;
        self.codec = CodecConfig::Django(DjangoSecrets::Keys(keys));
        Ok(self)
    }
}
