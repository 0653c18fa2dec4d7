//! The order in which GNU make 4.3 lists `$(.VARIABLES)`: the slots of its global variable table,
//! an open-addressing table of 1024 slots (growing by doubling when 15/16 full) indexed by Bob
//! Jenkins' `jhash` of the name, with linear probing on collisions.

/// The table's initial size (make asks for 523 buckets and rounds up to a power of two).
const INITIAL_SLOTS: usize = 1024;

/// One step of the mix: `x` takes in `z`, then `z` takes in `y`.
fn mix_step(x: &mut u32, y: u32, z: &mut u32, rot: u32) {
    *x = x.wrapping_sub(*z) ^ z.rotate_left(rot);
    *z = z.wrapping_add(y);
}

/// One round of Jenkins' mixing of the three state words (the roles rotate a→b→c each step).
pub(crate) fn jhash_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    mix_step(a, *b, c, 4);
    mix_step(b, *c, a, 6);
    mix_step(c, *a, b, 8);
    mix_step(a, *b, c, 16);
    mix_step(b, *c, a, 19);
    mix_step(c, *a, b, 4);
}

/// Jenkins' final avalanche of the state.
pub(crate) fn jhash_final(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(14));
    *a = (*a ^ *c).wrapping_sub(c.rotate_left(11));
    *b = (*b ^ *a).wrapping_sub(a.rotate_left(25));
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(16));
    *a = (*a ^ *c).wrapping_sub(c.rotate_left(4));
    *b = (*b ^ *a).wrapping_sub(a.rotate_left(14));
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(24));
}

/// The little-endian word at `k[i..i + 4]` (zero-padded past the end).
fn word(k: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    for (j, slot) in w.iter_mut().enumerate() {
        *slot = k.get(i + j).copied().unwrap_or(0);
    }
    u32::from_le_bytes(w)
}

/// make's `jhash(key, length)`: 12-byte blocks mixed, then the 1..12 tail bytes and a final mix.
pub(crate) fn jhash(k: &[u8]) -> u32 {
    let init = 0xdead_beef_u32.wrapping_add(k.len() as u32);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut i = 0;
    let mut n = k.len();
    while n > 12 {
        a = a.wrapping_add(word(k, i));
        b = b.wrapping_add(word(k, i + 4));
        c = c.wrapping_add(word(k, i + 8));
        jhash_mix(&mut a, &mut b, &mut c);
        n -= 12;
        i += 12;
    }
    if n == 0 {
        return c;
    }
    if n > 8 {
        a = a.wrapping_add(word(k, i));
        n -= 4;
        i += 4;
    }
    if n > 4 {
        b = b.wrapping_add(word(k, i));
        n -= 4;
        i += 4;
    }
    // The last 1..4 bytes go into c, the first one lowest.
    for j in (0..n).rev() {
        c = c.wrapping_add(u32::from(k[i + j]) << (8 * j));
    }
    jhash_final(&mut a, &mut b, &mut c);
    c
}

/// `names` (the global variables, each with a rank approximating when make defined it: 0 for its
/// own variables and the environment, 1 for the built-in ones, 2 for what makefiles define) in make's
/// table order. Collisions are resolved in the order (rank, name); make's exact insertion order is
/// not known here, so that is the only approximation.
pub(crate) fn table_order<'a>(names: impl Iterator<Item = (&'a str, u8)>) -> Vec<&'a str> {
    let mut names: Vec<(u8, &str)> = names.map(|(n, r)| (r, n)).collect();
    names.sort_unstable();
    let mut size = INITIAL_SLOTS;
    while names.len() >= size - size / 16 {
        size *= 2;
    }
    let mut slots: Vec<Option<&str>> = vec![None; size];
    for (_, n) in names {
        let mut i = jhash(n.as_bytes()) as usize & (size - 1);
        while slots[i].is_some() {
            i = (i + 1) & (size - 1);
        }
        slots[i] = Some(n);
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_order_of_some_variables() {
        // As make 4.3 lists them in $(.VARIABLES).
        let want = [
            ".INCLUDE_DIRS",
            "MAKEFLAGS",
            "CURDIR",
            ".SHELLFLAGS",
            "MAKEFILE_LIST",
            "MAKE_HOST",
            "SHELL",
        ];
        let mut shuffled = want;
        shuffled.reverse();
        assert_eq!(table_order(shuffled.iter().map(|n| (*n, 0))), want);
        // MFLAGS and COMPILE.p share a slot; make defined MFLAGS first.
        assert_eq!(
            table_order([("COMPILE.p", 1), ("MFLAGS", 0)].into_iter()),
            ["MFLAGS", "COMPILE.p"]
        );
    }
}
