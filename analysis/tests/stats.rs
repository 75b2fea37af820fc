//! Statistics on fixed inputs against values computed by hand (and checked against tables of
//! Student's t).

use analysis::stats::{describe, mean, sample_variance, t_critical, welch_t_test};

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!((actual - expected).abs() <= tolerance, "{actual} is not within {tolerance} of {expected}");
}

#[test]
fn mean_and_sample_std_dev_match_hand_computed_values() {
    let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    close(mean(&x), 5.0, 1e-12);
    // Squares of deviations sum to 32; 32 / 7.
    close(sample_variance(&x).expect("variance"), 32.0 / 7.0, 1e-12);
    let d = describe(&x).expect("described");
    close(d.std_dev.expect("sd"), 2.138_089_935, 1e-9);
}

#[test]
fn t_critical_values_match_the_table() {
    close(t_critical(0.95, 1.0).expect("t"), 12.706_204, 1e-5);
    close(t_critical(0.95, 2.0).expect("t"), 4.302_653, 1e-5);
    close(t_critical(0.95, 7.0).expect("t"), 2.364_624, 1e-5);
    close(t_critical(0.95, 30.0).expect("t"), 2.042_272, 1e-5);
}

#[test]
fn confidence_interval_is_students_t_times_standard_error() {
    let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    // 2.364624 * 2.138090 / sqrt(8) = 1.787488
    let d = describe(&x).expect("described");
    close(d.ci95.expect("ci"), 1.787_488, 1e-5);
    let (lo, hi) = d.bounds();
    close(lo, 5.0 - 1.787_488, 1e-5);
    close(hi, 5.0 + 1.787_488, 1e-5);
    // Three repetitions 1000, 1100, 1200: 4.302653 * 100 / sqrt(3) = 248.4138
    close(describe(&[1000.0, 1100.0, 1200.0]).and_then(|d| d.ci95).expect("ci"), 248.4138, 1e-3);
}

#[test]
fn a_single_observation_has_no_spread_and_no_interval() {
    let d = describe(&[42.0]).expect("described");
    assert_eq!((d.n, d.mean, d.std_dev, d.ci95), (1, 42.0, None, None));
    assert!(describe(&[]).is_none());
}

#[test]
fn welch_with_equal_variances_matches_the_pooled_case() {
    // Means 3 and 5, variances 2.5 and 2.5, n = 5: se = 1, t = 2, df = 8, p = 0.080516.
    let w = welch_t_test(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 7.0]).expect("test");
    close(w.t, 2.0, 1e-12);
    close(w.df, 8.0, 1e-9);
    close(w.p_value, 0.080_516, 1e-5);
}

#[test]
fn welch_with_unequal_variances_uses_satterthwaite_degrees_of_freedom() {
    // A: mean 2, var 1, n 3; B: mean 5, var 20/3, n 4. se^2 = 1/3 + 5/3 = 2, t = 3 / sqrt 2,
    // df = 4 / ((1/3)^2 / 2 + (5/3)^2 / 3) = 4.075472, p = 0.099913.
    let w = welch_t_test(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0, 8.0]).expect("test");
    close(w.t, 2.121_320, 1e-6);
    close(w.df, 4.075_472, 1e-6);
    close(w.p_value, 0.099_913, 1e-5);
}

#[test]
fn welch_is_symmetric_in_its_samples() {
    let (a, b) = ([10.0, 12.0, 11.0, 13.0], [20.0, 19.0, 23.0]);
    let (ab, ba) = (welch_t_test(&a, &b).expect("ab"), welch_t_test(&b, &a).expect("ba"));
    close(ab.t, -ba.t, 1e-12);
    close(ab.p_value, ba.p_value, 1e-12);
}

#[test]
fn welch_on_constant_samples_is_certain_either_way() {
    let same = welch_t_test(&[5.0, 5.0], &[5.0, 5.0, 5.0]).expect("test");
    assert_eq!(same.p_value, 1.0);
    let apart = welch_t_test(&[5.0, 5.0], &[6.0, 6.0]).expect("test");
    assert_eq!(apart.p_value, 0.0);
    assert!(apart.t > 0.0);
}

#[test]
fn welch_needs_two_observations_on_each_side() {
    assert!(welch_t_test(&[1.0], &[1.0, 2.0]).is_none());
    assert!(welch_t_test(&[1.0, 2.0], &[]).is_none());
}
