//! Narrative XHTML as plain text, for `_text` (the full-text index over `text.div`).
//!
//! Markup is dropped (every tag becomes a space, so `<td>Smith</td><td>Ann</td>` does not run
//! the words together; an inline tag inside a word splits it, which full-text search tolerates),
//! comments and CDATA markers are dropped, entity references are decoded (the five XML ones,
//! `&nbsp;`, numeric references, and a few common HTML names; unknown names, and references to
//! control characters such as NUL, stay as written),
//! and whitespace is collapsed. Case is kept: the full-text index folds on its own.

/// The text content of an XHTML fragment.
pub fn xhtml_to_text(xhtml: &str) -> String {
    let mut text = String::with_capacity(xhtml.len() / 2);
    let mut rest = xhtml;
    while let Some(start) = rest.find(['<', '&']) {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
            text.push(' ');
        } else if let Some(inner) = rest.strip_prefix("<![CDATA[") {
            let end = inner.find("]]>").unwrap_or(inner.len());
            text.push_str(&inner[..end]);
            rest = inner.get(end + 3..).unwrap_or("");
        } else if rest.starts_with('<') {
            rest = skip_tag(rest);
            text.push(' ');
        } else {
            let (decoded, consumed) = decode_entity(rest);
            match decoded {
                Some(ch) => text.push(ch),
                None => text.push_str(&rest[..consumed]),
            }
            rest = &rest[consumed..];
        }
    }
    text.push_str(rest);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Skips one tag starting at `<`, honouring quoted attribute values (which may hold `>`).
fn skip_tag(tag: &str) -> &str {
    let mut quote = None;
    for (at, ch) in tag.char_indices().skip(1) {
        match (quote, ch) {
            (None, '"' | '\'') => quote = Some(ch),
            (Some(open), _) if ch == open => quote = None,
            (None, '>') => return &tag[at + 1..],
            _ => {}
        }
    }
    ""
}

/// Decodes the entity reference at the start of `text` (which begins with `&`): the character
/// and the bytes consumed, or `None` and 1 when it is not a reference this knows.
fn decode_entity(text: &str) -> (Option<char>, usize) {
    let Some(end) = text.get(..34).unwrap_or(text).find(';') else {
        return (None, 1);
    };
    let name = &text[1..end];
    let decoded = if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse::<u32>().ok(),
        };
        // Control characters (NUL above all) are never produced: a database text column
        // rejects NUL, and none of them is text.
        code.and_then(char::from_u32)
            .filter(|ch| !ch.is_control() || ch.is_whitespace())
    } else {
        named_entity(name)
    };
    match decoded {
        Some(ch) => (Some(ch), end + 1),
        None => (None, 1),
    }
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "plusmn" => '±',
        "micro" => 'µ',
        "middot" => '·',
        "times" => '×',
        "divide" => '÷',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "hellip" => '…',
        "bull" => '•',
        "euro" => '€',
        "pound" => '£',
        "sect" => '§',
        "para" => '¶',
        "laquo" => '«',
        "raquo" => '»',
        "le" => '≤',
        "ge" => '≥',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_markup_and_decodes_entities() {
        let cases = [
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>Smith</b></p></div>"#,
                "Ann Smith",
            ),
            (
                "<div><table><tr><td>Smith</td><td>Ann</td></tr></table></div>",
                "Smith Ann",
            ),
            ("<div>5 &lt; 7 &amp;&amp; 7 &gt; 5</div>", "5 < 7 && 7 > 5"),
            ("<div>&#233;t&#xE9; &copy; 2020</div>", "été © 2020"),
            ("<div>fish &chips; &amp</div>", "fish &chips; &amp"),
            ("<div><!-- hidden <b>x</b> -->shown</div>", "shown"),
            (r#"<div title="a > b">text</div>"#, "text"),
            ("<div>  many \n\t spaces  </div>", "many spaces"),
            ("<div><![CDATA[raw <text>]]></div>", "raw <text>"),
            ("<div>unclosed <b", "unclosed"),
            ("<div>&#xFFFFFFFF; &#0; &#10;x</div>", "&#xFFFFFFFF; &#0; x"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(xhtml_to_text(input), expected, "{input}");
        }
    }
}
