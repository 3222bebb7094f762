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
 * Every record that finds no room in the ring buffer is counted per kind.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "causeway_events.h"

char LICENSE[] SEC("license") = "GPL";

/* x86-64 syscall numbers (the only architecture built today). */
#define NR_open 2
#define NR_connect 42
#define NR_accept 43
#define NR_listen 50
#define NR_rename 82
#define NR_creat 85
#define NR_unlink 87
#define NR_chmod 90
#define NR_fchmod 91
#define NR_ptrace 101
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_mount 165
#define NR_init_module 175
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_fchmodat 268
#define NR_accept4 288
#define NR_finit_module 313
#define NR_renameat2 316
#define NR_memfd_create 319
#define NR_bpf 321
#define NR_openat2 437
#define NR_fchmodat2 452

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
#define PTRACE_TRACEME 0

/* Set by the loader before load. */
const volatile __u32 agent_tgid = 0;
const volatile __u32 capture_file_writes = 1;
const volatile __u64 ringbuf_wakeup_bytes = 65536;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_counters);
} counters SEC(".maps");

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

struct inflight {
	__u64 args[6];
	struct cw_creds old;
	__u32 nr;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight_map SEC(".maps");

static __always_inline struct cw_counters *get_counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline void count_emit(__u16 kind, long err, __u16 flags)
{
	struct cw_counters *c = get_counters();
	if (!c || kind >= CW_KIND_MAX)
		return;
	if (err)
		__sync_fetch_and_add(&c->lost[kind], 1);
	else
		__sync_fetch_and_add(&c->emitted[kind], 1);
	if (flags & (CW_F_ARGV_TRUNC | CW_F_PATH_TRUNC | CW_F_CWD_TRUNC | CW_F_CGROUP_TRUNC))
		__sync_fetch_and_add(&c->truncated, 1);
}

/* Wake the consumer only when enough data waits: one wake-up per record would cost more
 * than the record. The consumer also polls on a short timeout, so nothing waits long. */
static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ringbuf_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(void *rec, __u32 size)
{
	struct cw_hdr *h = rec;
	/* Sizes are at most CW_DATA_OFF + CW_DATA_MASK; the mask is for the verifier, and the
	 * barrier keeps clang from proving it redundant and dropping it. */
	barrier_var(size);
	size &= CW_SCRATCH_SIZE - 1;
	h->size = size;
	long err = bpf_ringbuf_output(&events, rec, size, wakeup_flag());
	count_emit(h->kind, err, h->flags);
}

static __always_inline bool is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == agent_tgid;
}

struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

static __always_inline struct kernfs_node *task_cgroup_kn(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
}

/* Before 6.3, kernel_cap_t was { __u32 cap[2]; }; since, it is { u64 val; }. */
struct kernel_cap_t___old {
	__u32 cap[2];
} __attribute__((preserve_access_index));
struct cred___old {
	struct kernel_cap_t___old cap_effective;
} __attribute__((preserve_access_index));

static __always_inline __u64 cap_effective(const struct cred *cr)
{
	if (bpf_core_field_exists(cr->cap_effective.val))
		return BPF_CORE_READ(cr, cap_effective.val);
	const struct cred___old *o = (const void *)cr;
	__u64 lo = BPF_CORE_READ(o, cap_effective.cap[0]);
	__u64 hi = BPF_CORE_READ(o, cap_effective.cap[1]);
	return lo | (hi << 32);
}

static __always_inline void fill_creds_of(struct cw_creds *c, const struct cred *cr)
{
	c->uid = BPF_CORE_READ(cr, uid.val);
	c->euid = BPF_CORE_READ(cr, euid.val);
	c->suid = BPF_CORE_READ(cr, suid.val);
	c->fsuid = BPF_CORE_READ(cr, fsuid.val);
	c->gid = BPF_CORE_READ(cr, gid.val);
	c->egid = BPF_CORE_READ(cr, egid.val);
	c->sgid = BPF_CORE_READ(cr, sgid.val);
	c->fsgid = BPF_CORE_READ(cr, fsgid.val);
	c->cap_effective = cap_effective(cr);
}

static __always_inline void fill_task(struct cw_task *t, struct task_struct *task)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	struct task_struct *pleader = BPF_CORE_READ(parent, group_leader);
	const struct cred *cr = BPF_CORE_READ(task, cred);

	t->pid = BPF_CORE_READ(task, tgid);
	t->tid = BPF_CORE_READ(task, pid);
	t->ppid = BPF_CORE_READ(parent, tgid);
	t->start_boottime = BPF_CORE_READ(leader, start_boottime);
	t->parent_start_boottime = BPF_CORE_READ(pleader, start_boottime);
	t->uid = BPF_CORE_READ(cr, uid.val);
	t->euid = BPF_CORE_READ(cr, euid.val);
	t->gid = BPF_CORE_READ(cr, gid.val);
	t->egid = BPF_CORE_READ(cr, egid.val);
	if (bpf_core_field_exists(task->loginuid)) {
		t->auid = BPF_CORE_READ(task, loginuid.val);
		t->sessionid = BPF_CORE_READ(task, sessionid);
	} else {
		t->auid = 0xffffffff;
		t->sessionid = 0xffffffff;
	}
	struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);
	if (tty) {
		__u32 major = BPF_CORE_READ(tty, driver, major);
		__u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
		t->tty = (major << 20) | (minor & 0xfffff);
	} else {
		t->tty = 0;
	}
	struct kernfs_node *kn = task_cgroup_kn(task);
	t->cgroup_id = kn ? BPF_CORE_READ(kn, id) : 0;
	BPF_CORE_READ_STR_INTO(&t->comm, task, comm);
}

static __always_inline void init_hdr(struct cw_hdr *h, __u16 kind, struct task_struct *task)
{
	h->kind = kind;
	h->flags = 0;
	h->size = 0;
	h->ktime = bpf_ktime_get_boot_ns();
	fill_task(&h->task, task);
}

static __always_inline char *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch, &cpu);
}

/*
 * Path and cgroup walks run under bpf_loop() with their state kept in a per-CPU map value
 * rather than on the stack. Values read back from a map are unknown scalars to the
 * verifier, so it checks the loop body once instead of once per distinct offset, which
 * keeps these programs far below its complexity limit. The kernel pointers in the state are
 * only ever used as addresses for probe reads, so holding them as integers is sound.
 */
struct walk_state {
	__u64 d;       /* struct dentry * */
	__u64 vfsmnt;  /* struct vfsmount * */
	__u64 mnt;     /* struct mount * */
	__u64 kn;      /* struct kernfs_node * */
	__u32 off;
	__u32 start;
	__u32 limit;
	__u32 done;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_state);
} walk SEC(".maps");

static __always_inline struct walk_state *get_walk(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&walk, &zero);
}

static long path_step(__u32 i, void *unused)
{
	struct walk_state *w = get_walk();
	char *buf = get_scratch();
	if (!w || !buf)
		return 1;
	struct dentry *d = (void *)w->d;
	struct vfsmount *vfsmnt = (void *)w->vfsmnt;
	struct mount *mnt = (void *)w->mnt;
	struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == root || d == parent) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (d != root || mp == mnt) {
			w->done = 1;
			return 1;
		}
		/* Cross to the mount this one is mounted on. */
		w->d = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = (__u64)mp;
		w->vfsmnt = (__u64)&mp->mnt;
		return 0;
	}
	__u32 off = w->off;
	if (off - w->start >= w->limit - CW_NAME_MAX)
		return 1;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(buf + CW_DATA_OFF + (off & CW_DATA_MASK),
					   CW_NAME_MAX, name);
	if (n <= 0)
		return 1;
	w->off = off + n;
	w->d = (__u64)parent;
	return 0;
}

static long cgroup_step(__u32 i, void *unused)
{
	struct walk_state *w = get_walk();
	char *buf = get_scratch();
	if (!w || !buf)
		return 1;
	struct kernfs_node *kn = (void *)w->kn;
	if (!kn) {
		w->done = 1;
		return 1;
	}
	struct kernfs_node *parent = kn_parent(kn);
	if (!parent) { /* the root's name is empty */
		w->done = 1;
		return 1;
	}
	__u32 off = w->off;
	if (off - w->start >= w->limit - CW_NAME_MAX)
		return 1;
	const char *name = BPF_CORE_READ(kn, name);
	long n = bpf_probe_read_kernel_str(buf + CW_DATA_OFF + (off & CW_DATA_MASK),
					   CW_NAME_MAX, name);
	if (n <= 0)
		return 1;
	w->off = off + n;
	w->kn = (__u64)parent;
	return 0;
}

/* Every variable-length record keeps its data[] at CW_DATA_OFF (see the header). */


static __always_inline __u32 walk_finish(struct walk_state *w, __u32 off, __u32 limit,
					 bool *trunc)
{
	if (!w->done)
		*trunc = true;
	__u32 n = w->off - off;
	return n > limit ? limit : n;
}

/*
 * Write the path of (dentry, vfsmount) at data offset off as components, leaf first, crossing
 * mount points upward to the global root. Returns bytes written; sets *trunc when the walk
 * did not reach the root within the bounds.
 */
static __always_inline __u32 write_path(__u32 off, struct dentry *d, struct vfsmount *vfsmnt,
					bool *trunc)
{
	struct walk_state *w = get_walk();
	if (!w || !d || !vfsmnt) {
		*trunc = true;
		return 0;
	}
	w->d = (__u64)d;
	w->vfsmnt = (__u64)vfsmnt;
	w->mnt = (__u64)container_of(vfsmnt, struct mount, mnt);
	w->off = off;
	w->start = off;
	w->limit = CW_PATH_MAX;
	w->done = 0;
	bpf_loop(CW_PATH_DEPTH, path_step, NULL, 0);
	return walk_finish(w, off, CW_PATH_MAX, trunc);
}

/* The cgroup v2 path of a task as components, leaf first. */
static __always_inline __u32 write_cgroup(__u32 off, struct task_struct *task, bool *trunc)
{
	struct walk_state *w = get_walk();
	if (!w)
		return 0;
	w->kn = (__u64)task_cgroup_kn(task);
	w->off = off;
	w->start = off;
	w->limit = CW_CGROUP_MAX;
	w->done = 0;
	bpf_loop(CW_CGROUP_DEPTH, cgroup_step, NULL, 0);
	return walk_finish(w, off, CW_CGROUP_MAX, trunc);
}

/* Bounded copy of a user string; returns bytes including the NUL, 0 on failure. */
static __always_inline __u32 write_user_str(char *buf, __u32 off, const void *src, __u32 max)
{
	if (!src)
		return 0;
	if (max > CW_PATH_MAX)
		max = CW_PATH_MAX;
	long n = bpf_probe_read_user_str(buf + (off & CW_DATA_MASK), max, src);
	return n > 0 ? n : 0;
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	if (fd < 0)
		return NULL;
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned long)fd >= max)
		return NULL;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), fds + fd);
	return f;
}

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

/* ---------------------------------------------------------------- syscalls */

static __always_inline bool interesting(long nr)
{
	switch (nr) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
	case NR_connect: case NR_accept: case NR_accept4: case NR_listen:
	case NR_rename: case NR_renameat: case NR_renameat2:
	case NR_unlink: case NR_unlinkat:
	case NR_chmod: case NR_fchmod: case NR_fchmodat: case NR_fchmodat2:
	case NR_setuid: case NR_setgid: case NR_setreuid: case NR_setregid:
	case NR_setresuid: case NR_setresgid: case NR_setfsuid: case NR_setfsgid: case NR_capset:
	case NR_ptrace: case NR_mount: case NR_init_module: case NR_finit_module:
	case NR_bpf: case NR_memfd_create:
		return true;
	}
	return false;
}

static __always_inline bool is_cred_nr(__u32 nr)
{
	return nr == NR_setuid || nr == NR_setgid || nr == NR_setreuid || nr == NR_setregid ||
	       nr == NR_setresuid || nr == NR_setresgid || nr == NR_setfsuid ||
	       nr == NR_setfsgid || nr == NR_capset;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(cw_sys_enter, struct pt_regs *regs, long id)
{
	if (!interesting(id) || is_self())
		return 0;
	if (!capture_file_writes && (id == NR_open || id == NR_openat || id == NR_openat2 ||
				     id == NR_creat))
		return 0;
	struct inflight in = {};
	in.nr = id;
	in.args[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	in.args[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	in.args[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	in.args[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
	in.args[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
	if (is_cred_nr(id)) {
		struct task_struct *task = (void *)bpf_get_current_task_btf();
		fill_creds_of(&in.old, BPF_CORE_READ(task, cred));
	}
	__u64 key = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&inflight_map, &key, &in, BPF_ANY) != 0) {
		struct cw_counters *c = get_counters();
		if (c)
			__sync_fetch_and_add(&c->inflight_lost, 1);
	}
	return 0;
}

static __always_inline void read_sock(struct cw_net *rec, struct file *f)
{
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	rec->family = family;
	rec->protocol = BPF_CORE_READ(sk, sk_protocol);
	rec->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	rec->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(rec->laddr, &l, 4);
		__builtin_memcpy(rec->raddr, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&rec->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&rec->raddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline bool is_sock_file(struct file *f)
{
	if (!f)
		return false;
	__u16 mode = BPF_CORE_READ(f, f_inode, i_mode);
	return (mode & S_IFMT) == S_IFSOCK;
}

static __always_inline void on_net(struct task_struct *task, struct inflight *in, long ret)
{
	__u16 kind;
	long fd;
	__u16 flags = 0;
	if (in->nr == NR_connect) {
		if (ret != 0 && ret != -EINPROGRESS)
			return;
		if (ret == -EINPROGRESS)
			flags |= CW_F_INPROGRESS;
		kind = CW_CONNECT;
		fd = in->args[0];
	} else if (in->nr == NR_listen) {
		if (ret != 0)
			return;
		kind = CW_LISTEN;
		fd = in->args[0];
	} else {
		if (ret < 0)
			return;
		kind = CW_ACCEPT;
		fd = ret;
	}
	struct file *f = fd_file(task, fd);
	if (!is_sock_file(f))
		return;
	struct cw_net rec = {};
	init_hdr(&rec.hdr, kind, task);
	rec.hdr.flags = flags;
	read_sock(&rec, f);
	if (rec.family != AF_INET && rec.family != AF_INET6)
		return;
	rec.ret = ret;
	rec.hdr.size = sizeof(rec);
	long err = bpf_ringbuf_output(&events, &rec, sizeof(rec), wakeup_flag());
	count_emit(kind, err, 0);
}

static __always_inline bool pseudo_fs(unsigned long magic)
{
	switch (magic) {
	case 0x9fa0:      /* proc */
	case 0x62656572:  /* sysfs */
	case 0x63677270:  /* cgroup2 */
	case 0x27e0eb:    /* cgroup */
	case 0x64626720:  /* debugfs */
	case 0x74726163:  /* tracefs */
	case 0xcafe4a11:  /* bpffs */
	case 0x73636673:  /* securityfs */
	case 0x1cd1:      /* devpts */
		return true;
	}
	return false;
}

static __always_inline bool sensitive_file(struct file *f, struct dentry *d, __u32 dev)
{
	struct cw_file_key k = {};
	k.dev = dev;
	k.ino = BPF_CORE_READ(f, f_inode, i_ino);
	if (bpf_map_lookup_elem(&sensitive, &k))
		return true;
	/* A sensitive directory covers its direct children (e.g. ~/.ssh/). */
	k.ino = BPF_CORE_READ(d, d_parent, d_inode, i_ino);
	return bpf_map_lookup_elem(&sensitive, &k) != NULL;
}

static __always_inline void on_open(struct task_struct *task, struct inflight *in, long ret)
{
	if (ret < 0)
		return;
	struct file *f = fd_file(task, ret);
	if (!f)
		return;
	__u32 fmode = BPF_CORE_READ(f, f_mode);
	if (fmode & FMODE_PATH)
		return;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFREG)
		return;
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	__u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
	bool write = fmode & FMODE_WRITE;
	bool sens = sensitive_file(f, d, dev);
	if (!sens && (!write || pseudo_fs(BPF_CORE_READ(inode, i_sb, s_magic))))
		return;

	char *buf = get_scratch();
	if (!buf)
		return;
	struct cw_file *rec = (void *)buf;
	init_hdr(&rec->hdr, CW_OPEN, task);
	rec->hdr.flags = (write ? CW_F_WRITE : 0) | (sens ? CW_F_SENSITIVE : 0);
	rec->ino = BPF_CORE_READ(inode, i_ino);
	rec->dev = dev;
	rec->open_flags = BPF_CORE_READ(f, f_flags);
	rec->mode = 0;
	rec->ret = ret;
	rec->path2_len = 0;
	rec->dir_len = 0;
	bool trunc = false;
	char *data = buf + CW_DATA_OFF;
	__u32 n = write_path(0, d, BPF_CORE_READ(f, f_path.mnt), &trunc);
	if (trunc)
		rec->hdr.flags |= CW_F_PATH_TRUNC;
	rec->path_len = n;
	emit(rec, CW_DATA_OFF + (n & CW_DATA_MASK));
}

/* rename / unlink / chmod: user-supplied paths, plus the directory they are relative to. */
static __always_inline void on_path_op(struct task_struct *task, struct inflight *in, long ret)
{
	if (ret != 0)
		return;
	__u16 kind;
	const char *p1 = NULL, *p2 = NULL;
	long dirfd = AT_FDCWD;
	__u32 mode = 0;
	struct file *target_file = NULL;
	switch (in->nr) {
	case NR_rename:
		kind = CW_RENAME; p1 = (void *)in->args[0]; p2 = (void *)in->args[1];
		break;
	case NR_renameat: case NR_renameat2:
		kind = CW_RENAME; dirfd = (int)in->args[0]; p1 = (void *)in->args[1];
		p2 = (void *)in->args[3];
		break;
	case NR_unlink:
		kind = CW_UNLINK; p1 = (void *)in->args[0];
		break;
	case NR_unlinkat:
		kind = CW_UNLINK; dirfd = (int)in->args[0]; p1 = (void *)in->args[1];
		break;
	case NR_chmod:
		kind = CW_CHMOD; p1 = (void *)in->args[0]; mode = in->args[1];
		break;
	case NR_fchmod:
		kind = CW_CHMOD; target_file = fd_file(task, in->args[0]); mode = in->args[1];
		break;
	default: /* fchmodat, fchmodat2 */
		kind = CW_CHMOD; dirfd = (int)in->args[0]; p1 = (void *)in->args[1];
		mode = in->args[2];
		break;
	}
	char *buf = get_scratch();
	if (!buf)
		return;
	struct cw_file *rec = (void *)buf;
	init_hdr(&rec->hdr, kind, task);
	rec->ino = 0;
	rec->dev = 0;
	rec->open_flags = 0;
	rec->mode = mode;
	rec->ret = ret;
	char *data = buf + CW_DATA_OFF;
	__u32 off = 0;
	bool trunc = false;
	if (target_file) {
		rec->path_len = write_path(0, BPF_CORE_READ(target_file, f_path.dentry),
					   BPF_CORE_READ(target_file, f_path.mnt), &trunc);
		rec->path2_len = 0;
		rec->dir_len = 0;
		if (trunc)
			rec->hdr.flags |= CW_F_PATH_TRUNC;
		emit(rec, CW_DATA_OFF + (rec->path_len & CW_DATA_MASK));
		return;
	}
	rec->hdr.flags |= CW_F_PATH_RAW;
	__u32 n = write_user_str(data, off, p1, CW_PATH_MAX);
	rec->path_len = n;
	off += n;
	n = write_user_str(data, off, p2, CW_PATH_MAX);
	rec->path2_len = n;
	off += n;
	/* Resolve the directory a relative path is relative to. */
	char first = 0;
	bpf_probe_read_user(&first, 1, p1);
	rec->dir_len = 0;
	if (first != '/') {
		struct dentry *dd = NULL;
		struct vfsmount *dm = NULL;
		if (dirfd == AT_FDCWD) {
			struct fs_struct *fs = BPF_CORE_READ(task, fs);
			dd = BPF_CORE_READ(fs, pwd.dentry);
			dm = BPF_CORE_READ(fs, pwd.mnt);
		} else {
			struct file *df = fd_file(task, dirfd);
			if (df) {
				dd = BPF_CORE_READ(df, f_path.dentry);
				dm = BPF_CORE_READ(df, f_path.mnt);
			}
		}
		if (dd && dm) {
			n = write_path(off, dd, dm, &trunc);
			rec->dir_len = n;
			off += n;
			if (trunc)
				rec->hdr.flags |= CW_F_CWD_TRUNC;
		}
	}
	emit(rec, CW_DATA_OFF + (off & CW_DATA_MASK));
}

static __always_inline void on_cred(struct task_struct *task, struct inflight *in, long ret)
{
	if (ret != 0)
		return;
	struct cw_cred rec = {};
	fill_creds_of(&rec.new_, BPF_CORE_READ(task, cred));
	struct cw_creds *o = &in->old, *n = &rec.new_;
	if (o->uid == n->uid && o->euid == n->euid && o->suid == n->suid &&
	    o->fsuid == n->fsuid && o->gid == n->gid && o->egid == n->egid &&
	    o->sgid == n->sgid && o->fsgid == n->fsgid && o->cap_effective == n->cap_effective)
		return; /* nothing changed: not an event */
	init_hdr(&rec.hdr, CW_CRED, task);
	rec.old = in->old;
	rec.syscall = in->nr;
	rec.hdr.size = sizeof(rec);
	long err = bpf_ringbuf_output(&events, &rec, sizeof(rec), wakeup_flag());
	count_emit(CW_CRED, err, 0);
}

static __always_inline void on_ptrace(struct task_struct *task, struct inflight *in, long ret)
{
	if (ret != 0)
		return;
	long req = in->args[0];
	/* Reads of the tracee are not events; taking control or writing to it is. */
	if (req != PTRACE_TRACEME && req != 16 /* ATTACH */ && req != 0x4206 /* SEIZE */ &&
	    req != 4 && req != 5 && req != 6 /* POKE* */ && req != 13 /* SETREGS */ &&
	    req != 0x4205 /* SETREGSET */)
		return;
	struct cw_ptrace rec = {};
	init_hdr(&rec.hdr, CW_PTRACE, task);
	rec.request = req;
	rec.target_pid = req == PTRACE_TRACEME ? rec.hdr.task.ppid : (__u32)in->args[1];
	rec.ret = ret;
	rec.hdr.size = sizeof(rec);
	long err = bpf_ringbuf_output(&events, &rec, sizeof(rec), wakeup_flag());
	count_emit(CW_PTRACE, err, 0);
}

static __always_inline void on_mount(struct task_struct *task, struct inflight *in, long ret)
{
	char *buf = get_scratch();
	if (!buf)
		return;
	struct cw_mount *rec = (void *)buf;
	init_hdr(&rec->hdr, CW_MOUNT, task);
	rec->flags = in->args[3];
	rec->ret = ret;
	char *data = buf + CW_DATA_OFF;
	__u32 off = 0;
	__u32 n = write_user_str(data, off, (void *)in->args[0], CW_NAME_MAX);
	rec->source_len = n;
	off += n;
	n = write_user_str(data, off, (void *)in->args[1], CW_PATH_MAX);
	rec->target_len = n;
	off += n;
	n = write_user_str(data, off, (void *)in->args[2], CW_NAME_MAX);
	rec->fstype_len = n;
	off += n;
	emit(rec, CW_DATA_OFF + (off & CW_DATA_MASK));
}

static __always_inline void on_module(struct task_struct *task, struct inflight *in, long ret)
{
	char *buf = get_scratch();
	if (!buf)
		return;
	struct cw_module *rec = (void *)buf;
	init_hdr(&rec->hdr, CW_MODULE, task);
	rec->syscall = in->nr;
	rec->ret = ret;
	rec->path_len = 0;
	if (in->nr == NR_finit_module) {
		struct file *f = fd_file(task, in->args[0]);
		if (f) {
			bool trunc = false;
			rec->path_len = write_path(0, BPF_CORE_READ(f, f_path.dentry),
						   BPF_CORE_READ(f, f_path.mnt), &trunc);
			if (trunc)
				rec->hdr.flags |= CW_F_PATH_TRUNC;
		}
	}
	emit(rec, CW_DATA_OFF + (rec->path_len & CW_DATA_MASK));
}

static __always_inline void on_bpf(struct task_struct *task, struct inflight *in, long ret)
{
	if (in->args[0] != BPF_PROG_LOAD_CMD)
		return;
	struct cw_bpf rec = {};
	init_hdr(&rec.hdr, CW_BPF, task);
	union bpf_attr *attr = (void *)in->args[1];
	bpf_probe_read_user(&rec.prog_type, sizeof(rec.prog_type), &attr->prog_type);
	bpf_probe_read_user(&rec.prog_name, sizeof(rec.prog_name), &attr->prog_name);
	rec.ret = ret;
	rec.hdr.size = sizeof(rec);
	long err = bpf_ringbuf_output(&events, &rec, sizeof(rec), wakeup_flag());
	count_emit(CW_BPF, err, 0);
}

static __always_inline void on_memfd(struct task_struct *task, struct inflight *in, long ret)
{
	char *buf = get_scratch();
	if (!buf)
		return;
	struct cw_memfd *rec = (void *)buf;
	init_hdr(&rec->hdr, CW_MEMFD, task);
	rec->flags = in->args[1];
	rec->ret = ret;
	__u32 n = write_user_str(buf + CW_DATA_OFF, 0, (void *)in->args[0], CW_NAME_MAX);
	rec->name_len = n;
	emit(rec, CW_DATA_OFF + (n & CW_DATA_MASK));
}

SEC("raw_tp/sys_exit")
int BPF_PROG(cw_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 key = bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight_map, &key);
	if (!in)
		return 0;
	struct inflight copy = *in;
	bpf_map_delete_elem(&inflight_map, &key);
	struct task_struct *task = (void *)bpf_get_current_task_btf();

	switch (copy.nr) {
	case NR_connect: case NR_accept: case NR_accept4: case NR_listen:
		on_net(task, &copy, ret);
		break;
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
		on_open(task, &copy, ret);
		break;
	case NR_rename: case NR_renameat: case NR_renameat2:
	case NR_unlink: case NR_unlinkat:
	case NR_chmod: case NR_fchmod: case NR_fchmodat: case NR_fchmodat2:
		on_path_op(task, &copy, ret);
		break;
	case NR_ptrace:
		on_ptrace(task, &copy, ret);
		break;
	case NR_mount:
		on_mount(task, &copy, ret);
		break;
	case NR_init_module: case NR_finit_module:
		on_module(task, &copy, ret);
		break;
	case NR_bpf:
		on_bpf(task, &copy, ret);
		break;
	case NR_memfd_create:
		on_memfd(task, &copy, ret);
		break;
	default:
		if (is_cred_nr(copy.nr))
			on_cred(task, &copy, ret);
	}
	return 0;
}
