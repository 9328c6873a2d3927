package archive

import (
	"bufio"
	"bytes"
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

// ParseIndex reads a (decompressed) Packages index. If keep is not nil,
// only the records of the packages it accepts are parsed (a Packages
// index of sid has some 76,000; the paragraphs of the others are only
// split off, which is what makes reading it cheap).
func ParseIndex(r io.Reader, mirror, suite string, keep func(name string) bool) (*Index, error) {
	ix := &Index{Mirror: mirror, Suite: suite, pkgs: map[string]*Package{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var para bytes.Buffer
	flush := func() error {
		defer para.Reset()
		if para.Len() == 0 {
			return nil
		}
		if keep != nil {
			first, _, _ := bytes.Cut(para.Bytes(), []byte("\n"))
			name, ok := bytes.CutPrefix(first, []byte("Package:"))
			if !ok || !keep(string(bytes.TrimSpace(name))) {
				return nil
			}
		}
		return ix.add(para.Bytes())
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		para.Write(line)
		para.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("Packages index of %s: %w", suite, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return ix, nil
}

// add parses one record with the control file parser and keeps it if it
// is the newest of its package.
func (ix *Index) add(record []byte) error {
	pr, err := control.NewParagraphReader(bytes.NewReader(record), nil)
	if err != nil {
		return err
	}
	para, err := pr.Next()
	if err != nil {
		return fmt.Errorf("Packages index of %s: %w", ix.Suite, err)
	}
	v := para.Values
	p := &Package{Name: v["Package"], Version: v["Version"], Architecture: v["Architecture"],
		Depends: v["Depends"], PreDepends: v["Pre-Depends"], Replaces: v["Replaces"], Conflicts: v["Conflicts"],
		Filename: v["Filename"], SHA256: strings.ToLower(v["SHA256"]), Mirror: ix.Mirror, Suite: ix.Suite}
	if p.Name == "" || p.Filename == "" {
		return nil
	}
	p.Source, _, _ = strings.Cut(v["Source"], " ")
	if p.Source == "" {
		p.Source = p.Name
	}
	if p.Size, err = strconv.ParseInt(v["Size"], 10, 64); err != nil {
		return fmt.Errorf("Packages index of %s: %s has a bad Size %q", ix.Suite, p.Name, v["Size"])
	}
	if old, ok := ix.pkgs[p.Name]; !ok || CompareVersions(p.Version, old.Version) > 0 {
		ix.pkgs[p.Name] = p
	}
	return nil
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
