// Package archivetest builds small Debian archives for tests: an OpenPGP
// key made on the spot, suites whose InRelease it clear-signs, Packages
// indexes (xz) and synthetic .deb files, served over HTTP by httptest.
package archivetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// File is one entry of a synthetic package's data archive.
type File struct {
	// Path is the path in the package, e.g. "usr/lib/modules/x/vmlinuz".
	Path string
	// Body is a regular file's content.
	Body []byte
	// Link, if set, makes the entry a symbolic link to Link.
	Link string
}

// Compression of a .deb's data member: "xz" (the default), "gz", "zst".
type Compression string

// Deb builds a .deb holding files, its data.tar compressed as comp.
func Deb(t testing.TB, name, version string, files []File, comp Compression) []byte {
	t.Helper()
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	now := time.Unix(1_700_000_000, 0)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	slices.Sort(dl)
	must(t, tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}))
	for _, d := range dl {
		must(t, tw.WriteHeader(&tar.Header{Name: "./" + d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}))
	}
	for _, f := range files {
		if f.Link != "" {
			must(t, tw.WriteHeader(&tar.Header{Name: "./" + f.Path, Typeflag: tar.TypeSymlink, Linkname: f.Link, Mode: 0o777, ModTime: now}))
			continue
		}
		must(t, tw.WriteHeader(&tar.Header{Name: "./" + f.Path, Typeflag: tar.TypeReg, Size: int64(len(f.Body)), Mode: 0o644, ModTime: now}))
		_, err := tw.Write(f.Body)
		must(t, err)
	}
	must(t, tw.Close())

	var control bytes.Buffer
	cw := tar.NewWriter(&control)
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nDescription: test\n", name, version)
	must(t, cw.WriteHeader(&tar.Header{Name: "./control", Typeflag: tar.TypeReg, Size: int64(len(ctl)), Mode: 0o644, ModTime: now}))
	_, err := cw.Write([]byte(ctl))
	must(t, err)
	must(t, cw.Close())

	if comp == "" {
		comp = "xz"
	}
	var out bytes.Buffer
	out.WriteString("!<arch>\n")
	arMember(&out, "debian-binary", []byte("2.0\n"))
	arMember(&out, "control.tar.xz", compress(t, control.Bytes(), "xz"))
	arMember(&out, "data.tar."+string(comp), compress(t, data.Bytes(), comp))
	return out.Bytes()
}

// arMember appends one member to an ar archive.
func arMember(w *bytes.Buffer, name string, data []byte) {
	fmt.Fprintf(w, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name+"/", 1700000000, 0, 0, "100644", len(data))
	w.Write(data)
	if len(data)%2 == 1 {
		w.WriteByte('\n')
	}
}

func compress(t testing.TB, data []byte, comp Compression) []byte {
	t.Helper()
	var b bytes.Buffer
	switch comp {
	case "xz":
		w, err := xz.NewWriter(&b)
		must(t, err)
		_, err = w.Write(data)
		must(t, err)
		must(t, w.Close())
	case "gz":
		w := gzip.NewWriter(&b)
		_, err := w.Write(data)
		must(t, err)
		must(t, w.Close())
	case "zst":
		w, err := zstd.NewWriter(&b)
		must(t, err)
		_, err = w.Write(data)
		must(t, err)
		must(t, w.Close())
	default:
		t.Fatalf("archivetest: unknown compression %q", comp)
	}
	return b.Bytes()
}

// Package is a binary package to publish in a suite.
type Package struct {
	// Name and Version are the package's.
	Name, Version string
	// Fields are extra index fields ("Depends", "Source", "Replaces").
	Fields map[string]string
	// Files are its contents; Comp the data.tar compression.
	Files []File
	Comp  Compression
	// Deb, if not nil, is published as the .deb instead of one built from
	// Files (e.g. to publish a corrupt one).
	Deb []byte
	// WrongSHA publishes an index entry whose SHA256 does not match.
	WrongSHA bool
}

// Suite is a suite to publish.
type Suite struct {
	// Name is the suite's directory name (dists/<Name>), Codename and
	// SuiteField its release fields (default Name).
	Name, Codename, SuiteField string
	// Packages are its amd64 packages in main.
	Packages []Package
	// ValidUntil, if not zero, is written as Valid-Until.
	ValidUntil time.Time
	// NotAutomatic marks it like experimental.
	NotAutomatic bool
	// Signer signs its InRelease; nil means the mirror's key.
	Signer *openpgp.Entity
	// Tamper, if set, changes the InRelease text after signing.
	Tamper func(signed []byte) []byte
	// GzOnly publishes only Packages.gz (no xz).
	GzOnly bool
}

// Mirror is a served test archive.
type Mirror struct {
	// URL is the mirror's base URL.
	URL string
	// Key signs the suites; KeyringFile holds its public key (binary).
	Key         *openpgp.Entity
	KeyringFile string

	mu       sync.Mutex
	files    map[string][]byte
	requests map[string]int
}

// NewKey makes a signing key for tests.
func NewKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@kspec.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	must(t, err)
	return e
}

// WriteKeyring writes the public keys of keys to a binary keyring file.
func WriteKeyring(t testing.TB, keys ...*openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	for _, k := range keys {
		must(t, k.Serialize(&b))
	}
	p := filepath.Join(t.TempDir(), "keyring.gpg")
	must(t, os.WriteFile(p, b.Bytes(), 0o644))
	return p
}

// NewMirror publishes suites and serves them until the test ends.
func NewMirror(t testing.TB, suites ...Suite) *Mirror {
	t.Helper()
	m := &Mirror{Key: NewKey(t, "kspec test archive"), files: map[string][]byte{}, requests: map[string]int{}}
	m.KeyringFile = WriteKeyring(t, m.Key)
	for _, s := range suites {
		m.Publish(t, s)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		data, ok := m.files[strings.TrimPrefix(r.URL.Path, "/debian/")]
		m.requests[r.URL.Path]++
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	m.URL = srv.URL + "/debian"
	return m
}

// Requests says how often a path below the mirror was asked for.
func (m *Mirror) Requests(p string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests["/debian/"+p]
}

// Publish adds (or replaces) a suite.
func (m *Mirror) Publish(t testing.TB, s Suite) {
	t.Helper()
	var index bytes.Buffer
	pool := map[string][]byte{}
	for _, p := range s.Packages {
		deb := p.Deb
		if deb == nil {
			deb = Deb(t, p.Name, p.Version, p.Files, p.Comp)
		}
		v := p.Version
		if _, noEpoch, ok := strings.Cut(v, ":"); ok {
			v = noEpoch // pool file names carry no epoch
		}
		file := fmt.Sprintf("pool/main/t/%s/%s_%s_amd64.deb", p.Name, p.Name, v)
		pool[file] = deb
		sum := sha256.Sum256(deb)
		sha := hex.EncodeToString(sum[:])
		if p.WrongSHA {
			sha = strings.Repeat("0", 64)
		}
		fmt.Fprintf(&index, "Package: %s\nVersion: %s\nArchitecture: amd64\n", p.Name, p.Version)
		keys := make([]string, 0, len(p.Fields))
		for k := range p.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&index, "%s: %s\n", k, p.Fields[k])
		}
		fmt.Fprintf(&index, "Filename: %s\nSize: %d\nSHA256: %s\nDescription: test package\n\n", file, len(deb), sha)
	}
	idx := map[string][]byte{"main/binary-amd64/Packages.gz": compress(t, index.Bytes(), "gz")}
	if !s.GzOnly {
		idx["main/binary-amd64/Packages.xz"] = compress(t, index.Bytes(), "xz")
	}
	codename, suite := s.Codename, s.SuiteField
	if codename == "" {
		codename = s.Name
	}
	if suite == "" {
		suite = s.Name
	}
	var rel bytes.Buffer
	fmt.Fprintf(&rel, "Origin: Debian\nLabel: Debian\nSuite: %s\nCodename: %s\n", suite, codename)
	fmt.Fprintf(&rel, "Date: %s\n", time.Now().UTC().Format(time.RFC1123))
	if !s.ValidUntil.IsZero() {
		fmt.Fprintf(&rel, "Valid-Until: %s\n", s.ValidUntil.UTC().Format(time.RFC1123))
	}
	if s.NotAutomatic {
		rel.WriteString("NotAutomatic: yes\n")
	}
	rel.WriteString("Acquire-By-Hash: yes\nArchitectures: amd64\nComponents: main\nDescription: test\nSHA256:\n")
	names := make([]string, 0, len(idx))
	for n := range idx {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		sum := sha256.Sum256(idx[n])
		fmt.Fprintf(&rel, " %x %8d %s\n", sum, len(idx[n]), n)
	}
	signer := s.Signer
	if signer == nil {
		signer = m.Key
	}
	var signed bytes.Buffer
	w, err := clearsign.Encode(&signed, signer.PrivateKey, nil)
	must(t, err)
	_, err = w.Write(rel.Bytes())
	must(t, err)
	must(t, w.Close())
	inRelease := signed.Bytes()
	if s.Tamper != nil {
		inRelease = s.Tamper(inRelease)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.files["dists/"+s.Name+"/InRelease"] = inRelease
	for n, data := range idx {
		m.files["dists/"+s.Name+"/"+n] = data
		sum := sha256.Sum256(data)
		m.files["dists/"+s.Name+"/"+path.Dir(n)+"/by-hash/SHA256/"+hex.EncodeToString(sum[:])] = data
	}
	for f, data := range pool {
		m.files[f] = data
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Tarball builds a tar archive of files under the directory top (as
// Debian's linux-source-<x.y>.tar.xz holds linux-source-<x.y>/...),
// compressed as comp ("xz", "gz", "zst"; "tar" for none). A File with
// Link set is a symbolic link; one whose Link starts with "hard:" is a
// hard link to the path after it (relative to top).
func Tarball(t testing.TB, top string, files []File, comp Compression) []byte {
	t.Helper()
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	now := time.Unix(1_700_000_000, 0)
	must(t, tw.WriteHeader(&tar.Header{Name: top + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}))
	for _, f := range files {
		name := top + "/" + f.Path
		switch {
		case strings.HasPrefix(f.Link, "hard:"):
			must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: top + "/" + strings.TrimPrefix(f.Link, "hard:"), ModTime: now}))
		case f.Link != "":
			must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: f.Link, Mode: 0o777, ModTime: now}))
		default:
			mode := int64(0o644)
			if strings.HasSuffix(f.Path, ".sh") {
				mode = 0o755
			}
			must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(f.Body)), Mode: mode, ModTime: now}))
			_, err := tw.Write(f.Body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	if comp == "tar" {
		return data.Bytes()
	}
	return compress(t, data.Bytes(), comp)
}
