//! A small zlib / DEFLATE decoder (RFC 1950, RFC 1951), enough to read the PNG screenshots
//! Chromium writes without pulling an image or compression crate into xtask. It follows zlib's
//! `puff.c`: canonical Huffman codes decoded bit by bit. Slow next to zlib, fast enough for a
//! few screenshots.
use anyhow::{Context as _, bail, ensure};

/// Decompresses a zlib stream (header, DEFLATE data, Adler-32), refusing to produce more than
/// `limit` bytes.
pub fn zlib(data: &[u8], limit: usize) -> anyhow::Result<Vec<u8>> {
    let [cmf, flg, ..] = *data else {
        bail!("zlib stream of {} byte(s): no header", data.len());
    };
    ensure!(
        cmf & 0x0f == 8 && cmf >> 4 <= 7,
        "zlib header {cmf:#04x}: not DEFLATE with a window <= 32 KiB"
    );
    ensure!(
        (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0,
        "zlib header {cmf:#04x} {flg:#04x}: bad check bits"
    );
    ensure!(flg & 0x20 == 0, "zlib stream needs a preset dictionary");
    let mut bits = Bits::new(&data[2..]);
    let out = inflate(&mut bits, limit)?;
    let end = 2 + bits.byte;
    let trailer: [u8; 4] = data
        .get(end..end + 4)
        .and_then(|s| s.try_into().ok())
        .context("zlib stream ends before its Adler-32")?;
    let (wanted, found) = (u32::from_be_bytes(trailer), adler32(&out));
    ensure!(
        wanted == found,
        "zlib Adler-32 mismatch: stream says {wanted:#010x}, data has {found:#010x}"
    );
    Ok(out)
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    b << 16 | a
}

/// LSB-first bit reader.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    byte: usize,
    buffer: u32,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            byte: 0,
            buffer: 0,
            count: 0,
        }
    }

    fn take(&mut self, n: u32) -> anyhow::Result<u32> {
        while self.count < n {
            let byte = *self
                .data
                .get(self.byte)
                .context("DEFLATE stream ends in the middle of a block")?;
            self.byte += 1;
            self.buffer |= u32::from(byte) << self.count;
            self.count += 8;
        }
        let value = self.buffer & ((1u32 << n) - 1);
        self.buffer >>= n;
        self.count -= n;
        Ok(value)
    }

    /// Drops the bits left in the current byte (stored blocks start on a byte).
    fn align(&mut self) {
        self.buffer = 0;
        self.count = 0;
    }

    fn bytes(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let slice = self
            .data
            .get(self.byte..self.byte + n)
            .context("DEFLATE stored block runs past the end of the data")?;
        self.byte += n;
        Ok(slice)
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> anyhow::Result<Self> {
        let mut counts = [0u16; 16];
        for &len in lengths {
            counts[usize::from(len)] += 1;
        }
        counts[0] = 0;
        let mut left: i32 = 1;
        for &count in &counts[1..] {
            left = left * 2 - i32::from(count);
            ensure!(left >= 0, "DEFLATE Huffman code is over-subscribed");
        }
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let slot = &mut offsets[usize::from(len)];
                symbols[usize::from(*slot)] = u16::try_from(symbol)?;
                *slot += 1;
            }
        }
        Ok(Self { counts, symbols })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> anyhow::Result<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for &count in &self.counts[1..] {
            code |= i32::try_from(bits.take(1)?)?;
            let count = i32::from(count);
            if code - first < count {
                let at = usize::try_from(index + code - first)?;
                return self.symbols.get(at).copied().context("bad Huffman table");
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        bail!("DEFLATE data holds a code that is not in its Huffman table")
    }
}

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which a dynamic block lists its code-length code lengths.
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

fn inflate(bits: &mut Bits<'_>, limit: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => stored(bits, &mut out, limit)?,
            1 => {
                let (lit, dist) = fixed()?;
                codes(bits, &mut out, &lit, &dist, limit)?;
            }
            2 => {
                let (lit, dist) = dynamic(bits)?;
                codes(bits, &mut out, &lit, &dist, limit)?;
            }
            _ => bail!("DEFLATE block type 3 is reserved"),
        }
        if last {
            return Ok(out);
        }
    }
}

fn stored(bits: &mut Bits<'_>, out: &mut Vec<u8>, limit: usize) -> anyhow::Result<()> {
    bits.align();
    let header = bits.bytes(4)?;
    let len = u16::from_le_bytes([header[0], header[1]]);
    let nlen = u16::from_le_bytes([header[2], header[3]]);
    ensure!(len == !nlen, "DEFLATE stored block length check failed");
    ensure!(
        out.len() + usize::from(len) <= limit,
        "decompressed data exceeds {limit} bytes"
    );
    out.extend_from_slice(bits.bytes(usize::from(len))?);
    Ok(())
}

fn fixed() -> anyhow::Result<(Huffman, Huffman)> {
    let mut lengths = [0u8; 288];
    for (symbol, len) in lengths.iter_mut().enumerate() {
        *len = match symbol {
            144..=255 => 9,
            256..=279 => 7,
            _ => 8, // 0..=143 and 280..=287
        };
    }
    Ok((Huffman::new(&lengths)?, Huffman::new(&[5u8; 30])?))
}

fn dynamic(bits: &mut Bits<'_>) -> anyhow::Result<(Huffman, Huffman)> {
    let nlen = usize::try_from(bits.take(5)?)? + 257;
    let ndist = usize::try_from(bits.take(5)?)? + 1;
    let ncode = usize::try_from(bits.take(4)?)? + 4;
    ensure!(
        nlen <= 286 && ndist <= 30,
        "DEFLATE dynamic block with too many codes"
    );
    let mut clens = [0u8; 19];
    for &at in &CLEN_ORDER[..ncode] {
        clens[at] = u8::try_from(bits.take(3)?)?;
    }
    let clen = Huffman::new(&clens)?;
    let mut lengths = vec![0u8; nlen + ndist];
    let mut i = 0;
    while i < lengths.len() {
        let symbol = clen.decode(bits)?;
        if symbol < 16 {
            lengths[i] = u8::try_from(symbol)?;
            i += 1;
            continue;
        }
        let (value, repeat) = match symbol {
            16 => {
                ensure!(i > 0, "DEFLATE repeats a code length before the first one");
                (lengths[i - 1], 3 + bits.take(2)?)
            }
            17 => (0, 3 + bits.take(3)?),
            _ => (0, 11 + bits.take(7)?),
        };
        let repeat = usize::try_from(repeat)?;
        ensure!(
            i + repeat <= lengths.len(),
            "DEFLATE code lengths overflow their table"
        );
        lengths[i..i + repeat].fill(value);
        i += repeat;
    }
    ensure!(lengths[256] != 0, "DEFLATE dynamic block has no end code");
    Ok((
        Huffman::new(&lengths[..nlen])?,
        Huffman::new(&lengths[nlen..])?,
    ))
}

fn codes(
    bits: &mut Bits<'_>,
    out: &mut Vec<u8>,
    lit: &Huffman,
    dist: &Huffman,
    limit: usize,
) -> anyhow::Result<()> {
    loop {
        let symbol = lit.decode(bits)?;
        match symbol {
            0..=255 => {
                ensure!(out.len() < limit, "decompressed data exceeds {limit} bytes");
                out.push(u8::try_from(symbol)?);
            }
            256 => return Ok(()),
            _ => {
                let at = usize::from(symbol - 257);
                ensure!(at < 29, "DEFLATE length code {symbol} is invalid");
                let len = usize::from(LENGTH_BASE[at])
                    + usize::try_from(bits.take(u32::from(LENGTH_EXTRA[at]))?)?;
                let d = usize::from(dist.decode(bits)?);
                ensure!(d < 30, "DEFLATE distance code {d} is invalid");
                let back = usize::from(DIST_BASE[d])
                    + usize::try_from(bits.take(u32::from(DIST_EXTRA[d]))?)?;
                ensure!(
                    back <= out.len(),
                    "DEFLATE distance {back} reaches before the start of the data"
                );
                ensure!(
                    out.len() + len <= limit,
                    "decompressed data exceeds {limit} bytes"
                );
                let start = out.len() - back;
                for k in 0..len {
                    out.push(out[start + k]);
                }
            }
        }
    }
}

/// A zlib stream of `data` in stored (uncompressed) blocks: for tests of what reads zlib.
#[cfg(test)]
pub fn stored_zlib(data: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        z.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        z.push(u8::from(chunks.peek().is_none()));
        let len = u16::try_from(chunk.len()).unwrap();
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend_from_slice(chunk);
    }
    z.extend(adler32(data).to_be_bytes());
    z
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn fixed_huffman_block() {
        // zlib.compress(b"hello hello hello hello", 9)
        let z = hex("78dacb48cdc9c957c8402701680308b1");
        assert_eq!(zlib(&z, 1 << 20).unwrap(), b"hello hello hello hello");
    }

    #[test]
    fn dynamic_huffman_block() {
        // zlib.compress(text, 9) of the text below: a dynamic block with back references.
        let mut text = String::new();
        for i in 0..12 {
            let _ = writeln!(
                text,
                "line {i}: the SMMU was reset, then fatal AER on 0000:02:00.{}",
                i % 8
            );
        }
        let z = hex(concat!(
            "78da9dd13b0ac3301084e1dea7980318b32bbfd5a548e926260750a1608390c116e4fa89d91bcc9403",
            "5ff5a73d478847d922d66579e31b2e9cf18aa5bebf8c4f2821e1f17ce1c890ffbc382fd248956eaa04",
            "55a38ea0ce684bd0d66847d0ce684fd0dee840d0c1e848d0d1e8c4779df9ae2a7c5855aaec0f5259cf5f"
        ));
        assert_eq!(z[2] >> 1 & 3, 2, "the vector must hold a dynamic block");
        assert_eq!(zlib(&z, 1 << 20).unwrap(), text.as_bytes());
    }

    #[test]
    fn stored_blocks_round_trip() {
        let data: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(zlib(&stored_zlib(&data), 1 << 20).unwrap(), data);
        assert_eq!(zlib(&stored_zlib(&[]), 10).unwrap(), b"");
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let z = hex("78dacb48cdc9c957c8402701680308b1");
        let mut bad_sum = z.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        assert!(
            zlib(&bad_sum, 1 << 20)
                .unwrap_err()
                .to_string()
                .contains("Adler-32")
        );
        assert!(zlib(&z[..8], 1 << 20).is_err(), "truncated");
        assert!(zlib(&[0x78, 0x00], 1 << 20).is_err(), "bad check bits");
        let err = zlib(&z, 5).unwrap_err().to_string();
        assert!(err.contains("exceeds 5 bytes"), "{err}");
        // Every truncation and every single-byte corruption fails or decodes, never panics.
        for cut in 0..z.len() {
            let _ = zlib(&z[..cut], 1 << 20);
        }
        for at in 0..z.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut d = z.clone();
                d[at] ^= flip;
                let _ = zlib(&d, 1 << 20);
            }
        }
    }
}
