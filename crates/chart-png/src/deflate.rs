//! The zlib stream that `fdeflate`'s `Compressor` writes (one fixed Huffman code tuned for
//! filtered PNG rows, and runs of zero bytes as the only matches), bit for bit, found faster:
//! zero bytes are skipped 64 at a time through a mask of the non-zero ones, where `fdeflate`
//! tests 8 at a time and branches on every 8 that hold one.
//!
//! The code lengths and the stream's header are `fdeflate` 0.3's (MIT OR Apache-2.0, by the
//! image-rs developers); `tests` compares the bytes with `fdeflate`'s own on chart-like rows.
//!
//! The stream's Adler-32 checksum is summed in the same pass (see [`Checksum`]): with a pass
//! of its own (`simd-adler32`) over every byte, a 820x570 trial chart took 8% longer to
//! encode and the 1440x800 `curves.png` 3% (best of 400 each, 5 runs in turn).

/// The zlib header and the block header that declares the code below (its last byte holds 5
/// bits), as `fdeflate` writes them.
const HEADER: [u8; 54] = [
    120, 1, 237, 192, 3, 160, 36, 89, 150, 198, 241, 255, 119, 238, 141, 200, 204, 167, 114, 75,
    99, 174, 109, 219, 182, 109, 219, 182, 109, 219, 182, 109, 105, 140, 158, 150, 74, 175, 158,
    50, 51, 34, 238, 249, 118, 183, 106, 122, 166, 135, 59, 107, 213, 15,
];

/// Code lengths of the literal/length alphabet: short for bytes near 0 and 255, which is what
/// a filtered row mostly holds.
const LENGTHS: [u8; 286] = [
    2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10,
    10, 10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11, 11, 11,
    11, 11, 11, 10, 11, 10, 10, 10, 10, 10, 10, 10, 10, 10, 9, 9, 9, 9, 9, 8, 9, 8, 8, 8, 8, 8, 7,
    7, 7, 6, 6, 6, 5, 4, 3, 12, 12, 12, 9, 9, 11, 10, 11, 11, 10, 11, 11, 11, 11, 11, 11, 12, 11,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 9,
];

/// The canonical codes of [`LENGTHS`], bit-reversed as deflate writes them.
const CODES: [u16; 286] = canonical(&LENGTHS);

/// Literal/length symbol 256: the end of the block.
const END: usize = 256;
/// Length symbol 285: 258 bytes, no extra bits.
const LONGEST: usize = 285;

const fn canonical(lengths: &[u8; 286]) -> [u16; 286] {
    let mut codes = [0u16; 286];
    let mut code = 0u32;
    let mut len = 1;
    while len <= 16 {
        let mut i = 0;
        while i < lengths.len() {
            if lengths[i] == len {
                codes[i] = (code as u16).reverse_bits() >> (16 - len);
                code += 1;
            }
            i += 1;
        }
        code <<= 1;
        len += 1;
    }
    assert!(code == 2 << 16, "the lengths make a complete code");
    // A run of zeros inside 8 bytes is written as zero literals by shifting in zero bits.
    assert!(codes[0] == 0, "the zero byte's code is all zeros");
    codes
}

/// Deflate's length symbol and extra bits for a match of `len` bytes (3 to 258).
#[inline(always)]
fn length_symbol(len: usize) -> (usize, u32, u64) {
    debug_assert!((3..=258).contains(&len));
    if len == 258 {
        return (LONGEST, 0, 0);
    }
    if len < 11 {
        return (254 + len, 0, 0);
    }
    // From 11 on, each group of four symbols has one more extra bit, the first group 1.
    let x = (len - 3) as u32;
    let extra = 31 - x.leading_zeros() - 2;
    let symbol = 261 + 4 * extra as usize + (x >> extra) as usize - 4;
    (symbol, extra, u64::from(x & ((1 << extra) - 1)))
}

/// Each byte's literal code: the code's bits, and its length from bit 16.
const LITERALS: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = CODES[i] as u32 | (LENGTHS[i] as u32) << 16;
        i += 1;
    }
    table
};

/// Bits on their way into a byte buffer: `pending` of them in `bits`, fewer than 8 between
/// calls. Each `push` of at most 56 bits is followed by a `flush`, which stores all 8 bytes
/// of `bits` at `end` and moves `end` past the whole ones (the room after `end` holds them).
struct Bits<'o> {
    out: &'o mut [u8],
    end: usize,
    bits: u64,
    pending: u32,
}

impl Bits<'_> {
    #[inline(always)]
    fn push(&mut self, bits: u64, n: u32) {
        debug_assert!(self.pending + n <= 63);
        self.bits |= bits << self.pending;
        self.pending += n;
    }

    #[inline(always)]
    fn flush(&mut self) {
        self.out[self.end..self.end + 8].copy_from_slice(&self.bits.to_le_bytes());
        let whole = self.pending / 8;
        self.end += whole as usize;
        self.bits >>= 8 * whole;
        self.pending -= 8 * whole;
    }

    /// `bytes` as literals, four codes (48 bits at most) to a flush, each added to `sum`.
    #[inline(always)]
    fn literals(&mut self, bytes: &[u8], sum: &mut Checksum) {
        for four in bytes.chunks(4) {
            for &b in four {
                sum.byte(b);
                let code = LITERALS[b as usize];
                self.push(u64::from(code & 0xffff), code >> 16);
            }
            self.flush();
        }
    }

    /// `len` zero bytes as a zero literal and then matches at distance 1 (the distance code
    /// is the one-bit code 0); four or fewer after the first as literals.
    fn run(&mut self, len: usize) {
        self.push(0, u32::from(LENGTHS[0]));
        let mut rest = len - 1;
        let longest = (u64::from(CODES[LONGEST]), u32::from(LENGTHS[LONGEST]) + 1);
        while rest >= 258 {
            self.push(longest.0, longest.1);
            self.flush();
            rest -= 258;
        }
        if rest > 4 {
            let (symbol, extra, value) = length_symbol(rest);
            self.push(u64::from(CODES[symbol]), u32::from(LENGTHS[symbol]));
            self.push(value, extra + 1);
        } else {
            self.push(0, rest as u32 * u32::from(LENGTHS[0]));
        }
        self.flush();
    }

    /// The zero bytes from `start` to `end` (both of one call's data), added to `sum`: a run
    /// if they reach the end of one of the data's 8-byte groups, else literals, as `fdeflate`
    /// writes them.
    #[inline(always)]
    fn zeros(&mut self, start: usize, end: usize, sum: &mut Checksum) {
        sum.zeros(end - start);
        if start == end {
        } else if end >> 3 > start >> 3 {
            self.run(end - start);
        } else {
            // Fewer than 8, so at most 14 bits.
            self.push(0, (end - start) as u32 * u32::from(LENGTHS[0]));
            self.flush();
        }
    }
}

/// Adler-32's two sums (RFC 1950), added to as bytes are written and reduced modulo 65521
/// only now and then: a literal byte adds itself to the first and then the first to the
/// second; a run of `n` zeros leaves the first and adds `n` times it to the second, in one
/// step. Reduced at most every [`Checksum::REDUCE_EVERY`] bytes, the sums stay below 2^16 +
/// 255 * 2^23 and 2^16 + 2^23 * (2^16 + 255 * 2^23) < 2^55.
#[derive(Clone, Copy)]
struct Checksum {
    a: u64,
    b: u64,
}

impl Checksum {
    const MOD: u64 = 65521;
    const REDUCE_EVERY: usize = 1 << 22;

    #[inline(always)]
    fn byte(&mut self, x: u8) {
        self.a += u64::from(x);
        self.b += self.a;
    }

    #[inline(always)]
    fn zeros(&mut self, n: usize) {
        self.b += n as u64 * self.a;
    }

    fn reduce(&mut self) {
        self.a %= Self::MOD;
        self.b %= Self::MOD;
    }

    fn finish(mut self) -> u32 {
        self.reduce();
        (self.b << 16 | self.a) as u32
    }
}

/// Writes the compressed stream into `out` as data is given to it.
pub(crate) struct Deflate<'a> {
    out: &'a mut Vec<u8>,
    /// Where the stream ends in `out`; what follows is room to write into.
    end: usize,
    bits: u64,
    pending: u32,
    checksum: Checksum,
    /// Bytes added to the checksum since it was last reduced.
    unreduced: usize,
}

impl<'a> Deflate<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.extend_from_slice(&HEADER[..53]);
        Deflate {
            end: out.len(),
            out,
            checksum: Checksum { a: 1, b: 0 },
            unreduced: 0,
            bits: u64::from(HEADER[53]),
            pending: 5,
        }
    }

    /// Compresses `data` as `fdeflate`'s `Compressor::write_data` given the same would: its
    /// 8-byte groups (from `data`'s start) are what decide whether zeros are a run, and bytes
    /// after the last whole group are literals.
    pub(crate) fn write(&mut self, data: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2(deflate: &mut Deflate, data: &[u8]) {
                // SAFETY: called only where the CPU has AVX2, as this function is.
                deflate.write_with(data, |block| unsafe { nonzero_avx2(block) });
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2(self, data) };
            }
        }
        self.write_with(data, nonzero);
    }

    #[inline(always)]
    fn write_with(&mut self, data: &[u8], nonzero: impl Fn(&[u8; 64]) -> u64) {
        // At most 12 bits a byte (a literal's longest code; a run costs less), and the 8
        // bytes that each flush stores.
        let room = self.end + data.len() * 3 / 2 + 16;
        if self.out.len() < room {
            self.out.resize(room, 0);
        }
        let mut w = Bits {
            out: &mut self.out[..],
            end: self.end,
            bits: self.bits,
            pending: self.pending,
        };
        let (mut sum, mut unreduced) = (self.checksum, self.unreduced);
        let grouped = data.len() & !7;
        let mut zeros_from = 0;
        let mut base = 0;
        let mut blocks = data[..grouped].chunks_exact(64);
        let mut last = [0u8; 64];
        last[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
        for block in (&mut blocks).chain(std::iter::once(&last[..])) {
            let block: &[u8; 64] = block.try_into().expect("64 bytes");
            let mut mask = nonzero(block);
            // Each 8-byte group with a non-zero byte: the zeros before its first one, then
            // the bytes from its first to its last non-zero one as literals.
            while mask != 0 {
                let at = mask.trailing_zeros() as usize;
                let group = at & !7;
                let in_group = (mask >> group) as u8;
                let end = group + 8 - in_group.leading_zeros() as usize;
                w.zeros(zeros_from, base + at, &mut sum);
                w.literals(&data[base + at..base + end], &mut sum);
                zeros_from = base + end;
                mask &= !(0xff << group);
            }
            base += 64;
            // Reduced on the way, in a long call too (zeros not summed yet add to the
            // reduced sums alike, modulo 65521). A call counts at least the bytes it holds:
            // its last block counts 64 for its up to 56 and the up to 7 after them.
            unreduced += 64;
            if unreduced >= Checksum::REDUCE_EVERY {
                sum.reduce();
                unreduced = 0;
            }
        }
        w.zeros(zeros_from, grouped, &mut sum);
        w.literals(&data[grouped..], &mut sum);
        (self.end, self.bits, self.pending) = (w.end, w.bits, w.pending);
        (self.checksum, self.unreduced) = (sum, unreduced);
    }

    /// Ends the block, pads to a byte and appends the Adler-32 checksum.
    pub(crate) fn finish(self) {
        let mut w = Bits {
            out: &mut [0; 16],
            end: 0,
            bits: self.bits,
            pending: self.pending,
        };
        w.push(u64::from(CODES[END]), u32::from(LENGTHS[END]));
        w.flush();
        let tail = w.end + w.pending.div_ceil(8) as usize;
        let tail = w.out[..tail].to_vec();
        self.out.truncate(self.end);
        self.out.extend_from_slice(&tail);
        self.out
            .extend_from_slice(&self.checksum.finish().to_be_bytes());
    }
}

/// Bit `i` set where `block[i]` is not zero, 32 bytes at a time.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn nonzero_avx2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_setzero_si256,
    };
    let zero = |at: usize| {
        // SAFETY: reads 32 of the block's 64 bytes, at 0 or 32.
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(at).cast::<__m256i>()) };
        u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_setzero_si256())) as u32)
    };
    !(zero(0) | zero(32) << 32)
}

/// Bit `i` set where `block[i]` is not zero.
#[inline(always)]
fn nonzero(block: &[u8; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
        };
        let mut zero = 0u64;
        for (i, part) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `part`.
            let bits = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))
            };
            zero |= u64::from(bits as u16) << (16 * i);
        }
        !zero
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut mask = 0u64;
        for (i, &byte) in block.iter().enumerate() {
            mask |= u64::from(byte != 0) << i;
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fdeflate`'s length tables, as its compressor uses them.
    #[test]
    fn length_symbols_follow_the_deflate_specification() {
        let bases = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        let extras = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        for len in 3..=258 {
            let i = bases.iter().rposition(|&b| b <= len).unwrap();
            let (symbol, extra, value) = length_symbol(len);
            assert_eq!(
                (symbol, extra, value),
                (257 + i, extras[i], (len - bases[i]) as u64),
                "{len}"
            );
        }
    }

    /// The stream test below runs one of the masks (AVX2 where the CPU has it): all agree.
    #[test]
    fn the_masks_mark_the_non_zero_bytes() {
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..1000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                let x = next();
                *b = if x.is_multiple_of(4) { x as u8 } else { 0 };
            }
            let expected = (0..64).fold(0u64, |m, i| m | u64::from(block[i] != 0) << i);
            assert_eq!(nonzero(&block), expected);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                assert_eq!(unsafe { nonzero_avx2(&block) }, expected);
            }
        }
    }

    /// Compresses `pieces` (each one `write`) with this module and with `fdeflate`.
    fn both(pieces: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let mut ours = Vec::new();
        let mut deflate = Deflate::new(&mut ours);
        for p in pieces {
            deflate.write(p);
        }
        deflate.finish();
        let mut theirs = fdeflate::Compressor::new(Vec::new()).unwrap();
        for p in pieces {
            theirs.write_data(p).unwrap();
        }
        (ours, theirs.finish().unwrap())
    }

    #[test]
    fn the_stream_is_fdeflates_byte_for_byte() {
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut cases: Vec<Vec<Vec<u8>>> = vec![
            vec![],
            vec![vec![]],
            vec![vec![0]],
            vec![vec![7]],
            vec![vec![0; 8]],
            vec![vec![0; 2461]],
            vec![vec![0; 100_000]],
        ];
        // Rows like a filtered chart's: a filter byte, then mostly zeros with sparse bursts of
        // every length at every offset; some runs end exactly at group and block boundaries.
        for len in [1usize, 7, 8, 9, 63, 64, 65, 130, 1000, 2461, 4321] {
            for density in [0u64, 1, 4, 16, 64, 256] {
                let mut rows = Vec::new();
                for _ in 0..6 {
                    let mut row = vec![0u8; len];
                    row[0] = [2, 4][next() as usize % 2];
                    let mut i = 0;
                    while i < len {
                        if density > 0 && next() % 256 < density {
                            let burst = 1 + next() as usize % 9;
                            for b in row.iter_mut().skip(i).take(burst) {
                                // Zeros inside a burst too: zeros between non-zero bytes.
                                *b = if next().is_multiple_of(3) {
                                    0
                                } else {
                                    next() as u8
                                };
                            }
                            i += burst;
                        }
                        i += 1 + next() as usize % 12;
                    }
                    rows.push(row);
                }
                cases.push(rows);
            }
        }
        let noise: Vec<u8> = (0..5000).map(|_| next() as u8).collect();
        cases.push(vec![noise.clone(), noise[..17].to_vec(), noise]);
        // Past the checksum's reductions: 9 MiB of noise at once, in rows, and mostly zeros.
        let big: Vec<u8> = (0..9 << 20).map(|_| next() as u8 | 1).collect();
        cases.push(vec![big.clone()]);
        cases.push(big.chunks(4321).map(<[u8]>::to_vec).collect());
        let mut sparse = vec![0u8; 9 << 20];
        for i in (0..sparse.len()).step_by(997) {
            sparse[i] = 255;
        }
        cases.push(vec![sparse]);
        for (i, pieces) in cases.iter().enumerate() {
            let (ours, theirs) = both(pieces);
            assert_eq!(ours, theirs, "case {i}");
        }
    }
}
