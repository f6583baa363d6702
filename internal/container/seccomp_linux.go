package container

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The one seccomp filter of the builtin runtime: chmod, fchmod, fchmodat and
// fchmodat2 with a setuid or setgid bit fail with EPERM. The owner of a file may set
// those bits without any capability, so a model run by root could otherwise leave a
// setuid-root program in /out or /scratch, host directories where it would work
// outside the container. Every other system call is allowed (docs/security.md).

// modeSyscall is a system call that sets a mode, and the index of its mode argument.
type modeSyscall struct {
	nr  uint32
	arg uint32
}

// seccompArch is one system call ABI: its audit architecture and mode calls.
type seccompArch struct {
	audit uint32
	calls []modeSyscall
	x32   bool // x86-64: refuse the x32 ABI (numbers with bit 30), which has its own
}

// seccompArches are the ABIs a process of GOARCH may use (a 64-bit kernel also runs
// the 32-bit ABI of its family). On other architectures no filter is installed.
func seccompArches(goarch string) []seccompArch {
	i386 := seccompArch{audit: unix.AUDIT_ARCH_I386, calls: []modeSyscall{{15, 1}, {94, 1}, {306, 2}, {452, 2}}}
	arm := seccompArch{audit: unix.AUDIT_ARCH_ARM, calls: []modeSyscall{{15, 1}, {94, 1}, {333, 2}, {452, 2}}}
	switch goarch {
	case "amd64":
		return []seccompArch{{audit: unix.AUDIT_ARCH_X86_64, x32: true,
			calls: []modeSyscall{{90, 1}, {91, 1}, {268, 2}, {452, 2}}}, i386}
	case "arm64":
		return []seccompArch{{audit: unix.AUDIT_ARCH_AARCH64, calls: []modeSyscall{{52, 1}, {53, 2}, {452, 2}}}, arm}
	}
	return nil
}

const (
	setIDBits  = unix.S_ISUID | unix.S_ISGID
	retAllow   = unix.SECCOMP_RET_ALLOW
	retEPERM   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS  = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	offNr      = 0  // seccomp_data.nr
	offArch    = 4  // seccomp_data.arch
	offArgs    = 16 // seccomp_data.args[0], 8 bytes each, low half first (little endian)
	x32Bit     = 0x40000000
	bpfLdAbsW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJgeK    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJsetK   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRetK    = unix.BPF_RET | unix.BPF_K
	maxBlock   = 255
	setIDWords = uint32(setIDBits)
)

func insn(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// setIDFilter assembles the filter for arches: per ABI, a block that loads the call
// number and, for each mode call, tests the setuid/setgid bits of its mode argument;
// a call of an ABI not listed fails with ENOSYS.
func setIDFilter(arches []seccompArch) ([]unix.SockFilter, error) {
	prog := []unix.SockFilter{insn(bpfLdAbsW, offArch, 0, 0)}
	for _, a := range arches {
		var b []unix.SockFilter
		b = append(b, insn(bpfLdAbsW, offNr, 0, 0))
		if a.x32 {
			b = append(b, insn(bpfJgeK, x32Bit, 0, 1), insn(bpfRetK, retENOSYS, 0, 0))
		}
		for _, c := range a.calls {
			b = append(b,
				insn(bpfJeqK, c.nr, 0, 4),
				insn(bpfLdAbsW, offArgs+8*c.arg, 0, 0),
				insn(bpfJsetK, setIDWords, 0, 1),
				insn(bpfRetK, retEPERM, 0, 0),
				insn(bpfRetK, retAllow, 0, 0))
		}
		b = append(b, insn(bpfRetK, retAllow, 0, 0))
		if len(b) > maxBlock {
			return nil, fmt.Errorf("seccomp filter block of %d instructions", len(b))
		}
		prog = append(prog, insn(bpfJeqK, a.audit, 0, uint8(len(b))))
		prog = append(prog, b...)
	}
	return append(prog, insn(bpfRetK, retENOSYS, 0, 0)), nil
}

// installSetIDFilter installs the filter on the calling thread (inherited by what it
// starts); no_new_privs must be set. On an architecture without a table it does
// nothing.
func installSetIDFilter() error {
	arches := seccompArches(runtime.GOARCH)
	if arches == nil {
		return nil
	}
	prog, err := setIDFilter(arches)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	err = unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
	runtime.KeepAlive(prog)
	if err != nil {
		return fmt.Errorf("seccomp filter: %w", err)
	}
	return nil
}
