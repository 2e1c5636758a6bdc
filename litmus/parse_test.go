package litmus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// mini is a well-formed one-thread test to mutate.
const mini = `AArch64 mini
{
 0:X2=x;
}
 P0              ;
 L0: LDR W1,[X2] ;
exists (0:X1=0)
`

// TestSyntaxErrors: a malformed test is a *SyntaxError naming its line.
func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		msg       string
	}{
		{"empty", "\n\n", 1, "empty test"},
		{"header", "AArch64\n{\n}\n", 1, `want "AArch64 NAME"`},
		{"metadata", "AArch64 t\nhello world\n{\n}\n", 2, "want KEY=VALUE"},
		{"no init", "AArch64 t\nVariant=vmsa\n", 2, "no initial state"},
		{"comment", "AArch64 t\n{\n(* never closed\n}\n", 3, "unterminated comment"},
		{"init not closed", "AArch64 t\n{\n 0:X1=1;\n", 3, "not closed by }"},
		{"init register", strings.Replace(mini, "0:X2=x", "0:Q2=x", 1), 3, `"Q2" is not a register`},
		{"init field", strings.Replace(mini, "0:X2=x;", "0:X2=x; pte_x=(af:2);", 1), 3, "af:2 is not 0 or 1"},
		{"init oa", strings.Replace(mini, "0:X2=x;", "0:X2=x;\n 0:X3=(af:0);", 1), 4, "needs oa:"},
		{"init number", strings.Replace(mini, "0:X2=x", "0:X2=12z", 1), 3, `"12z" is not a number`},
		{"init thread", strings.Replace(mini, "0:X2=x;", "0:X2=x;\n 1:X2=x;", 1), 4, "register of thread 1"},
		{"thread header", strings.Replace(mini, " P0 ", " P1 ", 1), 5, "thread header"},
		{"row end", strings.Replace(mini, "[X2] ;", "[X2]", 1), 6, "does not end with ;"},
		{"columns", strings.Replace(mini, "[X2] ;", "[X2] | NOP ;", 1), 6, "row has 2 columns"},
		{"bracket", strings.Replace(mini, "[X2] ;", "[X2 ;", 1), 6, "unbalanced ["},
		{"operands", strings.Replace(mini, "LDR W1,[X2]", "MOV X1", 1), 6, "MOV takes 2 operands"},
		{"memory operand", strings.Replace(mini, "[X2]", "X2", 1), 6, "not a memory operand"},
		{"label", strings.Replace(mini, "LDR W1,[X2]", "CBZ W1,L7", 1), 6, "P0 has no label L7"},
		{"label twice", strings.Replace(mini, "L0: LDR", "L0: L0: LDR", 1), 6, "label L0 defined twice"},
		{"barrier", strings.Replace(mini, "LDR W1,[X2]", "DMB FOO", 1), 6, `unknown DMB option "FOO"`},
		{"tlbi operand", strings.Replace(mini, "LDR W1,[X2]", "TLBI VAE1IS", 1), 6, "needs a register operand"},
		{"tlbi extra", strings.Replace(mini, "LDR W1,[X2]", "TLBI VMALLE1IS,X1", 1), 6, "takes no register operand"},
		{"condition code", strings.Replace(mini, "LDR W1,[X2]", "B.XY L0", 1), 6, `unknown condition "XY"`},
		{"no condition", strings.Replace(mini, "exists (0:X1=0)\n", "", 1), 6, "no final condition"},
		{"quantifier", strings.Replace(mini, "exists", "maybe", 1), 7, "does not end with ;"},
		{"value", strings.Replace(mini, "0:X1=0)", "0:X1=)", 1), 7, "missing value"},
		{"paren", strings.Replace(mini, "exists (0:X1=0)", "exists ((0:X1=0)", 1), 7, `want ")"`},
		{"trailing", strings.Replace(mini, "exists (0:X1=0)", "exists (0:X1=0) junk", 1), 7, `unexpected "junk"`},
		{"fault label", strings.Replace(mini, "0:X1=0", "fault(P0:L9,x)", 1), 7, "P0 has no label L9"},
		{"fault thread", strings.Replace(mini, "0:X1=0", "fault(Q,x)", 1), 7, "wants a thread"},
		{"condition thread", strings.Replace(mini, "0:X1=0", "3:X1=0", 1), 7, "names thread 3 of 1"},
		{"locations", strings.Replace(mini, "exists", "locations [x;\nexists", 1), 8, "is not a location"},
		{"locations end", strings.Replace(mini, "exists (0:X1=0)", "locations [x;", 1), 7, "not closed by ]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.litmus", []byte(tc.src))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a syntax error", err)
			}
			want := fmt.Sprintf("t.litmus:%d: ", tc.line)
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("got %q, want %s…%s", err, want, tc.msg)
			}
		})
	}
}

// TestUnsupported: what the runner does not model is reported, not run,
// whether the parser sees it or the exploration meets it.
func TestUnsupported(t *testing.T) {
	mp := func(p0 string) string {
		return "AArch64 u\n{\n 0:X0=pte_x; 0:X2=x; 0:X1=1024;\n}\n P0 ;\n " + p0 + " ;\nexists (0:X1=0)\n"
	}
	for _, tc := range []struct {
		name, src, what string
	}{
		{"CAS", mp("CAS W0,W1,[X2]"), "instruction CAS (P0, line 6)"},
		{"TLBI", mp("TLBI ALLE1IS"), "TLBI ALLE1IS"},
		{"DSB NSH", mp("DSB NSH"), "non-shareable"},
		{"post-index", mp("LDR X1,[X2],#8"), "post-indexed"},
		{"shifted", mp("ADD X1,X2,X3,LSL #2"), "shifted or extended operand"},
		{"stack pointer", mp("LDR X1,[SP]"), "stack pointer"},
		{"af:0", strings.Replace(mp("LDR W5,[X2]"), "0:X1=1024;", "pte_x=(af:0);", 1), "af:0 without TTHM=HA"},
		{"dbm", strings.Replace(mp("STR W1,[X2]"), "{", "TTHM=HA\n{\n pte_x=(db:0, dbm:1);", 1), "without TTHM=HD"},
		{"variant", strings.Replace(mp("NOP"), "{", "Variant=mixed\n{", 1), "Variant=mixed"},
		{"TTHM", strings.Replace(mp("NOP"), "{", "TTHM=P0:HD\n{", 1), "TTHM=P0:HD"},
		{"arch", strings.Replace(mp("NOP"), "AArch64", "X86", 1), "architecture X86"},
		{"el0", strings.Replace(mp("NOP"), "0:X1=1024;", "pte_x=(el0:0);", 1), "el0:0"},
		{"field", strings.Replace(mp("NOP"), "0:X1=1024;", "pte_x=(nG:0);", 1), "descriptor field nG"},
		{"filter", strings.Replace(mp("NOP"), "exists", "filter (0:X1=1)\nexists", 1), "filter"},
		{"fault kind", strings.Replace(mp("NOP"), "0:X1=0", "fault(P0,x,MMU:AccessFlag)", 1), "fault kind MMU:AccessFlag"},
		// Met only during the exploration:
		{"unaligned", mp("LDR W5,[X2,#4]"), "not 8-byte aligned"},
		{"kernel address", mp("LDR X5,[X0,#16]"), "no location's descriptor"},
		{"32-bit descriptor", mp("LDR W5,[X0]"), "32-bit access to a descriptor"},
		{"software AF", mp("STCLR X1,[X0] ;\n LDR W5,[X2]"), "af:0 without TTHM=HA"},
		{"unnamed descriptor", strings.Replace(mp("STR X1,[X0,#8]"), "x;", "x; 0:X3=y;", 1), "descriptor of y, whose address the initial state never names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt, err := Parse("u.litmus", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Run(tt, DefaultOptions())
			var ue *UnsupportedError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want Unsupported", err)
			}
			if !strings.Contains(ue.What, tc.what) || !strings.HasPrefix(ue.Error(), "Unsupported u: ") {
				t.Errorf("got %q, want %q", ue.Error(), tc.what)
			}
		})
	}
}

// TestSoftwareManagementUnused: descriptors that herd7 would manage in
// software are fine as long as no access needs the hardware to update
// them (as in herd7's STRdb0dbm1, which only stores such a descriptor).
func TestSoftwareManagementUnused(t *testing.T) {
	src := "AArch64 s\n{\n pte_x=(af:0); pte_y=(db:1, dbm:1);\n 0:X0=pte_y; 0:X1=(oa:phy_y, db:0, dbm:1);\n}\n P0 ;\n STR X1,[X0] ;\nforall ([PTE(y)]=(oa:PA(y), db:0, dbm:1))\n"
	tt, err := Parse("s.litmus", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(tt, DefaultOptions())
	if err != nil || r.Verdict() != Required {
		t.Errorf("%v %+v", err, r)
	}
}

// TestParse checks what the parser makes of the forms herd7 tests use.
func TestParse(t *testing.T) {
	src := `AArch64 forms
Variant=vmsa,Handled
TTHM=HD
"a doc string"
Hash=0123
{
 int x=0; uint64_t y;
 [PTE(z)]=(oa:PA(y), valid:0, dbm:1, db:0);
 pteval_t 0:X1=0;
 0:X2=PTE(x); 0:X3=x; 1:W4=-1;
 0:X5=(oa:phy_z, af:0); 1:X6=0x10
}
 P0                 | P1            ;
 L0: LDR X1,[X2]    | L1:           ;
 SWPAL X5,X7,[X2]   | B.NE L1       ;
 STSETL X5,[X2]     | CSET W8,GE    ;
exists (0:X1=(oa:PA(x)) /\ [PTE(z)]=(oa:PA(y), db:0, dbm:1, valid:0) \/ ~fault(P1:L1,z,MMU:Permission) => 1:X4=4294967295)
`
	tt, err := Parse("forms.litmus", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if tt.Unsupported != "" || !tt.Handled || !tt.HD || !tt.HA || tt.Name != "forms" {
		t.Errorf("header: %+v", tt)
	}
	if got := strings.Join(tt.Locs, ","); got != "x,y,z" {
		t.Errorf("locations %s", got)
	}
	if v := tt.InitPTE[2]; v.OA != 1 || v.Valid || !v.DBM || v.DB || !v.AF {
		t.Errorf("PTE(z) %+v", v)
	}
	p0, p1 := tt.Threads[0], tt.Threads[1]
	if len(p0.Instrs) != 3 || len(p1.Instrs) != 2 || p1.Labels["L1"] != 0 || p1.Instrs[0].target != 0 {
		t.Errorf("program: %+v %+v", p0, p1)
	}
	if v := p1.Init[4]; v.N != 1<<64-1 {
		t.Errorf("1:W4 = %#x", v.N)
	}
	if v := p1.Init[6]; v.N != 16 {
		t.Errorf("1:X6 = %d", v.N)
	}
	if v := p0.Init[5]; v.Kind != VPTE || v.PTE.AF || v.PTE.OA != 2 {
		t.Errorf("0:X5 = %+v", v)
	}
	if !tt.PTETyped[Loc{Kind: LReg, Thread: 0, Reg: 1}] {
		t.Error("pteval_t 0:X1 not typed")
	}
	// herd7 parenthesises a disjunction under an implication.
	const want = `exists ((0:X1=(oa:PA(x)) /\ [PTE(z)]=(oa:PA(y), db:0, dbm:1, valid:0) \/ not (fault(P1:L1,z,MMU:Permission))) => 1:X4=4294967295)`
	if got := tt.condString(); got != want {
		t.Errorf("condition\n%s\nwant\n%s", got, want)
	}
}

// TestInstructions runs small programs through the interpreter and checks
// the registers they leave.
func TestInstructions(t *testing.T) {
	for _, tc := range []struct {
		name, prog, cond string
	}{
		{"alu", "MOV X1,#5 ; ADD X2,X1,#3 ; SUB X3,X1,X2 ; EOR X4,X2,X1 ; AND X5,X2,#12 ; ORR X6,X1,#2",
			"0:X2=8 /\\ 0:X3=-3 /\\ 0:X4=13 /\\ 0:X5=8 /\\ 0:X6=7"},
		{"shifts", "MOV X1,#-16 ; LSL X2,X1,#2 ; LSR W3,W1,#28 ; ASR X4,X1,#2 ; ASR W5,W1,#4",
			"0:X2=-64 /\\ 0:X3=15 /\\ 0:X4=-4 /\\ 0:X5=4294967295"},
		{"w regs", "MOV X1,#-1 ; ADD W2,W1,#1 ; MOV W3,W1", "0:X2=0 /\\ 0:X3=4294967295"},
		{"flags", "MOV X1,#3 ; CMP X1,#5 ; CSET X2,LT ; CSET X3,HS ; CMP X1,#3 ; CSET X4,EQ ; CSET X5,GT",
			"0:X2=1 /\\ 0:X3=0 /\\ 0:X4=1 /\\ 0:X5=0"},
		{"branches", "MOV X1,#0 ; CBNZ X1,L9 ; MOV X2,#1 ; CBZ X1,L8 ; MOV X2,#7 ; L8: CMP X2,#1 ; B.EQ L9 ; MOV X2,#9 ; L9: NOP",
			"0:X2=1"},
		{"loop", "MOV X1,#0 ; L1: ADD X1,X1,#1 ; CMP X1,#4 ; B.NE L1", "0:X1=4"},
		{"memory", "MOV X1,#6 ; STR X1,[X8] ; LDR X2,[X8,XZR] ; LDADD X1,X3,[X8] ; LDR X4,[X8] ; STEOR X1,[X8] ; LDR X5,[X8,#0]",
			"0:X2=6 /\\ 0:X3=6 /\\ 0:X4=12 /\\ 0:X5=10"},
		{"offset", "MOV X1,#3 ; MOV X7,#8 ; STR X1,[X8,X7] ; LDR X2,[X8,#8] ; LDR X3,[X8]", "0:X2=3 /\\ 0:X3=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rows []string
			for _, in := range strings.Split(tc.prog, " ; ") {
				rows = append(rows, " "+in+" ;")
			}
			src := "AArch64 i\n{ 0:X8=x; }\n P0 ;\n" + strings.Join(rows, "\n") + "\nforall (" + tc.cond + ")\n"
			tt, err := Parse("i.litmus", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Run(tt, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict() != Required {
				t.Errorf("%s: states %v", tc.cond, r.States)
			}
		})
	}
}
