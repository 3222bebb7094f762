/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Maps and settings shared by the core probes and the optional BPF-LSM object. The loader
 * creates them with the core object and hands their file descriptors to the LSM object, so
 * both must declare them identically: hence one definition, here.
 */
#ifndef CW_SHARED_MAPS_H
#define CW_SHARED_MAPS_H

/* Events of this process (the agent) are dropped in the kernel. Set by the loader. */
const volatile __u32 agent_tgid = 0;

/* Two lanes (see cw_lane_bulk): the critical ring carries everything detection cannot afford
 * to lose (lifecycle, network, credentials, ptrace, module/BPF loads, mounts, memfds,
 * sensitive reads); the bulk ring carries high-volume file activity. A file flood can fill
 * the bulk ring but never takes the critical ring's space. The loader sizes both. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} bulk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_counters);
} counters SEC(".maps");

/* Enforcement maps (see causeway_events.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cw_scope);
} scope_by_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct cw_scope);
} scope_by_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct cw_allow_key);
	__type(value, __u8);
} allowed_exec SEC(".maps");

/* Executables that put the process running them under a policy: a workload selected by the
 * executable its root runs is scoped in the kernel at that exec, before any child exists. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct cw_file_key);
	__type(value, struct cw_scope);
} scope_by_exe SEC(".maps");

#endif
