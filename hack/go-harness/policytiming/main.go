// policytiming runs Flux's ImagePolicy algorithms (image-reflector-controller internal/policy, with
// fluxcd/pkg's ParseVersion) on a tag file and times them, for `make bench-compare`.
// Built in GOPATH mode from Debian's packages only (golang-go, golang-github-masterminds-semver-dev).
//
//	policytiming FILE KIND ARG [PATTERN EXTRACT]
//
// prints "median_ns<TAB>selected tag": the median of 15 samples of enough iterations to last ~40 ms,
// exactly as the Rust side (crates/tagpilot-core/examples/policy_compare.rs) measures.
package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver"
)

// fluxcd/pkg version.ParseVersion
func parseVersion(s string) (*semver.Version, error) {
	if strings.Count(s, ".") < 2 {
		return nil, fmt.Errorf("string %q does not contain at least two dots", s)
	}
	return semver.NewVersion(s)
}

type policer interface {
	Latest([]string) (string, error)
}

type semVer struct{ constraint *semver.Constraints }

func (p *semVer) Latest(versions []string) (string, error) {
	if len(versions) == 0 {
		return "", fmt.Errorf("version list argument cannot be empty")
	}
	var latestVersion *semver.Version
	for _, ver := range versions {
		if v, err := parseVersion(ver); err == nil {
			if p.constraint.Check(v) && (latestVersion == nil || v.GreaterThan(latestVersion)) {
				latestVersion = v
			}
		}
	}
	if latestVersion != nil {
		return latestVersion.Original(), nil
	}
	return "", fmt.Errorf("unable to determine latest version from provided list")
}

type alphabetical struct{ order string }

func (p *alphabetical) Latest(versions []string) (string, error) {
	if len(versions) == 0 {
		return "", fmt.Errorf("version list argument cannot be empty")
	}
	// Flux sorts the slice it is given (a fresh one from the tag store on every reconcile): copy it here so
	// that each iteration sorts the same input.
	sorted := sort.StringSlice(append([]string(nil), versions...))
	if p.order == "desc" {
		sort.Sort(sorted)
	} else {
		sort.Sort(sort.Reverse(sorted))
	}
	return sorted[0], nil
}

type numerical struct{ order string }

func (p *numerical) Latest(versions []string) (string, error) {
	if len(versions) == 0 {
		return "", fmt.Errorf("version list argument cannot be empty")
	}
	var latest string
	var pv float64
	for i, version := range versions {
		cv, err := strconv.ParseFloat(version, 64)
		if err != nil {
			return "", fmt.Errorf("failed to parse invalid numeric value '%s'", version)
		}
		switch {
		case i == 0:
		case p.order == "asc" && cv < pv, p.order == "desc" && cv > pv:
			continue
		}
		latest = version
		pv = cv
	}
	return latest, nil
}

// image-reflector-controller internal/policy RegexFilter
type regexFilter struct {
	filtered map[string]string
	re       *regexp.Regexp
	replace  string
}

func (f *regexFilter) apply(list []string) {
	f.filtered = map[string]string{}
	for _, item := range list {
		if submatches := f.re.FindStringSubmatchIndex(item); len(submatches) > 0 {
			tag := item
			if f.replace != "" {
				tag = string(f.re.ExpandString([]byte{}, f.replace, item, submatches))
			}
			f.filtered[tag] = item
		}
	}
}

func (f *regexFilter) items() []string {
	var filtered []string
	for k := range f.filtered {
		filtered = append(filtered, k)
	}
	return filtered
}

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	tags := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	kind, arg := os.Args[2], os.Args[3]
	var p policer
	switch kind {
	case "semver":
		c, err := semver.NewConstraint(arg)
		if err != nil {
			panic(err)
		}
		p = &semVer{c}
	case "alphabetical":
		p = &alphabetical{arg}
	default:
		p = &numerical{arg}
	}
	var filter *regexFilter
	if len(os.Args) > 4 && os.Args[4] != "" {
		filter = &regexFilter{re: regexp.MustCompile(os.Args[4]), replace: os.Args[5]}
	}
	run := func() string {
		list := tags
		if filter != nil {
			filter.apply(tags)
			list = filter.items()
		}
		latest, err := p.Latest(list)
		if err != nil {
			panic(err)
		}
		if filter != nil {
			return filter.filtered[latest]
		}
		return latest
	}
	selected := run()
	start := time.Now()
	iters := 0
	for time.Since(start) < 40*time.Millisecond {
		run()
		iters++
	}
	samples := make([]float64, 15)
	for i := range samples {
		t := time.Now()
		for j := 0; j < iters; j++ {
			run()
		}
		samples[i] = float64(time.Since(t).Nanoseconds()) / float64(iters)
	}
	sort.Float64s(samples)
	fmt.Printf("%.0f\t%s\n", samples[len(samples)/2], selected)
}
