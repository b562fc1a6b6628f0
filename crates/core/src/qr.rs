//! QR rendering of setup codes: SVG for the window, PNG for chat, text for the terminal.

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the setup code does not fit in a QR code: {0}")]
    Encode(String),
    #[error("cannot encode the QR PNG: {0}")]
    Png(String),
}

fn code(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))
}

/// An SVG with a quiet zone, black on white (scanners need the contrast whatever the theme).
pub fn svg(text: &str) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<svg::Color>()
        .min_dimensions(256, 256)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

/// Half-height block characters, two modules per character row.
pub fn terminal(text: &str) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// A grayscale PNG, `scale` pixels a module, with a 4-module quiet zone.
pub fn png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let c = code(text)?;
    let w = c.width() as u32;
    let quiet = 4u32;
    let scale = scale.clamp(1, 32);
    let side = (w + 2 * quiet) * scale;
    let colors = c.to_colors();
    let mut pixels = vec![255u8; (side * side) as usize];
    for y in 0..w {
        for x in 0..w {
            if colors[(y * w + x) as usize] == qrcode::Color::Dark {
                for dy in 0..scale {
                    let row = ((y + quiet) * scale + dy) * side;
                    let start = (row + (x + quiet) * scale) as usize;
                    pixels[start..start + scale as usize].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_form() {
        let t = "eyJ1cmwiOiJ3czovLzE5Mi4xNjguMS4yOjE4Nzg5LyIsImJvb3RzdHJhcFRva2VuIjoieCJ9";
        assert!(svg(t).unwrap().starts_with("<?xml"));
        assert!(terminal(t).unwrap().contains('█'));
        let p = png(t, 4).unwrap();
        assert_eq!(&p[1..4], b"PNG");
    }
}
