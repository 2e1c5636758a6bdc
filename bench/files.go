package bench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// AtomicWrite writes path whole or not at all: to a temporary file in the
// same directory, then a rename. Its errors name path, not the temporary.
func AtomicWrite(path string, write func(w io.Writer) error) error {
	if err := CheckWritable(path); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".mmubench-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %v", path, cause(err))
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %v", path, cause(err))
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // CreateTemp makes it 0600
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return nil
}

// CheckWritable tells, before any work is done, whether path can be
// written: a name, not a directory, in a directory that exists and takes
// new files.
func CheckWritable(path string) error {
	if path == "" {
		return errors.New("an empty output path")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot write %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("cannot write %s: %v", path, cause(err))
	case !fi.IsDir():
		return fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	}
	f, err := os.CreateTemp(dir, ".mmubench-check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %v", path, cause(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// cause is the system's reason inside a path error, without the path.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
