// kubelet-ref: the reference for kubelet-drift's differential harness (tests/fidelity.rs).
//
// It decides makeIPTablesUtilChains for a command line, a --config file and a --config-dir the
// way cmd/kubelet/app does (kubelet 1.32 and later), with the libraries the kubelet itself
// uses: spf13/pflag, sigs.k8s.io/yaml on gopkg.in/yaml.v2, sigs.k8s.io/json and
// evanphx/json-patch. One case per line on stdin, one verdict per line on stdout:
//
//	{"root":"/tmp/x","cwd":"/","args":["--config","/c.yaml"]}
//	{"status":"pass"|"fail"|"error","effective":true|false|null,"reason":"..."}
//
// Paths in args are inside root (the kubelet's filesystem), relative ones against cwd.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

type request struct {
	Root string   `json:"root"`
	Cwd  string   `json:"cwd"`
	Args []string `json:"args"`
}

type verdict struct {
	Status    string `json:"status"`
	Effective *bool  `json:"effective"`
	Reason    string `json:"reason"`
}

func inRoot(req request, p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(req.Cwd, p)
	}
	return filepath.Join(req.Root, filepath.Clean(p))
}

// evaluate is NewKubeletCommand's RunE up to the effective configuration.
func evaluate(req request) (bool, error) {
	p, err := parseFlags(req.Args)
	if err != nil {
		return false, err
	}
	value := *p.mic
	config, configDir := *p.config, *p.configDir
	kc := &KubeletConfiguration{MakeIPTablesUtilChains: &value}
	if config != "" {
		data, err := os.ReadFile(inRoot(req, config))
		if err != nil {
			return false, fmt.Errorf("failed to load kubelet config file: %w", err)
		}
		kc, err = decodeConfigFile(data)
		if err != nil {
			return false, fmt.Errorf("failed to load kubelet config file: %w", err)
		}
		kc.TypeMeta = TypeMeta{}
	}
	if configDir != "" {
		kc, err = mergeDropins(kc, inRoot(req, configDir))
		if err != nil {
			return false, fmt.Errorf("failed to merge kubelet configs: %w", err)
		}
	}
	value = *kc.MakeIPTablesUtilChains
	if config != "" || configDir != "" {
		return reparse(req.Args, value)
	}
	return value, nil
}

func decide(line []byte) (v verdict) {
	defer func() {
		if r := recover(); r != nil {
			v = verdict{Status: "error", Reason: fmt.Sprintf("reference panic: %v", r)}
		}
	}()
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return verdict{Status: "error", Reason: "bad request: " + err.Error()}
	}
	if req.Cwd == "" {
		req.Cwd = "/"
	}
	b, err := evaluate(req)
	if err != nil {
		return verdict{Status: "error", Reason: err.Error()}
	}
	status := "fail"
	if b {
		status = "pass"
	}
	return verdict{Status: status, Effective: &b}
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			if err := enc.Encode(decide(line)); err != nil {
				os.Exit(1)
			}
			out.Flush()
		}
		if err != nil {
			return
		}
	}
}
