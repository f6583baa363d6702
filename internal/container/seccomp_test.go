package container

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSeccompNumbers: the native ABI's table names the system calls x/sys knows by
// those names (the 32-bit tables were copied from x/sys's zsysnum files the same way).
func TestSeccompNumbers(t *testing.T) {
	arches := seccompArches(runtime.GOARCH)
	if arches == nil {
		t.Skipf("no seccomp table for %s: the builtin runtime installs no filter there", runtime.GOARCH)
	}
	has := map[uint32]bool{}
	for _, r := range arches[0].rules {
		has[r.nr] = true
	}
	for _, c := range []struct {
		name string
		nr   uintptr
	}{
		{"fchmod", unix.SYS_FCHMOD}, {"fchmodat", unix.SYS_FCHMODAT}, {"fchmodat2", unix.SYS_FCHMODAT2},
		{"clone", unix.SYS_CLONE}, {"clone3", unix.SYS_CLONE3}, {"unshare", unix.SYS_UNSHARE},
		{"add_key", unix.SYS_ADD_KEY}, {"request_key", unix.SYS_REQUEST_KEY}, {"keyctl", unix.SYS_KEYCTL},
	} {
		if !has[uint32(c.nr)] {
			t.Errorf("%s (%d) is not in the %s table", c.name, c.nr, runtime.GOARCH)
		}
	}
	if _, err := denyFilter(arches); err != nil {
		t.Fatal(err)
	}
}
