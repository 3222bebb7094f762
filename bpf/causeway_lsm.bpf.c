// SPDX-License-Identifier: GPL-2.0-only
/*
 * Optional BPF-LSM enforcement: refuse a denied exec outright with EPERM, instead of killing
 * the process at the exec tracepoint. Loaded separately from the core probes, because many
 * kernels refuse LSM programs (no CONFIG_BPF_LSM, `bpf` not in the LSM list, or trampolines
 * refused as on this project's VMs); the loader shares the core object's maps with this one,
 * so both consult the same policy tables and write to the same ring buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "causeway_events.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

#include "cw_shared_maps.h"

/* The denial record: a cw_exec whose data[] holds only the filename. */
struct lsm_denial {
	struct cw_exec rec;
	char filename[CW_NAME_MAX];
};

SEC("lsm/bprm_check_security")
int BPF_PROG(cw_lsm_bprm, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	struct task_struct *task = (void *)bpf_get_current_task_btf();
	__u32 tgid = BPF_CORE_READ(task, tgid);
	if (tgid == agent_tgid || tgid == 1)
		return 0;
	struct cw_scope *sc = bpf_map_lookup_elem(&scope_by_tgid, &tgid);
	if (!sc) {
		__u64 cg = bpf_get_current_cgroup_id();
		sc = bpf_map_lookup_elem(&scope_by_cgroup, &cg);
	}
	/* Audit mode is reported by the core exec probe; only enforcement acts here. */
	if (!sc || sc->mode != CW_MODE_ENFORCE)
		return 0;
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
	struct cw_allow_key k = {
		.ino = BPF_CORE_READ(inode, i_ino),
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
		.policy_id = sc->policy_id,
	};
	if (bpf_map_lookup_elem(&allowed_exec, &k))
		return 0;

	struct lsm_denial *d = bpf_ringbuf_reserve(&events, sizeof(*d), 0);
	__u32 zero = 0;
	struct cw_counters *c = bpf_map_lookup_elem(&counters, &zero);
	if (!d) {
		if (c)
			__sync_fetch_and_add(&c->lost[CW_EXEC], 1);
		return -EPERM;
	}
	__builtin_memset(&d->rec, 0, sizeof(d->rec));
	struct cw_hdr *h = &d->rec.hdr;
	h->kind = CW_EXEC;
	h->flags = CW_F_DENIED | CW_F_LSM;
	h->size = sizeof(*d);
	h->ktime = bpf_ktime_get_boot_ns();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	h->task.pid = tgid;
	h->task.tid = BPF_CORE_READ(task, pid);
	h->task.ppid = BPF_CORE_READ(parent, tgid);
	h->task.start_boottime = BPF_CORE_READ(leader, start_boottime);
	h->task.parent_start_boottime = BPF_CORE_READ(parent, group_leader, start_boottime);
	h->task.uid = BPF_CORE_READ(task, cred, uid.val);
	h->task.euid = BPF_CORE_READ(task, cred, euid.val);
	h->task.gid = BPF_CORE_READ(task, cred, gid.val);
	h->task.egid = BPF_CORE_READ(task, cred, egid.val);
	h->task.auid = 0xffffffff;
	h->task.sessionid = 0xffffffff;
	h->task.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(&h->task.comm, sizeof(h->task.comm));
	d->rec.exe_ino = k.ino;
	d->rec.exe_dev = k.dev;
	d->rec.policy_id = sc->policy_id;
	long n = bpf_probe_read_kernel_str(d->filename, sizeof(d->filename),
					   BPF_CORE_READ(bprm, filename));
	d->rec.filename_len = n > 0 ? n : 0;
	bpf_ringbuf_submit(d, 0);
	if (c)
		__sync_fetch_and_add(&c->emitted[CW_EXEC], 1);
	return -EPERM;
}
