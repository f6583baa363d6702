package container

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The one seccomp filter of the builtin runtime, a short deny-list (not an
// allow-list: every other system call is allowed, docs/security.md):
//
//   - chmod, fchmod, fchmodat, fchmodat2 with a setuid or setgid bit: EPERM. The owner
//     of a file may set them without any capability, so a model run by root could
//     otherwise leave a setuid-root program in /out or /scratch, host directories
//     where it would work outside the container.
//   - clone and unshare with CLONE_NEWUSER: EPERM; clone3 (its flags are out of the
//     filter's reach): ENOSYS, so C libraries fall back to clone. In a user namespace
//     of its own a model regains every capability there (older kernels let uid 0 map
//     itself and write file capabilities valid on the host).
//   - add_key, request_key, keyctl: EPERM. The kernel keyrings are not namespaced:
//     uid 0 would reach root's user keyring.
//   - the x32 ABI, and any ABI not listed below: ENOSYS.

// sysRule is one system call of the deny-list: with bits, refused when its argument
// arg has any of them; without, always.
type sysRule struct {
	nr, arg, bits uint32
	ret           uint32
}

// seccompArch is one system call ABI: its audit architecture and rules.
type seccompArch struct {
	audit uint32
	rules []sysRule
	x32   bool // x86-64: refuse the x32 ABI (numbers with bit 30), which has its own
}

// sysNums are an ABI's numbers of the calls the filter looks at.
type sysNums struct {
	chmod, fchmod, fchmodat, clone, unshare, addKey, requestKey, keyctl uint32
}

func denyRules(n sysNums) []sysRule {
	const fchmodat2, clone3 = 452, 435 // the same on every ABI
	r := []sysRule{
		{nr: n.fchmod, arg: 1, bits: setIDBits, ret: retEPERM},
		{nr: n.fchmodat, arg: 2, bits: setIDBits, ret: retEPERM},
		{nr: fchmodat2, arg: 2, bits: setIDBits, ret: retEPERM},
		{nr: n.clone, arg: 0, bits: unix.CLONE_NEWUSER, ret: retEPERM},
		{nr: n.unshare, arg: 0, bits: unix.CLONE_NEWUSER, ret: retEPERM},
		{nr: clone3, ret: retENOSYS},
		{nr: n.addKey, ret: retEPERM},
		{nr: n.requestKey, ret: retEPERM},
		{nr: n.keyctl, ret: retEPERM},
	}
	if n.chmod != 0 {
		r = append(r, sysRule{nr: n.chmod, arg: 1, bits: setIDBits, ret: retEPERM})
	}
	return r
}

// seccompArches are the ABIs a process of GOARCH may use (a 64-bit kernel also runs
// the 32-bit ABI of its family). On other architectures no filter is installed.
func seccompArches(goarch string) []seccompArch {
	i386 := seccompArch{audit: unix.AUDIT_ARCH_I386, rules: denyRules(sysNums{15, 94, 306, 120, 310, 286, 287, 288})}
	arm := seccompArch{audit: unix.AUDIT_ARCH_ARM, rules: denyRules(sysNums{15, 94, 333, 120, 337, 309, 310, 311})}
	switch goarch {
	case "amd64":
		return []seccompArch{{audit: unix.AUDIT_ARCH_X86_64, x32: true,
			rules: denyRules(sysNums{90, 91, 268, 56, 272, 248, 249, 250})}, i386}
	case "arm64":
		return []seccompArch{{audit: unix.AUDIT_ARCH_AARCH64, rules: denyRules(sysNums{0, 52, 53, 220, 97, 217, 218, 219})}, arm}
	}
	return nil
}

const (
	setIDBits = unix.S_ISUID | unix.S_ISGID
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	offNr     = 0  // seccomp_data.nr
	offArch   = 4  // seccomp_data.arch
	offArgs   = 16 // seccomp_data.args[0], 8 bytes each, low half first (little endian)
	x32Bit    = 0x40000000
	bpfLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJsetK  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRetK   = unix.BPF_RET | unix.BPF_K
	maxBlock  = 255
)

func insn(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// denyFilter assembles the filter for arches: per ABI, a block that loads the call
// number and, for each rule, returns its answer (after testing the argument's bits
// when the rule has some); a call of an ABI not listed fails with ENOSYS.
func denyFilter(arches []seccompArch) ([]unix.SockFilter, error) {
	prog := []unix.SockFilter{insn(bpfLdAbsW, offArch, 0, 0)}
	for _, a := range arches {
		var b []unix.SockFilter
		b = append(b, insn(bpfLdAbsW, offNr, 0, 0))
		if a.x32 {
			b = append(b, insn(bpfJgeK, x32Bit, 0, 1), insn(bpfRetK, retENOSYS, 0, 0))
		}
		for _, r := range a.rules {
			if r.bits == 0 {
				b = append(b, insn(bpfJeqK, r.nr, 0, 1), insn(bpfRetK, r.ret, 0, 0))
				continue
			}
			b = append(b,
				insn(bpfJeqK, r.nr, 0, 4),
				insn(bpfLdAbsW, offArgs+8*r.arg, 0, 0),
				insn(bpfJsetK, r.bits, 0, 1),
				insn(bpfRetK, r.ret, 0, 0),
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

// installFilter installs the deny-list on the calling thread (inherited by what it
// starts); no_new_privs must be set. On an architecture without a table it does
// nothing.
func installFilter() error {
	arches := seccompArches(runtime.GOARCH)
	if arches == nil {
		return nil
	}
	prog, err := denyFilter(arches)
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
