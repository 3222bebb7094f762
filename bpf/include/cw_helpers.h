/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers of the core probes: counters and emission, task identity, CO-RE shims for fields
 * that moved between kernel versions, and the bounded path and cgroup walkers.
 */
#ifndef CW_HELPERS_H
#define CW_HELPERS_H

static __always_inline struct cw_counters *get_counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&counters, &zero);
}

/* The lane of a record, the kernel's half of `Event::lane` in the model: file activity is
 * bulk, except a read of a sensitive file (credential access is never shed with the bulk). */
static __always_inline bool cw_lane_bulk(__u16 kind, __u16 flags)
{
	return (kind == CW_OPEN || kind == CW_RENAME || kind == CW_UNLINK || kind == CW_CHMOD) &&
	       !(flags & CW_F_SENSITIVE);
}

/* The counter of a kind in one of the per-kind arrays. The bound is checked with a 64-bit
 * compare on the very register that indexes: older verifiers (6.1) lose a 32-bit compare's
 * bound when the compiler reloads the index from the stack. */
static __always_inline __u64 *kind_slot(__u64 *arr, __u64 kind)
{
	barrier_var(kind);
	if (kind >= CW_KIND_MAX)
		return NULL;
	return arr + kind;
}

static __always_inline void count_emit_lane(__u16 kind, long err, __u16 flags, bool bulk_lane)
{
	struct cw_counters *c = get_counters();
	if (!c)
		return;
	__u64 *slot;
	if (err && bulk_lane)
		slot = kind_slot(c->bulk_lost, kind);
	else if (err)
		slot = kind_slot(c->lost, kind);
	else
		slot = kind_slot(c->emitted, kind);
	if (!slot)
		return;
	__sync_fetch_and_add(slot, 1);
	if (flags & (CW_F_ARGV_TRUNC | CW_F_PATH_TRUNC | CW_F_CWD_TRUNC | CW_F_CGROUP_TRUNC))
		__sync_fetch_and_add(&c->truncated, 1);
}

/* For the fixed-size records, which all travel in the critical lane. */
static __always_inline void count_emit(__u16 kind, long err, __u16 flags)
{
	count_emit_lane(kind, err, flags, false);
}

/* Wake the consumer only when enough data waits: one wake-up per record would cost more
 * than the record. The consumer also polls on a short timeout, so nothing waits long. */
static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ringbuf_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 bulk_wakeup_flag(void)
{
	return bpf_ringbuf_query(&bulk, BPF_RB_AVAIL_DATA) >= bulk_wakeup_bytes
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
	bool bulk_lane = cw_lane_bulk(h->kind, h->flags);
	long err;
	if (bulk_lane)
		err = bpf_ringbuf_output(&bulk, rec, size, bulk_wakeup_flag());
	else
		err = bpf_ringbuf_output(&events, rec, size, wakeup_flag());
	count_emit_lane(h->kind, err, h->flags, bulk_lane);
}

/* ---------------------------------------------------------------- folding (see header) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CW_AGG_ENTRIES);
	__type(key, struct cw_agg_key);
	__type(value, struct cw_agg_val);
} agg SEC(".maps");

/* Report what an entry folded since its last report, if anything. The exchange makes each
 * folded occurrence reported exactly once even with the sweep and the process racing. */
static __always_inline void agg_report(struct cw_agg_val *v, const struct cw_agg_key *k)
{
	__u64 n = __sync_lock_test_and_set(&v->count, 0);
	if (!n)
		return;
	__u16 kind = k->kind;
	struct cw_repeat *r = bpf_ringbuf_reserve(&bulk, sizeof(*r), 0);
	if (!r) {
		struct cw_counters *c = get_counters();
		__u64 *slot = c ? kind_slot(c->bulk_lost, kind) : NULL;
		if (slot)
			__sync_fetch_and_add(slot, n);
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->hdr.kind = CW_REPEAT;
	r->hdr.size = sizeof(*r);
	r->hdr.ktime = v->last;
	r->hdr.task.pid = k->tgid;
	r->key = *k;
	r->count = n;
	r->first_ktime = v->first;
	r->last_ktime = v->last;
	bpf_ringbuf_submit(r, bulk_wakeup_flag());
}

/* Fold one bulk-lane occurrence into the table. True when it was folded (no record of its
 * own); false when it must be sent in full (first of its window, table full, racing). */
static __always_inline bool agg_fold(__u32 tgid, __u16 kind, __u32 dev, __u64 ino, bool write,
				     __u16 exec_gen)
{
	struct cw_agg_key k = {};
	k.exec_gen = exec_gen;
	k.ino = ino;
	k.dev = dev;
	k.tgid = tgid;
	k.kind = kind;
	k.write = write ? 1 : 0;
	__u64 now = bpf_ktime_get_boot_ns();
	struct cw_agg_val *v = bpf_map_lookup_elem(&agg, &k);
	if (!v) {
		struct cw_agg_val nv = {};
		nv.window_start = now;
		long err = bpf_map_update_elem(&agg, &k, &nv, BPF_NOEXIST);
		if (err == -E2BIG || err == -ENOMEM) {
			struct cw_counters *c = get_counters();
			if (c)
				__sync_fetch_and_add(&c->agg_full, 1);
		}
		return false;
	}
	__u64 start = v->window_start;
	barrier_var(start);
	if (start == CW_AGG_DEAD)
		return false;
	if (now < start || now - start < CW_AGG_WINDOW_NS) {
		if (__sync_fetch_and_add(&v->count, 1) == 0)
			v->first = now;
		v->last = now;
		struct cw_counters *c = get_counters();
		__u64 *slot = c ? kind_slot(c->folded, kind) : NULL;
		if (slot)
			__sync_fetch_and_add(slot, 1);
		return true;
	}
	/* The window is over: this occurrence opens the next one. Whoever wins the swap reports
	 * the last window; a loser (another thread, the sweep deleting) just sends in full. */
	if (__sync_val_compare_and_swap(&v->window_start, start, now) != start)
		return false;
	agg_report(v, &k);
	return false;
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

#endif
