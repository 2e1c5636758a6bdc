package litmus

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Expand turns the command line's arguments into test files: a file as
// is, a directory's *.litmus files (sorted; not its subdirectories), and a
// herd7 index file (a name starting with @) as the files it lists, one a
// line, relative to its directory.
func Expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case st.IsDir():
			m, err := filepath.Glob(filepath.Join(p, "*.litmus"))
			if err != nil {
				return nil, err
			}
			sort.Strings(m)
			out = append(out, m...)
		case strings.HasPrefix(filepath.Base(p), "@"):
			list, err := readIndex(p)
			if err != nil {
				return nil, err
			}
			out = append(out, list...)
		default:
			out = append(out, p)
		}
	}
	return out, nil
}

func readIndex(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(path), l)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// Outcome is what running one file gave: a result, or why the test was
// skipped.
type Outcome struct {
	File        string
	Name        string
	Result      *Result // nil if unsupported
	Unsupported string
}

// RunFiles parses every file first — a file that cannot be read or parsed
// is an error (a *SyntaxError names its line) and nothing runs — then
// explores each test and writes its result in herd7's shape to w, or
// "Unsupported NAME: what" for a test it skips.
func RunFiles(files []string, opt Options, timing bool, w io.Writer) ([]Outcome, error) {
	tests := make([]*Test, len(files))
	for i, f := range files {
		t, err := ParseFile(f)
		if err != nil {
			return nil, err
		}
		tests[i] = t
	}
	var out []Outcome
	for i, t := range tests {
		r, err := Run(t, opt)
		var ue *UnsupportedError
		switch {
		case errors.As(err, &ue):
			out = append(out, Outcome{File: files[i], Name: t.Name, Unsupported: ue.What})
			if _, err := fmt.Fprintln(w, ue.Error()); err != nil {
				return out, err
			}
			continue
		case err != nil:
			return out, fmt.Errorf("%s: %w", files[i], err)
		}
		out = append(out, Outcome{File: files[i], Name: t.Name, Result: r})
		if err := r.Write(w, timing); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ReadKinds reads a herd7 kinds file: "NAME Allowed|Forbidden|Required" a
// line (blank lines and # comments skipped).
func ReadKinds(path string) (map[string]Kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kinds := map[string]Kind{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fs := strings.Fields(l)
		if len(fs) != 2 {
			return nil, &SyntaxError{File: path, Line: line, Msg: "want NAME KIND"}
		}
		k, ok := ParseKind(fs[1])
		if !ok {
			return nil, &SyntaxError{File: path, Line: line, Msg: fmt.Sprintf("%q is not Allowed, Forbidden or Required", fs[1])}
		}
		if _, dup := kinds[fs[0]]; dup {
			return nil, &SyntaxError{File: path, Line: line, Msg: fmt.Sprintf("%s listed twice", fs[0])}
		}
		kinds[fs[0]] = k
	}
	return kinds, sc.Err()
}
