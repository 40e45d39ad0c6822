//! Go's `sort.Sort` (the pattern-defeating quicksort of Go 1.19, which InfluxDB 1.6 as Debian
//! builds it runs), ported step for step: it is not stable, and InfluxDB's `mode()` breaks ties
//! between equally frequent values by the order it leaves equal values in, so answering as
//! InfluxDB does needs the very same sequence of comparisons and swaps.

/// Sorts `data` as Go 1.19's `sort.Sort` does with `Less(i, j) = less(&data[i], &data[j])`.
pub fn sort<T>(data: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let n = data.len();
    if n <= 1 {
        return;
    }
    let limit = bits_len(n);
    pdqsort(data, less, 0, n, limit);
}

fn bits_len(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()) as usize
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Hint {
    Unknown,
    Increasing,
    Decreasing,
}

fn insertion_sort<T>(d: &mut [T], less: &impl Fn(&T, &T) -> bool, a: usize, b: usize) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&d[j], &d[j - 1]) {
            d.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sift_down<T>(d: &mut [T], less: &impl Fn(&T, &T) -> bool, lo: usize, hi: usize, first: usize) {
    let mut root = lo;
    loop {
        let mut child = 2 * root + 1;
        if child >= hi {
            break;
        }
        if child + 1 < hi && less(&d[first + child], &d[first + child + 1]) {
            child += 1;
        }
        if !less(&d[first + root], &d[first + child]) {
            return;
        }
        d.swap(first + root, first + child);
        root = child;
    }
}

fn heap_sort<T>(d: &mut [T], less: &impl Fn(&T, &T) -> bool, a: usize, b: usize) {
    let first = a;
    let hi = b - a;
    let mut i = (hi as isize - 1) / 2;
    while i >= 0 {
        sift_down(d, less, i as usize, hi, first);
        i -= 1;
    }
    let mut i = hi as isize - 1;
    while i >= 0 {
        d.swap(first, first + i as usize);
        sift_down(d, less, 0, i as usize, first);
        i -= 1;
    }
}

fn pdqsort<T>(
    d: &mut [T],
    less: &impl Fn(&T, &T) -> bool,
    mut a: usize,
    mut b: usize,
    mut limit: usize,
) {
    const MAX_INSERTION: usize = 12;
    let mut was_balanced = true;
    let mut was_partitioned = true;
    loop {
        let length = b - a;
        if length <= MAX_INSERTION {
            insertion_sort(d, less, a, b);
            return;
        }
        if limit == 0 {
            heap_sort(d, less, a, b);
            return;
        }
        if !was_balanced {
            break_patterns(d, a, b);
            limit -= 1;
        }
        let (mut pivot, mut hint) = choose_pivot(d, less, a, b);
        if hint == Hint::Decreasing {
            reverse_range(d, a, b);
            pivot = (b - 1) - (pivot - a);
            hint = Hint::Increasing;
        }
        if was_balanced
            && was_partitioned
            && hint == Hint::Increasing
            && partial_insertion_sort(d, less, a, b)
        {
            return;
        }
        if a > 0 && !less(&d[a - 1], &d[pivot]) {
            a = partition_equal(d, less, a, b, pivot);
            continue;
        }
        let (mid, already) = partition(d, less, a, b, pivot);
        was_partitioned = already;
        let (left, right) = (mid - a, b - mid);
        let threshold = length / 8;
        if left < right {
            was_balanced = left >= threshold;
            pdqsort(d, less, a, mid, limit);
            a = mid + 1;
        } else {
            was_balanced = right >= threshold;
            pdqsort(d, less, mid + 1, b, limit);
            b = mid;
        }
    }
}

fn partition<T>(
    d: &mut [T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    b: usize,
    pivot: usize,
) -> (usize, bool) {
    d.swap(a, pivot);
    // Signed: `j` may step below `a + 1`.
    let (mut i, mut j) = (a as isize + 1, b as isize - 1);
    let at = |k: isize| k as usize;
    while i <= j && less(&d[at(i)], &d[a]) {
        i += 1;
    }
    while i <= j && !less(&d[at(j)], &d[a]) {
        j -= 1;
    }
    if i > j {
        d.swap(at(j), a);
        return (at(j), true);
    }
    d.swap(at(i), at(j));
    i += 1;
    j -= 1;
    loop {
        while i <= j && less(&d[at(i)], &d[a]) {
            i += 1;
        }
        while i <= j && !less(&d[at(j)], &d[a]) {
            j -= 1;
        }
        if i > j {
            break;
        }
        d.swap(at(i), at(j));
        i += 1;
        j -= 1;
    }
    d.swap(at(j), a);
    (at(j), false)
}

fn partition_equal<T>(
    d: &mut [T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    b: usize,
    pivot: usize,
) -> usize {
    d.swap(a, pivot);
    let (mut i, mut j) = (a as isize + 1, b as isize - 1);
    let at = |k: isize| k as usize;
    loop {
        while i <= j && !less(&d[a], &d[at(i)]) {
            i += 1;
        }
        while i <= j && less(&d[a], &d[at(j)]) {
            j -= 1;
        }
        if i > j {
            break;
        }
        d.swap(at(i), at(j));
        i += 1;
        j -= 1;
    }
    at(i)
}

fn partial_insertion_sort<T>(
    d: &mut [T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    b: usize,
) -> bool {
    const MAX_STEPS: usize = 5;
    const SHORTEST_SHIFTING: usize = 50;
    let mut i = a + 1;
    for _ in 0..MAX_STEPS {
        while i < b && !less(&d[i], &d[i - 1]) {
            i += 1;
        }
        if i == b {
            return true;
        }
        if b - a < SHORTEST_SHIFTING {
            return false;
        }
        d.swap(i, i - 1);
        // Shift the smaller one to the left (Go's loop runs down to index 1, not `a + 1`).
        if i - a >= 2 {
            let mut j = i - 1;
            while j >= 1 {
                if !less(&d[j], &d[j - 1]) {
                    break;
                }
                d.swap(j, j - 1);
                j -= 1;
            }
        }
        // Shift the greater one to the right.
        if b - i >= 2 {
            for j in i + 1..b {
                if !less(&d[j], &d[j - 1]) {
                    break;
                }
                d.swap(j, j - 1);
            }
        }
    }
    false
}

fn break_patterns<T>(d: &mut [T], a: usize, b: usize) {
    let length = b - a;
    if length >= 8 {
        let mut random = length as u64;
        let modulus = 1usize << bits_len(length);
        let mut next = || {
            random ^= random << 13;
            random ^= random >> 17;
            random ^= random << 5;
            random
        };
        for idx in a + (length / 4) * 2 - 1..=a + (length / 4) * 2 + 1 {
            let mut other = (next() as usize) & (modulus - 1);
            if other >= length {
                other -= length;
            }
            d.swap(idx, a + other);
        }
    }
}

fn choose_pivot<T>(
    d: &mut [T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    b: usize,
) -> (usize, Hint) {
    const SHORTEST_NINTHER: usize = 50;
    const MAX_SWAPS: usize = 4 * 3;
    let l = b - a;
    let mut swaps = 0usize;
    let mut i = a + l / 4;
    let mut j = a + l / 4 * 2;
    let mut k = a + l / 4 * 3;
    if l >= 8 {
        if l >= SHORTEST_NINTHER {
            i = median_adjacent(d, less, i, &mut swaps);
            j = median_adjacent(d, less, j, &mut swaps);
            k = median_adjacent(d, less, k, &mut swaps);
        }
        j = median(d, less, i, j, k, &mut swaps);
    }
    match swaps {
        0 => (j, Hint::Increasing),
        MAX_SWAPS => (j, Hint::Decreasing),
        _ => (j, Hint::Unknown),
    }
}

fn order2<T>(
    d: &[T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    b: usize,
    swaps: &mut usize,
) -> (usize, usize) {
    if less(&d[b], &d[a]) {
        *swaps += 1;
        return (b, a);
    }
    (a, b)
}

fn median<T>(
    d: &[T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    b: usize,
    c: usize,
    swaps: &mut usize,
) -> usize {
    let (a, b) = order2(d, less, a, b, swaps);
    let (b, _c) = order2(d, less, b, c, swaps);
    let (_a, b) = order2(d, less, a, b, swaps);
    b
}

fn median_adjacent<T>(
    d: &[T],
    less: &impl Fn(&T, &T) -> bool,
    a: usize,
    swaps: &mut usize,
) -> usize {
    median(d, less, a - 1, a, a + 1, swaps)
}

fn reverse_range<T>(d: &mut [T], a: usize, b: usize) {
    let (mut i, mut j) = (a, b - 1);
    while i < j {
        d.swap(i, j);
        i += 1;
        j -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little LCG, so the test sorts the same inputs everywhere.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) % modulo
            })
            .collect()
    }

    #[test]
    fn sorts_every_shape() {
        for (seed, n, modulo) in [
            (1, 0, 5),
            (2, 1, 5),
            (3, 13, 3),
            (4, 100, 7),
            (5, 1000, 1000),
            (6, 5000, 4),
        ] {
            let mut v = numbers(seed, n, modulo);
            let mut want = v.clone();
            want.sort();
            sort(&mut v, &|a, b| a < b);
            assert_eq!(v, want, "seed {seed}");
            // Sorted and reversed inputs take the pattern paths.
            sort(&mut v, &|a, b| a < b);
            assert_eq!(v, want);
            v.reverse();
            sort(&mut v, &|a, b| a < b);
            assert_eq!(v, want);
        }
    }

    #[test]
    fn leaves_equal_values_unstable_like_go() {
        // (value, original position): short inputs use insertion sort, which keeps the input
        // order of equal values; longer ones move equal values around.
        let mut short: Vec<(u64, usize)> = numbers(7, 12, 3).into_iter().zip(0..).collect();
        sort(&mut short, &|a, b| a.0 < b.0);
        assert!(short.windows(2).all(|w| w[0].0 < w[1].0 || w[0].1 < w[1].1));
        let mut long: Vec<(u64, usize)> = numbers(8, 400, 3).into_iter().zip(0..).collect();
        sort(&mut long, &|a, b| a.0 < b.0);
        assert!(long.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(long.windows(2).any(|w| w[0].0 == w[1].0 && w[0].1 > w[1].1));
    }
}
