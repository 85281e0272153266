//! Integer time arithmetic shared by every crate that converts between timescales: rounding
//! rescale and greatest common divisor. Pure; saturates instead of overflowing.

/// `v · num / den`, rounded to nearest (halves away from zero), computed in 128 bits and
/// saturated to `i64`. A `den` of 0 gives 0 (no time is measured in a zero timescale; callers
/// reject such timescales before they get here).
///
/// To move `t` from timescale `from` to timescale `to`: `rescale(t, to, from)`.
pub fn rescale(v: i64, num: i64, den: i64) -> i64 {
    if den == 0 {
        return 0;
    }
    let n = i128::from(v) * i128::from(num);
    let d = i128::from(den);
    let r = if (n >= 0) == (d > 0) {
        (n + d / 2) / d
    } else {
        (n - d / 2) / d
    };
    i64::try_from(r).unwrap_or(if r > 0 { i64::MAX } else { i64::MIN })
}

/// Greatest common divisor, or 1 when both are 0 (so the result can always divide).
pub fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_to_nearest() {
        assert_eq!(rescale(2, 1, 3), 1);
        assert_eq!(rescale(1, 6, 3), 2);
        assert_eq!(rescale(512, 1000, 12800), 40);
        assert_eq!(rescale(-512, 1000, 12800), -40);
        assert_eq!(rescale(1, 48_000, 1000), 48);
        assert_eq!(rescale(21, 1000, 48_000), 0);
        assert_eq!(rescale(-1, 1, 2), -1);
        assert_eq!(rescale(3, 1, 2), 2);
        assert_eq!(rescale(-3, 1, 2), -2);
        assert_eq!(rescale(1, 1024 * 90_000, 48_000), 1920);
        assert_eq!(rescale(1, 1024 * 90_000, 44_100), 2090);
        // A negative denominator divides as it should.
        assert_eq!(rescale(3, 1, -2), -2);
    }

    /// The copies this replaced disagreed on a zero denominator (the value, the value times
    /// `num`, or 0); none of their callers passes one.
    #[test]
    fn rescale_edges() {
        assert_eq!(rescale(5, 1, 0), 0);
        assert_eq!(rescale(i64::MAX, 3, 1), i64::MAX);
        assert_eq!(rescale(i64::MIN, 3, 1), i64::MIN);
        assert_eq!(rescale(7, 90_000, 90_000), 7);
    }

    /// One copy was documented "0 when both are 0" and returned 1; another recursed to 0 and
    /// would have divided by it.
    #[test]
    fn gcd_of_zeros_is_one() {
        assert_eq!(gcd(0, 0), 1);
        assert_eq!(gcd(0, 5), 5);
        assert_eq!(gcd(5, 0), 5);
        assert_eq!(gcd(90_000, 3003), 3);
        assert_eq!(gcd(44_100, 48_000), 300);
    }
}
