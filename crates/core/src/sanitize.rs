//! Requester-controlled text (names, usernames, meta) made safe to show: no control, bidi,
//! zero-width or otherwise invisible characters, at most 64 characters; and escaped for the
//! places that read markup (freedesktop notification bodies).

/// The most characters of requester text ever shown.
pub const MAX_SHOWN_CHARS: usize = 64;

fn is_hidden_or_steering(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                  // Arabic letter mark
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, embeddings, overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, isolates
            | '\u{FEFF}'                // zero-width no-break space / BOM
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{00AD}'                // soft hyphen
            | '\u{034F}'                // combining grapheme joiner
            | '\u{115F}' | '\u{1160}'    // Hangul choseong / jungseong fillers
            | '\u{3164}' | '\u{FFA0}'    // Hangul filler, halfwidth Hangul filler
            | '\u{FE00}'..='\u{FE0F}'   // variation selectors
            | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
            | '\u{E0000}'..='\u{E007F}' // tag characters (invisible "ASCII smuggling")
        )
}

/// Escapes `&`, `<` and `>` for text shown where markup is read: freedesktop notification
/// servers may render a body's `<b>` or `<a href>`.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Strips control, bidi and zero-width characters, collapses runs of whitespace, trims,
/// and cuts to [`MAX_SHOWN_CHARS`] characters (adding `…` when cut).
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS * 4));
    let mut count = 0usize;
    let mut pending_space = false;
    for c in text.chars() {
        if is_hidden_or_steering(c) {
            // Tabs and newlines separate words; other hidden characters vanish.
            if matches!(c, '\t' | '\n' | '\r') {
                pending_space = count > 0;
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            if count + 1 >= MAX_SHOWN_CHARS {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count + 1 > MAX_SHOWN_CHARS {
            out.pop();
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_control_and_zero_width_characters_are_removed() {
        let evil = "Al\u{202E}ice\u{200B} \u{0007}Bob\u{2066}\u{FEFF}";
        assert_eq!(sanitize(evil), "Alice Bob");
    }

    #[test]
    fn tag_characters_variation_selectors_and_hangul_fillers_are_removed() {
        // "Ignore previous" hidden in tag characters, a variation selector, Hangul fillers.
        let hidden: String = "Ignore"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let evil = format!("Ev{hidden}e\u{FE0F}\u{3164}\u{115F}\u{FFA0}\u{E0101}l");
        assert_eq!(sanitize(&evil), "Evel");
    }

    #[test]
    fn markup_is_escaped_for_notification_bodies() {
        assert_eq!(
            escape_markup("<a href=\"x\">Tom & Jerry</a>"),
            "&lt;a href=\"x\"&gt;Tom &amp; Jerry&lt;/a&gt;"
        );
    }

    #[test]
    fn newlines_become_single_spaces_and_ends_are_trimmed() {
        assert_eq!(sanitize("  a\n\nb\tc  "), "a b c");
    }

    #[test]
    fn long_text_is_cut_to_64_characters() {
        let s = sanitize(&"é".repeat(200));
        assert_eq!(s.chars().count(), MAX_SHOWN_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(sanitize(&"x".repeat(64)), "x".repeat(64));
    }
}
