//! A zlib encoder for small objects: the trees, commits and short files most commits write.
//!
//! miniz's compressor is built for streams: before each object it clears about 300 KB of
//! tables and buffers, which costs far more than compressing a few hundred bytes (it was
//! a third of a warm one-file commit). This encoder keeps its state on the stack: one
//! block with the fixed Huffman codes of RFC 1951 (section 3.2.6) and greedy matching
//! against the last position of each 3-byte sequence, as miniz's fastest level does.

/// Inputs must be shorter than this: positions are kept in `u16`, and every distance
/// must fit deflate's 32 KiB window.
pub(super) const MAX_INPUT: usize = 32 * 1024;

const HASH_BITS: u32 = 10;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;

/// The first length of each length code 257..=285, and its extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// The first distance of each distance code 0..=29, and its extra bits.
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

/// zlib-compress `raw`, shorter than [`MAX_INPUT`], as one fixed-code block.
pub(super) fn compress(raw: &[u8]) -> Vec<u8> {
    debug_assert!(raw.len() < MAX_INPUT);
    let mut out = Bits {
        bytes: Vec::with_capacity(raw.len() + raw.len() / 8 + 16),
        pending: 0,
        count: 0,
    };
    // CMF: deflate with a 32 KiB window; FLG: the fastest level, and a check that makes
    // the pair a multiple of 31 (what miniz writes at level 1).
    out.bytes.extend_from_slice(&[0x78, 0x01]);
    out.put(0b011, 3); // BFINAL = 1, BTYPE = 01 (fixed codes).

    // Position + 1 of the last occurrence of each hashed 3-byte sequence, 0 for none.
    let mut last = [0u16; 1 << HASH_BITS];
    let mut at = 0;
    while let Some(key) = hash(raw, at) {
        let candidate = usize::from(last[key]);
        last[key] = (at + 1) as u16;
        // Another sequence may share the bucket: look at the first bytes before the rest.
        if let Some(start) = candidate.checked_sub(1)
            && raw.get(start..start + MIN_MATCH) == raw.get(at..at + MIN_MATCH)
        {
            let len =
                MIN_MATCH + common_prefix(&raw[at + MIN_MATCH..], &raw[start + MIN_MATCH..], MAX_MATCH - MIN_MATCH);
            out.length(len);
            out.distance(at - start);
            // Index the positions inside the match too, for later repeats.
            for inside in at + 1..at + len {
                if let Some(key) = hash(raw, inside) {
                    last[key] = (inside + 1) as u16;
                }
            }
            at += len;
            continue;
        }
        out.literal(raw[at]);
        at += 1;
    }
    // The last bytes are too few to start a match.
    for &byte in raw.get(at..).unwrap_or_default() {
        out.literal(byte);
    }
    out.symbol(256); // End of block.
    out.flush();
    out.bytes.extend_from_slice(&adler32(raw).to_be_bytes());
    out.bytes
}

/// The bucket of the 3 bytes at `at`, `None` near the end.
#[inline]
fn hash(raw: &[u8], at: usize) -> Option<usize> {
    let &[a, b, c] = raw.get(at..at + MIN_MATCH)? else {
        return None;
    };
    let key = u32::from_le_bytes([a, b, c, 0]);
    Some((key.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize)
}

/// How many leading bytes `a` and `b` share, at most `max`; compared 8 at a time.
fn common_prefix(a: &[u8], b: &[u8], max: usize) -> usize {
    let len = a.len().min(b.len()).min(max);
    let (a, b) = (&a[..len], &b[..len]);
    let mut same = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (Ok(x), Ok(y)) = (<[u8; 8]>::try_from(x), <[u8; 8]>::try_from(y)) else {
            break;
        };
        let differ = u64::from_le_bytes(x) ^ u64::from_le_bytes(y);
        if differ != 0 {
            return same + (differ.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    same + a[same..].iter().zip(&b[same..]).take_while(|(x, y)| x == y).count()
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before `b` could overflow.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    b << 16 | a
}

/// The fixed code of each literal/length symbol, bit-reversed: Huffman codes are packed
/// most significant bit first, everything else least significant first.
const FIXED_CODES: [u16; 288] = fixed_codes();

const fn fixed_codes() -> [u16; 288] {
    let mut codes = [0u16; 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (code, len) = fixed_code(symbol as u32);
        codes[symbol] = (code.reverse_bits() >> (32 - len)) as u16;
        symbol += 1;
    }
    codes
}

/// A symbol's code in the fixed Huffman code, and its length in bits.
const fn fixed_code(symbol: u32) -> (u32, u32) {
    match symbol {
        0..=143 => (0x30 + symbol, 8),
        144..=255 => (0x190 + symbol - 144, 9),
        256..=279 => (symbol - 256, 7),
        _ => (0xc0 + symbol - 280, 8),
    }
}

/// Bits written least significant first, as deflate packs them.
struct Bits {
    bytes: Vec<u8>,
    pending: u64,
    count: u32,
}

impl Bits {
    /// Add `count` bits (at most 32 in all are ever pending before a call, and calls add
    /// at most 13), writing out whole 32-bit words.
    #[inline]
    fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += count;
        if self.count >= 32 {
            self.bytes.extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.count -= 32;
        }
    }

    /// A literal byte: symbols 0..=143 have 8-bit codes, 144..=255 9-bit ones.
    #[inline]
    fn literal(&mut self, byte: u8) {
        self.put(u32::from(FIXED_CODES[usize::from(byte)]), 8 + u32::from(byte >= 144));
    }

    /// A literal/length symbol in the fixed code.
    #[inline]
    fn symbol(&mut self, symbol: u16) {
        let (_, len) = fixed_code(u32::from(symbol));
        self.put(u32::from(FIXED_CODES[usize::from(symbol)]), len);
    }

    fn length(&mut self, len: usize) {
        let index = LENGTH_BASE
            .iter()
            .rposition(|&base| usize::from(base) <= len)
            .unwrap_or(0);
        self.symbol(257 + index as u16);
        self.put(
            (len - usize::from(LENGTH_BASE[index])) as u32,
            u32::from(LENGTH_EXTRA[index]),
        );
    }

    fn distance(&mut self, distance: usize) {
        let index = DISTANCE_BASE
            .iter()
            .rposition(|&base| usize::from(base) <= distance)
            .unwrap_or(0);
        // The fixed distance codes are the 5-bit numbers themselves.
        self.put((index as u32).reverse_bits() >> 27, 5);
        self.put(
            (distance - usize::from(DISTANCE_BASE[index])) as u32,
            u32::from(DISTANCE_EXTRA[index]),
        );
    }

    /// Write out what is pending, the last byte padded with zero bits.
    fn flush(&mut self) {
        let bytes = self.count.div_ceil(8) as usize;
        self.bytes.extend_from_slice(&self.pending.to_le_bytes()[..bytes]);
        self.pending = 0;
        self.count = 0;
    }
}
