//! Fuzz the setters: any text (with a marker on its first line when it has none) must not panic, and an edit
//! must change only the marked scalars, leave every value as its setter says, and be stable on a second run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagpilot_core::setters::{PolicyImage, Setters, markers, update_text};

const VALUES: &[&str] = &["5.0.3", "1.10", "2024-06-27", "on", "it's: odd #1", "a\"b\\c", "", "é", "[x]", "#h"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut text = text.to_string();
    if !text.contains("\"$imagepolicy\"") {
        let eol = text.find('\n').unwrap_or(text.len());
        text.insert_str(eol, " # {\"$imagepolicy\": \"ns:p\"}");
    }
    let mut setters = Setters::default();
    setters.add(&PolicyImage {
        namespace: "ns".into(),
        name: "p".into(),
        image: "reg/p".into(),
        tag: VALUES[pick as usize % VALUES.len()].into(),
        digest: None,
    });
    let Ok(Some(update)) = update_text(&text, &setters) else { return };
    let before = markers(&text).expect("a text that was edited scans");
    let after = markers(&update.text).expect("the edited text scans");
    assert_eq!(before.len(), after.len());
    let mut at = (0, 0);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(text[at.0..b.start], update.text[at.1..a.start], "bytes outside the scalars changed");
        assert_eq!(a.value, setters.get(&b.setter).unwrap_or(&b.value));
        at = (b.end, a.end);
    }
    assert_eq!(text[at.0..], update.text[at.1..]);
    assert_eq!(update_text(&update.text, &setters), Ok(None), "a second run changes something");
});
