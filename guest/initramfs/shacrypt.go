package initramfs

import (
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"strings"
)

// cryptAlphabet is the base-64 alphabet of crypt(3) hashes.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Limits and defaults of SHA-512 crypt ("$6$"), from Ulrich Drepper's
// specification that glibc, musl and busybox implement.
const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxRounds     = 999999999
	shaCryptMaxSalt       = 16
)

// SHA512Crypt returns the "$6$" crypt(3) hash of password with the given
// salt (at most 16 characters are used) and rounds (0 means the default
// 5000, which is then left out of the hash string). The result goes into
// /etc/shadow, where busybox login (and glibc's crypt) verify it.
func SHA512Crypt(password, salt string, rounds int) (string, error) {
	if strings.ContainsAny(salt, "$:\n") {
		return "", fmt.Errorf("sha512-crypt: salt %q contains '$', ':' or a newline", salt)
	}
	if len(salt) > shaCryptMaxSalt {
		salt = salt[:shaCryptMaxSalt]
	}
	custom := rounds != 0
	if rounds == 0 {
		rounds = shaCryptDefaultRounds
	}
	rounds = max(shaCryptMinRounds, min(rounds, shaCryptMaxRounds))

	p, s := []byte(password), []byte(salt)

	// Digest B = sha512(P S P).
	h := sha512.New()
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)

	// Digest A.
	h.Reset()
	h.Write(p)
	h.Write(s)
	for n := len(p); n > 0; n -= 64 {
		h.Write(b[:min(n, 64)])
	}
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	// P sequence: sha512(P repeated len(P) times), stretched to len(P).
	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	pSeq := repeatTo(h.Sum(nil), len(p))

	// S sequence: sha512(S repeated 16+A[0] times), stretched to len(S).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sSeq := repeatTo(h.Sum(nil), len(s))

	c := a
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sSeq)
		}
		if i%7 != 0 {
			h.Write(pSeq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(nil)
	}

	var out strings.Builder
	out.WriteString("$6$")
	if custom {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	for _, t := range shaCryptOrder {
		encode24(&out, c[t[0]], c[t[1]], c[t[2]], 4)
	}
	encode24(&out, 0, 0, c[63], 2)
	return out.String(), nil
}

// shaCryptOrder is the byte permutation of the final SHA-512 crypt digest.
var shaCryptOrder = [21][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
	{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
	{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
	{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
	{62, 20, 41},
}

// encode24 appends n characters encoding the 24-bit group b2 b1 b0, least
// significant six bits first.
func encode24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint32(b2)<<16 | uint32(b1)<<8 | uint32(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&0x3f])
		w >>= 6
	}
}

// repeatTo returns n bytes of d repeated.
func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// RandomSalt returns a 16-character crypt salt from crypto/rand.
func RandomSalt() string {
	var b [shaCryptMaxSalt]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	s := make([]byte, len(b))
	for i, v := range b {
		s[i] = cryptAlphabet[int(v)%len(cryptAlphabet)]
	}
	return string(s)
}
