//! The functions' binary sizes: this machine's release build, and arm64 from `make build`
//! when it has run.

use serde_json::{Value, json};

use crate::figures::Error;
use crate::fixture::Bench;

/// The deployed functions, and their resources in template.yaml (`sam build`'s folders).
pub fn binaries(b: &Bench) -> Result<Value, Error> {
    let mut native = serde_json::Map::new();
    let mut arm64 = serde_json::Map::new();
    for (name, sam) in [
        ("session-api", "SessionApiFunction"),
        ("session-cleanup", "SessionCleanupFunction"),
        ("session-auditor", "SessionAuditorFunction"),
    ] {
        native.insert(name.into(), json!(std::fs::metadata(b.binary(name))?.len()));
        let built = b.root.join(".aws-sam/build").join(sam).join("bootstrap");
        if let Ok(m) = std::fs::metadata(built) {
            arm64.insert(name.into(), json!(m.len()));
        }
    }
    Ok(json!({
        "native": { "arch": std::env::consts::ARCH, "bytes": native },
        "arm64_from_make_build": if arm64.is_empty() { Value::Null } else { Value::Object(arm64) },
    }))
}
