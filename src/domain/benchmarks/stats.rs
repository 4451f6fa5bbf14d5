//! Where one value stands among the others: the percentile (ties counting half) and the
//! median, over a sorted list from which the asking organization's own value is left out.
//! Pure arithmetic, unit-tested by hand.

/// The others of one bucket and metric, for one organization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// How many other organizations contribute.
    pub others: usize,
    /// Percent (0–100) of them with a lower value, those with an equal value counting half;
    /// `None` without a value of one's own or without others.
    pub percentile: Option<f64>,
    /// The median of the others' values (the mean of the two middle ones for an even count);
    /// `None` without others.
    pub median: Option<f64>,
}

/// `sorted`: every contributing value of the bucket, ascending. `own`: the asker's value if
/// the asker is one of them (it is then left out once); `value`: the asker's value to place.
pub fn standing(sorted: &[f64], own: Option<f64>, value: Option<f64>) -> Standing {
    // Index of the asker's own entry, left out of everything below.
    let skip = own.map(|v| sorted.partition_point(|x| *x < v));
    let others = sorted.len() - usize::from(skip.is_some());
    let at = |k: usize| match skip {
        Some(s) if k >= s => sorted[k + 1],
        _ => sorted[k],
    };
    let median = (others > 0).then(|| {
        if others % 2 == 1 {
            at(others / 2)
        } else {
            (at(others / 2 - 1) + at(others / 2)) / 2.0
        }
    });
    let percentile = match value {
        Some(v) if others > 0 => {
            let mut lower = sorted.partition_point(|x| *x < v);
            let mut equal = sorted.partition_point(|x| *x <= v) - lower;
            if let Some(o) = own {
                if o < v {
                    lower -= 1;
                } else if o == v {
                    equal -= 1;
                }
            }
            Some(100.0 * (lower as f64 + equal as f64 / 2.0) / others as f64)
        }
        _ => None,
    };
    Standing {
        others,
        percentile,
        median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_count_half_and_the_asker_is_left_out() {
        // Others: 0.1, 0.2, 0.2, 0.4; the asker (0.2) is in the list once.
        let all = [0.1, 0.2, 0.2, 0.2, 0.4];
        let s = standing(&all, Some(0.2), Some(0.2));
        assert_eq!(s.others, 4);
        // One lower, two equal: (1 + 2/2) / 4 = 50 %.
        assert_eq!(s.percentile, Some(50.0));
        // Median of 0.1, 0.2, 0.2, 0.4 = (0.2 + 0.2) / 2.
        assert_eq!(s.median, Some(0.2));
    }

    #[test]
    fn an_asker_outside_the_list_is_placed_among_all() {
        let all = [1.0, 2.0, 3.0];
        let s = standing(&all, None, Some(2.5));
        assert_eq!(
            (s.others, s.percentile, s.median),
            (3, Some(200.0 / 3.0), Some(2.0))
        );
        let s = standing(&all, None, None);
        assert_eq!((s.percentile, s.median), (None, Some(2.0)));
        let s = standing(&all, None, Some(0.0));
        assert_eq!(s.percentile, Some(0.0));
        let s = standing(&all, None, Some(9.0));
        assert_eq!(s.percentile, Some(100.0));
    }

    #[test]
    fn the_own_value_is_removed_from_the_median() {
        // Asker 5.0 is the largest: others 1, 2, 3 → median 2, percentile 100.
        let s = standing(&[1.0, 2.0, 3.0, 5.0], Some(5.0), Some(5.0));
        assert_eq!(
            (s.others, s.percentile, s.median),
            (3, Some(100.0), Some(2.0))
        );
        // Asker 1.0 is the smallest: others 2, 3, 5 → median 3, percentile 0.
        let s = standing(&[1.0, 2.0, 3.0, 5.0], Some(1.0), Some(1.0));
        assert_eq!(
            (s.others, s.percentile, s.median),
            (3, Some(0.0), Some(3.0))
        );
        let s = standing(&[4.0], Some(4.0), Some(4.0));
        assert_eq!((s.others, s.percentile, s.median), (0, None, None));
    }
}
