package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kspec/kspec/harness"
	"golang.org/x/sys/unix"
)

// escapeByte ends an interactive console session (Ctrl-]), like telnet.
const escapeByte = 0x1d

func cmdBoot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("boot", stderr)
	var gf guestFlags
	gf.register(fs)
	halted := fs.Bool("halted", false, "leave the guest halted at reset until a debugger continues it (like qemu -S)")
	if err := parse(fs, args); err != nil {
		return err
	}
	opts, err := gf.options()
	if err != nil {
		return err
	}
	m, spec, err := harness.StartMachine(ctx, opts, *halted)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		m.Stop(stopCtx)
	}()
	user := spec.User
	if user == "" {
		user = "root"
	}
	fmt.Fprintf(stderr, "kspec: QEMU %s (%s)\n", m.QMP().Version(), m.Args()[0])
	fmt.Fprintf(stderr, "kspec: %s %s running under %s (%s); log in as %s (password: see the guest's docs; the default guest's is in README.md)\n", spec.Name, spec.Version, m.Accel(), m.AccelReason(), user)
	fmt.Fprintf(stderr, "kspec: attach gdb from another terminal with:\n  %s\n", harness.GDBCommand(spec, m.GDBTarget()))
	fmt.Fprintf(stderr, "kspec: console log: %s; press Ctrl-] to quit\n", m.Paths().ConsoleLog)

	restore := rawTerminal(os.Stdin)
	defer restore()

	con := m.Console()
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(stdout, con)
		done <- err
	}()
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := os.Stdin.Read(buf)
			for i := 0; i < n; i++ {
				if buf[i] == escapeByte {
					if i > 0 {
						con.Write(buf[:i])
					}
					done <- nil
					return
				}
			}
			if n > 0 {
				if _, werr := con.Write(buf[:n]); werr != nil {
					done <- werr
					return
				}
			}
			if err != nil {
				done <- nil // stdin closed: keep running until interrupted
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
	case <-m.Done():
		restore()
		if err := m.Err(); err != nil {
			return &harness.HarnessError{Op: "run the guest", Err: err, ConsoleTail: m.ConsoleTail(2048)}
		}
		fmt.Fprintln(stderr, "\r\nkspec: the guest powered off")
	case <-done:
	}
	return nil
}

// rawTerminal puts f in raw mode when it is a terminal, so keys (Ctrl-C
// included) go to the guest; the returned func restores it.
func rawTerminal(f *os.File) func() {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}
	}
	restored := false
	return func() {
		if !restored {
			restored = true
			unix.IoctlSetTermios(fd, unix.TCSETS, old)
		}
	}
}
