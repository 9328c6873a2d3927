// Package archive reads a Debian archive (a mirror such as
// https://deb.debian.org/debian) without apt or dpkg: a suite's InRelease,
// verified against an OpenPGP keyring; the Packages index whose SHA256 the
// InRelease lists; and .deb files whose SHA256 the index lists. Everything
// fetched is verified before it is used and cached under one directory.
package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"pault.ag/go/debian/control"
)

// DefaultMirror is the Debian archive kspec reads unless told otherwise.
const DefaultMirror = "https://deb.debian.org/debian"

// DefaultSecurityMirror carries the <suite>-security suites of the stable
// releases (kernel updates land there first).
const DefaultSecurityMirror = "https://deb.debian.org/debian-security"

// DefaultKeyring is the Debian archive keyring as Debian-based hosts
// install it (package debian-archive-keyring).
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// ErrNotFound: the mirror has no such suite, index or file (HTTP 404), or
// the mirror itself does not exist (its host is unknown).
var ErrNotFound = errors.New("not in the archive")

// ErrNotVerified: a release file's signature, or a file's checksum, does
// not verify.
var ErrNotVerified = errors.New("does not verify")

// ErrKeyring: the keyring file is missing or holds no OpenPGP keys.
var ErrKeyring = errors.New("no usable keyring")

// FileSum is one line of a release file's SHA256 list.
type FileSum struct {
	// Size is the file's size in bytes.
	Size int64
	// SHA256 is its checksum (hex).
	SHA256 string
}

// Release is a suite's verified InRelease.
type Release struct {
	// Mirror is the archive's base URL, Name the suite as asked for
	// ("sid", "bookworm-security").
	Mirror, Name string
	// Suite and Codename are the release's own fields ("unstable", "sid").
	Suite, Codename string
	// Date and ValidUntil are the release's dates (ValidUntil is zero if
	// the release has none).
	Date, ValidUntil time.Time
	// NotAutomatic is set for suites apt does not install from by default
	// (experimental).
	NotAutomatic bool
	// AcquireByHash: indexes can be fetched by their checksum.
	AcquireByHash bool
	// Architectures and Components are what the suite carries.
	Architectures, Components []string
	// Files are the indexes the release vouches for, by path below
	// dists/<suite>/.
	Files map[string]FileSum
	// Signer names the key that signed the release.
	Signer string
}

// ReadKeyring reads an OpenPGP keyring file, binary (as Debian ships
// /usr/share/keyrings/*.gpg) or ASCII-armored.
func ReadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyring, err)
	}
	var keys openpgp.EntityList
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an OpenPGP keyring: %v", ErrKeyring, path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no keys", ErrKeyring, path)
	}
	return keys, nil
}

// ParseRelease verifies an InRelease file (an OpenPGP clear-signed release
// file) against keys and parses the signed text; only signed text is
// read. now is the time signatures and keys are checked at.
func ParseRelease(data []byte, keys openpgp.EntityList, now time.Time) (*Release, error) {
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: it is not an OpenPGP clear-signed message", ErrNotVerified)
	}
	signer, err := block.VerifySignature(keys, &packet.Config{Time: func() time.Time { return now }})
	if err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify against the keyring: %v", ErrNotVerified, err)
	}
	pr, err := control.NewParagraphReader(bytes.NewReader(block.Plaintext), nil)
	if err != nil {
		return nil, err
	}
	para, err := pr.Next()
	if err != nil {
		return nil, fmt.Errorf("its signed text is no release file: %w", err)
	}
	v := para.Values
	r := &Release{
		Suite: v["Suite"], Codename: v["Codename"],
		NotAutomatic:  v["NotAutomatic"] == "yes",
		AcquireByHash: v["Acquire-By-Hash"] == "yes",
		Architectures: strings.Fields(v["Architectures"]),
		Components:    strings.Fields(v["Components"]),
		Files:         map[string]FileSum{},
	}
	for id := range signer.Identities {
		r.Signer = id
		break
	}
	if r.Signer == "" {
		r.Signer = signer.PrimaryKey.KeyIdString()
	}
	if r.Date, err = parseDate(v["Date"]); err != nil {
		return nil, fmt.Errorf("release Date: %w", err)
	}
	if s := v["Valid-Until"]; s != "" {
		if r.ValidUntil, err = parseDate(s); err != nil {
			return nil, fmt.Errorf("release Valid-Until: %w", err)
		}
	}
	for _, line := range strings.Split(v["SHA256"], "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || len(f[0]) != 64 {
			return nil, fmt.Errorf("release SHA256 line %q is malformed", line)
		}
		r.Files[f[2]] = FileSum{Size: n, SHA256: strings.ToLower(f[0])}
	}
	if len(r.Files) == 0 {
		return nil, errors.New("release lists no SHA256 checksums")
	}
	return r, nil
}

// parseDate parses a release file's RFC 2822 date ("Sat, 11 Jul 2026
// 10:16:37 UTC").
func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse date %q", s)
}

// Expired reports whether the release's Valid-Until has passed at now.
func (r *Release) Expired(now time.Time) bool {
	return !r.ValidUntil.IsZero() && now.After(r.ValidUntil)
}
