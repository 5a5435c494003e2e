//! The Mann-Whitney U rank test behind `cb:mannwhitneyu` (the function lua_sandbox's
//! circular buffer offers for anomaly detection).
//!
//! Both samples are ranked together; tied values share the mean of their ranks, and every NaN
//! cell (a row with no value) ranks as one tie group after every number, so a buffer of
//! nothing but NaN, like one of a single repeated value, has no variance and no answer. With
//! `n1`, `n2` the sample sizes, `N = n1 + n2`, `R1` the rank sum of the first sample and `t`
//! the size of each tie group:
//!
//! ```text
//! U1 = R1 - n1 (n1 + 1) / 2
//! sd = sqrt(n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1))))
//! z  = (|U1 - n1 n2 / 2| - c) / sd        c = 1/2 with the continuity correction, else 0
//! p  = 1 - Phi(z) = erfc(z / sqrt 2) / 2  (one-sided, normal approximation)
//! ```

/// `U1` and its one-sided p-value; `None` when the ranks have no variance (every value the
/// same) or a sample is empty.
pub fn mann_whitney_u(x: &[f64], y: &[f64], continuity: bool) -> Option<(f64, f64)> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let total = n1 + n2;
    // (value, from the first sample), sorted with every NaN last.
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&value| (value, true))
        .chain(y.iter().map(|&value| (value, false)))
        .collect();
    all.sort_by(|a, b| order(a.0).total_cmp(&order(b.0)));
    let (mut rank_sum, mut ties) = (0.0, 0.0);
    let mut start = 0;
    while start < total {
        let mut end = start + 1;
        while end < total && same(all[end].0, all[start].0) {
            end += 1;
        }
        let group = (end - start) as f64;
        // Ranks start + 1 ..= end share their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        let firsts = all[start..end].iter().filter(|(_, first)| *first).count();
        rank_sum += rank * firsts as f64;
        ties += group * group * group - group;
        start = end;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, total as f64);
    let u1 = rank_sum - n1f * (n1f + 1.0) / 2.0;
    let variance = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if variance.is_nan() || variance <= 0.0 {
        return None;
    }
    let correction = if continuity { 0.5 } else { 0.0 };
    let z = ((u1 - n1f * n2f / 2.0).abs() - correction) / variance.sqrt();
    let p = libm::erfc(z / std::f64::consts::SQRT_2) / 2.0;
    Some((u1, p))
}

/// The sort key: every NaN (Lua's `0/0` is a negative one) becomes the one positive NaN, which
/// `total_cmp` puts after every number.
fn order(value: f64) -> f64 {
    if value.is_nan() {
        f64::NAN
    } else {
        value
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples of lua_sandbox's documented example: 40 values, split in halves.
    const DATA: [f64; 40] = [
        15309.0, 14092.0, 13661.0, 13412.0, 14205.0, 15042.0, 14142.0, 13820.0, 14917.0, 13953.0,
        14320.0, 14472.0, 15133.0, 13790.0, 14539.0, 14129.0, 14363.0, 14202.0, 13841.0, 13610.0,
        13759.0, 14428.0, 14851.0, 13838.0, 13819.0, 14468.0, 14989.0, 15557.0, 14380.0, 13500.0,
        14818.0, 14632.0, 13631.0, 14663.0, 14532.0, 14188.0, 14537.0, 14109.0, 13925.0, 15022.0,
    ];

    #[test]
    fn the_documented_example_with_and_without_continuity_and_with_a_tie() {
        let (u, p) = mann_whitney_u(&DATA[..20], &DATA[20..], true).expect("an answer");
        assert_eq!(u, 171.0);
        assert_eq!((p * 100_000.0).floor(), 22037.0);
        let (u, p) = mann_whitney_u(&DATA[..20], &DATA[20..], false).expect("an answer");
        assert_eq!(u, 171.0);
        assert_eq!((p * 100_000.0).floor(), 21638.0);
        let mut tied = DATA;
        tied[39] = 15309.0;
        let (u, p) = mann_whitney_u(&tied[..20], &tied[20..], true).expect("an answer");
        assert_eq!(u, 168.5);
        assert_eq!((p * 100_000.0).floor(), 20084.0);
    }

    #[test]
    fn no_variance_has_no_answer_and_the_two_statistics_sum_to_n1_n2() {
        assert_eq!(mann_whitney_u(&[1.0; 5], &[1.0; 5], true), None);
        assert_eq!(mann_whitney_u(&[f64::NAN; 10], &[f64::NAN; 10], true), None);
        assert_eq!(mann_whitney_u(&[], &[1.0], true), None);
        let x = [1.0, f64::NAN, 3.0, 3.0, f64::NAN, 7.0];
        let y = [f64::NAN, 2.0, 3.0, 9.0];
        let (u1, _) = mann_whitney_u(&x, &y, true).expect("an answer");
        let (u2, _) = mann_whitney_u(&y, &x, true).expect("an answer");
        assert_eq!(u1 + u2, 24.0);
    }
}
