package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/tool"
)

// Packers: what turns the image into the squashfs partition.
const (
	// PackerBuiltin is scv-hpc's own squashfs writer (internal/squashfs), in
	// this process: the default for gzip and zstd, the fastest by far
	// (builtin.go).
	PackerBuiltin = "builtin"
	// PackerTar2sqfs pipes the merged tar stream into tar2sqfs
	// (squashfs-tools-ng): the default for xz, lz4 and lzo, which the builtin
	// writer lacks; it measured faster than mksquashfs -tar.
	PackerTar2sqfs = "tar2sqfs"
	// PackerMksquashfs pipes the merged tar stream into mksquashfs -tar
	// (squashfs-tools 4.5 or later).
	PackerMksquashfs = "mksquashfs"
	// PackerTree unpacks the layers into a directory under TmpDir and runs
	// mksquashfs on it: the slow path, used when neither tool reads a tar.
	PackerTree = "tree"
)

// ErrNoPacker is returned when no squashfs tool is installed.
var ErrNoPacker = errors.New("neither tar2sqfs nor mksquashfs found on PATH: install squashfs-tools-ng or squashfs-tools (apt-get install squashfs-tools-ng squashfs-tools)")

var mksquashfsVersion = regexp.MustCompile(`mksquashfs version (\d+)\.(\d+)`)

// mksquashfsReadsTar reports whether the mksquashfs at bin has -tar (4.5+).
func mksquashfsReadsTar(bin string) bool {
	out, _ := exec.Command(bin, "-version").CombinedOutput()
	m := mksquashfsVersion.FindSubmatch(out)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major > 4 || major == 4 && minor >= 5
}

// choosePacker returns the packer to use for c and its binary (none for
// the builtin one): want if given ("builtin", "tar2sqfs", "mksquashfs",
// "tree"), else the builtin writer where it has c's algorithm, else the
// first available of tar2sqfs, mksquashfs -tar and the tree path.
func choosePacker(want string, c Compression) (name, bin string, err error) {
	order := []string{PackerBuiltin, PackerTar2sqfs, PackerMksquashfs, PackerTree}
	if want != "" {
		order = []string{want}
	}
	for _, p := range order {
		switch p {
		case PackerBuiltin:
			if builtinAlgos[c.Algo] {
				return p, "", nil
			}
			if want != "" {
				return "", "", fmt.Errorf("the builtin squashfs packer has no %s: use gzip or zstd, or another packer", c.Algo)
			}
		case PackerTar2sqfs:
			if b, err := exec.LookPath("tar2sqfs"); err == nil {
				return p, b, nil
			}
		case PackerMksquashfs:
			if b, err := exec.LookPath("mksquashfs"); err == nil && mksquashfsReadsTar(b) {
				return p, b, nil
			}
		case PackerTree:
			if b, err := exec.LookPath("mksquashfs"); err == nil {
				return p, b, nil
			}
		default:
			return "", "", fmt.Errorf("unknown squashfs packer %q (use builtin, tar2sqfs, mksquashfs or tree)", want)
		}
	}
	if want != "" {
		return "", "", fmt.Errorf("squashfs packer %s is not available: %w", want, ErrNoPacker)
	}
	return "", "", ErrNoPacker
}

// packArgs are the arguments that make the packer read a tar on stdin and
// write the squashfs out, with fixed times and no xattrs.
func packArgs(packer, out string, c Compression, procs int, root *inode) []string {
	if packer == PackerTar2sqfs {
		args := []string{"--quiet", "--force", "--no-xattr", "--no-skip",
			"--num-jobs", strconv.Itoa(procs), "--defaults", "mtime=0"}
		return append(append(args, c.tar2sqfsArgs()...), out)
	}
	args := []string{"-", out, "-tar", "-noappend"}
	args = append(args, c.mksquashfsArgs()...)
	return append(args, "-processors", strconv.Itoa(procs),
		"-all-time", "0", "-mkfs-time", "0", "-no-xattrs", "-no-progress", "-quiet",
		"-root-mode", strconv.FormatInt(root.mode, 8),
		"-root-uid", strconv.Itoa(root.uid), "-root-gid", strconv.Itoa(root.gid))
}

// packStream runs the packer with the tar stream that write produces on its
// stdin. The packer dies with this process (PR_SET_PDEATHSIG) and with ctx.
func packStream(ctx context.Context, packer, bin string, args []string, write func(io.Writer) error) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", packer, err)
	}
	werr := write(stdin)
	if werr != nil && !isPipeErr(werr) {
		// The stream is not whole: the packer must not finish a squashfs of it.
		_ = cmd.Process.Kill()
	}
	cerr := stdin.Close()
	waitErr := cmd.Wait()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if werr != nil && !isPipeErr(werr) {
		return werr
	}
	if waitErr != nil {
		// The tool's own message: a broken pipe is only its consequence.
		return fmt.Errorf("%w: %s %s: %w: %s", errPacker, filepath.Base(bin), argsText(args), waitErr, tool.Tail(stderr.String(), 1000))
	}
	if werr != nil {
		return werr
	}
	if cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		return cerr
	}
	return nil
}

// errPacker marks a failure of the packer process itself.
var errPacker = errors.New("squashfs packer failed")

func isPipeErr(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}

func argsText(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a)
	}
	return b.String()
}
