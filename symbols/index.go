package symbols

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The on-disk index keeps what a fresh process would otherwise compute
// from the whole image before its first address lookup: the symbol hash
// table, the address-sorted symbol list and the address-to-unit maps.
//
// Layout (little-endian): a fixed header, then tagged blocks, each
// [tag u32][count u32][payload], payload padded to 8 bytes.
const (
	indexMagic   = "KSPECSYM"
	indexVersion = 3
	indexFile    = "index.v3"
)

// Block tags.
const (
	tagByName     = 1 // []uint32: symbol hash table
	tagByAddr     = 2 // []uint32: address-sorted symbol indices
	tagAranges    = 3 // []arange from .debug_aranges
	tagUnitRanges = 4 // []arange from the unit entries
	tagFDEs       = 5 // []arange: .debug_frame FDE index
	tagUnitNames  = 6 // per unit: offset u64, name length u32, name, padding
)

// indexHeader identifies the image an index was built from.
type indexHeader struct {
	Magic      [8]byte
	Version    uint32
	NSyms      uint32 // symbol-table entries
	FileSize   uint64
	SymtabOff  uint64 // file offset of the symbol table
	InfoSize   uint64 // size of .debug_info
	BuildIDLen uint32
	_          uint32
	BuildID    [64]byte
}

// index is a loaded on-disk index.
type index struct {
	path       string
	hdr        indexHeader
	byName     []uint32
	byAddr     []uint32
	aranges    []arange
	unitRanges []arange
	fdes       []arange // .debug_frame FDEs: lo, hi, entry offset
	unitNames  []unitName
}

func (x *index) close() error { return nil }

// attachSymtab hands the stored symbol indexes to s.
func (x *index) attachSymtab(s *symtab) {
	if uint32(s.n) != x.hdr.NSyms {
		return
	}
	if x.byName != nil {
		s.byName = x.byName
	}
	if x.byAddr != nil {
		s.byAddr = x.byAddr
	}
}

// attachDWARF hands the stored address maps to d.
func (x *index) attachDWARF(d *dwarfData) {
	if uint64(len(d.info)) != x.hdr.InfoSize {
		return
	}
	if x.aranges != nil {
		d.arOnce.Do(func() { d.ar = x.aranges })
	}
	if x.unitRanges != nil {
		d.unitRangesOnce.Do(func() { d.unitRanges = x.unitRanges })
	}
	if x.unitNames != nil {
		d.unitNamesOnce.Do(func() { d.unitNames = x.unitNames })
	}
}

// DefaultCacheDir returns the root of the symbol index cache:
// $KSPEC_CACHE/symbols, else the user cache directory's kspec/symbols
// (~/.cache/kspec/symbols on Linux).
func DefaultCacheDir() (string, error) {
	if c := os.Getenv("KSPEC_CACHE"); c != "" {
		return filepath.Join(c, "symbols"), nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("symbols: no cache directory: %w", err)
	}
	return filepath.Join(c, "kspec", "symbols"), nil
}

// IndexPath returns where the index of t lives under cacheDir:
// cacheDir/<build-id>/index.v1. Images without a build-id are keyed by a
// hash of their path, size and modification time.
func (t *Table) IndexPath(cacheDir string) (string, error) {
	key := t.buildID
	if key == "" {
		st, err := os.Stat(t.path)
		if err != nil {
			return "", fmt.Errorf("symbols: %w", err)
		}
		abs, _ := filepath.Abs(t.path)
		h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano()))
		key = "nobuildid-" + hex.EncodeToString(h[:12])
	}
	return filepath.Join(cacheDir, key, indexFile), nil
}

// OpenIndexed opens the image at path like Open and attaches its on-disk
// index from cacheDir (DefaultCacheDir if ""), building and writing the
// index first if there is none or it does not fit the image. Writing is
// atomic (temporary file and rename); if the cache cannot be written the
// table still works, without the index, and the error is dropped.
func OpenIndexed(path, cacheDir string) (*Table, error) {
	t, err := Open(path)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return t, nil
		}
	}
	ipath, err := t.IndexPath(cacheDir)
	if err != nil {
		return t, nil
	}
	x, err := t.loadIndex(ipath)
	if err != nil {
		if x, err = t.buildIndex(); err != nil {
			return t, nil
		}
		if writeIndex(ipath, x) == nil {
			x.path = ipath
		}
	}
	// indexHeader loaded the symbol table and DWARF sections already.
	t.idx = x
	if t.syms != nil {
		x.attachSymtab(t.syms)
	}
	if t.dw != nil {
		x.attachDWARF(t.dw)
	}
	return t, nil
}

// BuildIndex builds the index of t and writes it under cacheDir
// (DefaultCacheDir if ""), replacing any existing one. It returns the
// index file's path.
func (t *Table) BuildIndex(cacheDir string) (string, error) {
	if err := t.enter(); err != nil {
		return "", err
	}
	defer t.mu.RUnlock()
	var err error
	if cacheDir == "" {
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	ipath, err := t.IndexPath(cacheDir)
	if err != nil {
		return "", err
	}
	x, err := t.buildIndex()
	if err != nil {
		return "", err
	}
	if err := writeIndex(ipath, x); err != nil {
		return "", err
	}
	return ipath, nil
}

// header returns the identity of t for an index.
func (t *Table) indexHeader() (indexHeader, error) {
	s, err := t.loadSymtab()
	if err != nil {
		return indexHeader{}, err
	}
	h := indexHeader{Version: indexVersion, NSyms: uint32(s.n), FileSize: uint64(len(t.data))}
	copy(h.Magic[:], indexMagic)
	for _, sec := range t.elf.Sections {
		if len(sec.Name) > 0 && (sec.Name == ".symtab" || sec.Name == ".dynsym" && h.SymtabOff == 0) {
			h.SymtabOff = sec.Offset
		}
	}
	if d, err := t.dwarf(); err == nil {
		h.InfoSize = uint64(len(d.info))
	}
	h.BuildIDLen = uint32(copy(h.BuildID[:], t.buildID))
	return h, nil
}

// buildIndex computes every indexed table of t.
func (t *Table) buildIndex() (*index, error) {
	h, err := t.indexHeader()
	if err != nil {
		return nil, err
	}
	x := &index{hdr: h}
	s, err := t.loadSymtab()
	if err != nil {
		return nil, err
	}
	if s.byName == nil {
		t.symIdxOnce.name.Do(s.buildNameIndex)
	}
	if s.byAddr == nil {
		t.symIdxOnce.addr.Do(s.buildAddrIndex)
	}
	x.byName, x.byAddr = s.byName, s.byAddr
	if d, err := t.dwarf(); err == nil {
		if x.aranges, err = d.loadAranges(); err != nil {
			x.aranges = nil
		}
		if x.unitRanges, err = d.loadUnitRanges(); err != nil {
			x.unitRanges = nil
		}
		if x.unitNames, err = d.unitNameList(); err != nil {
			x.unitNames = nil
		}
	}
	if secs, err := t.frameSections(); err == nil && !secs[0].eh {
		if x.fdes, err = secs[0].index(); err != nil {
			x.fdes = nil
		}
	}
	return x, nil
}

// encode serializes x.
func (x *index) encode() []byte {
	le := binary.LittleEndian
	out, _ := binary.Append(nil, le, &x.hdr)
	block := func(tag uint32, n int) {
		out = le.AppendUint32(out, tag)
		out = le.AppendUint32(out, uint32(n))
	}
	pad := func() {
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	u32s := func(tag uint32, v []uint32) {
		if v == nil {
			return
		}
		block(tag, len(v))
		for _, w := range v {
			out = le.AppendUint32(out, w)
		}
		pad()
	}
	ranges := func(tag uint32, v []arange) {
		if v == nil {
			return
		}
		block(tag, len(v))
		for _, r := range v {
			out = le.AppendUint64(out, r.lo)
			out = le.AppendUint64(out, r.hi)
			out = le.AppendUint64(out, r.unit)
		}
	}
	u32s(tagByName, x.byName)
	u32s(tagByAddr, x.byAddr)
	ranges(tagAranges, x.aranges)
	ranges(tagUnitRanges, x.unitRanges)
	ranges(tagFDEs, x.fdes)
	if x.unitNames != nil {
		block(tagUnitNames, len(x.unitNames))
		for _, un := range x.unitNames {
			out = le.AppendUint64(out, un.off)
			out = le.AppendUint32(out, uint32(len(un.name)))
			out = append(out, un.name...)
			pad()
		}
	}
	return out
}

// errBadIndex reports an index that does not fit the image or is damaged.
var errBadIndex = errors.New("index does not match the image")

// decodeIndex parses an encoded index.
func decodeIndex(b []byte) (*index, error) {
	le := binary.LittleEndian
	x := &index{}
	n, err := binary.Decode(b, le, &x.hdr)
	if err != nil || string(x.hdr.Magic[:]) != indexMagic || x.hdr.Version != indexVersion {
		return nil, errBadIndex
	}
	b = b[n:]
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errBadIndex
		}
		tag, cnt := le.Uint32(b), int(le.Uint32(b[4:]))
		b = b[8:]
		switch tag {
		case tagByName, tagByAddr:
			size := (4*cnt + 7) &^ 7
			if size > len(b) {
				return nil, errBadIndex
			}
			v := make([]uint32, cnt)
			for i := range v {
				v[i] = le.Uint32(b[4*i:])
			}
			if tag == tagByName {
				if cnt&(cnt-1) != 0 || cnt == 0 {
					return nil, errBadIndex
				}
				x.byName = v
			} else {
				x.byAddr = v
			}
			b = b[size:]
		case tagAranges, tagUnitRanges, tagFDEs:
			size := 24 * cnt
			if size > len(b) || size < 0 {
				return nil, errBadIndex
			}
			v := make([]arange, cnt)
			for i := range v {
				p := b[24*i:]
				v[i] = arange{le.Uint64(p), le.Uint64(p[8:]), le.Uint64(p[16:])}
			}
			switch tag {
			case tagAranges:
				x.aranges = v
			case tagUnitRanges:
				x.unitRanges = v
			default:
				x.fdes = v
			}
			b = b[size:]
		case tagUnitNames:
			v := make([]unitName, 0, cnt)
			for range cnt {
				if len(b) < 12 {
					return nil, errBadIndex
				}
				off, n := le.Uint64(b), int(le.Uint32(b[8:]))
				size := (12 + n + 7) &^ 7
				if n < 0 || size > len(b) {
					return nil, errBadIndex
				}
				v = append(v, unitName{off, string(b[12 : 12+n])})
				b = b[size:]
			}
			x.unitNames = v
		default:
			return nil, errBadIndex
		}
	}
	return x, nil
}

// loadIndex reads the index at ipath and checks that it belongs to t.
func (t *Table) loadIndex(ipath string) (*index, error) {
	b, err := os.ReadFile(ipath)
	if err != nil {
		return nil, err
	}
	x, err := decodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ipath, err)
	}
	want, err := t.indexHeader()
	if err != nil {
		return nil, err
	}
	if x.hdr != want {
		return nil, fmt.Errorf("%s: %w", ipath, errBadIndex)
	}
	for _, i := range x.byAddr {
		if i >= x.hdr.NSyms {
			return nil, fmt.Errorf("%s: %w", ipath, errBadIndex)
		}
	}
	x.path = ipath
	return x, nil
}

// writeIndex writes x to ipath atomically.
func writeIndex(ipath string, x *index) error {
	dir := filepath.Dir(ipath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("symbols: index: %w", err)
	}
	f, err := os.CreateTemp(dir, ".index-*")
	if err != nil {
		return fmt.Errorf("symbols: index: %w", err)
	}
	_, err = f.Write(x.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), ipath)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("symbols: index: %w", err)
	}
	return nil
}

// IndexFile returns the path of the on-disk index in use, or "".
func (t *Table) IndexFile() string {
	if t.idx == nil {
		return ""
	}
	return t.idx.path
}
