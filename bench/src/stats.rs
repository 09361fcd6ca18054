//! Quantiles of a sample of measurements.

/// The `q` quantile (0 to 1) of `values`: the value at rank `q × (n − 1)`, rounded, once
/// sorted; so `q = 0.5` is the median (the upper one of an even count) and `q = 1` the
/// maximum. Panics if `values` is empty or holds a NaN.
pub fn quantile<T: Copy + PartialOrd>(values: &[T], q: f64) -> T {
    assert!(!values.is_empty(), "a quantile of no values");
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN among the values"));
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The median of `values` ([`quantile`] 0.5).
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    quantile(values, 0.5)
}

#[cfg(test)]
mod tests {
    use super::{median, quantile};

    #[test]
    fn ranks() {
        let v: Vec<u32> = (1..=20).rev().collect();
        assert_eq!(median(&v), 11);
        assert_eq!(quantile(&v, 0.9), 18);
        assert_eq!(quantile(&v, 1.0), 20);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
