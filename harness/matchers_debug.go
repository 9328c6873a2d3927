package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onsi/gomega/types"
)

// matchTimeout bounds what a matcher may read from the guest.
const matchTimeout = 30 * time.Second

// HaveBacktraceContaining matches a *Hit whose backtrace (Hit.Backtrace)
// has a frame for each of funcs, inlined frames included, in any order.
// It also accepts a []Frame. The failure message shows the stop and the
// whole backtrace.
func HaveBacktraceContaining(funcs ...string) types.GomegaMatcher {
	return &backtraceMatcher{funcs: funcs}
}

type backtraceMatcher struct {
	funcs   []string
	frames  []Frame
	missing []string
}

func (m *backtraceMatcher) Match(actual any) (bool, error) {
	switch a := actual.(type) {
	case *Hit:
		if a == nil {
			return false, fmt.Errorf("HaveBacktraceContaining: the hit is nil")
		}
		ctx, cancel := context.WithTimeout(context.Background(), matchTimeout)
		defer cancel()
		frames, err := a.Backtrace(ctx)
		if err != nil {
			return false, fmt.Errorf("HaveBacktraceContaining: %w", err)
		}
		m.frames = frames
	case []Frame:
		m.frames = a
	default:
		return false, fmt.Errorf("HaveBacktraceContaining expects a *harness.Hit or []harness.Frame, got %T", actual)
	}
	m.missing = nil
	for _, fn := range m.funcs {
		if !slices.ContainsFunc(m.frames, func(f Frame) bool { return f.Function == fn }) {
			m.missing = append(m.missing, fn)
		}
	}
	return len(m.missing) == 0, nil
}

func (m *backtraceMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected the backtrace to contain %s (missing %s)\n%s",
		strings.Join(m.funcs, ", "), strings.Join(m.missing, ", "), describeStop(actual, m.frames))
}

func (m *backtraceMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected the backtrace not to contain all of %s\n%s", strings.Join(m.funcs, ", "), describeStop(actual, m.frames))
}

// HaveComm matches a *Hit whose current task (Hit.Task) has the command
// name comm, e.g. HaveComm("mkdir"). It also accepts a Task. The failure
// message shows the task found and where the kernel stopped, with the
// backtrace.
func HaveComm(comm string) types.GomegaMatcher { return &commMatcher{comm: comm} }

type commMatcher struct {
	comm string
	task Task
}

func (m *commMatcher) Match(actual any) (bool, error) {
	switch a := actual.(type) {
	case *Hit:
		if a == nil {
			return false, fmt.Errorf("HaveComm: the hit is nil")
		}
		ctx, cancel := context.WithTimeout(context.Background(), matchTimeout)
		defer cancel()
		task, err := a.Task(ctx)
		if err != nil {
			return false, fmt.Errorf("HaveComm: %w", err)
		}
		m.task = task
	case Task:
		m.task = a
	default:
		return false, fmt.Errorf("HaveComm expects a *harness.Hit or harness.Task, got %T", actual)
	}
	return m.task.Comm == m.comm, nil
}

func (m *commMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected the current task to be %q, it is %s (task %#x)\n%s", m.comm, m.task, m.task.Addr, describeStop(actual, backtraceIfKnown(actual)))
}

func (m *commMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected the current task not to be %q, it is %s (task %#x)\n%s", m.comm, m.task, m.task.Addr, describeStop(actual, backtraceIfKnown(actual)))
}

// backtraceIfKnown returns the hit's backtrace, reading it if the guest is
// still stopped there; nil if it cannot be had.
func backtraceIfKnown(actual any) []Frame {
	h, ok := actual.(*Hit)
	if !ok || h == nil || h.t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), matchTimeout)
	defer cancel()
	frames, _ := h.Backtrace(ctx)
	return frames
}

// describeStop formats a stop and its backtrace for failure messages.
func describeStop(actual any, frames []Frame) string {
	var b strings.Builder
	if h, ok := actual.(*Hit); ok && h != nil {
		fmt.Fprintf(&b, "     the kernel stopped at %s", h)
		if h.Stop.Watch != nil {
			fmt.Fprintf(&b, " (%s at %#x)", h.Stop.Watch.Kind, h.Stop.Watch.Addr)
		}
		b.WriteString("\n")
	}
	if len(frames) > 0 {
		b.WriteString("     backtrace:\n")
		b.WriteString(FormatBacktrace(frames, "       "))
	}
	return b.String()
}

// FormatBacktrace formats frames one per line like gdb's bt (#0, #1, ...),
// each line starting with indent; a frame's StopReason follows it.
func FormatBacktrace(frames []Frame, indent string) string {
	var b strings.Builder
	for i, f := range frames {
		fmt.Fprintf(&b, "%s#%-2d %s\n", indent, i, f)
		if f.StopReason != "" {
			fmt.Fprintf(&b, "%s    (unwinding stopped: %s)\n", indent, f.StopReason)
		}
	}
	return b.String()
}
