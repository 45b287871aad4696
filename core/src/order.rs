//! One sort for every list core orders.
//!
//! `slice::sort` is generic: each element type (and each comparison closure) sorted
//! with it gets its own copy of the standard library's sort, several KB of code each,
//! which the npm package's `.wasm` carries too. Core's lists are short (tree entries,
//! changed files, ref names), so they all go through one sort instead: a stable merge
//! sort of positions, comparing through a `dyn Fn`, after which the elements are moved
//! into that order. The result is exactly what `slice::sort_by` gives.

use std::cmp::Ordering;

/// Sort `items` stably by `compare`, as `items.sort_by(compare)` would.
pub(crate) fn sort_by<T>(items: &mut Vec<T>, compare: impl Fn(&T, &T) -> Ordering) {
    // Already in order (a folder's entries after one change, mostly): nothing to move,
    // nothing to allocate.
    if in_order(items.len(), &|a, b| compare(&items[a], &items[b])) {
        return;
    }
    let order = positions(items.len(), &|a, b| compare(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    // `order` is a permutation of the positions, so every slot is taken exactly once.
    items.extend(
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// Sort `items` stably by their order, as `items.sort()` would.
pub(crate) fn sort<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
}

/// Whether the positions `0..len` are in order already. Not generic, like [`positions`].
#[inline(never)]
fn in_order(len: usize, compare: &dyn Fn(usize, usize) -> Ordering) -> bool {
    (1..len).all(|i| compare(i - 1, i) != Ordering::Greater)
}

/// The positions `0..len` in the order `compare` sorts them, stably. Not generic, so
/// there is one sort for all of core; and a plain merge sort rather than
/// `slice::sort_by`, whose copy for even one type is about 5 KB of `.wasm`.
#[inline(never)]
fn positions(len: usize, compare: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = vec![0; len];
    let mut width = 1;
    while width < len {
        // Merge each pair of sorted runs of `width` into `merged`; on a tie the left
        // run's position goes first, which keeps the sort stable.
        for start in (0..len).step_by(2 * width) {
            let mid = (start + width).min(len);
            let end = (start + 2 * width).min(len);
            let (left, right) = (&order[start..mid], &order[mid..end]);
            let out = &mut merged[start..end];
            let (mut i, mut j) = (0, 0);
            for slot in out.iter_mut() {
                let take_right = match (left.get(i), right.get(j)) {
                    (Some(&l), Some(&r)) => compare(r, l) == Ordering::Less,
                    (None, _) => true,
                    (_, None) => false,
                };
                if take_right {
                    *slot = right[j];
                    j += 1;
                } else {
                    *slot = left[i];
                    i += 1;
                }
            }
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_sort_and_is_stable() {
        let mut seed = 7u32;
        for len in 0..200 {
            let items: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    ((seed >> 16) as u8 % 13, i)
                })
                .collect();
            let mut ours = items.clone();
            let mut std = items;
            sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
            std.sort_by_key(|item| item.0);
            assert_eq!(ours, std);
            sort(&mut ours);
            std.sort();
            assert_eq!(ours, std);
        }
    }
}
