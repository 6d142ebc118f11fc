package main

// The --config file and the --config-dir drop-ins, decoded as the kubelet decodes them
// (kubelet 1.32 and later): apimachinery's codec factory (a buffer whose first non-space byte
// is '{' goes to the JSON serializer, anything else through sigs.k8s.io/yaml), the group,
// version and kind read case-insensitively by encoding/json, a strict decode with
// sigs.k8s.io/json and on a strict error a lenient one (pkg/kubelet/kubeletconfig/util/codec),
// the drop-ins decoded strictly into an unstructured map and applied as RFC 7386 merge patches
// over the versioned configuration, then decoded with encoding/json
// (cmd/kubelet/app/server.go mergeKubeletConfigurations).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	jsonpatch "github.com/evanphx/json-patch"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	groupName = "kubelet.config.k8s.io"
	version   = "v1beta1"
	kind      = "KubeletConfiguration"
)

// isJSONBuffer is apimachinery's utilyaml.IsJSONBuffer.
func isJSONBuffer(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeftFunc(b, unicode.IsSpace), []byte("{"))
}

type gvk struct{ group, version, kind string }

// parseGroupVersion is schema.ParseGroupVersion.
func parseGroupVersion(gv string) (string, string, error) {
	if len(gv) == 0 || gv == "/" {
		return "", "", nil
	}
	switch strings.Count(gv, "/") {
	case 0:
		return "", gv, nil
	case 1:
		i := strings.Index(gv, "/")
		return gv[:i], gv[i+1:], nil
	default:
		return "", "", fmt.Errorf("unexpected GroupVersion string: %v", gv)
	}
}

// interpret is the serializer's SimpleMetaFactory.Interpret: encoding/json, case-insensitive.
func interpret(js []byte) (gvk, error) {
	var tm struct {
		APIVersion string `json:"apiVersion,omitempty"`
		Kind       string `json:"kind,omitempty"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return gvk{}, fmt.Errorf("couldn't get version/kind; json parse error: %v", err)
	}
	g, v, err := parseGroupVersion(tm.APIVersion)
	if err != nil {
		return gvk{}, err
	}
	return gvk{g, v, tm.Kind}, nil
}

// toJSON is what the recognizing decoder does before unmarshalling: the JSON serializer takes
// a '{' buffer as it is, the YAML serializer converts anything else.
func toJSON(data []byte) (js []byte, isYAML bool, err error) {
	if isJSONBuffer(data) {
		return data, false, nil
	}
	js, err = yaml.YAMLToJSON(data)
	return js, true, err
}

// decodeOnce is one UniversalDecoder().Decode(data, nil, nil) with a strict or a lenient
// serializer, for the registered KubeletConfiguration v1beta1 only.
func decodeOnce(data []byte, strict bool) (*KubeletConfiguration, []error, error) {
	js, isYAML, err := toJSON(data)
	if err != nil {
		return nil, nil, err
	}
	actual, err := interpret(js)
	if err != nil {
		return nil, nil, err
	}
	if actual.kind == "" {
		return nil, nil, errors.New("Object 'Kind' is missing")
	}
	if actual.version == "" {
		return nil, nil, errors.New("Object 'apiVersion' is missing")
	}
	if actual != (gvk{groupName, version, kind}) {
		return nil, nil, fmt.Errorf("no KubeletConfiguration for %s/%s %s", actual.group, actual.version, actual.kind)
	}
	kc := &KubeletConfiguration{}
	if !strict {
		return kc, nil, kjson.UnmarshalCaseSensitivePreserveInts(js, kc)
	}
	var strictErrs []error
	if isYAML {
		if _, err := yaml.YAMLToJSONStrict(data); err != nil {
			strictErrs = append(strictErrs, err)
		}
	}
	more, err := kjson.UnmarshalStrict(js, kc)
	if err != nil {
		return nil, nil, err
	}
	return kc, append(strictErrs, more...), nil
}

// decodeConfigFile is configfiles' Load with codec.DecodeKubeletConfiguration.
func decodeConfigFile(data []byte) (*KubeletConfiguration, error) {
	if len(data) == 0 {
		return nil, errors.New("kubelet config file was empty")
	}
	kc, strictErrs, err := decodeOnce(data, true)
	if err != nil {
		return nil, fmt.Errorf("failed to decode: %w", err)
	}
	if len(strictErrs) > 0 {
		lenient, _, lerr := decodeOnce(data, false)
		if lerr != nil {
			return nil, fmt.Errorf("failed lenient decoding: %v", strictErrs)
		}
		kc = lenient
	}
	setDefaults(kc)
	return kc, nil
}

// setDefaults sets what matters here of SetDefaults_KubeletConfiguration.
func setDefaults(kc *KubeletConfiguration) {
	if kc.MakeIPTablesUtilChains == nil {
		t := true
		kc.MakeIPTablesUtilChains = &t
	}
}

// decodeDropin is configfiles' LoadIntoJSON with codec.DecodeKubeletConfigurationIntoJSON and
// the group/version/kind check of mergeKubeletConfigurations.
func decodeDropin(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("kubelet config file was empty")
	}
	js, isYAML, err := toJSON(data)
	if err != nil {
		return nil, err
	}
	if _, err := interpret(js); err != nil {
		return nil, err
	}
	var strictErrs []error
	if isYAML {
		if _, err := yaml.YAMLToJSONStrict(data); err != nil {
			strictErrs = append(strictErrs, err)
		}
	}
	m := map[string]interface{}{}
	more, err := kjson.UnmarshalStrict(js, &m)
	if err != nil {
		return nil, err
	}
	strictErrs = append(strictErrs, more...)
	apiVersion, _ := m["apiVersion"].(string)
	k, _ := m["kind"].(string)
	if k == "" {
		return nil, errors.New("Object 'Kind' is missing")
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("strict decoding error: %v", strictErrs)
	}
	g, v, err := parseGroupVersion(apiVersion)
	if err != nil {
		g, v = "", ""
	}
	if (gvk{g, v, k}) != (gvk{groupName, version, kind}) {
		return nil, fmt.Errorf("unknown apiVersion/kind: %s/%s, Kind=%s", g, v, k)
	}
	return json.Marshal(m)
}

// mergeDropins is mergeKubeletConfigurations (1.32+): the versioned configuration as JSON,
// each *.conf in lexical walk order merged over it, then encoding/json and defaulting.
func mergeDropins(kc *KubeletConfiguration, dir string) (*KubeletConfiguration, error) {
	base, err := json.Marshal(kc)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || filepath.Ext(d.Name()) != ".conf" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		patch, err := decodeDropin(data)
		if err != nil {
			return fmt.Errorf("drop-in %s: %w", path, err)
		}
		merged, err := jsonpatch.MergePatch(base, patch)
		if err != nil {
			return fmt.Errorf("failed to merge drop-in and current config: %w", err)
		}
		base = merged
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to walk through kubelet dropin directory %q: %w", dir, err)
	}
	out := &KubeletConfiguration{}
	if err := json.Unmarshal(base, out); err != nil {
		return nil, fmt.Errorf("failed to unmarshal merged JSON into kubelet configuration: %w", err)
	}
	setDefaults(out)
	return out, nil
}
