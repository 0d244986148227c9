//! Just enough PNG to tell a blank screenshot from a rendered page: 8-bit grey, grey+alpha,
//! RGB or RGBA, not interlaced (what Chromium's `--screenshot` writes), chunk CRCs checked,
//! scanline filters undone. Colours are compared without their alpha.
use std::collections::HashSet;

use anyhow::{Context as _, bail, ensure};

use crate::inflate;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// Larger screenshots are refused (Chromium's default window is far smaller).
const MAX_PIXELS: u64 = 64 << 20;

/// A decoded image: rows of `width * channels` bytes.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

pub fn decode(bytes: &[u8]) -> anyhow::Result<Image> {
    ensure!(
        bytes.starts_with(&SIGNATURE),
        "not a PNG file (no PNG signature)"
    );
    let mut at = SIGNATURE.len();
    let mut header = None;
    let mut idat = Vec::new();
    loop {
        let len = usize::try_from(be32(bytes, at).context("PNG ends without an IEND chunk")?)?;
        let kind = bytes.get(at + 4..at + 8).context("PNG chunk cut short")?;
        let data = bytes
            .get(at + 8..at + 8 + len)
            .with_context(|| format!("PNG chunk {} cut short", String::from_utf8_lossy(kind)))?;
        let crc = be32(bytes, at + 8 + len).context("PNG chunk without its CRC")?;
        ensure!(
            crc == crc32(&bytes[at + 4..at + 8 + len]),
            "PNG chunk {} fails its CRC",
            String::from_utf8_lossy(kind)
        );
        match kind {
            b"IHDR" => header = Some(Header::read(data)?),
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let h = header.context("PNG has no IHDR chunk")?;
    let row = usize::try_from(h.width)? * h.channels;
    let height = usize::try_from(h.height)?;
    let raw = inflate::zlib(&idat, (row + 1) * height).context("PNG image data")?;
    ensure!(
        raw.len() == (row + 1) * height,
        "PNG image data holds {} bytes, {}x{} needs {}",
        raw.len(),
        h.width,
        h.height,
        (row + 1) * height
    );
    Ok(Image {
        width: h.width,
        height: h.height,
        channels: h.channels,
        pixels: unfilter(&raw, row, h.channels)?,
    })
}

struct Header {
    width: u32,
    height: u32,
    channels: usize,
}

impl Header {
    fn read(data: &[u8]) -> anyhow::Result<Self> {
        ensure!(data.len() == 13, "PNG IHDR of {} bytes", data.len());
        let (width, height) = (be32(data, 0).unwrap_or(0), be32(data, 4).unwrap_or(0));
        let (depth, colour, interlace) = (data[8], data[9], data[12]);
        let channels = match colour {
            0 => 1,
            2 => 3,
            4 => 2,
            6 => 4,
            _ => bail!("PNG colour type {colour} (palette) is not supported"),
        };
        ensure!(depth == 8, "PNG bit depth {depth} is not supported (8 is)");
        ensure!(interlace == 0, "interlaced PNG is not supported");
        ensure!(
            width > 0 && height > 0 && u64::from(width) * u64::from(height) <= MAX_PIXELS,
            "PNG of {width}x{height} pixels"
        );
        Ok(Self {
            width,
            height,
            channels,
        })
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                crc >> 1 ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Undoes the per-row filters (None, Sub, Up, Average, Paeth).
fn unfilter(raw: &[u8], row: usize, bpp: usize) -> anyhow::Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for (y, line) in raw.chunks(row + 1).enumerate() {
        let (filter, data) = (line[0], &line[1..]);
        let start = out.len();
        for (x, &byte) in data.iter().enumerate() {
            let a = if x >= bpp { out[start + x - bpp] } else { 0 };
            let b = if y > 0 { out[start + x - row] } else { 0 };
            let c = if y > 0 && x >= bpp {
                out[start + x - row - bpp]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => u8::try_from(u16::midpoint(u16::from(a), u16::from(b)))?,
                4 => paeth(a, b, c),
                _ => bail!("PNG row {y} has unknown filter {filter}"),
            };
            out.push(byte.wrapping_add(predicted));
        }
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// How much is drawn on an image.
#[derive(Debug, PartialEq)]
pub struct Ink {
    pub width: u32,
    pub height: u32,
    /// Distinct colours (alpha ignored), counted up to `COLOUR_CAP`.
    pub colours: usize,
    /// Share of pixels that differ from the top-left one (the page background).
    pub drawn: f64,
}

const COLOUR_CAP: usize = 4096;
/// Below either of these, an image is blank: a white page, or one with a stray line or two.
pub const MIN_COLOURS: usize = 4;
pub const MIN_DRAWN: f64 = 0.005;

impl Ink {
    #[must_use]
    pub fn of(img: &Image) -> Self {
        let colour = |px: &[u8]| -> [u8; 3] {
            match img.channels {
                1 | 2 => [px[0]; 3],
                _ => [px[0], px[1], px[2]],
            }
        };
        let mut pixels = img.pixels.chunks_exact(img.channels);
        let Some(first) = pixels.next() else {
            return Self {
                width: img.width,
                height: img.height,
                colours: 0,
                drawn: 0.0,
            };
        };
        let background = colour(first);
        let mut colours = HashSet::from([background]);
        let (mut drawn, mut total) = (0u64, 1u64);
        for px in pixels {
            let c = colour(px);
            total += 1;
            if c != background {
                drawn += 1;
                if colours.len() < COLOUR_CAP {
                    colours.insert(c);
                }
            }
        }
        #[allow(clippy::cast_precision_loss)] // pixel counts far below 2^52
        let drawn = drawn as f64 / total as f64;
        Self {
            width: img.width,
            height: img.height,
            colours: colours.len(),
            drawn,
        }
    }

    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.colours < MIN_COLOURS || self.drawn < MIN_DRAWN
    }
}

impl std::fmt::Display for Ink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}: {}{} colour(s), {:.2} % of pixels drawn",
            self.width,
            self.height,
            self.colours,
            if self.colours >= COLOUR_CAP { "+" } else { "" },
            self.drawn * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `rows` (already filtered, each starting with its filter byte), stored blocks.
    fn png(width: u32, height: u32, colour: u8, raw: &[u8]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            out.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&body);
            out.extend(crc32(&body).to_be_bytes());
        };
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, colour, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        let z = inflate::stored_zlib(raw);
        let (a, b) = z.split_at(z.len() / 2); // image data may span chunks
        chunk(b"IDAT", a);
        chunk(b"tEXt", b"Comment\0ignored");
        chunk(b"IDAT", b);
        chunk(b"IEND", &[]);
        out
    }

    #[test]
    fn crc_matches_the_png_specification() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn undoes_every_filter() {
        // 2x3 RGB. Row 0 Sub, row 1 Up, row 2 Paeth; then Average over the same pixels.
        let want: [u8; 18] = [
            10, 20, 30, 40, 50, 60, //
            11, 22, 33, 44, 55, 66, //
            12, 24, 36, 48, 60, 72,
        ];
        let raw = [
            1, 10, 20, 30, 30, 30, 30, // Sub: second pixel minus first
            2, 1, 2, 3, 4, 5, 6, // Up: minus the row above
            4, 1, 2, 3, 4, 5, 6, // Paeth: predictor picks b (above) here
        ];
        let img = decode(&png(2, 3, 2, &raw)).unwrap();
        assert_eq!((img.width, img.height, img.channels), (2, 3, 3));
        assert_eq!(img.pixels, want);

        let raw = [
            0, 10, 20, 30, 40, 50, 60, // None
            3, 6, 12, 18, 19, 19, 20, // Average: (left + up) / 2
            0, 12, 24, 36, 48, 60, 72,
        ];
        assert_eq!(decode(&png(2, 3, 2, &raw)).unwrap().pixels, want);
    }

    #[test]
    fn blank_and_drawn_images() {
        let (w, h) = (100u32, 100u32);
        let white_row: Vec<u8> = std::iter::once(0)
            .chain(std::iter::repeat_n(255, 400))
            .collect();
        let blank: Vec<u8> = white_row.repeat(100);
        let img = decode(&png(w, h, 6, &blank)).unwrap();
        let ink = Ink::of(&img);
        assert_eq!(
            ink,
            Ink {
                width: 100,
                height: 100,
                colours: 1,
                drawn: 0.0
            }
        );
        assert!(ink.is_blank());

        // One grey line across a white page: still blank.
        let mut one_line = blank.clone();
        for px in one_line[1..401].chunks_mut(4) {
            px[..3].copy_from_slice(&[128, 128, 128]);
        }
        assert!(Ink::of(&decode(&png(w, h, 6, &one_line)).unwrap()).is_blank());

        // Text-like strokes in several colours over 10 % of the page: drawn.
        let mut page = blank;
        for y in (5..100).step_by(10) {
            for x in 0..100usize {
                let at = y * 401 + 1 + x * 4;
                let shade = u8::try_from(x % 5 * 40).unwrap();
                page[at..at + 3].copy_from_slice(&[shade, 0, 255 - shade]);
            }
        }
        let ink = Ink::of(&decode(&png(w, h, 6, &page)).unwrap());
        assert!(!ink.is_blank(), "{ink}");
        assert_eq!(ink.colours, 6);
        assert!((ink.drawn - 0.1).abs() < 1e-9, "{ink}");
    }

    #[test]
    fn broken_files_are_errors() {
        let raw = [0u8, 1, 2, 3];
        let good = png(1, 1, 2, &raw);
        assert!(decode(&good).is_ok());
        let err = decode(b"GIF89a").err().unwrap().to_string();
        assert!(err.contains("not a PNG"), "{err}");
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 1; // inside IHDR
        let err = format!("{:#}", decode(&bad_crc).err().unwrap());
        assert!(err.contains("CRC"), "{err}");
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let err = format!("{:#}", decode(&png(2, 1, 2, &raw)).err().unwrap());
        assert!(err.contains("needs 7"), "{err}");
        assert!(decode(&png(1, 1, 3, &raw)).is_err(), "palette");
    }
}
