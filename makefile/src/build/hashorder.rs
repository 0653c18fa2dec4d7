//! The order in which GNU make walks its file table (a power-of-two open-addressing table keyed
//! by a Jenkins hash of the name), so the final `rm` of intermediate files names them in make's
//! order. Written from the description of make's hash.c: a one-at-a-time sum of the name's
//! 32-bit little-endian words up to its NUL, mixed every three words, finalised, plus the
//! offset of the last word.

fn rol(v: u32, n: u32) -> u32 {
    v.rotate_left(n)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ rol(*c, 4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ rol(*a, 6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ rol(*b, 8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ rol(*c, 16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ rol(*a, 19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ rol(*b, 4);
    *b = b.wrapping_add(*a);
}

fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c = (*c ^ *b).wrapping_sub(rol(*b, 14));
    *a = (*a ^ *c).wrapping_sub(rol(*c, 11));
    *b = (*b ^ *a).wrapping_sub(rol(*a, 25));
    *c = (*c ^ *b).wrapping_sub(rol(*b, 16));
    *a = (*a ^ *c).wrapping_sub(rol(*c, 4));
    *b = (*b ^ *a).wrapping_sub(rol(*a, 14));
    *c = (*c ^ *b).wrapping_sub(rol(*b, 24));
}

/// Adds the word at `pos` to `r` up to the first NUL; returns whether the NUL was in it.
fn add_word(r: &mut u32, bytes: &[u8], pos: usize) -> bool {
    let mut w = [0u8; 4];
    for (i, slot) in w.iter_mut().enumerate() {
        *slot = bytes.get(pos + i).copied().unwrap_or(0);
    }
    let val = u32::from_le_bytes(w);
    match w.iter().position(|&b| b == 0) {
        None => {
            *r = r.wrapping_add(val);
            false
        }
        Some(0) => true,
        Some(1) => {
            *r = r.wrapping_add(val & 0xff);
            true
        }
        Some(2) => {
            *r = r.wrapping_add(val & 0xffff);
            true
        }
        Some(_) => {
            *r = r.wrapping_add(val);
            true
        }
    }
}

/// make's string hash of a file name.
pub(crate) fn name_hash(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let (mut a, mut b, mut c) = (0xdead_beef_u32, 0xdead_beef_u32, 0xdead_beef_u32);
    let mut pos = 0;
    loop {
        if add_word(&mut a, bytes, pos) {
            break;
        }
        pos += 4;
        if add_word(&mut b, bytes, pos) {
            break;
        }
        pos += 4;
        if add_word(&mut c, bytes, pos) {
            break;
        }
        pos += 4;
        mix(&mut a, &mut b, &mut c);
    }
    finish(&mut a, &mut b, &mut c);
    c.wrapping_add(pos as u32)
}

/// The size of make's file table holding `entries` files (starts at 1024 slots, doubles when
/// more than fifteen sixteenths full).
pub(crate) fn table_size(entries: usize) -> usize {
    let mut size = 1024usize;
    while entries >= size - size / 16 {
        size *= 2;
    }
    size
}

/// Sorts names into make's table order (ties keep their given order).
pub(crate) fn sort_like_make(names: &mut [String], entries: usize) {
    let mask = (table_size(entries) - 1) as u32;
    names.sort_by_key(|n| name_hash(n) & mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    // Orders GNU make 4.3 printed in its final `rm` line.
    #[test]
    fn orders_seen_from_make() {
        let mut v: Vec<String> = ["r.b", "r.c"].iter().map(|s| s.to_string()).collect();
        sort_like_make(&mut v, 100);
        assert_eq!(v, ["r.c", "r.b"]);
        let mut v: Vec<String> = ["a.y", "b.y"].iter().map(|s| s.to_string()).collect();
        sort_like_make(&mut v, 100);
        assert_eq!(v, ["a.y", "b.y"]);
        let mut v: Vec<String> = ["a.keep", "a.tmp"].iter().map(|s| s.to_string()).collect();
        sort_like_make(&mut v, 100);
        assert_eq!(v, ["a.tmp", "a.keep"]);
        let mut v: Vec<String> = ["madns/madns.o", "util/tap.o", "madns/madns_t.o"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_like_make(&mut v, 100);
        assert_eq!(v, ["util/tap.o", "madns/madns.o", "madns/madns_t.o"]);
    }
}
