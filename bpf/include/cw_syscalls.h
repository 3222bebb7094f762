/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Syscall events: sys_enter remembers the arguments of the few syscalls we care about, keyed
 * by thread; sys_exit turns them into records once the kernel has done the work.
 */
#ifndef CW_SYSCALLS_H
#define CW_SYSCALLS_H

#include "cw_syscall_nr.h"

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

/* ---------------------------------------------------------------- syscalls */

static __always_inline bool interesting(long nr)
{
	switch (nr) {
	case CW_NR_open: case CW_NR_openat: case CW_NR_openat2: case CW_NR_creat:
	case CW_NR_connect: case CW_NR_accept: case CW_NR_accept4: case CW_NR_listen:
	case CW_NR_rename: case CW_NR_renameat: case CW_NR_renameat2:
	case CW_NR_unlink: case CW_NR_unlinkat:
	case CW_NR_chmod: case CW_NR_fchmod: case CW_NR_fchmodat: case CW_NR_fchmodat2:
	case CW_NR_setuid: case CW_NR_setgid: case CW_NR_setreuid: case CW_NR_setregid:
	case CW_NR_setresuid: case CW_NR_setresgid: case CW_NR_setfsuid: case CW_NR_setfsgid: case CW_NR_capset:
	case CW_NR_ptrace: case CW_NR_mount: case CW_NR_init_module: case CW_NR_finit_module:
	case CW_NR_bpf: case CW_NR_memfd_create:
		return true;
	}
	return false;
}

static __always_inline bool is_cred_nr(__u32 nr)
{
	return nr == CW_NR_setuid || nr == CW_NR_setgid || nr == CW_NR_setreuid || nr == CW_NR_setregid ||
	       nr == CW_NR_setresuid || nr == CW_NR_setresgid || nr == CW_NR_setfsuid ||
	       nr == CW_NR_setfsgid || nr == CW_NR_capset;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(cw_sys_enter, struct pt_regs *regs, long id)
{
	if (!interesting(id) || is_self())
		return 0;
	if (!capture_file_writes && (id == CW_NR_open || id == CW_NR_openat || id == CW_NR_openat2 ||
				     id == CW_NR_creat))
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
	if (in->nr == CW_NR_connect) {
		if (ret != 0 && ret != -EINPROGRESS)
			return;
		if (ret == -EINPROGRESS)
			flags |= CW_F_INPROGRESS;
		kind = CW_CONNECT;
		fd = in->args[0];
	} else if (in->nr == CW_NR_listen) {
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
	/* Repetitive writes of one file by one process image are folded, not each sent. */
	__u16 exec_gen = BPF_CORE_READ(task, self_exec_id);
	if (!sens && agg_fold(BPF_CORE_READ(task, tgid), CW_OPEN, dev, BPF_CORE_READ(inode, i_ino),
			      write, exec_gen))
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
	rec->exec_gen = exec_gen;
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
	case CW_NR_rename:
		kind = CW_RENAME; p1 = (void *)in->args[0]; p2 = (void *)in->args[1];
		break;
	case CW_NR_renameat: case CW_NR_renameat2:
		kind = CW_RENAME; dirfd = (int)in->args[0]; p1 = (void *)in->args[1];
		p2 = (void *)in->args[3];
		break;
	case CW_NR_unlink:
		kind = CW_UNLINK; p1 = (void *)in->args[0];
		break;
	case CW_NR_unlinkat:
		kind = CW_UNLINK; dirfd = (int)in->args[0]; p1 = (void *)in->args[1];
		break;
	case CW_NR_chmod:
		kind = CW_CHMOD; p1 = (void *)in->args[0]; mode = in->args[1];
		break;
	case CW_NR_fchmod:
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
	rec->exec_gen = BPF_CORE_READ(task, self_exec_id);
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
	if (req != CW_PTRACE_TRACEME && req != CW_PTRACE_ATTACH && req != CW_PTRACE_SEIZE &&
	    req != CW_PTRACE_POKETEXT && req != CW_PTRACE_POKEDATA && req != CW_PTRACE_POKEUSER &&
	    req != CW_PTRACE_SETREGS && req != CW_PTRACE_SETREGSET)
		return;
	struct cw_ptrace rec = {};
	init_hdr(&rec.hdr, CW_PTRACE, task);
	rec.request = req;
	rec.target_pid = req == CW_PTRACE_TRACEME ? rec.hdr.task.ppid : (__u32)in->args[1];
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
	if (in->nr == CW_NR_finit_module) {
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
	case CW_NR_connect: case CW_NR_accept: case CW_NR_accept4: case CW_NR_listen:
		on_net(task, &copy, ret);
		break;
	case CW_NR_open: case CW_NR_openat: case CW_NR_openat2: case CW_NR_creat:
		on_open(task, &copy, ret);
		break;
	case CW_NR_rename: case CW_NR_renameat: case CW_NR_renameat2:
	case CW_NR_unlink: case CW_NR_unlinkat:
	case CW_NR_chmod: case CW_NR_fchmod: case CW_NR_fchmodat: case CW_NR_fchmodat2:
		on_path_op(task, &copy, ret);
		break;
	case CW_NR_ptrace:
		on_ptrace(task, &copy, ret);
		break;
	case CW_NR_mount:
		on_mount(task, &copy, ret);
		break;
	case CW_NR_init_module: case CW_NR_finit_module:
		on_module(task, &copy, ret);
		break;
	case CW_NR_bpf:
		on_bpf(task, &copy, ret);
		break;
	case CW_NR_memfd_create:
		on_memfd(task, &copy, ret);
		break;
	default:
		if (is_cred_nr(copy.nr))
			on_cred(task, &copy, ret);
	}
	return 0;
}

#endif
