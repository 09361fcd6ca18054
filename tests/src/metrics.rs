//! Reading Prometheus text exposition (Bindery's `/metrics`, a kube-apiserver's
//! `/metrics`) in tests.

use anyhow::{Result, bail};

/// `GET {base}/metrics` of a running Bindery (`base` as `http://127.0.0.1:PORT`): the
/// text, or an error naming the URL when it does not answer 200.
pub fn scrape(base: &str) -> Result<String> {
    let url = format!("{base}/metrics");
    let (code, body) = crate::http_get(&url)?;
    if code != 200 {
        bail!("GET {url}: {code} {body}");
    }
    Ok(body)
}

/// The value of the series `series` (`name` or `name{labels}`, exactly as exposed), 0 when
/// it is absent.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

/// The sum over every series of metric `name` whose labels contain each of `labels`
/// (`key="value"` pairs, as exposed), 0 when there is none.
pub fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(s, _)| {
            let (metric, rest) = s.split_once('{').unwrap_or((s, ""));
            metric == name && labels.iter().all(|l| rest.contains(l))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum::<f64>()
        // The sum of nothing is -0.0: make it 0.
        + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"2\"} 3\n\
                        x_total{a=\"1\",b=\"3\"} 4\nx_total{a=\"2\",b=\"2\"} 5\ny 7.5\n";

    #[test]
    fn one_series_or_a_sum() {
        assert_eq!(value(TEXT, "y"), 7.5);
        assert_eq!(value(TEXT, r#"x_total{a="1",b="3"}"#), 4.0);
        assert_eq!(
            value(TEXT, "x_total"),
            0.0,
            "a name alone is not a labelled series"
        );
        assert_eq!(value(TEXT, "missing"), 0.0);
        assert_eq!(sum(TEXT, "x_total", &[]), 12.0);
        assert_eq!(sum(TEXT, "x_total", &[r#"a="1""#]), 7.0);
        assert_eq!(sum(TEXT, "x_total", &[r#"b="2""#, r#"a="2""#]), 5.0);
        assert_eq!(sum(TEXT, "x", &[]), 0.0, "a prefix is not the name");
    }
}
