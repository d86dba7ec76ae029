//! Django's signed session format, so a Django site and this service can share a table
//! (docs/django.md). Encoding follows `django.core.signing.dumps`
//! with `compress=True` and the JSON serializer; decoding follows `signing.loads`,
//! including the fallback keys that make key rotation possible.

use std::fmt;
use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::codec::{Codec, DecodeError, EncodeError};
use crate::expiry::{Expiry, MAX_IDLE_TIMEOUT};
use crate::session::SessionData;

/// The salt of Django's session backends, and of the seed's.
pub const SESSION_SALT: &str = "django.contrib.sessions.SessionStore";
/// Where Django keeps a session's own expiry inside its data.
pub const EXPIRY_KEY: &str = "_session_expiry";
/// Where Django keeps the logged-in user's id (`django.contrib.auth.SESSION_KEY`).
pub const AUTH_USER_KEY: &str = "_auth_user_id";
/// The rule of a negative `_session_expiry`: a fixed time long past.
const ALREADY_EXPIRED: Timestamp = Timestamp::from_epoch_seconds(0);
/// The default limit on a payload's size once inflated (`SESSION_MAX_DECOMPRESSED_BYTES`).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 1024 * 1024;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Python's `urlsafe_b64decode` after Django re-pads: padding is optional.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A secret that never shows up in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `SECRET_KEY` and `SECRET_KEY_FALLBACKS`, as a Django site has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoKeys {
    pub secret_key: Secret,
    pub fallbacks: Vec<Secret>,
}

impl DjangoKeys {
    /// Reads the value of a secret parameter: the current key on the first line, each
    /// fallback on a line of its own. Django's keys hold no line breaks.
    pub fn from_lines(text: &str) -> Option<Self> {
        let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
        let secret_key = Secret::new(lines.next()?);
        Some(Self {
            secret_key,
            fallbacks: lines.map(Secret::new).collect(),
        })
    }
}

/// Why a Django value did not decode; never holds any of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DjangoError {
    #[error("no signature")]
    Unsigned,
    #[error("the signature does not match any key")]
    BadSignature,
    #[error("the timestamp is not base 62")]
    BadTimestamp,
    #[error("the payload is not URL-safe base64")]
    BadBase64,
    #[error("the payload is not valid zlib")]
    BadZlib,
    #[error("the payload inflates past {limit} bytes")]
    OverCap { limit: usize },
}

/// The one place session data is inflated: zlib, stopped as soon as the output passes
/// `limit`, so a small bomb costs at most `limit + 1` bytes and the time to make them.
pub fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DjangoError> {
    let mut out = Vec::new();
    inflate_into(compressed, limit, &mut out)?;
    Ok(out)
}

fn inflate_into(compressed: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DjangoError> {
    flate2::read::ZlibDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(out)
        .map_err(|_| DjangoError::BadZlib)?;
    if out.len() > limit {
        return Err(DjangoError::OverCap { limit });
    }
    Ok(())
}

/// The `django` codec: signed, optionally compressed JSON.
pub struct DjangoCodec {
    /// HMAC keys: the current one first, then the fallbacks. `None` for a codec that
    /// reads without checking signatures and cannot sign ([`DjangoCodec::unverified`]).
    keys: Option<Vec<[u8; 32]>>,
    /// The largest payload, as JSON text, that it reads or writes.
    max_decompressed: usize,
}

impl fmt::Debug for DjangoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DjangoCodec")
            .field("keys", &self.keys.as_ref().map(Vec::len))
            .field("max_decompressed", &self.max_decompressed)
            .finish()
    }
}

impl DjangoCodec {
    /// Reads data without checking its signature, and refuses to write: for the
    /// functions that only read what the data says (the cleanup reads
    /// `_session_expiry`, the auditor the names of the data's keys) and so are never
    /// given the key. Anyone able to forge an item can write the table, and so could set
    /// `expires_at` or delete the item directly: a signature check there protects nothing.
    pub fn unverified() -> Self {
        Self {
            keys: None,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }

    /// The same codec with another limit on the payload's size as JSON text.
    pub fn with_max_decompressed(self, limit: usize) -> Self {
        Self {
            max_decompressed: limit,
            ..self
        }
    }

    pub fn new(keys: &DjangoKeys) -> Self {
        Self::with_salt(keys, SESSION_SALT)
    }

    pub fn with_salt(keys: &DjangoKeys, salt: &str) -> Self {
        let derive = |secret: &Secret| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(salt.as_bytes());
            h.update(b"signer");
            h.update(secret.expose().as_bytes());
            h.finalize().into()
        };
        let keys = std::iter::once(&keys.secret_key)
            .chain(&keys.fallbacks)
            .map(derive)
            .collect();
        Self {
            keys: Some(keys),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }

    fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; a 32-byte key cannot be refused.
        match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }

    /// `value:signature` under the current key, as Django's signer writes it.
    pub fn sign(&self, value: &str) -> Result<String, EncodeError> {
        let key = self
            .keys
            .as_ref()
            .and_then(|keys| keys.first())
            .ok_or(EncodeError::NoKey)?;
        let mut mac = Self::mac(key);
        mac.update(value.as_bytes());
        let signature = general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{value}:{signature}"))
    }

    /// The signed value, checked against every key in constant time (not checked at
    /// all by an [`unverified`](Self::unverified) codec).
    fn unsign<'a>(&self, raw: &'a str) -> Result<&'a str, DjangoError> {
        let (value, signature) = raw.rsplit_once(':').ok_or(DjangoError::Unsigned)?;
        let Some(keys) = &self.keys else {
            return Ok(value);
        };
        let Ok(tag) = B64_DECODE.decode(signature) else {
            return Err(DjangoError::BadSignature);
        };
        let verified = keys.iter().any(|key| {
            let mut mac = Self::mac(key);
            mac.update(value.as_bytes());
            mac.verify_slice(&tag).is_ok()
        });
        if verified {
            Ok(value)
        } else {
            Err(DjangoError::BadSignature)
        }
    }

    /// The JSON text inside a signed value, and when it was signed.
    pub fn open(&self, raw: &str) -> Result<(String, Timestamp), DjangoError> {
        let value = self.unsign(raw)?;
        let (payload, stamp) = value.rsplit_once(':').ok_or(DjangoError::BadTimestamp)?;
        let signed_at = b62_decode(stamp).ok_or(DjangoError::BadTimestamp)?;
        let (compressed, payload) = match payload.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        let bytes = B64_DECODE
            .decode(payload)
            .map_err(|_| DjangoError::BadBase64)?;
        let limit = self.max_decompressed;
        let bytes = if compressed {
            inflate(&bytes, limit)?
        } else if bytes.len() > limit {
            return Err(DjangoError::OverCap { limit });
        } else {
            bytes
        };
        Ok((latin1(bytes), Timestamp::from_epoch_seconds(signed_at)))
    }
}

impl Codec for DjangoCodec {
    fn encode(&self, data: &SessionData, now: Timestamp) -> Result<String, EncodeError> {
        let json = ascii_json(data);
        if json.len() > self.max_decompressed {
            return Err(EncodeError::OverCap {
                size: json.len(),
                limit: self.max_decompressed,
            });
        }
        let compressed = zlib(json.as_bytes());
        let payload = match compressed {
            Some(z) if z.len() < json.len().saturating_sub(1) => {
                format!(".{}", general_purpose::URL_SAFE_NO_PAD.encode(z))
            }
            _ => general_purpose::URL_SAFE_NO_PAD.encode(json.as_bytes()),
        };
        self.sign(&format!("{payload}:{}", b62_encode(now.epoch_seconds())))
    }

    fn decode(&self, raw: &str) -> Result<SessionData, DecodeError> {
        let (json, _) = self.open(raw).map_err(|e| match e {
            DjangoError::OverCap { limit } => DecodeError::OverCap { limit },
            other => DecodeError::Django(other.to_string()),
        })?;
        match serde_json::from_str(&json).map_err(|_| DecodeError::Json)? {
            Value::Object(map) => Ok(map),
            _ => Err(DecodeError::NotAnObject),
        }
    }

    fn has_expiry_in_data(&self) -> bool {
        true
    }

    fn shares_table_with_django(&self) -> bool {
        true
    }

    /// Django stores the id as a string; a number is read as its digits.
    fn principal_in(&self, data: &SessionData) -> Option<String> {
        match data.get(AUTH_USER_KEY)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn expiry_of(&self, data: &SessionData) -> Option<Expiry> {
        Some(match data.get(EXPIRY_KEY) {
            // Django adds the number to the last modification: a negative one has
            // expired whenever that was.
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n < 0) => {
                Expiry::At(ALREADY_EXPIRED)
            }
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) | None => Expiry::Default,
                Some(secs) => Expiry::IdleFor(Duration::from_secs(secs).min(MAX_IDLE_TIMEOUT)),
            },
            Some(Value::String(s)) => parse_isoformat(s).map_or(Expiry::Default, Expiry::At),
            _ => Expiry::Default,
        })
    }

    fn set_expiry(&self, data: &mut SessionData, rule: Expiry) {
        match rule {
            Expiry::Default => {
                data.remove(EXPIRY_KEY);
            }
            Expiry::IdleFor(d) => {
                data.insert(EXPIRY_KEY.into(), Value::from(d.as_secs()));
            }
            Expiry::At(t) => {
                if let Some(text) = isoformat(t) {
                    data.insert(EXPIRY_KEY.into(), Value::String(text));
                }
            }
        }
    }
}

/// Compact JSON with everything outside printable ASCII escaped, as Python's
/// `json.dumps(separators=(",", ":"))` writes it: Django reads the bytes as Latin-1.
pub fn ascii_json(data: &SessionData) -> String {
    // A map of JSON values always serialises.
    let text = serde_json::to_string(data).unwrap_or_else(|_| String::from("{}"));
    if text.bytes().all(|b| b < 0x7f) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut units = [0u16; 2];
    for c in text.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            // Outside strings JSON is pure ASCII, so every such char is inside one.
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn zlib(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes).ok()?;
    z.finish().ok()
}

/// Bytes read as Latin-1, as Django's JSON serializer reads them.
fn latin1(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => ascii,
        Ok(text) => text.bytes().map(char::from).collect(),
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    }
}

pub fn b62_encode(n: i64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    let mut rest = n.unsigned_abs();
    while rest > 0 {
        digits.push(BASE62[(rest % 62) as usize]);
        rest /= 62;
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

pub fn b62_decode(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = BASE62.iter().position(|&x| x == b)?;
        n = n.checked_mul(62)?.checked_add(d as i64)?;
    }
    Some(if negative { -n } else { n })
}

/// `datetime.isoformat()` of an aware UTC time with whole seconds.
pub fn isoformat(t: Timestamp) -> Option<String> {
    let dt = time::OffsetDateTime::from_unix_timestamp(t.epoch_seconds()).ok()?;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    dt.format(&format).ok()
}

/// What `datetime.fromisoformat` reads in practice: `T` or space between date and
/// time, optional fraction, an offset or `Z`; a time without an offset is taken as UTC.
pub fn parse_isoformat(s: &str) -> Option<Timestamp> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let mut text = s.to_owned();
    if text.len() > 10 && text.as_bytes()[10] == b' ' {
        text.replace_range(10..11, "T");
    }
    let parsed = time::OffsetDateTime::parse(&text, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{text}+00:00"), &Rfc3339))
        .ok()?;
    Some(Timestamp::from_epoch_seconds(parsed.unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str, fallbacks: &[&str]) -> DjangoKeys {
        DjangoKeys {
            secret_key: Secret::new(secret),
            fallbacks: fallbacks.iter().map(|f| Secret::new(*f)).collect(),
        }
    }

    #[test]
    fn base62_matches_django() {
        assert_eq!(b62_encode(0), "0");
        assert_eq!(b62_encode(1_700_000_000), "1r31eq");
        assert_eq!(b62_encode(-61), "-z");
        assert_eq!(b62_decode("1r31eq"), Some(1_700_000_000));
        assert_eq!(b62_decode("-z"), Some(-61));
        assert_eq!(b62_decode(""), None);
        assert_eq!(b62_decode("a+b"), None);
        assert_eq!(b62_decode("zzzzzzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn non_ascii_is_escaped_like_python() {
        let data: SessionData =
            serde_json::from_str(r#"{"u":"Grüße 🚀","c":"\u007f\u0001\n"}"#).unwrap();
        assert_eq!(
            ascii_json(&data),
            r#"{"u":"Gr\u00fc\u00dfe \ud83d\ude80","c":"\u007f\u0001\n"}"#
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let k = keys("hunter2-secret", &["old-secret"]);
        let shown = format!("{k:?} {:?}", DjangoCodec::new(&k));
        assert!(
            !shown.contains("hunter2") && !shown.contains("old-secret"),
            "{shown}"
        );
    }

    #[test]
    fn parameter_values_hold_the_key_then_the_fallbacks() {
        let k = DjangoKeys::from_lines("new-key\r\nold-key\n\nolder-key\n").unwrap();
        assert_eq!(k, keys("new-key", &["old-key", "older-key"]));
        assert_eq!(DjangoKeys::from_lines("\n\n"), None);
    }

    #[test]
    fn session_expiry_reads_as_django_means_it() {
        let codec = DjangoCodec::new(&keys("s", &[]));
        let rule = |v: Value| {
            let mut d = SessionData::new();
            d.insert(EXPIRY_KEY.into(), v);
            codec.expiry_of(&d)
        };
        assert_eq!(codec.expiry_of(&SessionData::new()), Some(Expiry::Default));
        assert_eq!(rule(Value::Null), Some(Expiry::Default));
        assert_eq!(rule(0.into()), Some(Expiry::Default));
        assert_eq!(
            rule(300.into()),
            Some(Expiry::IdleFor(Duration::from_secs(300)))
        );
        let at = Some(Expiry::At(Timestamp::from_epoch_seconds(1_800_009_000)));
        for text in [
            "2027-01-15T10:30:00+00:00",
            "2027-01-15T11:30:00+01:00",
            "2027-01-15 10:30:00",
            "2027-01-15T10:30:00.250000Z",
        ] {
            assert_eq!(rule(text.into()), at, "{text}");
        }
        assert_eq!(rule("next tuesday".into()), Some(Expiry::Default));
        assert_eq!(rule((-1).into()), Some(Expiry::At(ALREADY_EXPIRED)));
    }

    #[test]
    fn expiry_rules_are_written_back_as_django_writes_them() {
        let codec = DjangoCodec::new(&keys("s", &[]));
        let mut d = SessionData::new();
        codec.set_expiry(&mut d, Expiry::IdleFor(Duration::from_secs(60)));
        assert_eq!(d[EXPIRY_KEY], Value::from(60u64));
        let t = Timestamp::from_epoch_seconds(1_800_009_000);
        codec.set_expiry(&mut d, Expiry::At(t));
        assert_eq!(d[EXPIRY_KEY], "2027-01-15T10:30:00+00:00");
        assert_eq!(codec.expiry_of(&d), Some(Expiry::At(t)));
        codec.set_expiry(&mut d, Expiry::Default);
        assert!(!d.contains_key(EXPIRY_KEY));
    }

    #[test]
    fn anything_tampered_or_malformed_fails_to_decode() {
        let codec = DjangoCodec::new(&keys("s", &[]));
        let mut data = SessionData::new();
        data.insert("a".into(), 1.into());
        let good = codec
            .encode(&data, Timestamp::from_epoch_seconds(5))
            .unwrap();
        assert_eq!(codec.decode(&good), Ok(data));
        let flipped = good.replacen("eyJ", "eyK", 1);
        for bad in ["", "abc", "e30:1r31eq", &flipped, &format!("{good}x")] {
            assert!(codec.decode(bad).is_err(), "{bad}");
        }
        let other = DjangoCodec::new(&keys("other", &[]));
        assert_eq!(other.open(&good), Err(DjangoError::BadSignature));
        assert!(matches!(other.decode(&good), Err(DecodeError::Django(_))));
    }

    /// A signed value whose payload is `bytes` of spaces, zlib-compressed.
    fn bomb(codec: &DjangoCodec, bytes: usize) -> String {
        let z = zlib(&vec![b' '; bytes]).unwrap();
        let signed = format!(".{}:0", general_purpose::URL_SAFE_NO_PAD.encode(z));
        codec.sign(&signed).unwrap()
    }

    #[test]
    fn a_zlib_bomb_is_refused_once_it_inflates_past_the_cap_and_not_inflated_further() {
        let codec = DjangoCodec::new(&keys("s", &[]));
        // 16 MiB of spaces compress to about 16 KB.
        let raw = bomb(&codec, 16 * 1024 * 1024);
        assert!(raw.len() < 32 * 1024, "{} bytes", raw.len());
        let over = DjangoError::OverCap {
            limit: DEFAULT_MAX_DECOMPRESSED_BYTES,
        };
        assert_eq!(codec.open(&raw).unwrap_err(), over);
        assert_eq!(DjangoCodec::unverified().open(&raw).unwrap_err(), over);
        assert_eq!(
            codec.decode(&raw),
            Err(DecodeError::OverCap {
                limit: DEFAULT_MAX_DECOMPRESSED_BYTES
            })
        );
        // Inflating stops one byte past the cap, whatever the payload would make.
        let z = zlib(&vec![b' '; 16 * 1024 * 1024]).unwrap();
        assert_eq!(inflate(&z, 1000), Err(DjangoError::OverCap { limit: 1000 }));
        let mut made = Vec::new();
        assert!(inflate_into(&z, 1000, &mut made).is_err());
        assert_eq!(made.len(), 1001, "not a byte more than the cap and one");
        assert_eq!(
            inflate(&z[..], 16 * 1024 * 1024).map(|v| v.len()),
            Ok(16 * 1024 * 1024)
        );
        // A smaller cap of its own, and one the payload fits.
        let small = DjangoCodec::new(&keys("s", &[])).with_max_decompressed(100);
        assert!(matches!(
            small.open(&bomb(&small, 101)),
            Err(DjangoError::OverCap { limit: 100 })
        ));
        assert!(small.open(&bomb(&small, 100)).is_ok());
    }

    #[test]
    fn data_whose_text_is_over_the_cap_is_never_written() {
        let codec = DjangoCodec::new(&keys("s", &[])).with_max_decompressed(1000);
        let mut data = SessionData::new();
        data.insert("a".into(), "x".repeat(2000).into());
        assert_eq!(
            codec.encode(&data, Timestamp::from_epoch_seconds(5)),
            Err(EncodeError::OverCap {
                size: 2008,
                limit: 1000
            })
        );
    }

    #[test]
    fn the_unverified_codec_reads_what_any_key_signed_and_writes_nothing() {
        let mut data = SessionData::new();
        data.insert(EXPIRY_KEY.into(), 600.into());
        data.insert("cart".into(), "é".into());
        let now = Timestamp::from_epoch_seconds(5);
        let reader = DjangoCodec::unverified();
        for key in ["s", "another"] {
            let raw = DjangoCodec::new(&keys(key, &[]))
                .encode(&data, now)
                .unwrap();
            assert_eq!(reader.decode(&raw), Ok(data.clone()));
            assert_eq!(
                reader.expiry_in_data(&raw),
                Some(Expiry::IdleFor(Duration::from_secs(600)))
            );
        }
        assert_eq!(reader.encode(&data, now), Err(EncodeError::NoKey));
        assert_eq!(reader.sign("value"), Err(EncodeError::NoKey));
        assert_eq!(reader.open("no-signature"), Err(DjangoError::Unsigned));
        assert!(reader.decode("!!:0:sig").is_err());
    }
}
