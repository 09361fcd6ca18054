//! The arguments after `cargo bench -p bindery-bench --bench NAME --`.

use anyhow::{Context, Result};

/// The bench's arguments, without the `--bench` that cargo adds.
pub fn args() -> impl Iterator<Item = String> {
    std::env::args().skip(1).filter(|a| a != "--bench")
}

/// A count: digits, with `_` separators and a `k` (thousand) or `M` (million) suffix
/// allowed: `100000`, `100_000`, `100k`.
pub fn count(s: &str) -> Result<usize> {
    let digits = s.trim().replace('_', "");
    let (digits, factor) = match digits.char_indices().last() {
        Some((i, 'k' | 'K')) => (&digits[..i], 1_000),
        Some((i, 'm' | 'M')) => (&digits[..i], 1_000_000),
        _ => (&digits[..], 1),
    };
    let n: usize = digits
        .parse()
        .with_context(|| format!("{s:?} is not a count"))?;
    Ok(n * factor)
}

/// Comma-separated [`count`]s: `10000,100k,1M`.
pub fn counts(s: &str) -> Result<Vec<usize>> {
    s.split(',').map(count).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts() {
        assert_eq!(
            super::counts("10000,100_000,20k,1M").unwrap(),
            [10_000, 100_000, 20_000, 1_000_000]
        );
        assert!(super::count("ten").is_err());
        assert!(super::count("").is_err());
    }
}
