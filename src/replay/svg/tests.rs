use chrono::TimeZone;

use super::*;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap() + TimeDelta::minutes(minute)
}

/// A rising counter over `n` polls a minute apart; at `spike` the registers said 65535-ish
/// and plausibility rejected it.
fn counter(n: i64, spike: i64) -> Series {
    let points = (0..n)
        .map(|i| {
            let value = 1000.0 + i as f64 * 0.1;
            let rejected = (i == spike).then_some("max_change");
            Point {
                time: at(i),
                local: (at(i) + TimeDelta::hours(2)).naive_utc(),
                raw: Some(if rejected.is_some() { 6_553_500.0 } else { value }),
                published: rejected.is_none().then_some(value),
                rejected,
            }
        })
        .collect();
    Series {
        inverter: "house".into(),
        key: "pv_energy_total".into(),
        name: "PV energy total".into(),
        unit: Some("kWh".into()),
        points,
    }
}

/// A small well-formedness check: every tag closes in order, attributes are quoted, text holds
/// no bare `<` or `&`. Returns the element names in document order.
fn well_formed(xml: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = xml.strip_prefix("<?xml").and_then(|r| r.split_once("?>")).expect("declaration").1;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "a bare > in {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity), "entity {entity:?}");
        }
        let close = rest[open..].find('>').expect("a tag closes") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "closing order");
            continue;
        }
        let empty = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
        assert_eq!(attributes.matches('"').count() % 2, 0, "quoted attributes in <{tag}>");
        assert!(!attributes.contains('<'), "no < in attributes of <{tag}>");
        names.push(name.to_string());
        if !empty {
            stack.push(name.to_string());
        }
    }
    assert!(rest.trim().is_empty(), "nothing after the root: {rest:?}");
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    names
}

fn attribute<'a>(element: &'a str, name: &str) -> &'a str {
    let start = element.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
    &element[start..start + element[start..].find('"').unwrap()]
}

#[test]
fn the_picture_is_well_formed_and_stands_alone() {
    let svg = render("Replay of <day> & night", &[counter(30, 10)]);
    let names = well_formed(&svg);
    assert_eq!(names[0], "svg");
    assert!(
        names.iter().all(|n| !["script", "style", "image", "foreignObject", "a"].contains(&n.as_str())),
        "{names:?}"
    );
    assert_eq!(svg.matches("http").count(), 1, "only the namespace names a URL");
    assert!(
        svg.contains("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"),
        "an explicit background"
    );
    assert!(svg.contains("width=\"900\""));
}

#[test]
fn every_raw_value_is_a_point_and_the_published_line_bridges_the_rejection() {
    let svg = render("day", &[counter(30, 10)]);
    let raw = svg.lines().find(|l| l.starts_with("<path class=\"raw\"")).unwrap();
    let d = attribute(raw, "d");
    assert_eq!(d.matches(['M', 'L']).count(), 30, "{d}");
    let published = svg.lines().find(|l| l.starts_with("<path class=\"published\"")).unwrap();
    let d = attribute(published, "d");
    assert_eq!((d.matches('M').count(), d.matches('L').count()), (1, 28), "one line, 29 points: {d}");
}

#[test]
fn a_rejected_value_is_a_red_dot_on_the_edge_naming_its_rule() {
    let svg = render("day", &[counter(30, 10)]);
    let dots: Vec<&str> = svg.lines().filter(|l| l.starts_with("<circle class=\"rejected\"")).collect();
    assert_eq!(dots.len(), 1);
    assert!(
        dots[0].contains("pv_energy_total 12:10: raw 6553500 kWh, rejected by max_change"),
        "{}",
        dots[0]
    );
    let cy: f64 = attribute(dots[0], "cy").parse().unwrap();
    assert_eq!(cy, HEADER + PLOT_TOP, "off the scale of the published values: on the top edge");
    assert!(svg.contains("1 rejected: max_change 1"));
    assert!(svg.contains("UTC+02:00"), "labelled by the house's clock");
    assert!(svg.contains(">12:00</text>") && svg.contains(">12:25</text>"), "time labels in house time");
}

#[test]
fn empty_series_and_no_series_still_draw_a_picture() {
    let mut empty = counter(0, 0);
    empty.name.clear();
    let svg = render("day", &[counter(5, 99), empty]);
    well_formed(&svg);
    assert!(svg.contains("not in the profile") && svg.contains(">no data</text>"));
    assert!(svg.contains("none rejected"));
    let svg = render("day", &[]);
    well_formed(&svg);
    assert!(svg.contains("No polls were replayed"));
}

#[test]
fn the_same_series_draw_the_same_bytes() {
    let series = [counter(60, 7), counter(60, 40)];
    assert_eq!(render("day", &series), render("day", &series));
}

#[test]
fn a_flat_series_and_one_poll_get_a_scale() {
    let mut flat = counter(1, 99);
    flat.points[0].published = Some(0.0);
    flat.points[0].raw = Some(0.0);
    let svg = render("day", &[flat]);
    well_formed(&svg);
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
}
