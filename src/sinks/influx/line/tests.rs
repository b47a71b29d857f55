//! Fixed vectors from the line-protocol reference, and a property: whatever the names and values,
//! a reader that follows the reference gets back exactly what was meant (after the documented
//! replacements of line breaks, ambiguous backslashes and a leading `#`).

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
}

const NS: &str = "1795773600000000000";

fn line(point: &Point) -> String {
    point.to_line().expect("a writable point")
}

#[test]
fn a_plain_point_is_measurement_tags_fields_and_nanoseconds() {
    let point = Point::new("inverter", at())
        .tag("site", "home")
        .tag("inverter", "house")
        .field("battery_soc", FieldValue::Float(65.0))
        .field("pv_power", FieldValue::Float(1234.5))
        .field("count", FieldValue::Integer(-42))
        .field("grid_connected", FieldValue::Bool(true))
        .field("running_state", FieldValue::Text("Normal".into()));
    assert_eq!(
        line(&point),
        format!(
            "inverter,inverter=house,site=home \
             battery_soc=65,pv_power=1234.5,count=-42i,grid_connected=true,running_state=\"Normal\" {NS}"
        )
    );
}

#[test]
fn specials_are_escaped_per_element() {
    // The reference's own examples: commas and spaces in a measurement; commas, equals signs
    // and spaces in keys and tag values; quotes and backslashes in strings.
    let point = Point::new("cpu load,x=y", at())
        .tag("host name", "a,b=c")
        .field("va=l ue", FieldValue::Text(r#"say "hi" \ ok"#.into()));
    assert_eq!(
        line(&point),
        format!(r#"cpu\ load\,x=y,host\ name=a\,b\=c va\=l\ ue="say \"hi\" \\ ok" {NS}"#)
    );
}

#[test]
fn line_breaks_ambiguous_backslashes_and_comments_are_made_harmless() {
    let point = Point::new("#meas", at())
        .tag("t", "two\nlines")
        .tag("u", r"a\b")
        .tag("v", r"end\")
        .tag("w", r"a\,b")
        .field("f", FieldValue::Text("x\r\ny".into()));
    assert_eq!(line(&point), format!(r#"_meas,t=two\ lines,u=a\b,v=end/,w=a/\,b f="x  y" {NS}"#));
}

#[test]
fn non_finite_floats_empty_names_and_empty_tags_are_left_out() {
    let point = Point::new("m", at())
        .tag("empty", "")
        .tag("", "nokey")
        .field("nan", FieldValue::Float(f64::NAN))
        .field("inf", FieldValue::Float(f64::INFINITY))
        .field("", FieldValue::Float(1.0))
        .field("ok", FieldValue::Float(-0.5));
    assert_eq!(line(&point), format!("m ok=-0.5 {NS}"));
}

#[test]
fn a_point_with_nothing_writable_has_no_line_and_leaves_the_buffer_alone() {
    let no_fields = Point::new("m", at()).tag("a", "b").field("x", FieldValue::Float(f64::NEG_INFINITY));
    let mut out = String::from("before");
    assert!(!no_fields.encode(&mut out));
    assert_eq!(out, "before");
    assert_eq!(Point::new("", at()).field("x", FieldValue::Bool(false)).to_line(), None);
    let too_late = Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(Point::new("m", too_late).field("x", FieldValue::Bool(false)).to_line(), None);
}

#[test]
fn floats_are_plain_decimals_that_read_back_exactly() {
    for (value, text) in [(0.1, "0.1"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"), (-0.0, "-0")] {
        let got = line(&Point::new("m", at()).field("x", FieldValue::Float(value)));
        assert_eq!(got, format!("m x={text} {NS}"));
    }
}

#[test]
fn sub_second_times_keep_their_nanoseconds() {
    let time = at() + chrono::Duration::nanoseconds(123_456_789);
    let got = line(&Point::new("m", time).field("x", FieldValue::Integer(1)));
    assert_eq!(got, "m x=1i 1795773600123456789");
}

/// What a reader following the reference gets from one line.
#[derive(Debug, PartialEq)]
struct Parsed {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue)>,
    nanos: i64,
}

/// A line-protocol reader written from the reference, independent of the writer: `\` before a
/// character the element escapes yields that character; any other `\` is literal.
fn parse(line: &str) -> Result<Parsed, String> {
    let mut rest = line;
    let measurement = name(&mut rest, MEASUREMENT_SPECIALS, &[',', ' '])?;
    let mut tags = Vec::new();
    while let Some(after) = rest.strip_prefix(',') {
        rest = after;
        let key = name(&mut rest, KEY_SPECIALS, &['='])?;
        rest = rest.strip_prefix('=').ok_or("tag without =")?;
        tags.push((key, name(&mut rest, KEY_SPECIALS, &[',', ' '])?));
    }
    let mut fields = Vec::new();
    let mut separator = ' ';
    while let Some(after) = rest.strip_prefix(separator) {
        rest = after;
        separator = ',';
        let key = name(&mut rest, KEY_SPECIALS, &['='])?;
        rest = rest.strip_prefix('=').ok_or("field without =")?;
        fields.push((key, value(&mut rest)?));
        if rest.starts_with(' ') {
            break;
        }
    }
    let nanos = rest.strip_prefix(' ').ok_or("no timestamp")?.parse().map_err(|e| format!("time: {e}"))?;
    Ok(Parsed { measurement, tags, fields, nanos })
}

/// Reads a name up to an unescaped character of `stops`.
fn name(rest: &mut &str, specials: &[char], stops: &[char]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|(_, n)| specials.contains(n)) => {
                out.push(chars.next().unwrap().1);
            }
            c if stops.contains(&c) => {
                *rest = &rest[i..];
                return Ok(out);
            }
            c => out.push(c),
        }
    }
    Err(format!("name `{out}` runs to the end of the line"))
}

/// Reads one field value: a quoted string, `…i`, `true`/`false`, or a float.
fn value(rest: &mut &str) -> Result<FieldValue, String> {
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next().ok_or("dangling escape")?.1),
                '"' => {
                    *rest = &quoted[i + 1..];
                    return Ok(FieldValue::Text(out));
                }
                c => out.push(c),
            }
        }
        return Err("unterminated string".into());
    }
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    let (token, after) = rest.split_at(end);
    *rest = after;
    Ok(match token {
        "true" => FieldValue::Bool(true),
        "false" => FieldValue::Bool(false),
        t if t.ends_with('i') => {
            FieldValue::Integer(t[..t.len() - 1].parse().map_err(|e| format!("{t}: {e}"))?)
        }
        t => FieldValue::Float(t.parse().map_err(|e| format!("{t}: {e}"))?),
    })
}

/// What the writer promises to keep of a name (module docs).
fn normal_name(name: &str, specials: &[char]) -> String {
    let plain = |c: char| !specials.contains(&c) && !matches!(c, '\\' | '\n' | '\r');
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        out.push(match c {
            '\n' | '\r' => ' ',
            '\\' if !chars.get(i + 1).is_some_and(|&n| plain(n)) => '/',
            c => c,
        });
    }
    out
}

/// What the writer promises a reader gets back for `point`.
fn expected(point: &Point) -> Parsed {
    let measurement = match point.measurement.strip_prefix('#') {
        Some(rest) => format!("_{}", normal_name(rest, MEASUREMENT_SPECIALS)),
        None => normal_name(&point.measurement, MEASUREMENT_SPECIALS),
    };
    let tags = point
        .tags
        .iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| (normal_name(k, KEY_SPECIALS), normal_name(v, KEY_SPECIALS)))
        .collect();
    let fields = point
        .fields
        .iter()
        .filter(|(k, v)| !k.is_empty() && !matches!(v, FieldValue::Float(f) if !f.is_finite()))
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Text(t) => FieldValue::Text(t.replace(['\n', '\r'], " ")),
                v => v.clone(),
            };
            (normal_name(k, KEY_SPECIALS), v)
        })
        .collect();
    Parsed { measurement, tags, fields, nanos: point.time.timestamp_nanos_opt().unwrap() }
}

/// Names drawn mostly from the characters the protocol cares about, sometimes any text.
fn text() -> impl Strategy<Value = String> {
    let nasty =
        prop::sample::select(vec!['a', 'Z', '0', '_', 'é', ' ', ',', '=', '"', '\\', '\n', '\r', '#']);
    prop_oneof![
        4 => prop::collection::vec(nasty, 0..10).prop_map(|v| v.into_iter().collect::<String>()),
        1 => any::<String>(),
    ]
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<f64>().prop_map(FieldValue::Float),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, -0.0, 1e300, 5e-324]).prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<bool>().prop_map(FieldValue::Bool),
        text().prop_map(FieldValue::Text),
    ]
}

fn point() -> impl Strategy<Value = Point> {
    let nanos = -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64;
    (
        text(),
        prop::collection::btree_map(text(), text(), 0..4),
        prop::collection::vec((text(), field_value()), 0..6),
        nanos,
    )
        .prop_map(|(measurement, tags, fields, nanos)| Point {
            measurement,
            tags,
            fields,
            time: DateTime::from_timestamp_nanos(nanos),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn what_is_written_reads_back_as_meant(point in point()) {
        let want = expected(&point);
        match point.to_line() {
            Some(line) => {
                prop_assert!(!line.contains('\n') && !line.contains('\r'), "one line: {line:?}");
                prop_assert_eq!(parse(&line).map_err(|e| format!("{e} in {line:?}")), Ok(want));
            }
            None => prop_assert!(want.measurement.is_empty() || want.fields.is_empty()),
        }
    }
}
