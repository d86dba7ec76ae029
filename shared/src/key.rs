//! Session keys: the only way into a session, so they must be unguessable and well-formed.

use std::fmt;

use sha2::{Digest, Sha256};

/// Length of a session key, as Django makes them.
pub const KEY_LENGTH: usize = 32;
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Why a string is not a session key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("a session key has {KEY_LENGTH} characters, this one has {0}")]
    Length(usize),
    #[error("a session key holds only lowercase letters a-z and digits 0-9")]
    Alphabet,
}

/// A session key that is known to be 32 characters of `[a-z0-9]`.
///
/// The inner string is private: every value was either generated from the OS CSPRNG or
/// checked by [`SessionKey::parse`], so no DynamoDB call ever sees a malformed key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl SessionKey {
    /// A fresh key from the operating system's CSPRNG (about 165 bits of entropy).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = String::with_capacity(KEY_LENGTH);
        let mut buf = [0u8; 64];
        while key.len() < KEY_LENGTH {
            getrandom::fill(&mut buf)?;
            // Rejection sampling: 252 = 7 * 36 keeps every character equally likely.
            for &b in buf.iter().filter(|&&b| b < 252) {
                if key.len() == KEY_LENGTH {
                    break;
                }
                key.push(char::from(ALPHABET[usize::from(b % 36)]));
            }
        }
        Ok(Self(key))
    }

    /// Checks the shape of a key that came from outside.
    pub fn parse(raw: &str) -> Result<Self, InvalidKey> {
        if raw.len() != KEY_LENGTH {
            return Err(InvalidKey::Length(raw.chars().count()));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(InvalidKey::Alphabet);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first `hex_digits` hex digits of the key's SHA-256: lets logs correlate
    /// requests for one session without revealing the key.
    pub fn fingerprint(&self, hex_digits: usize) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut out = String::with_capacity(hex_digits);
        for byte in digest.iter() {
            for nibble in [byte >> 4, byte & 0xf] {
                if out.len() == hex_digits {
                    return out;
                }
                out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            }
        }
        out
    }
}

/// Never prints the key itself, so a stray `{:?}` cannot leak it into logs.
impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey(sha256:{})", self.fingerprint(12))
    }
}

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_django_shape() {
        for _ in 0..200 {
            let key = SessionKey::generate().unwrap();
            assert_eq!(SessionKey::parse(key.as_str()), Ok(key.clone()));
        }
    }

    #[test]
    fn generated_keys_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            seen.extend(SessionKey::generate().unwrap().as_str().chars());
        }
        assert_eq!(seen.len(), 36);
    }

    #[test]
    fn keys_of_any_other_shape_are_rejected() {
        let bad = [
            "",
            "abcdefg",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
            "abcdefghijklmnopqrstuvwxyz0123456",
            "abcdefghijklmnopqrstuvwxyz01234é",
            "abcdefghijklmnopqrstuvwxyz01234-",
            "abcdefghijklmnopqrstuvwxyz01234 ",
        ];
        for raw in bad {
            assert!(SessionKey::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = SessionKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.as_str()));
        assert_eq!(key.fingerprint(12).len(), 12);
        assert!(shown.contains(&key.fingerprint(12)));
    }
}
