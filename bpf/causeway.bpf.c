// SPDX-License-Identifier: GPL-2.0-only
/*
 * Causeway's core probes. Built only on program types this project's kernels all allow:
 * tp_btf (sched_process_fork/exec/exit) and raw_tp (sys_enter/sys_exit), which need neither
 * kprobes nor tracefs nor BPF trampolines.
 *
 * Syscall events are taken at sys_exit, after the kernel has done the work, so that they
 * carry the result and the kernel's own view (the socket's real endpoints, the opened file's
 * real path) rather than what user space asked for. sys_enter only remembers the arguments
 * of the few syscalls we care about, keyed by thread.
 *
 * Every string the workload controls is read with an explicit bound (causeway_events.h).
 * Every record that finds no room in its ring buffer is counted per kind and per ring: file
 * activity has its own ring (the bulk lane), so a flood of it never takes the space of the
 * records detection cannot afford to lose.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "causeway_events.h"

char LICENSE[] SEC("license") = "GPL";

#define AT_FDCWD -100
#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115
#define FMODE_WRITE 0x2
#define FMODE_PATH 0x4000
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFSOCK 0140000
#define BPF_PROG_LOAD_CMD 5
#define SIGNAL_GROUP_EXIT 0x00000004
#define E2BIG 7
#define ENOMEM 12

/* Set by the loader before load. */
const volatile __u32 capture_file_writes = 1;
const volatile __u64 ringbuf_wakeup_bytes = 65536;
const volatile __u64 bulk_wakeup_bytes = 65536;

#include "cw_shared_maps.h"

/* One record-building area per CPU. A plain array indexed by CPU rather than a per-CPU
 * array because per-CPU values are capped at 32 KiB; the loader sizes it to the number of
 * possible CPUs. Programs using it cannot migrate while they run (tracepoint context). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[CW_SCRATCH_SIZE]);
} scratch SEC(".maps");

/* Files (and directories whose direct children) count as sensitive: reads are reported. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct cw_file_key);
	__type(value, __u8);
} sensitive SEC(".maps");

#include "cw_helpers.h"

/* ---------------------------------------------------------------- process lifecycle */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(cw_fork, struct task_struct *parent, struct task_struct *child)
{
	if (is_self())
		return 0;
	/* Threads are not processes. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	/* A process in a policy's scope passes it on to its children. */
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	struct cw_scope *sc = bpf_map_lookup_elem(&scope_by_tgid, &ptgid);
	if (sc) {
		struct cw_scope inherited = *sc;
		__u32 ctgid = BPF_CORE_READ(child, tgid);
		bpf_map_update_elem(&scope_by_tgid, &ctgid, &inherited, BPF_ANY);
	}
	struct cw_fork rec = {};
	init_hdr(&rec.hdr, CW_FORK, child);
	rec.hdr.size = sizeof(rec);
	long err = bpf_ringbuf_output(&events, &rec, sizeof(rec), wakeup_flag());
	count_emit(CW_FORK, err, 0);
	return 0;
}

/*
 * Check an exec against the policy in force for the process, if any. In enforce mode a
 * denied exec is killed here, in the exec tracepoint: the signal is delivered before the new
 * image runs its first instruction. Never the agent, never PID 1.
 */
static __always_inline void enforce_exec(struct cw_exec *rec)
{
	__u32 tgid = rec->hdr.task.pid;
	struct cw_scope *sc = bpf_map_lookup_elem(&scope_by_tgid, &tgid);
	if (!sc && tgid != agent_tgid && tgid != 1) {
		/* The root of a workload selected by its executable enters its policy here. */
		struct cw_file_key fk = { .ino = rec->exe_ino, .dev = rec->exe_dev };
		struct cw_scope *root = bpf_map_lookup_elem(&scope_by_exe, &fk);
		if (root) {
			struct cw_scope copy = *root;
			bpf_map_update_elem(&scope_by_tgid, &tgid, &copy, BPF_ANY);
			sc = bpf_map_lookup_elem(&scope_by_tgid, &tgid);
		}
	}
	if (!sc) {
		__u64 cg = rec->hdr.task.cgroup_id;
		sc = bpf_map_lookup_elem(&scope_by_cgroup, &cg);
	}
	rec->policy_id = 0;
	if (!sc)
		return;
	rec->policy_id = sc->policy_id;
	struct cw_allow_key k = { .ino = rec->exe_ino, .dev = rec->exe_dev, .policy_id = sc->policy_id };
	if (bpf_map_lookup_elem(&allowed_exec, &k))
		return;
	rec->hdr.flags |= CW_F_DENIED;
	if (sc->mode == CW_MODE_ENFORCE && tgid != agent_tgid && tgid != 1) {
		if (bpf_send_signal(9 /* SIGKILL */) == 0)
			rec->hdr.flags |= CW_F_KILLED;
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(cw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_self())
		return 0;
	char *buf = get_scratch();
	if (!buf)
		return 0;
	struct cw_exec *rec = (void *)buf;
	init_hdr(&rec->hdr, CW_EXEC, p);
	char *data = buf + CW_DATA_OFF;
	__u32 off = 0;
	bool trunc = false;

	/* argv: one bounded read of the argument area of the new image. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	unsigned long len = arg_end - arg_start;
	if (len > CW_ARGV_MAX) {
		len = CW_ARGV_MAX;
		rec->hdr.flags |= CW_F_ARGV_TRUNC;
	}
	rec->argc = BPF_CORE_READ(bprm, argc);
	if (len > 0 && bpf_probe_read_user(data, len & (2 * CW_ARGV_MAX - 1), (void *)arg_start) == 0)
		off = len;
	rec->argv_len = off;

	__u32 n;
	const char *filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(data + (off & CW_DATA_MASK), CW_NAME_MAX, filename);
	if (n > CW_NAME_MAX)
		n = 0;
	rec->filename_len = n;
	off += n;

	struct file *file = BPF_CORE_READ(bprm, file);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	rec->exe_ino = BPF_CORE_READ(inode, i_ino);
	rec->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (BPF_CORE_READ(inode, __i_nlink) == 0) {
		char prefix[6] = {};
		bpf_probe_read_kernel(prefix, sizeof(prefix), BPF_CORE_READ(dentry, d_name.name));
		if (prefix[0] == 'm' && prefix[1] == 'e' && prefix[2] == 'm' && prefix[3] == 'f' &&
		    prefix[4] == 'd' && prefix[5] == ':')
			rec->hdr.flags |= CW_F_MEMFD;
		else
			rec->hdr.flags |= CW_F_DELETED;
	}
	n = write_path(off, dentry, BPF_CORE_READ(file, f_path.mnt), &trunc);
	if (trunc)
		rec->hdr.flags |= CW_F_PATH_TRUNC;
	rec->exe_len = n;
	off += n;

	trunc = false;
	struct fs_struct *fs = BPF_CORE_READ(p, fs);
	n = write_path(off, BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt), &trunc);
	if (trunc)
		rec->hdr.flags |= CW_F_CWD_TRUNC;
	rec->cwd_len = n;
	off += n;

	trunc = false;
	n = write_cgroup(off, p, &trunc);
	if (trunc)
		rec->hdr.flags |= CW_F_CGROUP_TRUNC;
	rec->cgroup_len = n;
	off += n;

	if (rec->hdr.task.euid != rec->hdr.task.uid || rec->hdr.task.egid != rec->hdr.task.gid)
		rec->hdr.flags |= CW_F_SETID;

	enforce_exec(rec);

	emit(rec, CW_DATA_OFF + (off & CW_DATA_MASK));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cw_exit, struct task_struct *p)
{
	if (is_self())
		return 0;
	/* Only the last thread of the group ends the process. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	bpf_map_delete_elem(&scope_by_tgid, &tgid);
	struct cw_exit rec = {};
	init_hdr(&rec.hdr, CW_EXIT, p);
	__u32 sflags = BPF_CORE_READ(p, signal, flags);
	if (sflags & SIGNAL_GROUP_EXIT)
		rec.status = BPF_CORE_READ(p, signal, group_exit_code);
	else
		rec.status = BPF_CORE_READ(p, exit_code);
	rec.hdr.size = sizeof(rec);
	long err = bpf_ringbuf_output(&events, &rec, sizeof(rec), wakeup_flag());
	count_emit(CW_EXIT, err, 0);
	return 0;
}

#include "cw_syscalls.h"

/* ---------------------------------------------------------------- fold-table sweep */

struct sweep_ctx {
	__u64 now;
	__u64 force;
};

static long agg_sweep_one(struct bpf_map *map, struct cw_agg_key *k, struct cw_agg_val *v,
			  struct sweep_ctx *cx)
{
	__u64 start = v->window_start;
	barrier_var(start);
	if (start == CW_AGG_DEAD)
		return 0;
	bool over = cx->now >= start && cx->now - start >= CW_AGG_WINDOW_NS;
	if (cx->force || (over && v->count)) {
		/* Report a closed window now rather than at the process's next occurrence, which
		 * may never come; at shutdown (force) report every window, closed or not. */
		agg_report(v, k);
		return 0;
	}
	/* Idle for two windows: remove it. The swap to DEAD stops the process from folding
	 * into an entry about to go (it then sends in full); whatever it folded before the
	 * swap is reported first. An occurrence folds only within one window of start, so none
	 * can still be folding into an entry idle for two. */
	if (!over || cx->now - start < 2 * CW_AGG_WINDOW_NS)
		return 0;
	if (__sync_val_compare_and_swap(&v->window_start, start, CW_AGG_DEAD) != start)
		return 0;
	agg_report(v, k);
	struct cw_agg_key key = *k;
	bpf_map_delete_elem(&agg, &key);
	struct cw_counters *c = get_counters();
	if (c)
		__sync_fetch_and_add(&c->agg_deleted, 1);
	return 0;
}

/* Run by the agent (BPF_PROG_TEST_RUN) every 100 ms, and with args[0] = 1 at shutdown. */
SEC("raw_tp")
int cw_agg_sweep(struct bpf_raw_tracepoint_args *ctx)
{
	struct sweep_ctx cx = {};
	cx.now = bpf_ktime_get_boot_ns();
	cx.force = ctx->args[0];
	bpf_for_each_map_elem(&agg, agg_sweep_one, &cx, 0);
	return 0;
}
