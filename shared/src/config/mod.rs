//! Settings, read from the environment once per container.

mod codec;

use std::str::FromStr;
use std::time::Duration;

pub use codec::{CodecConfig, DjangoSecrets, SecretNotFetched, SecretSource};
use codec::{KeyUse, codec};

use crate::django::DEFAULT_MAX_DECOMPRESSED_BYTES;
pub use crate::error::ConfigError;
use crate::expiry::{DEFAULT_IDLE_TIMEOUT, ExpiryPolicy, MAX_IDLE_TIMEOUT};

/// DynamoDB's item limit is 400 KB; the rest of an item needs well under 10 KB.
pub const MAX_SESSION_BYTES_LIMIT: usize = 390_000;
/// Bounds of `SESSION_MAX_DECOMPRESSED_BYTES`: at least an empty session's worth, and
/// at most 16 MiB, past which the cap would no longer bound what a reader spends.
const MIN_DECOMPRESSED_LIMIT: usize = 1024;
const MAX_DECOMPRESSED_LIMIT: usize = 16 * 1024 * 1024;
/// A day: far longer than any request holds a session loaded.
const DEFAULT_TOMBSTONE_GRACE: Duration = Duration::from_secs(86_400);
/// Bounds of `SESSION_TOMBSTONE_GRACE_SECONDS`: at least a minute (Lambda's and most web
/// servers' request timeouts are shorter), at most a year.
const TOMBSTONE_GRACE_LIMITS: (u64, u64) = (60, 31_536_000);
/// Most sessions `SESSION_MAX_PER_PRINCIPAL` may allow: one TransactWriteItems (at most
/// 100 actions) keeps the count and removes the excess together.
pub const MAX_PER_PRINCIPAL_LIMIT: usize = 99;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub table_name: String,
    pub key_attribute: String,
    pub expiry: ExpiryPolicy,
    pub consistent_read: bool,
    pub codec: CodecConfig,
    /// Largest encoded `data` accepted, checked before any DynamoDB call.
    pub max_session_bytes: usize,
    /// Largest session data as JSON text that any function inflates, reads or writes
    /// (the django codec's compressed payloads): a small zlib bomb in the table costs a
    /// reader at most this much.
    pub max_decompressed_bytes: usize,
    /// Tries of a contended read-modify-write before giving up.
    pub update_attempts: u32,
    /// A read refreshes the expiry only when the last refresh is at least this old.
    pub touch_interval: Duration,
    /// How long a tombstone stays (codec `django`): longer than any Django request
    /// holds a session loaded, since a save after it is gone recreates the session.
    pub tombstone_grace: Duration,
    /// Most live sessions one principal keeps through the API; creating one more
    /// revokes the one that has had the principal longest. `None`: no cap.
    pub max_per_principal: Option<usize>,
    /// The region this function writes in, when the table is a global table: new
    /// sessions record it as their home, and a write to a session whose home is another
    /// region is refused. `None` (unset or empty): one region, nothing recorded.
    pub region: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            table_name: "sessions".into(),
            key_attribute: "session_key".into(),
            expiry: ExpiryPolicy::default(),
            consistent_read: true,
            codec: CodecConfig::Json,
            max_session_bytes: 350_000,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            update_attempts: 50,
            touch_interval: Duration::from_secs(300),
            tombstone_grace: DEFAULT_TOMBSTONE_GRACE,
            max_per_principal: None,
            region: None,
        }
    }
}

impl StoreConfig {
    /// Every variable `from_env` reads.
    pub const VARIABLES: &'static [&'static str] = &[
        "SESSION_TABLE",
        "SESSION_KEY_ATTRIBUTE",
        "SESSION_IDLE_TTL_SECONDS",
        "SESSION_MAX_LIFETIME_SECONDS",
        "SESSION_CONSISTENT_READ",
        "SESSION_CODEC",
        "SESSION_MAX_BYTES",
        "SESSION_MAX_DECOMPRESSED_BYTES",
        "SESSION_UPDATE_ATTEMPTS",
        "SESSION_TOUCH_INTERVAL_SECONDS",
        "SESSION_TOMBSTONE_GRACE_SECONDS",
        "SESSION_MAX_PER_PRINCIPAL",
        "SESSION_REGION",
        "DJANGO_SECRET_KEY",
        "DJANGO_SECRET_KEY_FALLBACKS",
        "DJANGO_SECRET_KEY_PARAMETER",
    ];

    /// The variables that give the Django key: read only by [`StoreConfig::from_env`],
    /// never by [`StoreConfig::reader_from_env`].
    pub const KEY_VARIABLES: &'static [&'static str] = &[
        "DJANGO_SECRET_KEY",
        "DJANGO_SECRET_KEY_FALLBACKS",
        "DJANGO_SECRET_KEY_PARAMETER",
    ];

    /// Variables that hold secrets themselves: for local use only, never set in the
    /// template, where the key comes from `DJANGO_SECRET_KEY_PARAMETER`.
    pub const LOCAL_ONLY: &'static [&'static str] =
        &["DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FALLBACKS"];

    /// The settings of a function that signs and verifies session data (the API).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&lookup, KeyUse::SignAndVerify)
    }

    /// The settings of a function that reads session data but never signs it nor trusts
    /// it (the cleanup, the auditor): no Django key is read or held, and Django data is
    /// read without checking its signature ([`DjangoCodec::unverified`]).
    pub fn reader_from_env() -> Result<Self, ConfigError> {
        Self::reader_from_lookup(|name| std::env::var(name).ok())
    }

    pub fn reader_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::read(&lookup, KeyUse::ReadOnly)
    }

    fn read(lookup: &dyn Fn(&str) -> Option<String>, keys: KeyUse) -> Result<Self, ConfigError> {
        let d = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let idle_timeout = match get("SESSION_IDLE_TTL_SECONDS") {
            Some(v) => seconds("SESSION_IDLE_TTL_SECONDS", &v)?,
            None => DEFAULT_IDLE_TIMEOUT,
        };
        let max_lifetime = get("SESSION_MAX_LIFETIME_SECONDS")
            .map(|v| seconds("SESSION_MAX_LIFETIME_SECONDS", &v))
            .transpose()?;
        let max_session_bytes = match get("SESSION_MAX_BYTES") {
            Some(v) => parse("SESSION_MAX_BYTES", &v)?,
            None => d.max_session_bytes,
        };
        if !(2..=MAX_SESSION_BYTES_LIMIT).contains(&max_session_bytes) {
            return Err(ConfigError {
                name: "SESSION_MAX_BYTES",
                reason: format!("must be between 2 and {MAX_SESSION_BYTES_LIMIT}"),
            });
        }
        let max_decompressed_bytes = match get("SESSION_MAX_DECOMPRESSED_BYTES") {
            Some(v) => parse("SESSION_MAX_DECOMPRESSED_BYTES", &v)?,
            None => d.max_decompressed_bytes,
        };
        if !(MIN_DECOMPRESSED_LIMIT..=MAX_DECOMPRESSED_LIMIT).contains(&max_decompressed_bytes) {
            return Err(ConfigError {
                name: "SESSION_MAX_DECOMPRESSED_BYTES",
                reason: format!(
                    "must be between {MIN_DECOMPRESSED_LIMIT} and {MAX_DECOMPRESSED_LIMIT}"
                ),
            });
        }
        let update_attempts = match get("SESSION_UPDATE_ATTEMPTS") {
            Some(v) => parse("SESSION_UPDATE_ATTEMPTS", &v)?,
            None => d.update_attempts,
        };
        if update_attempts == 0 {
            return Err(ConfigError {
                name: "SESSION_UPDATE_ATTEMPTS",
                reason: "must be at least 1".into(),
            });
        }
        let tombstone_grace = match get("SESSION_TOMBSTONE_GRACE_SECONDS") {
            Some(v) => seconds("SESSION_TOMBSTONE_GRACE_SECONDS", &v)?,
            None => d.tombstone_grace,
        };
        let (least, most) = TOMBSTONE_GRACE_LIMITS;
        if !(least..=most).contains(&tombstone_grace.as_secs()) {
            return Err(ConfigError {
                name: "SESSION_TOMBSTONE_GRACE_SECONDS",
                reason: format!("must be between {least} and {most}"),
            });
        }
        let max_per_principal = match get("SESSION_MAX_PER_PRINCIPAL") {
            Some(v) if !v.trim().is_empty() => {
                let n: usize = parse("SESSION_MAX_PER_PRINCIPAL", &v)?;
                if !(1..=MAX_PER_PRINCIPAL_LIMIT).contains(&n) {
                    return Err(ConfigError {
                        name: "SESSION_MAX_PER_PRINCIPAL",
                        reason: format!(
                            "must be between 1 and {MAX_PER_PRINCIPAL_LIMIT}, or unset"
                        ),
                    });
                }
                Some(n)
            }
            _ => d.max_per_principal,
        };
        Ok(Self {
            table_name: get("SESSION_TABLE").unwrap_or(d.table_name),
            key_attribute: get("SESSION_KEY_ATTRIBUTE").unwrap_or(d.key_attribute),
            expiry: ExpiryPolicy {
                idle_timeout,
                max_lifetime,
            },
            consistent_read: match get("SESSION_CONSISTENT_READ") {
                Some(v) => boolean("SESSION_CONSISTENT_READ", &v)?,
                None => d.consistent_read,
            },
            codec: codec(&get, keys)?,
            max_session_bytes,
            max_decompressed_bytes,
            update_attempts,
            touch_interval: match get("SESSION_TOUCH_INTERVAL_SECONDS") {
                Some(v) => Duration::from_secs(parse("SESSION_TOUCH_INTERVAL_SECONDS", &v)?),
                None => d.touch_interval,
            },
            tombstone_grace,
            max_per_principal,
            region: get("SESSION_REGION").filter(|r| !r.trim().is_empty()),
        })
    }
}

/// Whether the API serves the routes by principal and takes a session's `principal`
/// (`SESSION_PRINCIPAL_ROUTES`: `enabled`, the default, or `disabled`). Principals are
/// usually guessable user ids, so an API open to anyone must turn them off: its
/// principal routes are then a 404 and a `principal` in a body a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrincipalRoutes {
    #[default]
    Enabled,
    Disabled,
}

impl PrincipalRoutes {
    /// Every variable `from_env` reads.
    pub const VARIABLES: &'static [&'static str] = &["SESSION_PRINCIPAL_ROUTES"];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match lookup("SESSION_PRINCIPAL_ROUTES").as_deref().map(str::trim) {
            None | Some("" | "enabled") => Ok(Self::Enabled),
            Some("disabled") => Ok(Self::Disabled),
            Some(_) => Err(ConfigError {
                name: "SESSION_PRINCIPAL_ROUTES",
                reason: "must be enabled or disabled".into(),
            }),
        }
    }
}

/// Settings of the API's access log: which requests get their line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessLogConfig {
    /// Share, from 0 to 1, of the answered-fine-and-fast requests whose line is written.
    /// Every 4xx and 5xx and every slow request is written whatever this is.
    pub sample_rate: f64,
    /// A request that took at least this long is always written.
    pub slow: Duration,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            sample_rate: 1.0,
            slow: Duration::from_millis(1_000),
        }
    }
}

impl AccessLogConfig {
    /// Every variable `from_env` reads.
    pub const VARIABLES: &'static [&'static str] =
        &["ACCESS_LOG_SAMPLE_RATE", "ACCESS_LOG_SLOW_MS"];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let sample_rate = match get("ACCESS_LOG_SAMPLE_RATE") {
            None => d.sample_rate,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => rate,
                _ => {
                    return Err(ConfigError {
                        name: "ACCESS_LOG_SAMPLE_RATE",
                        reason: format!("{raw:?} is not a number from 0 to 1"),
                    });
                }
            },
        };
        let slow = match get("ACCESS_LOG_SLOW_MS") {
            None => d.slow,
            Some(raw) => Duration::from_millis(parse("ACCESS_LOG_SLOW_MS", &raw)?),
        };
        Ok(Self { sample_rate, slow })
    }
}

/// The most writes per second `CLEANUP_WRITES_PER_SECOND` accepts.
pub const MAX_CLEANUP_WRITES_PER_SECOND: u32 = 100_000;

/// Settings of the scheduled cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupConfig {
    /// Parallel Scan segments.
    pub segments: u32,
    /// Items per Scan page; the run checks its deadline between pages.
    pub page_size: u32,
    /// Writes in flight at once, across all segments.
    pub concurrency: usize,
    /// Upper bound on deletes and stamps per second.
    pub writes_per_second: u32,
    /// Expiry given to items of the Django backend: `created` + this, or now + this.
    pub legacy_age: Duration,
    /// Stop this long before the invocation deadline.
    pub deadline_margin: Duration,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            segments: 4,
            page_size: 250,
            concurrency: 8,
            writes_per_second: 1_000,
            legacy_age: DEFAULT_IDLE_TIMEOUT,
            deadline_margin: Duration::from_secs(10),
        }
    }
}

impl CleanupConfig {
    /// Every variable `from_env` reads.
    pub const VARIABLES: &'static [&'static str] = &[
        "CLEANUP_SEGMENTS",
        "CLEANUP_PAGE_SIZE",
        "CLEANUP_CONCURRENCY",
        "CLEANUP_WRITES_PER_SECOND",
        "CLEANUP_LEGACY_AGE_SECONDS",
        "CLEANUP_DEADLINE_MARGIN_SECONDS",
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let positive = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            let v = match get(name) {
                Some(raw) => parse(name, &raw)?,
                None => default,
            };
            if v == 0 || v > max {
                return Err(ConfigError {
                    name,
                    reason: format!("must be between 1 and {max}"),
                });
            }
            Ok(v)
        };
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(Self {
            segments: small(positive("CLEANUP_SEGMENTS", d.segments.into(), 1_000)?),
            page_size: small(positive("CLEANUP_PAGE_SIZE", d.page_size.into(), 10_000)?),
            concurrency: usize::try_from(positive("CLEANUP_CONCURRENCY", 8, 256)?).unwrap_or(8),
            writes_per_second: small(positive(
                "CLEANUP_WRITES_PER_SECOND",
                d.writes_per_second.into(),
                MAX_CLEANUP_WRITES_PER_SECOND.into(),
            )?),
            legacy_age: match get("CLEANUP_LEGACY_AGE_SECONDS") {
                Some(v) => seconds("CLEANUP_LEGACY_AGE_SECONDS", &v)?,
                None => d.legacy_age,
            },
            deadline_margin: match get("CLEANUP_DEADLINE_MARGIN_SECONDS") {
                Some(v) => Duration::from_secs(parse("CLEANUP_DEADLINE_MARGIN_SECONDS", &v)?),
                None => d.deadline_margin,
            },
        })
    }
}

fn parse<T: FromStr>(name: &'static str, raw: &str) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| ConfigError {
        name,
        reason: format!("{raw:?} is not a valid non-negative whole number"),
    })
}

fn seconds(name: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    let secs: u64 = parse(name, raw)?;
    if secs == 0 || secs > MAX_IDLE_TIMEOUT.as_secs() {
        return Err(ConfigError {
            name,
            reason: format!(
                "must be between 1 and {} seconds",
                MAX_IDLE_TIMEOUT.as_secs()
            ),
        });
    }
    Ok(Duration::from_secs(secs))
}

fn boolean(name: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            name,
            reason: format!("{raw:?} is not true or false"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::{DjangoKeys, Secret};
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<StoreConfig, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StoreConfig::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_documented_defaults() {
        let c = from(&[]).unwrap();
        assert_eq!(c, StoreConfig::default());
        assert_eq!(c.table_name, "sessions");
        assert_eq!(c.key_attribute, "session_key");
        assert_eq!(c.expiry.idle_timeout, Duration::from_secs(1_209_600));
        assert_eq!(c.expiry.max_lifetime, None);
        assert!(c.consistent_read);
    }

    #[test]
    fn every_setting_is_read() {
        let c = from(&[
            ("SESSION_TABLE", "t"),
            ("SESSION_KEY_ATTRIBUTE", "k"),
            ("SESSION_IDLE_TTL_SECONDS", "60"),
            ("SESSION_MAX_LIFETIME_SECONDS", "3600"),
            ("SESSION_CONSISTENT_READ", "false"),
            ("SESSION_CODEC", "json"),
            ("SESSION_MAX_BYTES", "1000"),
            ("SESSION_UPDATE_ATTEMPTS", "3"),
            ("SESSION_TOUCH_INTERVAL_SECONDS", "0"),
            ("SESSION_TOMBSTONE_GRACE_SECONDS", "3600"),
        ])
        .unwrap();
        assert_eq!(c.tombstone_grace, Duration::from_secs(3600));
        assert_eq!(c.table_name, "t");
        assert_eq!(c.key_attribute, "k");
        assert_eq!(c.expiry.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.expiry.max_lifetime, Some(Duration::from_secs(3600)));
        assert!(!c.consistent_read);
        assert_eq!(c.max_session_bytes, 1000);
        assert_eq!(c.update_attempts, 3);
        assert_eq!(c.touch_interval, Duration::ZERO);
    }

    #[test]
    fn the_django_codec_takes_its_keys_from_the_environment_or_a_parameter() {
        let c = from(&[
            ("SESSION_CODEC", "django"),
            ("DJANGO_SECRET_KEY", "new"),
            ("DJANGO_SECRET_KEY_FALLBACKS", "old, older,"),
        ])
        .unwrap();
        let keys = DjangoKeys {
            secret_key: Secret::new("new"),
            fallbacks: vec![Secret::new("old"), Secret::new("older")],
        };
        assert_eq!(c.codec, CodecConfig::Django(DjangoSecrets::Keys(keys)));
        let c = from(&[
            ("SESSION_CODEC", "django"),
            ("DJANGO_SECRET_KEY_PARAMETER", "/sessions/django-secret"),
        ])
        .unwrap();
        assert_eq!(
            c.codec,
            CodecConfig::Django(DjangoSecrets::Parameter("/sessions/django-secret".into()))
        );
        let both = from(&[
            ("SESSION_CODEC", "django"),
            ("DJANGO_SECRET_KEY", "k"),
            ("DJANGO_SECRET_KEY_PARAMETER", "p"),
        ]);
        assert_eq!(both.unwrap_err().name, "DJANGO_SECRET_KEY_PARAMETER");
        let neither = from(&[("SESSION_CODEC", "django")]);
        assert_eq!(neither.unwrap_err().name, "DJANGO_SECRET_KEY");
        assert!(format!("{c:?}").contains("django-secret"));
    }

    #[test]
    fn the_region_is_unset_by_default_and_for_an_empty_value() {
        let with = |v: &str| {
            StoreConfig::from_lookup(|name| (name == "SESSION_REGION").then(|| v.into()))
                .unwrap()
                .region
        };
        assert_eq!(StoreConfig::default().region, None);
        assert_eq!(with(""), None, "the template's value for a single table");
        assert_eq!(with("eu-west-1").as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn the_cap_per_principal_is_unset_by_default_and_refused_outside_its_range() {
        let with = |v: &str| {
            StoreConfig::from_lookup(|name| (name == "SESSION_MAX_PER_PRINCIPAL").then(|| v.into()))
        };
        assert_eq!(StoreConfig::default().max_per_principal, None);
        assert_eq!(
            with("").unwrap().max_per_principal,
            None,
            "the template's empty default"
        );
        assert_eq!(with("5").unwrap().max_per_principal, Some(5));
        assert_eq!(with("99").unwrap().max_per_principal, Some(99));
        for bad in ["0", "100", "-1", "many"] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.name, "SESSION_MAX_PER_PRINCIPAL", "{bad}");
        }
    }

    #[test]
    fn functions_that_only_read_data_get_no_key_and_read_django_data_unverified() {
        let env = HashMap::from([
            ("SESSION_CODEC", "django"),
            ("DJANGO_SECRET_KEY", "new"),
            ("SESSION_TABLE", "t"),
        ]);
        let c = StoreConfig::reader_from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.codec, CodecConfig::Django(DjangoSecrets::Unverified));
        assert_eq!(c.table_name, "t");
        assert!(!format!("{c:?}").contains("new"));
        let json = StoreConfig::reader_from_lookup(|_| None).unwrap();
        assert_eq!(json.codec, CodecConfig::Json);
        let bad = StoreConfig::reader_from_lookup(|k| (k == "SESSION_CODEC").then(|| "x".into()));
        assert_eq!(bad.unwrap_err().name, "SESSION_CODEC");
    }

    #[test]
    fn cleanup_settings_have_defaults_and_are_checked() {
        let none = |_: &str| None;
        assert_eq!(
            CleanupConfig::from_lookup(none).unwrap(),
            CleanupConfig::default()
        );
        let env: HashMap<&str, &str> = HashMap::from([
            ("CLEANUP_SEGMENTS", "2"),
            ("CLEANUP_WRITES_PER_SECOND", "50"),
            ("CLEANUP_LEGACY_AGE_SECONDS", "3600"),
        ]);
        let c = CleanupConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.segments, 2);
        assert_eq!(c.writes_per_second, 50);
        assert_eq!(c.legacy_age, Duration::from_secs(3600));
        let bad = CleanupConfig::from_lookup(|k| (k == "CLEANUP_SEGMENTS").then(|| "0".into()));
        assert_eq!(bad.unwrap_err().name, "CLEANUP_SEGMENTS");
    }

    /// The names each reader asks for, so the lists the template is checked against
    /// cannot drift from the code.
    fn names_read(read: impl Fn(&dyn Fn(&str) -> Option<String>)) -> Vec<String> {
        let asked = std::cell::RefCell::new(Vec::new());
        read(&|name: &str| {
            asked.borrow_mut().push(name.to_owned());
            None
        });
        let mut names = asked.into_inner();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn the_variable_lists_name_exactly_what_is_read() {
        let sorted = |list: &[&str]| {
            let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let store = names_read(|f| drop(StoreConfig::from_lookup(f)));
        assert_eq!(store, sorted(StoreConfig::VARIABLES));
        let reader = names_read(|f| drop(StoreConfig::reader_from_lookup(f)));
        let mut without_keys = sorted(StoreConfig::VARIABLES);
        without_keys.retain(|v| !StoreConfig::KEY_VARIABLES.contains(&v.as_str()));
        assert_eq!(reader, without_keys);
        let cleanup = names_read(|f| drop(CleanupConfig::from_lookup(f)));
        assert_eq!(cleanup, sorted(CleanupConfig::VARIABLES));
    }

    #[test]
    fn the_access_log_writes_every_line_unless_told_otherwise() {
        let none = |_: &str| None;
        assert_eq!(
            AccessLogConfig::from_lookup(none).unwrap(),
            AccessLogConfig::default()
        );
        let env = HashMap::from([
            ("ACCESS_LOG_SAMPLE_RATE", "0.1"),
            ("ACCESS_LOG_SLOW_MS", "250"),
        ]);
        let c = AccessLogConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.sample_rate, 0.1);
        assert_eq!(c.slow, Duration::from_millis(250));
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            let err = AccessLogConfig::from_lookup(|k| {
                (k == "ACCESS_LOG_SAMPLE_RATE").then(|| bad.to_owned())
            });
            assert_eq!(err.unwrap_err().name, "ACCESS_LOG_SAMPLE_RATE", "{bad}");
        }
        let names = names_read(|f| drop(AccessLogConfig::from_lookup(f)));
        assert_eq!(names, vec!["ACCESS_LOG_SAMPLE_RATE", "ACCESS_LOG_SLOW_MS"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("SESSION_IDLE_TTL_SECONDS", "soon"),
            ("SESSION_IDLE_TTL_SECONDS", "0"),
            ("SESSION_MAX_LIFETIME_SECONDS", "-5"),
            ("SESSION_CONSISTENT_READ", "maybe"),
            ("SESSION_CODEC", "pickle"),
            ("SESSION_MAX_BYTES", "500000"),
            ("SESSION_UPDATE_ATTEMPTS", "0"),
            ("SESSION_TOMBSTONE_GRACE_SECONDS", "59"),
            ("SESSION_TOMBSTONE_GRACE_SECONDS", "31536001"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name, "{value}");
        }
    }
}
