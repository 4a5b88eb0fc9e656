//! Unit tests of the template engine; each expectation was printed by Go 1.19's text/template with sprig 3.2.

use super::*;

fn render(text: &str, json: &str) -> String {
    let data = Value::from_json(&serde_json::from_str(json).unwrap());
    match Template::parse("msg", text) {
        Ok(t) => match t.execute(&data) {
            Ok(s) => s,
            Err(e) => format!("EXEC: {e}"),
        },
        Err(e) => format!("PARSE: {e}"),
    }
}

#[test]
fn prints_values_as_go() {
    assert_eq!(
        render(
            "{{ .a }} {{ .missing }} {{ index . \"missing\" }} {{ print .missing }} {{ range $i, $v := .l }}{{$i}}:{{$v}},{{ end }} {{ .a | upper | quote }} {{ default \"d\" .missing }} {{ len .l }} {{ .l }} {{ . }}{{ 1.0 }} {{ add 1 2 }} {{ typeOf (add 1 2) }}",
            r#"{"a":"x","l":[1,"b",2.5,null]}"#
        ),
        "x <no value> <no value> <nil> 0:1,1:b,2:2.5,3:<no value>, \"X\" d 4 [1 b 2.5 <nil>] map[a:x l:[1 b 2.5 <nil>]]1 3 int64"
    );
}

#[test]
fn errors_name_line_and_column() {
    let e = render("x\n{{ .a | printf \"%d\" }}\n{{ .a.b }}", r#"{"a":"x"}"#);
    assert!(
        e.starts_with(
            "EXEC: template: msg:3:5: executing \"msg\" at <.a.b>: can't evaluate field b"
        ),
        "{e}"
    );
    assert_eq!(
        render("{{ repeat (add 1 1) \"x\" }}", "{}"),
        "EXEC: template: msg:1:17: executing \"msg\" at <1>: wrong type for value; expected int; got int64"
    );
    assert!(
        render("{{ if }}", "{}").starts_with("PARSE: template: msg:1:"),
        "parse errors carry the line"
    );
}

#[test]
fn control_structures() {
    assert_eq!(
        render(
            "{{range $i, $e := .l}}{{if eq $e 3}}{{continue}}{{end}}{{if gt $e 4}}{{break}}{{end}}{{$e}}{{else}}empty{{end}}",
            r#"{"l":[1,2,3,4,5,6]}"#
        ),
        "124"
    );
    assert_eq!(
        render("{{range .l}}x{{else}}empty{{end}}", r#"{"l":[]}"#),
        "empty"
    );
    assert_eq!(
        render(
            "{{with .a}}{{.}}{{else with .b}}b={{.}}{{else}}none{{end}}",
            r#"{"b":2}"#
        ),
        "b=2"
    );
    assert_eq!(
        render("{{if .a}}a{{else if .b}}b{{else}}c{{end}}", r#"{"b":true}"#),
        "b"
    );
    assert_eq!(
        render("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "{}"),
        "2"
    );
    assert_eq!(
        render(
            "{{define \"T\"}}[{{.}}]{{end}}{{template \"T\" .a}}{{block \"B\" .b}}<{{.}}>{{end}}",
            r#"{"a":1,"b":2}"#
        ),
        "[1]<2>"
    );
    assert_eq!(render("{{range 3}}{{.}}{{end}}", "{}"), "012");
    assert_eq!(render("a  {{- /* c */ -}}  b", "{}"), "ab");
}

#[test]
fn runaway_recursion_is_an_error() {
    let e = render(
        "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}",
        "{}",
    );
    assert!(e.contains("exceeded maximum template depth"), "{e}");
}

#[test]
fn deep_nesting_through_templates_is_an_error_not_a_crash() {
    let body = format!(
        "{}{{{{template \"r\" .}}}}{}",
        "{{if 1}}".repeat(90),
        "{{end}}".repeat(90)
    );
    let e = render(
        &format!("{{{{define \"r\"}}}}{body}{{{{end}}}}{{{{template \"r\" .}}}}"),
        "{}",
    );
    assert!(e.contains("exceeded maximum template depth"), "{e}");
}

#[test]
fn must_variants() {
    assert_eq!(
        render(
            "{{ mustFirst .l }} {{ mustRegexFind \"[0-9]+\" \"a12\" }}",
            r#"{"l":[1,2]}"#
        ),
        "1 12"
    );
    assert!(render("{{ mustFromJson \"{\" }}", "{}").contains("error calling mustFromJson"));
    assert_eq!(render("{{ fromJson \"{\" }}", "{}"), "map[]");
}

#[test]
fn helm_dialect_include_to_yaml_required() {
    let text = r#"{{- define "labels" -}}
app: {{ .name }}
{{- end -}}
metadata:
  labels:
    {{- include "labels" .Values | nindent 4 }}
  annotations:
    {{- toYaml .Values.annotations | nindent 4 }}
image: {{ required "image.repository is required" .Values.image.repository }}"#;
    let t = Template::parse_helm("chart", text).unwrap();
    let data = Value::from_json(&serde_json::json!({
        "Values": {"name": "x", "annotations": {"b": "2", "a": "one"}, "image": {"repository": "r"}}
    }));
    assert_eq!(
        t.execute(&data).unwrap(),
        "metadata:\n  labels:\n    app: x\n  annotations:\n    a: one\n    b: '2'\nimage: r"
    );
    let missing = Value::from_json(&serde_json::json!({
        "Values": {"name": "x", "annotations": {}, "image": {}}
    }));
    let e = t.execute(&missing).unwrap_err().to_string();
    assert!(e.contains("image.repository is required"), "{e}");
    // Not functions outside Helm's dialect.
    assert!(Template::parse("msg", "{{ include \"x\" . }}").is_err());
}

/// Renders `text` with empty data; the error as its message.
fn run(text: &str) -> Result<String, String> {
    Template::parse("msg", text)
        .unwrap()
        .execute(&Value::from_json(&serde_json::json!({})))
        .map_err(|e| e.to_string())
}

#[test]
fn templates_over_the_budgets_fail_and_name_the_limit() {
    // Each of these aborted the process (allocation failure) before the budgets.
    let cases = [
        (
            r#"{{ repeat 100000000000 "x" }}"#,
            "over the template limit of 1048576",
        ),
        (
            r#"{{ printf "%*d" 100000000000 1 }}"#,
            "over the template limit of 1048576",
        ),
        (
            r#"{{ printf "%.100000000000f" 1.0 }}"#,
            "over the template limit of 1048576",
        ),
        (
            "{{ range until 100000000000 }}x{{ end }}",
            "over the template limit of 100000",
        ),
        (
            "{{ range untilStep 0 100000000000 1 }}x{{ end }}",
            "over the template limit of 100000",
        ),
        (
            "{{ seq 100000000000 }}",
            "over the template limit of 100000",
        ),
        (
            "{{ range 100000000000 }}x{{ end }}",
            "step limit of 2000000",
        ),
        (
            r#"{{ indent 100000000000 "x" }}"#,
            "over the template limit of 1048576",
        ),
        (
            r#"{{ replace "" (repeat 1000 "y") (repeat 2000 "z") }}"#,
            "over the template limit of 1048576",
        ),
        // Doubling a string: refused at the first result over the limit.
        (
            r#"{{ $x := "ab" }}{{ range until 60 }}{{ $x = printf "%s%s" $x $x }}{{ end }}{{ $x }}"#,
            "over the template limit of 1048576",
        ),
        // Output: many small writes.
        (
            "{{ range until 90000 }}0123456789abcdef{{ end }}",
            "output exceeds 1048576 bytes",
        ),
        // Steps: a long loop writing nothing.
        (
            "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
            "more than 2000000 steps",
        ),
    ];
    for (text, want) in cases {
        let t0 = std::time::Instant::now();
        let e = run(text).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(30), "{text}");
    }
    // Within the budgets, Go's results.
    assert_eq!(run(r#"{{ repeat 3 "ab" }}"#).unwrap(), "ababab");
    assert_eq!(run(r#"{{ printf "%5d" 42 }}"#).unwrap(), "   42");
    assert_eq!(run(r#"{{ replace "" "-" "ab" }}"#).unwrap(), "-a-b-");
}

#[test]
fn an_error_in_a_block_inside_a_range_is_an_error_not_a_panic() {
    // Found by the template fuzz target: the range depth underflowed.
    let e = Template::parse(
        "msg",
        r#"{{ range . }}{{ block "b" . }}{{ nofunc }}{{ end }}{{ end }}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"nofunc\" not defined"), "{e}");
}

#[test]
fn cycles_deep_values_and_exponential_sharing_fail_instead_of_overflowing_the_stack() {
    // Found by the template fuzz target: a dict set inside itself overflowed the stack when printed (SIGSEGV).
    let cases = [
        (
            r#"{{ $d := dict }}{{ $_ := set $d "a" $d }}{{ $d }}"#,
            "a cycle",
        ),
        (
            r#"{{ $d := dict }}{{ $_ := set $d "a" (list (dict "b" $d)) }}"#,
            "a cycle",
        ),
        // 20,000 levels of nesting, printed, copied, compared, encoded, and dropped.
        (
            "{{ $d := dict }}{{ range until 20000 }}{{ $d = dict \"x\" $d }}{{ end }}{{ $d }}",
            "nests deeper than 500 levels",
        ),
        (
            "{{ $d := list }}{{ range until 20000 }}{{ $d = list $d }}{{ end }}{{ $c := deepCopy $d }}",
            "nests deeper than 500 levels",
        ),
        (
            "{{ $d := list }}{{ range until 20000 }}{{ $d = list $d }}{{ end }}{{ toJson $d }}",
            "nests deeper than 500 levels",
        ),
        // 2^60 leaves shared through 60 levels.
        (
            "{{ $d := list 1 1 }}{{ range until 60 }}{{ $d = list $d $d }}{{ end }}{{ toJson $d }}",
            "over the template limit of 1048576",
        ),
        (
            "{{ $d := list 1 1 }}{{ range until 60 }}{{ $d = list $d $d }}{{ end }}{{ $c := deepCopy $d }}",
            "units of work",
        ),
        ("{{ uniq (until 100000) }}", "units of work"),
    ];
    for (text, want) in cases {
        let t0 = std::time::Instant::now();
        let e = run(text).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(60), "{text}");
    }
    // A deep value that is only built and dropped is fine (dropped without recursion).
    assert_eq!(
        run("{{ $d := dict }}{{ range until 20000 }}{{ $d = dict \"x\" $d }}{{ end }}ok").unwrap(),
        "ok"
    );
    assert_eq!(
        run(r#"{{ $d := dict "a" 1 }}{{ $_ := set $d "b" (dict "c" 2) }}{{ $d }}"#).unwrap(),
        "map[a:1 b:map[c:2]]"
    );
}
