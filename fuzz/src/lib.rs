//! Fuzz targets of Bindery's input parsers, on stable Rust: proptest generates and
//! mutates inputs (no libFuzzer, which needs nightly).
//!
//! - [`targets`]: the three targets, each a `fn(&[u8])` that panics on a bug: the watch
//!   log reader (bytes of a log, through the oracle and the engine), the label selector
//!   parser (JSON), and the policy compiler (a policy file, and a JSON `spec` through
//!   the engine and the oracle, which must agree).
//! - [`run`]: replays a target's corpus (`fuzz/corpus/<target>/`), then runs it on
//!   mutated corpus entries and generated inputs, for a number of cases or seconds. A
//!   failing input is shrunk, saved under `fuzz/crashes/` and reported; copied into
//!   the corpus it becomes a regression test.
//!
//! `cargo test -p bindery-fuzz` runs each target briefly (the corpus, and 64 cases);
//! `scripts/fuzz.sh SECONDS` runs each for about SECONDS.

pub mod targets;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

/// The fuzz crate's directory.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus of `target`: every file of `fuzz/corpus/<target>/`, sorted by name.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Byte sequences that often matter to JSON, YAML and the log format.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-",
    b"1e999",
    b"-0",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\x00",
    b"- ",
    b"? ",
    b"&a ",
    b"*a",
    b"!!str ",
    b"---\n",
    b"#",
];

/// One edit of a mutation: where, what, with which byte, and a second position.
type Edit = (Index, u8, u8, Index);

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for (at, op, byte, other) in edits {
        let len = bytes.len();
        let i = if len == 0 { 0 } else { at.index(len) };
        match op % 7 {
            0 if len > 0 => bytes[i] ^= byte | 1,
            1 => bytes.insert(i, *byte),
            2 if len > 0 => {
                let end = (i + 1 + usize::from(byte % 32)).min(len);
                bytes.drain(i..end);
            }
            3 => bytes.truncate(i),
            4 if len > 0 => {
                // Copy a chunk from elsewhere to here.
                let from = other.index(len);
                let end = (from + 1 + usize::from(*byte)).min(len);
                let chunk = bytes[from..end].to_vec();
                bytes.splice(i..i, chunk);
            }
            5 | 6 => {
                let token = TOKENS[other.index(TOKENS.len())];
                bytes.splice(i..i, token.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

/// Inputs derived from `seeds`: an entry with up to 8 random edits, mostly; some
/// random bytes.
pub fn mutated(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let seeds = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds
    };
    let edits = prop::collection::vec(
        (any::<Index>(), any::<u8>(), any::<u8>(), any::<Index>()),
        0..8,
    );
    prop_oneof![
        9 => (any::<Index>(), edits).prop_map(move |(which, edits)| {
            mutate(seeds[which.index(seeds.len())].clone(), &edits)
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

/// How long or how much to fuzz: `BINDERY_FUZZ_SECONDS` (seconds, per target), else
/// `BINDERY_FUZZ_CASES` cases (default 64, a brief run for `cargo test`).
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// About this long.
    Time(Duration),
    /// This many cases.
    Cases(u32),
}

impl Budget {
    /// The budget the environment asks for.
    pub fn from_env() -> Budget {
        let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<f64>().ok());
        match (var("BINDERY_FUZZ_SECONDS"), var("BINDERY_FUZZ_CASES")) {
            (Some(s), _) if s.is_finite() && s > 0.0 => Budget::Time(Duration::from_secs_f64(s)),
            (_, Some(n)) if n >= 1.0 => Budget::Cases(n.min(f64::from(u32::MAX)) as u32),
            _ => Budget::Cases(64),
        }
    }
}

/// Runs `target` on every corpus entry of `name`, then on inputs of `strategy` within
/// `budget`. Panics (naming the input, saved under `fuzz/crashes/`) on a failure.
pub fn run(name: &str, target: fn(&[u8]), strategy: BoxedStrategy<Vec<u8>>, budget: Budget) {
    for (path, bytes) in corpus(name) {
        if let Err(panic) = std::panic::catch_unwind(|| target(&bytes)) {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: corpus entry {} fails: {what}", path.display());
        }
    }
    // A fixed seed by default (`cargo test` is reproducible); `BINDERY_FUZZ_SEED` varies it.
    let seed: u64 = std::env::var("BINDERY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let started = Instant::now();
    let (batches, batch_cases) = match budget {
        Budget::Cases(n) => (1, n),
        Budget::Time(_) => (u64::MAX, 256),
    };
    let mut cases = 0u64;
    for batch in 0..batches {
        if let Budget::Time(t) = budget
            && started.elapsed() >= t
        {
            break;
        }
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
        rng_seed[8..16].copy_from_slice(&batch.to_le_bytes());
        rng_seed[16..24].copy_from_slice(&fnv(name.as_bytes()).to_le_bytes());
        let config = Config {
            cases: batch_cases,
            failure_persistence: None,
            max_shrink_time: 60_000,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed));
        let result = runner.run(&strategy, |input| {
            target(&input);
            Ok(())
        });
        cases += u64::from(batch_cases);
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => {
                let saved = save_crash(name, &input);
                panic!(
                    "{name}: fuzz input fails ({reason}); saved as {} ({} bytes: {:?}). \
                     Copy it into fuzz/corpus/{name}/ once fixed, as a regression test.",
                    saved.display(),
                    input.len(),
                    String::from_utf8_lossy(&input[..input.len().min(400)])
                );
            }
            Err(TestError::Abort(reason)) => panic!("{name}: fuzzing aborted: {reason}"),
        }
    }
    eprintln!(
        "{name}: {cases} cases in {:.1} s, no failure",
        started.elapsed().as_secs_f64()
    );
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn save_crash(name: &str, input: &[u8]) -> PathBuf {
    let dir = fuzz_dir().join("crashes");
    let path = dir.join(format!("{name}-{:016x}", fnv(input)));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    if let Err(e) = saved {
        eprintln!("{}: {e}", path.display());
    }
    path
}

/// The corpus entries of `name` as seeds for [`mutated`], each cut to at most `max`
/// bytes (at a line end when there is one) to keep cases fast.
pub fn seeds(name: &str, max: usize) -> Vec<Vec<u8>> {
    corpus(name)
        .into_iter()
        .map(|(_, mut bytes)| {
            if bytes.len() > max {
                let cut = bytes[..max]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(max, |i| i + 1);
                bytes.truncate(cut);
            }
            bytes
        })
        .collect()
}
