//! Loading and attaching the kernel programs (see `monitor-ebpf/`), filling their maps,
//! reading their counters.
