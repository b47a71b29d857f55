//! Text made safe for the HTML of the status page and the SVG of `replay --svg`.

/// `text` safe inside an element or a quoted attribute (either quote), in one pass.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_are_entities_and_the_rest_is_kept() {
        assert_eq!(
            super::escape(r#"<b a="1" c='2'>Tom & Jerry: 5 °C</b>"#),
            "&lt;b a=&quot;1&quot; c=&apos;2&apos;&gt;Tom &amp; Jerry: 5 °C&lt;/b&gt;"
        );
    }
}
