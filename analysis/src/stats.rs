//! Descriptive statistics and Welch's t-test over small samples (repetitions of a run, or the
//! seconds of one run). Student's t comes from statrs; everything else is arithmetic kept here
//! so that tests can check it against hand-computed values.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided confidence level of every interval in the reports.
pub const CONFIDENCE: f64 = 0.95;

/// Significance level of `analysis compare`.
pub const ALPHA: f64 = 0.05;

/// Mean, spread and confidence interval of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Described {
    /// Number of observations.
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); `None` for a single observation.
    pub std_dev: Option<f64>,
    /// Half-width of the 95% Student's t interval around the mean; `None` below two observations.
    pub ci95: Option<f64>,
}

impl Described {
    /// The interval `mean ± ci95`, or the bare mean when there is no interval.
    pub fn bounds(&self) -> (f64, f64) {
        let half = self.ci95.unwrap_or(0.0);
        (self.mean - half, self.mean + half)
    }
}

/// Describes `samples`; `None` when there are none.
pub fn describe(samples: &[f64]) -> Option<Described> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    let mean = mean(samples);
    let std_dev = sample_variance(samples).map(f64::sqrt);
    let ci95 = std_dev.and_then(|s| {
        let t = t_critical(CONFIDENCE, (n - 1) as f64)?;
        Some(t * s / (n as f64).sqrt())
    });
    Some(Described { n, mean, std_dev, ci95 })
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len() as f64
}

/// Unbiased sample variance; `None` below two observations.
pub fn sample_variance(samples: &[f64]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let m = mean(samples);
    let squares: f64 = samples.iter().map(|x| (x - m) * (x - m)).sum();
    Some(squares / (samples.len() - 1) as f64)
}

/// The two-sided critical value of Student's t: `P(|T| <= t) = confidence` with `df` degrees of
/// freedom. `None` when `df` is not positive.
pub fn t_critical(confidence: f64, df: f64) -> Option<f64> {
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(dist.inverse_cdf(0.5 + confidence / 2.0))
}

/// The outcome of Welch's unequal-variances t-test of B against A.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// `(mean_b - mean_a) / standard error`.
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Welch's t-test; `None` unless both samples have at least two observations.
///
/// When both samples have zero variance the test degenerates: equal means give p = 1, different
/// means p = 0 (every observation differs the same way).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<Welch> {
    let (va, vb) = (sample_variance(a)?, sample_variance(b)?);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sa + sb;
    let diff = mean(b) - mean(a);
    if se2 == 0.0 {
        let (t, p_value) = if diff == 0.0 { (0.0, 1.0) } else { (diff.signum() * f64::INFINITY, 0.0) };
        return Some(Welch { t, df: na + nb - 2.0, p_value });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0);
    Some(Welch { t, df, p_value })
}
