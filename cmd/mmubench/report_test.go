package main

import (
	"bytes"
	"testing"
)

func TestReportShow(t *testing.T) {
	var out, errb bytes.Buffer
	err := cmdReport([]string{"../../bench/testdata/report.csv", "--plot", "/tmp/rtry/x.svg"}, &out, &errb)
	t.Logf("err=%v\n%s\n%s", err, out.String(), errb.String())
	out.Reset()
	err = cmdReport([]string{"../../bench/testdata/report.csv", "--by", "policy", "--plot", "/tmp/rtry/x.png"}, &out, &errb)
	t.Logf("err=%v\n%s\n%s", err, out.String(), errb.String())
}
