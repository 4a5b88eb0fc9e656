// Command template-conformance renders the template corpus with Go's text/template and sprig (Debian's
// golang-go and golang-github-masterminds-sprig-dev, GOPATH mode) and writes the expected outputs that the
// Rust tests compare against. Run it through `make template-conformance`.
//
// The automation datasets are built into Go types that mirror Flux's image-automation-controller
// (types.NamespacedName, update.Result with ImageRef values, update.ResultV2 with ObjectIdentifier keys),
// with one deliberate difference that tagpilot shares: Images, Changes and Objects are produced in a fixed
// order (files by path, objects by identifier) where Flux iterates Go maps in random order.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
)

type TypeMeta struct {
	APIVersion string
	Kind       string
}

type NameMeta struct {
	Name      string
	Namespace string
}

type ResourceIdentifier struct {
	TypeMeta
	NameMeta
}

type ObjectIdentifier struct {
	ResourceIdentifier
}

type NamespacedName struct {
	Namespace string
	Name      string
}

func (n NamespacedName) String() string { return n.Namespace + "/" + n.Name }

type ImageRef interface {
	String() string
	Identifier() string
	Repository() string
	Registry() string
	Name() string
	Policy() NamespacedName
}

type imageRef struct {
	str, identifier, repository, registry, name string
	policy                                      NamespacedName
}

func (r imageRef) String() string         { return r.str }
func (r imageRef) Identifier() string     { return r.identifier }
func (r imageRef) Repository() string     { return r.repository }
func (r imageRef) Registry() string       { return r.registry }
func (r imageRef) Name() string           { return r.name }
func (r imageRef) Policy() NamespacedName { return r.policy }

type FileResult struct {
	Objects map[ObjectIdentifier][]ImageRef
}

type Result struct {
	Files map[string]FileResult
}

func less(a, b ObjectIdentifier) bool {
	x := []string{a.APIVersion, a.Kind, a.Name, a.Namespace}
	y := []string{b.APIVersion, b.Kind, b.Name, b.Namespace}
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

func sortedFiles(m map[string]FileResult) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedIDs[V any](m map[ObjectIdentifier]V) []ObjectIdentifier {
	var keys []ObjectIdentifier
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	return keys
}

func (r Result) Images() []ImageRef {
	seen := map[NamespacedName]bool{}
	var out []ImageRef
	for _, f := range sortedFiles(r.Files) {
		objs := r.Files[f].Objects
		for _, id := range sortedIDs(objs) {
			for _, ref := range objs[id] {
				if !seen[ref.Policy()] {
					seen[ref.Policy()] = true
					out = append(out, ref)
				}
			}
		}
	}
	return out
}

func (r Result) Objects() map[ObjectIdentifier][]ImageRef {
	out := map[ObjectIdentifier][]ImageRef{}
	for _, f := range sortedFiles(r.Files) {
		for id, refs := range r.Files[f].Objects {
			out[id] = append(out[id], refs...)
		}
	}
	return out
}

type Change struct {
	OldValue string
	NewValue string
	Setter   string
}

type ObjectChanges map[ObjectIdentifier][]Change

type ResultV2 struct {
	ImageResult Result
	FileChanges map[string]ObjectChanges
}

func (r ResultV2) files() []string {
	var keys []string
	for k := range r.FileChanges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r ResultV2) Changes() []Change {
	seen := map[Change]bool{}
	var out []Change
	for _, f := range r.files() {
		objs := r.FileChanges[f]
		for _, id := range sortedIDs(objs) {
			for _, c := range objs[id] {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func (r ResultV2) Objects() ObjectChanges {
	out := ObjectChanges{}
	for _, f := range r.files() {
		for id, changes := range r.FileChanges[f] {
			out[id] = append(out[id], changes...)
		}
	}
	return out
}

type TemplateData struct {
	AutomationObject NamespacedName
	Updated          Result
	Changed          ResultV2
	Values           map[string]string
}

type policySpec struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Ref        string `json:"ref"`
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	FullName   string `json:"fullName"`
	Identifier string `json:"identifier"`
}

type changeSpec struct {
	Old    string `json:"old"`
	New    string `json:"new"`
	Setter string `json:"setter"`
}

type objectSpec struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Name       string       `json:"name"`
	Namespace  string       `json:"namespace"`
	Changes    []changeSpec `json:"changes"`
}

type fileSpec struct {
	Path    string       `json:"path"`
	Objects []objectSpec `json:"objects"`
}

type automationSpec struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Values    map[string]string `json:"values"`
	Policies  []policySpec      `json:"policies"`
	Files     []fileSpec        `json:"files"`
}

type dataset struct {
	JSON       json.RawMessage `json:"json"`
	Automation *automationSpec `json:"automation"`
}

func setterPolicy(setter string) string {
	parts := strings.SplitN(setter, ":", 3)
	if len(parts) < 2 {
		return setter
	}
	return parts[0] + ":" + parts[1]
}

func buildAutomation(a *automationSpec) TemplateData {
	refs := map[string]ImageRef{}
	for _, p := range a.Policies {
		refs[p.Namespace+":"+p.Name] = imageRef{p.Ref, p.Identifier, p.Repository, p.Registry, p.FullName, NamespacedName{p.Namespace, p.Name}}
	}
	updated := Result{Files: map[string]FileResult{}}
	changed := ResultV2{ImageResult: updated, FileChanges: map[string]ObjectChanges{}}
	for _, f := range a.Files {
		if _, ok := updated.Files[f.Path]; !ok {
			updated.Files[f.Path] = FileResult{Objects: map[ObjectIdentifier][]ImageRef{}}
			changed.FileChanges[f.Path] = ObjectChanges{}
		}
		for _, o := range f.Objects {
			id := ObjectIdentifier{ResourceIdentifier{TypeMeta{o.APIVersion, o.Kind}, NameMeta{o.Name, o.Namespace}}}
			for _, c := range o.Changes {
				changed.FileChanges[f.Path][id] = append(changed.FileChanges[f.Path][id], Change{c.Old, c.New, c.Setter})
				ref, ok := refs[setterPolicy(c.Setter)]
				if !ok {
					continue
				}
				present := false
				for _, r := range updated.Files[f.Path].Objects[id] {
					if r.Policy() == ref.Policy() {
						present = true
					}
				}
				if !present {
					updated.Files[f.Path].Objects[id] = append(updated.Files[f.Path].Objects[id], ref)
				}
			}
			if _, ok := updated.Files[f.Path].Objects[id]; !ok {
				updated.Files[f.Path].Objects[id] = []ImageRef{}
			}
		}
	}
	values := a.Values
	if values == nil {
		values = map[string]string{}
	}
	return TemplateData{NamespacedName{a.Namespace, a.Name}, updated, changed, values}
}

// Whole JSON numbers become int, others float64, as the Rust side reads them.
func normalise(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case []interface{}:
		for i := range x {
			x[i] = normalise(x[i])
		}
		return x
	case map[string]interface{}:
		for k := range x {
			x[k] = normalise(x[k])
		}
		return x
	}
	return v
}

type testCase struct {
	name, data, text string
}

func readCorpus(path string) ([]testCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cases []testCase
	var cur *testCase
	var lines []string
	flush := func() {
		if cur != nil {
			cur.text = strings.Join(lines, "\n")
			cases = append(cases, *cur)
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "### ") {
			flush()
			cur = &testCase{name: strings.TrimPrefix(line, "### ")}
			lines = nil
			continue
		}
		if cur != nil && cur.data == "" && lines == nil && strings.HasPrefix(line, "@data ") {
			cur.data = strings.TrimPrefix(line, "@data ")
			lines = []string{}
			continue
		}
		lines = append(lines, line)
	}
	flush()
	return cases, sc.Err()
}

type expectation struct {
	Output *string `json:"output,omitempty"`
	Error  string  `json:"error,omitempty"`
	Kind   string  `json:"kind,omitempty"`
	Line   int     `json:"line,omitempty"`
	Col    *int    `json:"col,omitempty"`
}

var errPos = regexp.MustCompile(`^template: commit message:(\d+)(?::(\d+))?: `)

func main() {
	dir := os.Args[1]
	raw, err := os.ReadFile(filepath.Join(dir, "datasets.json"))
	if err != nil {
		panic(err)
	}
	var specs map[string]dataset
	if err := json.Unmarshal(raw, &specs); err != nil {
		panic(err)
	}
	data := map[string]interface{}{}
	for name, d := range specs {
		if d.Automation != nil {
			data[name] = buildAutomation(d.Automation)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(d.JSON))
		dec.UseNumber()
		var v interface{}
		if err := dec.Decode(&v); err != nil {
			panic(err)
		}
		data[name] = normalise(v)
	}
	cases, err := readCorpus(filepath.Join(dir, "corpus.txt"))
	if err != nil {
		panic(err)
	}
	out := map[string]expectation{}
	for _, c := range cases {
		if _, dup := out[c.name]; dup {
			panic("duplicate case " + c.name)
		}
		d, ok := data[c.data]
		if !ok {
			panic(fmt.Sprintf("case %s: no dataset %q", c.name, c.data))
		}
		var e expectation
		t, err := template.New("commit message").Funcs(sprig.HermeticTxtFuncMap()).Parse(c.text)
		if err != nil {
			e = expectation{Error: err.Error(), Kind: "parse"}
		} else {
			var buf bytes.Buffer
			if err := t.Execute(&buf, d); err != nil {
				e = expectation{Error: err.Error(), Kind: "exec"}
			} else {
				s := buf.String()
				e = expectation{Output: &s}
			}
		}
		if e.Error != "" {
			m := errPos.FindStringSubmatch(e.Error)
			if m == nil {
				panic(fmt.Sprintf("case %s: error without position: %s", c.name, e.Error))
			}
			e.Line, _ = strconv.Atoi(m[1])
			if m[2] != "" && e.Kind == "exec" {
				col, _ := strconv.Atoi(m[2])
				e.Col = &col
			}
		}
		out[c.name] = e
	}
	enc, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "expected.json"), append(enc, '\n'), 0o644); err != nil {
		panic(err)
	}
	fmt.Printf("%d cases written to %s\n", len(out), filepath.Join(dir, "expected.json"))
}
