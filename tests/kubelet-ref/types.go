package main

// The kubelet.config.k8s.io/v1beta1 KubeletConfiguration, field by field, written from reading
// the kubelet's API (staging/src/k8s.io/kubelet/config/v1beta1/types.go and the
// component-base logging and tracing types it embeds). Only names, JSON tags and Go types
// matter here: they decide which keys are unknown (strict decoding) and which values are type
// errors (fatal), exactly as the kubelet's decoder sees them. Comments and validation are not
// reproduced; the harness only generates values the kubelet's validation accepts.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

type TypeMeta struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

// Duration is metav1.Duration: a JSON string parsed by time.ParseDuration. JSON null reaches
// UnmarshalJSON (the field is not a pointer) and "" is not a duration: an error, as upstream.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	pd, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = pd
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// TimeOrMetaDuration is the logging flushFrequency: a duration string or a number of ns.
type TimeOrMetaDuration struct{ Duration }

func (t *TimeOrMetaDuration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return t.Duration.UnmarshalJSON(b)
	}
	if err := json.Unmarshal(b, &t.Duration.Duration); err != nil {
		return fmt.Errorf("invalid duration %q: %w", string(b), err)
	}
	return nil
}

func (t TimeOrMetaDuration) MarshalJSON() ([]byte, error) { return t.Duration.MarshalJSON() }

// Time is metav1.Time: null or an RFC 3339 string.
type Time struct{ time.Time }

func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	pt, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return err
	}
	t.Time = pt.Local()
	return nil
}

func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// Quantity is resource.Quantity: null, a quoted or an unquoted quantity.
type Quantity struct{ s string }

var quantityRe = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$`)

func (q *Quantity) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		q.s = ""
		return nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if !quantityRe.MatchString(s) {
		return fmt.Errorf("quantities must match the regular expression '%s'", quantityRe)
	}
	q.s = s
	return nil
}

func (q Quantity) MarshalJSON() ([]byte, error) {
	if q.s == "" {
		return json.Marshal("0")
	}
	return json.Marshal(q.s)
}

type KubeletConfiguration struct {
	TypeMeta `json:""`

	EnableServer                              *bool                              `json:"enableServer,omitempty"`
	StaticPodPath                             string                             `json:"staticPodPath,omitempty"`
	PodLogsDir                                string                             `json:"podLogsDir,omitempty"`
	SyncFrequency                             Duration                           `json:"syncFrequency,omitempty"`
	FileCheckFrequency                        Duration                           `json:"fileCheckFrequency,omitempty"`
	HTTPCheckFrequency                        Duration                           `json:"httpCheckFrequency,omitempty"`
	StaticPodURL                              string                             `json:"staticPodURL,omitempty"`
	StaticPodURLHeader                        map[string][]string                `json:"staticPodURLHeader,omitempty"`
	Address                                   string                             `json:"address,omitempty"`
	Port                                      int32                              `json:"port,omitempty"`
	ReadOnlyPort                              int32                              `json:"readOnlyPort,omitempty"`
	TLSCertFile                               string                             `json:"tlsCertFile,omitempty"`
	TLSPrivateKeyFile                         string                             `json:"tlsPrivateKeyFile,omitempty"`
	TLSCipherSuites                           []string                           `json:"tlsCipherSuites,omitempty"`
	TLSCurvePreferences                       []int32                            `json:"tlsCurvePreferences,omitempty"`
	TLSMinVersion                             string                             `json:"tlsMinVersion,omitempty"`
	RotateCertificates                        bool                               `json:"rotateCertificates,omitempty"`
	ServerTLSBootstrap                        bool                               `json:"serverTLSBootstrap,omitempty"`
	Authentication                            KubeletAuthentication              `json:"authentication"`
	Authorization                             KubeletAuthorization               `json:"authorization"`
	RegistryPullQPS                           *int32                             `json:"registryPullQPS,omitempty"`
	RegistryBurst                             int32                              `json:"registryBurst,omitempty"`
	ImagePullCredentialsVerificationPolicy    string                             `json:"imagePullCredentialsVerificationPolicy,omitempty"`
	PreloadedImagesVerificationAllowlist      []string                           `json:"preloadedImagesVerificationAllowlist,omitempty"`
	EventRecordQPS                            *int32                             `json:"eventRecordQPS,omitempty"`
	EventBurst                                int32                              `json:"eventBurst,omitempty"`
	EnableDebuggingHandlers                   *bool                              `json:"enableDebuggingHandlers,omitempty"`
	EnableContentionProfiling                 bool                               `json:"enableContentionProfiling,omitempty"`
	HealthzPort                               *int32                             `json:"healthzPort,omitempty"`
	HealthzBindAddress                        string                             `json:"healthzBindAddress,omitempty"`
	OOMScoreAdj                               *int32                             `json:"oomScoreAdj,omitempty"`
	ClusterDomain                             string                             `json:"clusterDomain,omitempty"`
	ClusterDNS                                []string                           `json:"clusterDNS,omitempty"`
	StreamingConnectionIdleTimeout            Duration                           `json:"streamingConnectionIdleTimeout,omitempty"`
	NodeStatusUpdateFrequency                 Duration                           `json:"nodeStatusUpdateFrequency,omitempty"`
	NodeStatusReportFrequency                 Duration                           `json:"nodeStatusReportFrequency,omitempty"`
	NodeLeaseDurationSeconds                  int32                              `json:"nodeLeaseDurationSeconds,omitempty"`
	ImageMinimumGCAge                         Duration                           `json:"imageMinimumGCAge,omitempty"`
	ImageMaximumGCAge                         Duration                           `json:"imageMaximumGCAge,omitempty"`
	ImageGCHighThresholdPercent               *int32                             `json:"imageGCHighThresholdPercent,omitempty"`
	ImageGCLowThresholdPercent                *int32                             `json:"imageGCLowThresholdPercent,omitempty"`
	VolumeStatsAggPeriod                      Duration                           `json:"volumeStatsAggPeriod,omitempty"`
	KubeletCgroups                            string                             `json:"kubeletCgroups,omitempty"`
	SystemCgroups                             string                             `json:"systemCgroups,omitempty"`
	CgroupRoot                                string                             `json:"cgroupRoot,omitempty"`
	CgroupsPerQOS                             *bool                              `json:"cgroupsPerQOS,omitempty"`
	CgroupDriver                              string                             `json:"cgroupDriver,omitempty"`
	CPUManagerPolicy                          string                             `json:"cpuManagerPolicy,omitempty"`
	SingleProcessOOMKill                      *bool                              `json:"singleProcessOOMKill,omitempty"`
	CPUManagerPolicyOptions                   map[string]string                  `json:"cpuManagerPolicyOptions,omitempty"`
	CPUManagerReconcilePeriod                 Duration                           `json:"cpuManagerReconcilePeriod,omitempty"`
	DRAManagerReconcilePeriod                 Duration                           `json:"draManagerReconcilePeriod,omitempty"`
	MemoryManagerPolicy                       string                             `json:"memoryManagerPolicy,omitempty"`
	TopologyManagerPolicy                     string                             `json:"topologyManagerPolicy,omitempty"`
	TopologyManagerScope                      string                             `json:"topologyManagerScope,omitempty"`
	TopologyManagerPolicyOptions              map[string]string                  `json:"topologyManagerPolicyOptions,omitempty"`
	QOSReserved                               map[string]string                  `json:"qosReserved,omitempty"`
	RuntimeRequestTimeout                     Duration                           `json:"runtimeRequestTimeout,omitempty"`
	HairpinMode                               string                             `json:"hairpinMode,omitempty"`
	MaxPods                                   int32                              `json:"maxPods,omitempty"`
	PodCIDR                                   string                             `json:"podCIDR,omitempty"`
	PodPidsLimit                              *int64                             `json:"podPidsLimit,omitempty"`
	ResolverConfig                            *string                            `json:"resolvConf,omitempty"`
	RunOnce                                   bool                               `json:"runOnce,omitempty"`
	CPUCFSQuota                               *bool                              `json:"cpuCFSQuota,omitempty"`
	CPUCFSQuotaPeriod                         *Duration                          `json:"cpuCFSQuotaPeriod,omitempty"`
	NodeStatusMaxImages                       *int32                             `json:"nodeStatusMaxImages,omitempty"`
	MaxOpenFiles                              int64                              `json:"maxOpenFiles,omitempty"`
	ContentType                               string                             `json:"contentType,omitempty"`
	KubeAPIQPS                                *int32                             `json:"kubeAPIQPS,omitempty"`
	KubeAPIBurst                              int32                              `json:"kubeAPIBurst,omitempty"`
	SerializeImagePulls                       *bool                              `json:"serializeImagePulls,omitempty"`
	MaxParallelImagePulls                     *int32                             `json:"maxParallelImagePulls,omitempty"`
	EvictionHard                              map[string]string                  `json:"evictionHard,omitempty"`
	EvictionSoft                              map[string]string                  `json:"evictionSoft,omitempty"`
	EvictionSoftGracePeriod                   map[string]string                  `json:"evictionSoftGracePeriod,omitempty"`
	EvictionPressureTransitionPeriod          Duration                           `json:"evictionPressureTransitionPeriod,omitempty"`
	EvictionMaxPodGracePeriod                 int32                              `json:"evictionMaxPodGracePeriod,omitempty"`
	EvictionMinimumReclaim                    map[string]string                  `json:"evictionMinimumReclaim,omitempty"`
	MergeDefaultEvictionSettings              *bool                              `json:"mergeDefaultEvictionSettings,omitempty"`
	PodsPerCore                               int32                              `json:"podsPerCore,omitempty"`
	EnableControllerAttachDetach              *bool                              `json:"enableControllerAttachDetach,omitempty"`
	ProtectKernelDefaults                     bool                               `json:"protectKernelDefaults,omitempty"`
	MakeIPTablesUtilChains                    *bool                              `json:"makeIPTablesUtilChains,omitempty"`
	IPTablesMasqueradeBit                     *int32                             `json:"iptablesMasqueradeBit,omitempty"`
	IPTablesDropBit                           *int32                             `json:"iptablesDropBit,omitempty"`
	FeatureGates                              map[string]bool                    `json:"featureGates,omitempty"`
	FailSwapOn                                *bool                              `json:"failSwapOn,omitempty"`
	MemorySwap                                MemorySwapConfiguration            `json:"memorySwap,omitempty"`
	ContainerLogMaxSize                       string                             `json:"containerLogMaxSize,omitempty"`
	ContainerLogMaxFiles                      *int32                             `json:"containerLogMaxFiles,omitempty"`
	ContainerLogMaxWorkers                    *int32                             `json:"containerLogMaxWorkers,omitempty"`
	ContainerLogMonitorInterval               *Duration                          `json:"containerLogMonitorInterval,omitempty"`
	ConfigMapAndSecretChangeDetectionStrategy string                             `json:"configMapAndSecretChangeDetectionStrategy,omitempty"`
	SystemReserved                            map[string]string                  `json:"systemReserved,omitempty"`
	KubeReserved                              map[string]string                  `json:"kubeReserved,omitempty"`
	ReservedSystemCPUs                        string                             `json:"reservedSystemCPUs,omitempty"`
	ShowHiddenMetricsForVersion               string                             `json:"showHiddenMetricsForVersion,omitempty"`
	SystemReservedCgroup                      string                             `json:"systemReservedCgroup,omitempty"`
	KubeReservedCgroup                        string                             `json:"kubeReservedCgroup,omitempty"`
	EnforceNodeAllocatable                    []string                           `json:"enforceNodeAllocatable,omitempty"`
	AllowedUnsafeSysctls                      []string                           `json:"allowedUnsafeSysctls,omitempty"`
	VolumePluginDir                           string                             `json:"volumePluginDir,omitempty"`
	ProviderID                                string                             `json:"providerID,omitempty"`
	KernelMemcgNotification                   bool                               `json:"kernelMemcgNotification,omitempty"`
	Logging                                   LoggingConfiguration               `json:"logging,omitempty"`
	EnableSystemLogHandler                    *bool                              `json:"enableSystemLogHandler,omitempty"`
	EnableSystemLogQuery                      *bool                              `json:"enableSystemLogQuery,omitempty"`
	ShutdownGracePeriod                       Duration                           `json:"shutdownGracePeriod,omitempty"`
	ShutdownGracePeriodCriticalPods           Duration                           `json:"shutdownGracePeriodCriticalPods,omitempty"`
	ShutdownGracePeriodByPodPriority          []ShutdownGracePeriodByPodPriority `json:"shutdownGracePeriodByPodPriority,omitempty"`
	CrashLoopBackOff                          CrashLoopBackOffConfig             `json:"crashLoopBackOff,omitempty"`
	ReservedMemory                            []MemoryReservation                `json:"reservedMemory,omitempty"`
	EnableProfilingHandler                    *bool                              `json:"enableProfilingHandler,omitempty"`
	EnableDebugFlagsHandler                   *bool                              `json:"enableDebugFlagsHandler,omitempty"`
	SeccompDefault                            *bool                              `json:"seccompDefault,omitempty"`
	MemoryThrottlingFactor                    *float64                           `json:"memoryThrottlingFactor,omitempty"`
	MemoryReservationPolicy                   string                             `json:"memoryReservationPolicy,omitempty"`
	RegisterWithTaints                        []Taint                            `json:"registerWithTaints,omitempty"`
	RegisterNode                              *bool                              `json:"registerNode,omitempty"`
	Tracing                                   *TracingConfiguration              `json:"tracing,omitempty"`
	LocalStorageCapacityIsolation             *bool                              `json:"localStorageCapacityIsolation,omitempty"`
	ContainerRuntimeEndpoint                  string                             `json:"containerRuntimeEndpoint"`
	ImageServiceEndpoint                      string                             `json:"imageServiceEndpoint,omitempty"`
	FailCgroupV1                              *bool                              `json:"failCgroupV1,omitempty"`
	UserNamespaces                            *UserNamespaces                    `json:"userNamespaces,omitempty"`
}

type KubeletAuthorization struct {
	Mode    string                      `json:"mode,omitempty"`
	Webhook KubeletWebhookAuthorization `json:"webhook"`
}

type KubeletWebhookAuthorization struct {
	CacheAuthorizedTTL   Duration `json:"cacheAuthorizedTTL,omitempty"`
	CacheUnauthorizedTTL Duration `json:"cacheUnauthorizedTTL,omitempty"`
}

type KubeletAuthentication struct {
	X509      KubeletX509Authentication      `json:"x509"`
	Webhook   KubeletWebhookAuthentication   `json:"webhook"`
	Anonymous KubeletAnonymousAuthentication `json:"anonymous"`
}

type KubeletX509Authentication struct {
	ClientCAFile string `json:"clientCAFile,omitempty"`
}

type KubeletWebhookAuthentication struct {
	Enabled  *bool    `json:"enabled,omitempty"`
	CacheTTL Duration `json:"cacheTTL,omitempty"`
}

type KubeletAnonymousAuthentication struct {
	Enabled *bool `json:"enabled,omitempty"`
}

type MemoryReservation struct {
	NumaNode int32               `json:"numaNode"`
	Limits   map[string]Quantity `json:"limits"`
}

type ShutdownGracePeriodByPodPriority struct {
	Priority                   int32 `json:"priority"`
	ShutdownGracePeriodSeconds int64 `json:"shutdownGracePeriodSeconds"`
}

type MemorySwapConfiguration struct {
	SwapBehavior string `json:"swapBehavior,omitempty"`
}

type CrashLoopBackOffConfig struct {
	MaxContainerRestartPeriod *Duration `json:"maxContainerRestartPeriod,omitempty"`
}

type UserNamespaces struct {
	IDsPerPod *int64 `json:"idsPerPod,omitempty"`
}

// Taint is core/v1 Taint.
type Taint struct {
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	Effect    string `json:"effect"`
	TimeAdded *Time  `json:"timeAdded,omitempty"`
}

// TracingConfiguration is component-base tracing/api/v1.
type TracingConfiguration struct {
	Endpoint               *string `json:"endpoint,omitempty"`
	SamplingRatePerMillion *int32  `json:"samplingRatePerMillion,omitempty"`
}

// LoggingConfiguration is component-base logs/api/v1.
type LoggingConfiguration struct {
	Format         string             `json:"format,omitempty"`
	FlushFrequency TimeOrMetaDuration `json:"flushFrequency"`
	Verbosity      uint32             `json:"verbosity"`
	VModule        []VModuleItem      `json:"vmodule,omitempty"`
	Options        FormatOptions      `json:"options,omitempty"`
}

type VModuleItem struct {
	FilePattern string `json:"filePattern"`
	Verbosity   uint32 `json:"verbosity"`
}

type FormatOptions struct {
	Text OutputRoutingOptions `json:"text,omitempty"`
	JSON OutputRoutingOptions `json:"json,omitempty"`
}

type OutputRoutingOptions struct {
	SplitStream    bool     `json:"splitStream,omitempty"`
	InfoBufferSize Quantity `json:"infoBufferSize,omitempty"`
}
