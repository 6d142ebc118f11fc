package main

// The kubelet's command line through spf13/pflag, as cmd/kubelet/app/server.go sets it up: one
// flag set with WordSepNormalizeFunc (`_` -> `-`), every flag with its own value type (a
// non-bool flag takes the next argument, and that value must parse for its type), `--help`/`-h`
// and klog's `--v`/`-v`; positional arguments refused. The second parse on top of the files
// (kubeletConfigFlagPrecedence) uses a set without `--help` in which the global flags are
// no-op values (newFakeFlagSet: no NoOptDefVal, so even a bool global takes the next argument).

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

type flagDef struct {
	name   string
	typ    string
	global bool
}

// normalize is cliflag.WordSepNormalizeFunc.
func normalize(f *pflag.FlagSet, name string) pflag.NormalizedName {
	if strings.Contains(name, "_") {
		return pflag.NormalizedName(strings.Replace(name, "_", "-", -1))
	}
	return pflag.NormalizedName(name)
}

// funcValue is a pflag.Value whose Set is a parse check.
type funcValue struct {
	typ string
	set func(string) error
	val string
}

func (v *funcValue) String() string { return v.val }
func (v *funcValue) Type() string   { return v.typ }
func (v *funcValue) Set(s string) error {
	if err := v.set(s); err != nil {
		return err
	}
	v.val = s
	return nil
}

// noOp is cliflag.NoOp.
type noOp struct{}

func (noOp) String() string   { return "" }
func (noOp) Set(string) error { return nil }
func (noOp) Type() string     { return "NoOp" }

func pairs(sep, what string, noSplit bool) func(string) error {
	return func(value string) error {
		items := strings.Split(value, ",")
		if noSplit {
			items = []string{value}
		}
		for _, s := range items {
			if len(s) == 0 && !noSplit {
				continue
			}
			if len(strings.SplitN(s, sep, 2)) != 2 {
				return fmt.Errorf("malformed pair, expect %s", what)
			}
		}
		return nil
	}
}

func mapStringBool(value string) error {
	for _, s := range strings.Split(value, ",") {
		if len(s) == 0 {
			continue
		}
		arr := strings.SplitN(s, "=", 2)
		if len(arr) != 2 {
			return fmt.Errorf("malformed pair, expect string=bool")
		}
		if _, err := strconv.ParseBool(strings.TrimSpace(arr[1])); err != nil {
			return fmt.Errorf("invalid value of %s: %s, err: %v", strings.TrimSpace(arr[0]), arr[1], err)
		}
	}
	return nil
}

// verbosity is logsapi's VerbosityLevel flag (limited to int32 for klog).
func verbosity(value string) error {
	_, err := strconv.ParseUint(value, 10, 31)
	return err
}

// vmodule is logsapi's VModuleConfiguration flag.
func vmodule(value string) error {
	for _, pat := range strings.Split(value, ",") {
		if len(pat) == 0 {
			continue
		}
		patLev := strings.Split(pat, "=")
		if len(patLev) != 2 || len(patLev[0]) == 0 || len(patLev[1]) == 0 {
			return fmt.Errorf("%q does not have the pattern=N format", pat)
		}
		if _, err := strconv.ParseUint(patLev[1], 10, 31); err != nil {
			return fmt.Errorf("parsing verbosity in %q: %v", pat, err)
		}
	}
	return nil
}

// ipVar is the kubelet's utilflag.IPVar.
func ipVar(value string) error {
	if value == "" {
		return nil
	}
	if net.ParseIP(value) == nil {
		return fmt.Errorf("%q is not a valid IP address", value)
	}
	return nil
}

func quantity(value string) error {
	if !quantityRe.MatchString(value) {
		return fmt.Errorf("quantities must match the regular expression '%s'", quantityRe)
	}
	return nil
}

// versionFlag is verflag's --version: bool-like, or "raw".
func versionFlag(value string) error {
	if value == "raw" {
		return nil
	}
	_, err := strconv.ParseBool(value)
	return err
}

// parsedFlags is what a parse leaves that matters here.
type parsedFlags struct {
	set          *pflag.FlagSet
	mic          *bool
	config       *string
	configDir    *string
	help         *bool
	versionValue *funcValue
}

func newFlagSet(second bool) *parsedFlags {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(normalize)
	p := &parsedFlags{set: fs}
	for _, d := range flagTable {
		if d.name == "help" {
			if !second {
				p.help = fs.BoolP("help", "h", false, "")
			}
			continue
		}
		if second && d.global {
			fs.Var(noOp{}, d.name, "")
			continue
		}
		switch d.typ {
		case "bool":
			b := fs.Bool(d.name, d.name == "make-iptables-util-chains", "")
			if d.name == "make-iptables-util-chains" {
				p.mic = b
			}
		case "string":
			s := fs.String(d.name, "", "")
			switch d.name {
			case "config":
				p.config = s
			case "config-dir":
				p.configDir = s
			}
		case "int32":
			fs.Int32(d.name, 0, "")
		case "int64":
			fs.Int64(d.name, 0, "")
		case "int":
			fs.Int(d.name, 0, "")
		case "duration":
			fs.Duration(d.name, 0, "")
		case "stringSlice":
			fs.StringSlice(d.name, nil, "")
		case "version":
			v := &funcValue{typ: "version", set: versionFlag, val: "false"}
			fs.Var(v, d.name, "")
			fs.Lookup(d.name).NoOptDefVal = "true"
			p.versionValue = v
		case "verbosity":
			fs.VarP(&funcValue{typ: "Level", set: verbosity}, d.name, "v", "")
		default:
			check := map[string]func(string) error{
				"ip":                     ipVar,
				"mapStringString":        pairs("=", "string=string", false),
				"mapStringStringNoSplit": pairs("=", "string=string", true),
				// cliflag.ConfigurationMap (--node-labels): a key without "=" is a key with an
				// empty value; its Set never fails.
				"configurationMap": func(string) error { return nil },
				"mapStringBool":          mapStringBool,
				"langleMap":              pairs("<", "string<string", false),
				"colonMultimap":          pairs(":", "string:string", false),
				"quantity":               quantity,
				"vmodule":                vmodule,
			}[d.typ]
			if check == nil {
				panic("no type " + d.typ + " for " + d.name)
			}
			fs.Var(&funcValue{typ: d.typ, set: check}, d.name, "")
		}
	}
	return p
}

// parseFlags is the first parse with its checks, in the kubelet's order.
func parseFlags(args []string) (*parsedFlags, error) {
	p := newFlagSet(false)
	if err := p.set.Parse(args); err != nil {
		return nil, fmt.Errorf("failed to parse kubelet flag: %w", err)
	}
	if rest := p.set.Args(); len(rest) > 0 {
		return nil, fmt.Errorf("unknown command %+s", rest[0])
	}
	if *p.help {
		return nil, fmt.Errorf("--help: the kubelet prints its usage and exits")
	}
	if v := p.versionValue.val; v == "raw" || v == "true" || func() bool { b, _ := strconv.ParseBool(v); return b }() {
		return nil, fmt.Errorf("--version: the kubelet prints its version and exits")
	}
	return p, nil
}

// reparse is kubeletConfigFlagPrecedence: the same argv again, over the files' value.
func reparse(args []string, fromFiles bool) (bool, error) {
	p := newFlagSet(true)
	*p.mic = fromFiles
	if err := p.set.Parse(args); err != nil {
		return false, fmt.Errorf("failed to precedence kubeletConfigFlag: %w", err)
	}
	return *p.mic, nil
}
