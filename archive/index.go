package archive

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"pault.ag/go/debian/control"
	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Package is one binary package's record in a Packages index.
type Package struct {
	// Name, Version, Architecture and Source are the record's fields
	// (Source is the source package's name, without a version; for a
	// package whose record has no Source it is the package's name).
	Name, Version, Architecture, Source string
	// Depends, PreDepends, Replaces and Conflicts are the raw relation
	// fields.
	Depends, PreDepends, Replaces, Conflicts string
	// Filename is the .deb's path below the mirror's base URL.
	Filename string
	// Size and SHA256 are the .deb's, as the index gives them.
	Size   int64
	SHA256 string
	// Mirror and Suite say where the record was read.
	Mirror, Suite string
}

// URL is where the package's .deb is.
func (p *Package) URL() string { return strings.TrimSuffix(p.Mirror, "/") + "/" + p.Filename }

// DependsOn returns the names of every package the Depends and
// Pre-Depends fields name, each alternative included.
func (p *Package) DependsOn() []string {
	var names []string
	for _, field := range []string{p.PreDepends, p.Depends} {
		names = append(names, relationNames(field)...)
	}
	return names
}

// ReplacesOrConflicts returns the names the Replaces and Conflicts fields
// name.
func (p *Package) ReplacesOrConflicts() []string {
	return append(relationNames(p.Replaces), relationNames(p.Conflicts)...)
}

// relationNames returns the package names of a relation field.
func relationNames(field string) []string {
	if strings.TrimSpace(field) == "" {
		return nil
	}
	dep, err := dependency.Parse(field)
	if err != nil {
		return nil
	}
	var names []string
	for _, rel := range dep.Relations {
		for _, p := range rel.Possibilities {
			names = append(names, p.Name)
		}
	}
	return names
}

// Index is a parsed Packages index: the newest record of each package.
type Index struct {
	// Mirror and Suite say where it was read.
	Mirror, Suite string
	pkgs          map[string]*Package
}

// ParseIndex reads a (decompressed) Packages index.
func ParseIndex(r io.Reader, mirror, suite string) (*Index, error) {
	pr, err := control.NewParagraphReader(r, nil)
	if err != nil {
		return nil, err
	}
	ix := &Index{Mirror: mirror, Suite: suite, pkgs: map[string]*Package{}}
	for {
		para, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("Packages index of %s: %w", suite, err)
		}
		v := para.Values
		p := &Package{Name: v["Package"], Version: v["Version"], Architecture: v["Architecture"],
			Depends: v["Depends"], PreDepends: v["Pre-Depends"], Replaces: v["Replaces"], Conflicts: v["Conflicts"],
			Filename: v["Filename"], SHA256: strings.ToLower(v["SHA256"]), Mirror: mirror, Suite: suite}
		if p.Name == "" || p.Filename == "" {
			continue
		}
		p.Source, _, _ = strings.Cut(v["Source"], " ")
		if p.Source == "" {
			p.Source = p.Name
		}
		if p.Size, err = strconv.ParseInt(v["Size"], 10, 64); err != nil {
			return nil, fmt.Errorf("Packages index of %s: %s has a bad Size %q", suite, p.Name, v["Size"])
		}
		if old, ok := ix.pkgs[p.Name]; !ok || CompareVersions(p.Version, old.Version) > 0 {
			ix.pkgs[p.Name] = p
		}
	}
	return ix, nil
}

// Get returns the newest record of a package, or nil.
func (ix *Index) Get(name string) *Package { return ix.pkgs[name] }

// Len is the number of packages in the index.
func (ix *Index) Len() int { return len(ix.pkgs) }

// Select returns the records for which keep is true, in no order.
func (ix *Index) Select(keep func(*Package) bool) []*Package {
	var out []*Package
	for _, p := range ix.pkgs {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// CompareVersions orders Debian version strings as dpkg does (epochs,
// '~' before everything); a version that does not parse sorts first.
func CompareVersions(a, b string) int {
	va, erra := version.Parse(a)
	vb, errb := version.Parse(b)
	switch {
	case erra != nil && errb != nil:
		return strings.Compare(a, b)
	case erra != nil:
		return -1
	case errb != nil:
		return 1
	}
	return version.Compare(va, vb)
}
