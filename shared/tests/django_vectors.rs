//! The four vectors Django itself produced (`fixtures/django-vectors.json`).

use serde_json::Value;
use session_store::django::{DjangoCodec, DjangoKeys, Secret, ascii_json, b62_encode};
use session_store::{Codec, SessionData, Timestamp};

struct Vector {
    v: Value,
}

impl Vector {
    fn all() -> Vec<Vector> {
        let text = include_str!("fixtures/django-vectors.json");
        let list: Vec<Value> = serde_json::from_str(text).unwrap();
        assert_eq!(list.len(), 4);
        list.into_iter().map(|v| Vector { v }).collect()
    }

    fn str(&self, field: &str) -> &str {
        self.v[field].as_str().unwrap()
    }

    fn codec(&self, fallbacks: &[&str]) -> DjangoCodec {
        let keys = DjangoKeys {
            secret_key: Secret::new(self.str("secret")),
            fallbacks: fallbacks.iter().map(|f| Secret::new(*f)).collect(),
        };
        DjangoCodec::with_salt(&keys, self.str("salt"))
    }

    fn dict(&self) -> SessionData {
        // Through text, so that numbers carry the same representation as decoded ones.
        serde_json::from_str(&self.v["dict"].to_string()).unwrap()
    }

    fn timestamp(&self) -> Timestamp {
        Timestamp::from_epoch_seconds(self.v["timestamp"].as_i64().unwrap())
    }
}

#[test]
fn every_vector_decodes_to_its_dictionary() {
    for v in Vector::all() {
        let decoded = v.codec(&[]).decode(v.str("encoded")).unwrap();
        assert_eq!(
            Value::Object(decoded),
            Value::Object(v.dict()),
            "{}",
            v.str("encoded")
        );
    }
}

#[test]
fn uncompressed_vectors_encode_byte_for_byte() {
    let plain: Vec<Vector> = Vector::all()
        .into_iter()
        .filter(|v| v.v["compressed"] == false)
        .collect();
    assert_eq!(plain.len(), 2);
    for v in plain {
        assert_eq!(
            v.codec(&[]).encode(&v.dict(), v.timestamp()).unwrap(),
            v.str("encoded")
        );
    }
}

#[test]
fn the_intermediate_values_match_for_every_vector() {
    for v in Vector::all() {
        assert_eq!(ascii_json(&v.dict()), v.str("json"));
        assert_eq!(
            b62_encode(v.timestamp().epoch_seconds()),
            v.str("b62_timestamp")
        );
        assert!(v.str("encoded").starts_with(v.str("signed_value")));
        assert!(v.str("encoded").ends_with(v.str("signature")));
    }
}

#[test]
fn compressed_vectors_round_trip_and_compress() {
    for v in Vector::all()
        .into_iter()
        .filter(|v| v.v["compressed"] == true)
    {
        let codec = v.codec(&[]);
        let ours = codec.encode(&v.dict(), v.timestamp()).unwrap();
        assert!(ours.starts_with('.'), "{ours}");
        assert!(ours.contains(&format!(":{}:", v.str("b62_timestamp"))));
        assert_eq!(codec.decode(&ours).unwrap(), v.dict());
    }
}

#[test]
fn data_signed_with_a_fallback_key_reads() {
    for v in Vector::all() {
        let rotated = DjangoCodec::with_salt(
            &DjangoKeys {
                secret_key: Secret::new("the-new-secret"),
                fallbacks: vec![Secret::new("unrelated"), Secret::new(v.str("secret"))],
            },
            v.str("salt"),
        );
        assert_eq!(rotated.decode(v.str("encoded")).unwrap(), v.dict());
        // What the rotated codec writes is signed with the new key only.
        let fresh = rotated.encode(&v.dict(), v.timestamp()).unwrap();
        assert!(v.codec(&[]).decode(&fresh).is_err());
    }
}

#[test]
fn a_wrong_key_or_salt_is_refused() {
    for v in Vector::all() {
        let wrong_key = DjangoCodec::new(&DjangoKeys {
            secret_key: Secret::new("not-the-secret"),
            fallbacks: vec![],
        });
        assert!(wrong_key.decode(v.str("encoded")).is_err());
        let keys = DjangoKeys {
            secret_key: Secret::new(v.str("secret")),
            fallbacks: vec![],
        };
        assert!(
            DjangoCodec::with_salt(&keys, "other.salt")
                .decode(v.str("encoded"))
                .is_err()
        );
    }
}
