package rsp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Register describes one register of the target description (target.xml).
type Register struct {
	Name    string // e.g. "rip"
	Num     int    // the register number used by p, P and stop replies
	BitSize int    // the size in bits
	Group   string // the group attribute (e.g. "vector"), often empty
	Type    string // the type attribute (e.g. "code_ptr", "i387_ext", "vec128")
	Feature string // the name of the <feature> it was declared in
	offset  int    // byte offset in the 'g' packet, -1 if not part of it
}

// Bytes returns the register size in bytes, rounded up.
func (r Register) Bytes() int { return (r.BitSize + 7) / 8 }

// maxIncludeDepth bounds xi:include nesting (and cycles).
const maxIncludeDepth = 8

// parseTargetDescription reads annex "target.xml" through fetch, follows
// xi:include elements in document order and numbers the registers as gdb does:
// a reg without regnum gets one more than the previous reg. It returns the
// architecture element's text and the registers in document order, with
// 'g' packet offsets assigned in register-number order.
func parseTargetDescription(fetch func(annex string) ([]byte, error)) (string, []Register, error) {
	p := &xmlParser{fetch: fetch, next: 0}
	if err := p.annex("target.xml", 0); err != nil {
		return "", nil, err
	}
	assignOffsets(p.regs)
	return p.arch, p.regs, nil
}

type xmlParser struct {
	fetch   func(string) ([]byte, error)
	arch    string
	regs    []Register
	next    int // number of the next reg without regnum
	feature string
}

func (p *xmlParser) annex(name string, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("rsp: target description: xi:include nested deeper than %d at %q", maxIncludeDepth, name)
	}
	data, err := p.fetch(name)
	if err != nil {
		return fmt.Errorf("rsp: target description %q: %w", name, err)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	var inArch bool
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rsp: target description %q: %w: %v", name, ErrBadReply, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "include" && (t.Name.Space == "xi" || t.Name.Space == "http://www.w3.org/2001/XInclude"):
				href := attr(t, "href")
				if href == "" {
					return fmt.Errorf("rsp: target description %q: %w: xi:include without href", name, ErrBadReply)
				}
				saved := p.feature
				if err := p.annex(href, depth+1); err != nil {
					return err
				}
				p.feature = saved
			case t.Name.Local == "architecture":
				inArch = true
			case t.Name.Local == "feature":
				p.feature = attr(t, "name")
			case t.Name.Local == "reg":
				if err := p.reg(name, t); err != nil {
					return err
				}
			}
		case xml.EndElement:
			if t.Name.Local == "architecture" {
				inArch = false
			}
		case xml.CharData:
			if inArch {
				p.arch += string(bytes.TrimSpace(t))
			}
		}
	}
}

func (p *xmlParser) reg(annex string, t xml.StartElement) error {
	r := Register{
		Name:    attr(t, "name"),
		Group:   attr(t, "group"),
		Type:    attr(t, "type"),
		Feature: p.feature,
		Num:     p.next,
	}
	bits, err := strconv.Atoi(attr(t, "bitsize"))
	if err != nil || bits <= 0 || bits > 1<<16 {
		return fmt.Errorf("rsp: target description %q: %w: reg %q has bitsize %q", annex, ErrBadReply, r.Name, attr(t, "bitsize"))
	}
	r.BitSize = bits
	if s := attr(t, "regnum"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1<<20 {
			return fmt.Errorf("rsp: target description %q: %w: reg %q has regnum %q", annex, ErrBadReply, r.Name, s)
		}
		r.Num = n
	}
	if r.Name == "" {
		return fmt.Errorf("rsp: target description %q: %w: reg without a name", annex, ErrBadReply)
	}
	p.next = r.Num + 1
	p.regs = append(p.regs, r)
	return nil
}

// assignOffsets gives each register its byte offset in the 'g' packet: the
// registers laid out by increasing number, without gaps.
func assignOffsets(regs []Register) {
	idx := make([]int, len(regs))
	for i := range idx {
		idx[i] = i
	}
	// insertion sort by Num: register lists are short and nearly sorted
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && regs[idx[j-1]].Num > regs[idx[j]].Num; j-- {
			idx[j-1], idx[j] = idx[j], idx[j-1]
		}
	}
	off := 0
	for _, i := range idx {
		regs[i].offset = off
		off += regs[i].Bytes()
	}
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
