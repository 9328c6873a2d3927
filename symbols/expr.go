package symbols

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// exprContext gives a DWARF expression access to registers and memory.
type exprContext struct {
	reg     func(r uint64) (uint64, bool)
	mem     func(addr uint64, n int) ([]byte, error)
	order   binary.ByteOrder
	asize   int
	initial []uint64 // pushed before evaluation (e.g. the CFA)
}

// errExprUnsupported reports an operation the evaluator does not know.
var errExprUnsupported = errors.New("unsupported DWARF expression operation")

// evalExpr evaluates a DWARF expression that computes a value or an
// address (no location descriptions such as DW_OP_reg or DW_OP_piece).
func evalExpr(expr []byte, ctx exprContext) (uint64, error) {
	b := makeBuf("DWARF expression", expr, 0, ctx.order)
	stack := append([]uint64(nil), ctx.initial...)
	pop := func() (uint64, error) {
		if len(stack) == 0 {
			return 0, errors.New("DWARF expression: stack underflow")
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		return v, nil
	}
	push := func(v uint64) { stack = append(stack, v) }
	reg := func(r uint64) (uint64, error) {
		if ctx.reg == nil {
			return 0, fmt.Errorf("DWARF expression: register %d unavailable", r)
		}
		v, ok := ctx.reg(r)
		if !ok {
			return 0, fmt.Errorf("DWARF expression: register %d unknown", r)
		}
		return v, nil
	}
	read := func(addr uint64, n int) (uint64, error) {
		if ctx.mem == nil {
			return 0, errors.New("DWARF expression: memory unavailable")
		}
		m, err := ctx.mem(addr, n)
		if err != nil {
			return 0, err
		}
		if len(m) < n {
			return 0, fmt.Errorf("DWARF expression: short read at %#x", addr)
		}
		switch n {
		case 1:
			return uint64(m[0]), nil
		case 2:
			return uint64(ctx.order.Uint16(m)), nil
		case 4:
			return uint64(ctx.order.Uint32(m)), nil
		case 8:
			return ctx.order.Uint64(m), nil
		}
		return 0, fmt.Errorf("DWARF expression: bad size %d", n)
	}
	for b.off < len(expr) && b.err == nil {
		op := b.u8()
		switch {
		case op >= 0x30 && op <= 0x4f: // lit0..lit31
			push(uint64(op - 0x30))
			continue
		case op >= 0x70 && op <= 0x8f: // breg0..breg31
			v, err := reg(uint64(op - 0x70))
			if err != nil {
				return 0, err
			}
			push(v + uint64(b.sleb()))
			continue
		}
		switch op {
		case 0x03: // addr
			push(b.uint(ctx.asize))
		case 0x06: // deref
			a, err := pop()
			if err != nil {
				return 0, err
			}
			v, err := read(a, ctx.asize)
			if err != nil {
				return 0, err
			}
			push(v)
		case 0x08: // const1u
			push(uint64(b.u8()))
		case 0x09: // const1s
			push(uint64(int64(int8(b.u8()))))
		case 0x0a:
			push(uint64(b.u16()))
		case 0x0b:
			push(uint64(int64(int16(b.u16()))))
		case 0x0c:
			push(uint64(b.u32()))
		case 0x0d:
			push(uint64(int64(int32(b.u32()))))
		case 0x0e, 0x0f:
			push(b.u64())
		case 0x10: // constu
			push(b.uleb())
		case 0x11: // consts
			push(uint64(b.sleb()))
		case 0x12: // dup
			v, err := pop()
			if err != nil {
				return 0, err
			}
			push(v)
			push(v)
		case 0x13: // drop
			if _, err := pop(); err != nil {
				return 0, err
			}
		case 0x14: // over
			if len(stack) < 2 {
				return 0, errors.New("DWARF expression: stack underflow")
			}
			push(stack[len(stack)-2])
		case 0x16: // swap
			if len(stack) < 2 {
				return 0, errors.New("DWARF expression: stack underflow")
			}
			n := len(stack)
			stack[n-1], stack[n-2] = stack[n-2], stack[n-1]
		case 0x1a, 0x1c, 0x1e, 0x21, 0x22, 0x24, 0x25, 0x27: // and minus mul or plus shl shr xor
			y, err := pop()
			if err != nil {
				return 0, err
			}
			x, err := pop()
			if err != nil {
				return 0, err
			}
			switch op {
			case 0x1a:
				push(x & y)
			case 0x1c:
				push(x - y)
			case 0x1e:
				push(x * y)
			case 0x21:
				push(x | y)
			case 0x22:
				push(x + y)
			case 0x24:
				push(x << y)
			case 0x25:
				push(x >> y)
			case 0x27:
				push(x ^ y)
			}
		case 0x23: // plus_uconst
			x, err := pop()
			if err != nil {
				return 0, err
			}
			push(x + b.uleb())
		case 0x1f: // neg
			x, err := pop()
			if err != nil {
				return 0, err
			}
			push(-x)
		case 0x92: // bregx
			r := b.uleb()
			v, err := reg(r)
			if err != nil {
				return 0, err
			}
			push(v + uint64(b.sleb()))
		case 0x94: // deref_size
			n := int(b.u8())
			a, err := pop()
			if err != nil {
				return 0, err
			}
			v, err := read(a, n)
			if err != nil {
				return 0, err
			}
			push(v)
		case 0x96: // nop
		case 0x9c: // call_frame_cfa
			return 0, fmt.Errorf("%w: DW_OP_call_frame_cfa", errExprUnsupported)
		default:
			return 0, fmt.Errorf("%w %#x", errExprUnsupported, op)
		}
	}
	if b.err != nil {
		return 0, b.err
	}
	return pop()
}
