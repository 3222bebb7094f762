/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * causeway_events.h - the single source of truth for every record the kernel sends to
 * user space. The BPF programs include it; the Rust crate `causeway-abi` generates its
 * types from it with bindgen at build time, and bindgen's compile-time layout asserts make
 * any drift between the two a build error.
 *
 * Layout rules: every record starts with `struct cw_hdr`; fixed-size fields first, all
 * naturally aligned with explicit padding; variable-length text follows the fixed part in
 * `data[]`, in the order the record documents, each piece with its length in the fixed part.
 *
 * Two text encodings appear in data[]:
 *  - raw: bytes as the workload gave them (argv NUL-separated, user-supplied paths);
 *  - components: a path rebuilt in the kernel by walking dentries leaf-first, each component
 *    followed by a NUL ("passwd\0etc\0" is /etc/passwd). User space reverses and joins them.
 *    The walk stops at CW_PATH_DEPTH components or when the buffer is full; the record then
 *    carries a *_TRUNC flag.
 */
#ifndef CAUSEWAY_EVENTS_H
#define CAUSEWAY_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Syscall numbers and ptrace requests that records carry: one per-architecture table. */
#include "cw_syscall_nr.h"

/* Bounds of workload-controlled data captured in the kernel (documented in README). */
#define CW_COMM_LEN 16
#define CW_ARGV_MAX 16384   /* bytes of argv (NUL-separated) per exec */
#define CW_PATH_MAX 4096    /* bytes of one path */
#define CW_PATH_DEPTH 48    /* components of one path */
#define CW_NAME_MAX 256     /* bytes of one component or short string */
#define CW_CGROUP_MAX 1024  /* bytes of a cgroup path */
#define CW_CGROUP_DEPTH 12
/* Scratch area for building variable-length records: large enough for the largest record
 * (exec: argv + filename + exe + cwd + cgroup) with room for one bounded write past the
 * masked offset, which is what lets the verifier prove every access in bounds. A power of
 * two so that a record's size can be bounded with a mask. */
#define CW_DATA_MASK 32767
#define CW_SCRATCH_SIZE 65536

enum cw_kind {
	CW_FORK = 1,
	CW_EXEC = 2,
	CW_EXIT = 3,
	CW_CONNECT = 4,
	CW_ACCEPT = 5,
	CW_LISTEN = 6,
	CW_OPEN = 7,
	CW_RENAME = 8,
	CW_UNLINK = 9,
	CW_CHMOD = 10,
	CW_CRED = 11,
	CW_PTRACE = 12,
	CW_MOUNT = 13,
	CW_MODULE = 14,
	CW_BPF = 15,
	CW_MEMFD = 16,
	CW_KIND_MAX = 17,
};

/* Identity and credentials of the task an event is about. */
struct cw_task {
	__u64 start_boottime;        /* thread-group leader's start, boot clock ns */
	__u64 parent_start_boottime; /* real parent's leader start, boot clock ns */
	__u64 cgroup_id;             /* cgroup v2 id (inode of the cgroup directory) */
	__u32 pid;                   /* tgid */
	__u32 tid;
	__u32 ppid;                  /* real parent's tgid */
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 auid;                  /* loginuid, 0xffffffff when unset */
	__u32 sessionid;             /* audit session, 0xffffffff when unset */
	__u32 tty;                   /* (major << 20) | minor of the controlling tty, 0 if none */
	char comm[CW_COMM_LEN];
};

struct cw_hdr {
	__u16 kind;  /* enum cw_kind */
	__u16 flags; /* kind-specific CW_F_* bits */
	__u32 size;  /* bytes of the whole record including data[] */
	__u64 ktime; /* boot clock ns */
	struct cw_task task;
};

/* flags */
#define CW_F_ARGV_TRUNC (1 << 0)
#define CW_F_PATH_TRUNC (1 << 1)   /* first path (exe / file path) */
#define CW_F_CWD_TRUNC (1 << 2)    /* cwd / directory path */
#define CW_F_MEMFD (1 << 3)        /* exec of a memfd */
#define CW_F_DELETED (1 << 4)      /* exec of a file with no links */
#define CW_F_WRITE (1 << 5)        /* file opened for writing */
#define CW_F_SENSITIVE (1 << 6)    /* file in the sensitive set */
#define CW_F_PATH_RAW (1 << 7)     /* path1 is raw user text, not components */
#define CW_F_INPROGRESS (1 << 8)   /* non-blocking connect in progress */
#define CW_F_SETID (1 << 9)        /* exec changed euid/egid (setuid image) */
#define CW_F_CGROUP_TRUNC (1 << 10)
#define CW_F_DENIED (1 << 11)      /* exec outside the policy in force for this process */
#define CW_F_KILLED (1 << 12)      /* ...and killed before its first instruction */
#define CW_F_LSM (1 << 13)         /* ...refused by the BPF-LSM hook (exec failed with EPERM);
                                    * such a record has no argv/cwd, and exe is the filename */

/* CW_FORK: task = the new child process (its parent is the current task). */
struct cw_fork {
	struct cw_hdr hdr;
};

/* CW_EXEC: data = argv[argv_len] | filename[filename_len] (raw) | exe[exe_len] (components)
 * | cwd[cwd_len] (components) | cgroup[cgroup_len] (components). */
struct cw_exec {
	struct cw_hdr hdr;
	__u64 exe_ino;
	__u32 exe_dev;
	__u32 argc;
	__u32 argv_len;
	__u16 filename_len;
	__u16 exe_len;
	__u16 cwd_len;
	__u16 cgroup_len;
	__u32 policy_id; /* policy in force for this process, 0 if none */
	char data[];
};

/* CW_EXIT: sent when the last thread of a process exits. */
struct cw_exit {
	struct cw_hdr hdr;
	__u32 status; /* wait(2) status: code << 8, or signal | 0x80 if core dumped */
	__u32 pad;
};

/* CW_CONNECT / CW_ACCEPT / CW_LISTEN */
struct cw_net {
	struct cw_hdr hdr;
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	__u16 family;   /* AF_INET / AF_INET6 */
	__u16 protocol; /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 lport;    /* host byte order */
	__u16 rport;    /* host byte order */
	__s32 ret;
	__u32 pad;
};

/* CW_OPEN / CW_RENAME / CW_UNLINK / CW_CHMOD:
 * data = path[path_len] | path2[path2_len] (raw, rename target) | dir[dir_len] (components:
 * the directory a relative path1/path2 is relative to). path is components unless
 * CW_F_PATH_RAW. */
struct cw_file {
	struct cw_hdr hdr;
	__u64 ino;
	__u32 dev;
	__u32 open_flags;
	__u32 mode;
	__u16 path_len;
	__u16 path2_len;
	__u16 dir_len;
	__u16 exec_gen; /* low bits of the task's exec count (self_exec_id): which image of the
	                 * process it is, for joining folded repeats (see cw_agg_key) */
	__s32 ret;
	char data[];
};

struct cw_creds {
	__u32 uid, euid, suid, fsuid;
	__u32 gid, egid, sgid, fsgid;
	__u64 cap_effective;
};

/* CW_CRED: a successful credential-changing syscall that changed something. */
struct cw_cred {
	struct cw_hdr hdr;
	struct cw_creds old;
	struct cw_creds new_;
	__u32 syscall; /* CW_NR_* (cw_syscall_nr.h) */
	__u32 pad;
};

/* CW_PTRACE */
struct cw_ptrace {
	struct cw_hdr hdr;
	__s64 request; /* CW_PTRACE_* (cw_syscall_nr.h) */
	__u32 target_pid;
	__s32 ret;
};

/* CW_MOUNT: data = source | target | fstype (raw). */
struct cw_mount {
	struct cw_hdr hdr;
	__u64 flags;
	__s32 ret;
	__u16 source_len;
	__u16 target_len;
	__u16 fstype_len;
	__u16 pad[7];
	char data[];
};

/* CW_MODULE: data = path (components, finit_module only). */
struct cw_module {
	struct cw_hdr hdr;
	__u32 syscall; /* CW_NR_init_module or CW_NR_finit_module */
	__s32 ret;
	__u16 path_len;
	__u16 pad[11];
	char data[];
};

/* CW_BPF: a BPF_PROG_LOAD. */
struct cw_bpf {
	struct cw_hdr hdr;
	__u32 prog_type;
	__s32 ret;
	char prog_name[16];
};

/* CW_MEMFD: data = name (raw). */
struct cw_memfd {
	struct cw_hdr hdr;
	__u32 flags;
	__s32 ret;
	__u16 name_len;
	__u16 pad[11];
	char data[];
};

/* Every variable-length record has the same fixed size, so data[] always starts at
 * CW_DATA_OFF and the probes' path walkers can write into it before knowing the kind. */
#define CW_DATA_OFF 128
_Static_assert(sizeof(struct cw_exec) == CW_DATA_OFF, "cw_exec size");
_Static_assert(sizeof(struct cw_file) == CW_DATA_OFF, "cw_file size");
_Static_assert(sizeof(struct cw_mount) == CW_DATA_OFF, "cw_mount size");
_Static_assert(sizeof(struct cw_module) == CW_DATA_OFF, "cw_module size");
_Static_assert(sizeof(struct cw_memfd) == CW_DATA_OFF, "cw_memfd size");

/* Per-CPU counters, one array element, indexed by enum cw_kind. Summed over CPUs by user
 * space. */
struct cw_counters {
	__u64 emitted[CW_KIND_MAX];   /* records written to either ring buffer */
	__u64 lost[CW_KIND_MAX];      /* records the critical ring had no room for */
	__u64 bulk_lost[CW_KIND_MAX]; /* records the bulk ring had no room for */
	__u64 truncated;            /* records with any *_TRUNC flag */
	__u64 inflight_lost;        /* syscall entries not tracked (table full) */
	__u64 folded[CW_KIND_MAX];  /* occurrences folded into a later CW_REPEAT (not lost) */
	__u64 agg_full;             /* occurrences sent in full because the fold table was full */
	__u64 agg_deleted;          /* idle fold-table entries removed by the sweep */
};

/*
 * Folding of repetitive file activity (bulk lane). Per (process, file, kind, write) the first
 * occurrence is sent at once; identical ones within CW_AGG_WINDOW_NS of it are only counted
 * (cw_counters.folded) in the fold table; a CW_REPEAT record then reports them with their
 * count and first/last time, sent by the next occurrence after the window or by the sweep
 * program the agent runs every 100 ms. Every occurrence is thus either a record of its own or
 * counted in exactly one CW_REPEAT (or, if the bulk ring has no room for that CW_REPEAT,
 * counted in cw_counters.bulk_lost). The table is a plain hash, never an LRU: nothing is
 * evicted silently; when it is full, occurrences are sent in full (cw_counters.agg_full).
 */
#define CW_AGG_WINDOW_NS 1000000000ULL
#define CW_AGG_ENTRIES 16384
/* window_start of an entry the sweep is deleting: occurrences then go out in full. */
#define CW_AGG_DEAD 0xffffffffffffffffULL

/* A record type, not an event kind (outside enum cw_kind): hdr.kind of a struct cw_repeat. */
#define CW_REPEAT 64

struct cw_agg_key {
	__u64 ino;
	__u32 dev;
	__u32 tgid;
	__u16 kind;  /* enum cw_kind */
	__u16 write; /* 1 if opened for writing */
	/* cw_file.exec_gen: occurrences after an exec never fold into the old image's window,
	 * so a new image cannot hide its writes behind the previous image's first one. */
	__u32 exec_gen;
};

struct cw_agg_val {
	__u64 window_start; /* ktime of the last occurrence sent in full, or CW_AGG_DEAD */
	__u64 count;        /* occurrences folded since then and not yet reported */
	__u64 first;        /* ktime of the first of them */
	__u64 last;         /* ktime of the last of them */
};

/* CW_REPEAT: `count` occurrences of `key` between first_ktime and last_ktime, none of which
 * had a record of its own. hdr.task is zero except pid (= key.tgid): the record may come
 * from the sweep, outside the process; user space joins it to the last full record of the
 * same key. */
struct cw_repeat {
	struct cw_hdr hdr;
	struct cw_agg_key key;
	__u64 count;
	__u64 first_ktime;
	__u64 last_ktime;
};

/* Enforcement. A process is under a policy when its cgroup is in the policy's scope, or when
 * it descends (by fork) from a process put in scope. Its execs are then checked against the
 * policy's allowed executables, by (device, inode). */
#define CW_MODE_AUDIT 1
#define CW_MODE_ENFORCE 2

struct cw_scope {
	__u32 policy_id;
	__u32 mode; /* CW_MODE_* */
};

struct cw_allow_key {
	__u64 ino;
	__u32 dev;
	__u32 policy_id;
};

/* Key of the sensitive-file and policy maps: a file is (device, inode). */
struct cw_file_key {
	__u64 ino;
	__u32 dev; /* kernel dev_t: (major << 20) | minor */
	__u32 pad;
};

#endif /* CAUSEWAY_EVENTS_H */
