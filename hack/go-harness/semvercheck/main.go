// semvercheck evaluates a table of (range, version, expected) lines with Masterminds/semver as Debian ships it
// and prints every line where the library disagrees with the table. Used to check tagpilot's range table:
// Debian has v3.2.0, which applies the prerelease rule per comparator and lacks v3.2.1's hyphen-range fix;
// lines marked "group-pre" expect the v3.3+ per-group rule and lines marked "v3.2.1" the fixed hyphen ranges:
// against v3.2.0 they are counted separately. With a newer Masterminds/semver on GOPATH (any v3.3+), run with
// SEMVERCHECK_STRICT=1: then every line must agree, marked or not.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/Masterminds/semver"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	sc := bufio.NewScanner(f)
	n, bad, groupPre := 0, 0, 0
	strict := os.Getenv("SEMVERCHECK_STRICT") == "1"
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		rng, ver, want := fields[0], fields[1], fields[2] == "true"
		n++
		if fields[2] == "error" {
			if _, err := semver.NewConstraint(rng); err == nil {
				bad++
				fmt.Printf("MISMATCH %q parses, want an error\n", rng)
			}
			continue
		}
		got := false
		c, cerr := semver.NewConstraint(rng)
		v, verr := semver.NewVersion(ver)
		if cerr == nil && verr == nil {
			got = c.Check(v)
		}
		if got != want {
			if !strict && len(fields) > 3 && (fields[3] == "group-pre" || fields[3] == "v3.2.1") {
				groupPre++
				continue
			}
			bad++
			fmt.Printf("MISMATCH %q %q want %v got %v (constraint err %v, version err %v)\n", rng, ver, want, got, cerr, verr)
		}
	}
	fmt.Printf("%d cases, %d mismatches, %d expected differences of v3.2.0 (group-pre, v3.2.1)\n", n, bad, groupPre)
}
