/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * cw_syscall_nr.h - the one per-architecture table of the syscall numbers and ptrace requests
 * Causeway looks at. The BPF programs match on them (cw_syscalls.h) and the kernel puts them
 * in records (cw_cred.syscall, cw_module.syscall, cw_ptrace.request); the Rust crate
 * `causeway-abi` gets the same constants through bindgen, and the agent names them from it,
 * so the C and Rust sides can never disagree on a number.
 *
 * Only x86-64 is built today; another architecture adds its own block here.
 */
#ifndef CW_SYSCALL_NR_H
#define CW_SYSCALL_NR_H

#if defined(__TARGET_ARCH_x86) || defined(__x86_64__)
#define CW_NR_open 2
#define CW_NR_connect 42
#define CW_NR_accept 43
#define CW_NR_listen 50
#define CW_NR_rename 82
#define CW_NR_creat 85
#define CW_NR_unlink 87
#define CW_NR_chmod 90
#define CW_NR_fchmod 91
#define CW_NR_ptrace 101
#define CW_NR_setuid 105
#define CW_NR_setgid 106
#define CW_NR_setreuid 113
#define CW_NR_setregid 114
#define CW_NR_setresuid 117
#define CW_NR_setresgid 119
#define CW_NR_setfsuid 122
#define CW_NR_setfsgid 123
#define CW_NR_capset 126
#define CW_NR_mount 165
#define CW_NR_init_module 175
#define CW_NR_openat 257
#define CW_NR_unlinkat 263
#define CW_NR_renameat 264
#define CW_NR_fchmodat 268
#define CW_NR_accept4 288
#define CW_NR_finit_module 313
#define CW_NR_renameat2 316
#define CW_NR_memfd_create 319
#define CW_NR_bpf 321
#define CW_NR_openat2 437
#define CW_NR_fchmodat2 452

/* ptrace(2) requests that take control of or write to the tracee (x86-64 values; the
 * generic ones are the same everywhere, SETREGS is architecture-specific). */
#define CW_PTRACE_TRACEME 0
#define CW_PTRACE_POKETEXT 4
#define CW_PTRACE_POKEDATA 5
#define CW_PTRACE_POKEUSER 6
#define CW_PTRACE_SETREGS 13
#define CW_PTRACE_ATTACH 16
#define CW_PTRACE_SETREGSET 0x4205
#define CW_PTRACE_SEIZE 0x4206
#else
#error "cw_syscall_nr.h: no syscall table for this architecture"
#endif

#endif /* CW_SYSCALL_NR_H */
