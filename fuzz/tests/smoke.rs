//! The short fuzz run of `make test`: every committed corpus file of each target, then
//! seeded random mutations of them (`FUZZ_SMOKE_RUNS` per target, default 5,000), so
//! that the run is the same each time and a failure names the input that caused it.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

/// Tokens the mutations splice in, so that the inputs stay near the formats' grammar.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\\u0000",
    b"\\ud800",
    b"\x00",
    b"\xff",
    b".",
    b"_session_expiry",
    b"\"S\"",
    b"\"N\"",
    b"Records",
    b"NewImage",
    b"OldImage",
    b"SequenceNumber",
    b"eventName",
    b"REMOVE",
];

/// xorshift64*: a fixed seed gives the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = rng.next() as u8;
            }
            2 => input.insert(at, rng.next() as u8),
            3 if !input.is_empty() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            _ => {
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
        }
    }
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
        .collect()
}

fn smoke(target: &str, check: Target) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "the {target} corpus is empty");
    for (path, bytes) in &seeds {
        if std::panic::catch_unwind(|| check(bytes)).is_err() {
            panic!("{target} failed on {}", path.display());
        }
    }
    let runs: usize = std::env::var("FUZZ_SMOKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let mut rng = Rng(0x5e55_1011_f022 ^ target.len() as u64);
    for run in 0..runs {
        let mut input = seeds[rng.below(seeds.len())].1.clone();
        let other = &seeds[rng.below(seeds.len())].1;
        mutate(&mut rng, &mut input, other);
        if std::panic::catch_unwind(|| check(&input)).is_err() {
            panic!("{target} failed on mutation {run}: {input:?}");
        }
    }
    eprintln!(
        "{target}: {} corpus files and {runs} mutations passed",
        seeds.len()
    );
}

#[test]
fn session_keys_parse_only_when_well_formed() {
    smoke("session_key", session_fuzz::session_key);
}

#[test]
fn django_values_decode_without_panic_and_round_trip() {
    smoke("django_decode", session_fuzz::django_decode);
}

#[test]
fn requests_parse_to_an_operation_or_a_client_error() {
    smoke("api_request", session_fuzz::api_request);
}

#[test]
fn stream_events_are_audited_or_their_failure_reported() {
    smoke("stream_record", session_fuzz::stream_record);
}
