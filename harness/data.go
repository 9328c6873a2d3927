package harness

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/symbols"
)

// Values of DWARF expressions read from a stopped guest: Data, ResolveExpr,
// ReadExpr, ReadUint, ReadString.

// Data is the value of an expression read from the guest's memory.
type Data struct {
	// Value locates the object: address, size and C type.
	symbols.Value
	// Bytes are the object's bytes in target byte order (Size of them).
	Bytes []byte
}

// Uint returns the value as an unsigned integer. It works for objects of
// 1, 2, 4 or 8 bytes (integers, enums, pointers) and for bit fields.
func (d Data) Uint() (uint64, error) {
	if d.BitSize > 0 {
		var raw uint64
		for i, b := range d.Bytes {
			if i == 8 {
				break
			}
			raw |= uint64(b) << (8 * i)
		}
		raw >>= uint(d.BitOffset)
		if d.BitSize < 64 {
			raw &= 1<<uint(d.BitSize) - 1
		}
		return raw, nil
	}
	switch len(d.Bytes) {
	case 1:
		return uint64(d.Bytes[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(d.Bytes)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(d.Bytes)), nil
	case 8:
		return binary.LittleEndian.Uint64(d.Bytes), nil
	}
	return 0, fmt.Errorf("%w: %s is %s (%d bytes), not an integer", ErrBadInput, d.Expr, d.TypeName, len(d.Bytes))
}

// Int returns the value as a signed integer (sign-extended from its size).
func (d Data) Int() (int64, error) {
	u, err := d.Uint()
	if err != nil {
		return 0, err
	}
	bits := 8 * len(d.Bytes)
	if d.BitSize > 0 {
		bits = d.BitSize
	}
	if bits >= 64 {
		return int64(u), nil
	}
	shift := uint(64 - bits)
	return int64(u<<shift) >> shift, nil
}

// CString returns the bytes up to the first NUL, as a string: the value of
// a char array.
func (d Data) CString() string { return cstring(d.Bytes) }

// String formats the value and its bytes.
func (d Data) String() string {
	if u, err := d.Uint(); err == nil && !isCharArray(d.TypeName) {
		return fmt.Sprintf("%s = %#x", d.Value, u)
	}
	return fmt.Sprintf("%s = %q", d.Value, d.CString())
}

func cstring(b []byte) string { return kernel.CString(b) }

func isCharArray(typeName string) bool {
	return strings.HasPrefix(typeName, "char [") || strings.HasPrefix(typeName, "unsigned char [") ||
		strings.HasPrefix(typeName, "const char [") || strings.HasPrefix(typeName, "char const [")
}

func isCharPointer(typeName string) bool {
	switch strings.TrimSpace(typeName) {
	case "char *", "const char *", "char const *", "unsigned char *", "const unsigned char *", "unsigned char const *":
		return true
	}
	return false
}

// maxExprRead bounds how much ReadExpr reads for one object.
const maxExprRead = 1 << 20

// ResolveExpr evaluates expr to the object it names without reading it:
// a global variable followed by members (.m), constant indexes ([i]) and
// pointer dereferences (->m). The part before the first "->" is static
// (symbols.Table.Expr); each "->" reads a pointer from the guest, which
// must then be stopped. A malformed or unknown expression is an error
// wrapping ErrBadInput that names the problem.
func (t *Target) ResolveExpr(ctx context.Context, expr string) (symbols.Value, error) {
	if t.syms == nil {
		return symbols.Value{}, &HarnessError{Op: "resolve " + expr, Err: errors.New("no symbols loaded")}
	}
	parts := strings.Split(expr, "->")
	v, err := t.syms.Expr(strings.TrimSpace(parts[0]))
	if err != nil {
		return symbols.Value{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	for _, rest := range parts[1:] {
		rest = strings.TrimSpace(rest)
		pointee, ok := strings.CutSuffix(strings.TrimSpace(v.TypeName), "*")
		if !ok || v.Size != 8 {
			return symbols.Value{}, fmt.Errorf("%w: %q: %s is %s, not a pointer", ErrBadInput, expr, v.Expr, v.TypeName)
		}
		pointee = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(pointee), "const "))
		pointee = strings.TrimSpace(strings.TrimSuffix(pointee, " const"))
		if rest == "" {
			return symbols.Value{}, fmt.Errorf("%w: %q: nothing after ->", ErrBadInput, expr)
		}
		if t.gdb == nil || t.gdb.Running() {
			return symbols.Value{}, t.harnessErr("resolve "+expr, errors.New("following -> needs the guest stopped"))
		}
		b, err := t.readGuest(ctx, v.Addr, 8)
		if err != nil {
			return symbols.Value{}, t.harnessErr("read "+v.Expr, err)
		}
		ptr := binary.LittleEndian.Uint64(b)
		if ptr == 0 {
			return symbols.Value{}, fmt.Errorf("%w: %q: %s is NULL", ErrBadInput, expr, v.Expr)
		}
		m, err := t.syms.Offsetof(pointee, rest)
		if err != nil {
			return symbols.Value{}, fmt.Errorf("%w: %q: %w", ErrBadInput, expr, err)
		}
		m.Expr = v.Expr + "->" + rest
		m.Addr += ptr
		v = m
	}
	v.Expr = expr
	return v, nil
}

// ReadExpr evaluates expr (see ResolveExpr) and reads the object from the
// guest's memory: "init_uts_ns.name.nodename" gives the hostname's 65 bytes
// with their address and C type. A running guest is stopped for the read
// and resumed.
func (t *Target) ReadExpr(ctx context.Context, expr string) (Data, error) {
	var d Data
	err := t.withStopped(ctx, func() error {
		v, err := t.ResolveExpr(ctx, expr)
		if err != nil {
			return err
		}
		if v.Size == 0 || v.Size > maxExprRead {
			return fmt.Errorf("%w: %s is %d bytes; ReadExpr reads objects of 1 byte to %d bytes", ErrBadInput, expr, v.Size, maxExprRead)
		}
		b, err := t.readGuest(ctx, v.Addr, int(v.Size))
		if err != nil {
			return t.harnessErr("read "+expr, err)
		}
		d = Data{Value: v, Bytes: b}
		return nil
	})
	return d, err
}

// ReadUint reads an integer, enum or pointer named by expr.
func (t *Target) ReadUint(ctx context.Context, expr string) (uint64, error) {
	d, err := t.ReadExpr(ctx, expr)
	if err != nil {
		return 0, err
	}
	return d.Uint()
}

// ReadString reads the string expr names: a char array up to its first
// NUL, or, for a char pointer, the NUL-terminated string it points to (at
// most 4096 bytes). A running guest is stopped for the read and resumed.
func (t *Target) ReadString(ctx context.Context, expr string) (string, error) {
	var s string
	err := t.withStopped(ctx, func() error {
		d, err := t.ReadExpr(ctx, expr)
		if err != nil {
			return err
		}
		if !isCharPointer(d.TypeName) {
			s = d.CString()
			return nil
		}
		p, err := d.Uint()
		if err != nil {
			return err
		}
		if p == 0 {
			return fmt.Errorf("%w: %s is NULL", ErrBadInput, expr)
		}
		if s, err = t.ReadCString(ctx, p, 4096); err != nil {
			return fmt.Errorf("%s: %w", expr, err)
		}
		return nil
	})
	return s, err
}
