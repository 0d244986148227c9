//! How much is drawn on a screenshot: tells a blank page from a rendered one. The PNG is decoded
//! by the `png` crate (to 8-bit grey, grey+alpha, RGB or RGBA); colours are compared without
//! their alpha.
use std::collections::HashSet;

use anyhow::{Context as _, ensure};

/// Larger screenshots are refused (Chromium's default window is far smaller).
const MAX_BYTES: usize = 256 << 20;

/// A decoded image: rows of `width * channels` bytes.
pub(crate) struct Image {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Image> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_limits(png::Limits { bytes: MAX_BYTES });
    let mut reader = decoder.read_info().context("reading the PNG header")?;
    let size = reader.output_buffer_size().context("PNG image too large")?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .context("decoding the PNG image data")?;
    pixels.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    ensure!(
        frame.bit_depth == png::BitDepth::Eight,
        "PNG of bit depth {:?} after normalising",
        frame.bit_depth
    );
    Ok(Image {
        width: frame.width,
        height: frame.height,
        channels,
        pixels,
    })
}

/// How much is drawn on an image.
#[derive(Debug, PartialEq)]
pub(crate) struct Ink {
    pub width: u32,
    pub height: u32,
    /// Distinct colours (alpha ignored), counted up to `COLOUR_CAP`.
    pub colours: usize,
    /// Share of pixels that differ from the top-left one (the page background).
    pub drawn: f64,
}

const COLOUR_CAP: usize = 4096;
/// Below either of these, an image is blank: a white page, or one with a stray line or two.
pub(crate) const MIN_COLOURS: usize = 4;
pub(crate) const MIN_DRAWN: f64 = 0.005;

impl Ink {
    #[must_use]
    pub(crate) fn of(img: &Image) -> Self {
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
    pub(crate) fn is_blank(&self) -> bool {
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

    /// An 8-bit PNG of `width` x `height` pixels of `colour` type.
    fn png(width: u32, height: u32, colour: png::ColorType, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(colour);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn decodes_grey_and_colour_images_to_their_pixels() {
        let rgb = [10, 20, 30, 40, 50, 60, 11, 22, 33, 44, 55, 66];
        let img = decode(&png(2, 2, png::ColorType::Rgb, &rgb)).unwrap();
        assert_eq!((img.width, img.height, img.channels), (2, 2, 3));
        assert_eq!(img.pixels, rgb);
        let grey = [0, 255, 128, 7];
        let img = decode(&png(4, 1, png::ColorType::Grayscale, &grey)).unwrap();
        assert_eq!((img.channels, img.pixels.as_slice()), (1, &grey[..]));
    }

    #[test]
    fn blank_and_drawn_images() {
        let (w, h) = (100u32, 100u32);
        let blank = vec![255u8; 100 * 100 * 4];
        let img = decode(&png(w, h, png::ColorType::Rgba, &blank)).unwrap();
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
        for px in one_line[..400].chunks_mut(4) {
            px[..3].copy_from_slice(&[128, 128, 128]);
        }
        let img = decode(&png(w, h, png::ColorType::Rgba, &one_line)).unwrap();
        assert!(Ink::of(&img).is_blank());

        // Text-like strokes in several colours over 10 % of the page: drawn.
        let mut page = blank;
        for y in (5..100).step_by(10) {
            for x in 0..100usize {
                let at = (y * 100 + x) * 4;
                let shade = u8::try_from(x % 5 * 40).unwrap();
                page[at..at + 3].copy_from_slice(&[shade, 0, 255 - shade]);
            }
        }
        let img = decode(&png(w, h, png::ColorType::Rgba, &page)).unwrap();
        let ink = Ink::of(&img);
        assert!(!ink.is_blank(), "{ink}");
        assert_eq!(ink.colours, 6);
        assert!((ink.drawn - 0.1).abs() < 1e-9, "{ink}");
    }

    #[test]
    fn broken_files_are_errors() {
        let good = png(1, 1, png::ColorType::Rgb, &[1, 2, 3]);
        assert!(decode(&good).is_ok());
        assert!(decode(b"GIF89a").is_err());
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 1; // inside IHDR
        assert!(decode(&bad_crc).is_err());
        // Cut anywhere before its last chunk (IEND, 12 bytes), the image data is incomplete.
        for cut in 0..good.len() - 12 {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
    }
}
