package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LockOutput takes an advisory lock for writing path — an flock on
// path.lock, which holds the holder's PID — so that two sweeps never write
// one file. A second taker gets an error naming the holder. The lock goes
// with the process; the returned function releases it earlier.
func LockOutput(path string) (func(), error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot lock %s: %v", path, cause(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := strings.TrimSpace(string(b))
			if _, perr := strconv.Atoi(holder); perr != nil {
				holder = "unknown"
			}
			return nil, fmt.Errorf("%s is being written by another mmubench (pid %s; its lock is %s)", path, holder, name)
		}
		return nil, fmt.Errorf("cannot lock %s: %v", path, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return func() {
		os.Remove(name)
		f.Close()
	}, nil
}
