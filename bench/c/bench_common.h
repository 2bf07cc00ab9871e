/* Shared helpers for the raw-bpf() C baselines of bench/bench_maps.py.
 * No libbpf: <linux/bpf.h> for the ABI and syscall(__NR_bpf, ...) for the calls.
 * Attr sizes mirror libbpf (offsetofend of the last field a command uses). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))
#define ELEM_ATTR_SZ offsetofend(union bpf_attr, flags)
#define BATCH_ATTR_SZ offsetofend(union bpf_attr, batch)
#define CREATE_ATTR_SZ offsetofend(union bpf_attr, map_extra)
#define PTR(p) ((__u64)(uintptr_t)(p))

static inline long sys_bpf(int cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(2);
}

static inline int map_create(__u32 type, __u32 key_size, __u32 value_size, __u32 max_entries,
		      __u32 flags, int inner_fd)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key_size;
	a.value_size = value_size;
	a.max_entries = max_entries;
	a.map_flags = flags;
	a.inner_map_fd = inner_fd > 0 ? (__u32)inner_fd : 0;
	int fd = (int)sys_bpf(BPF_MAP_CREATE, &a, CREATE_ATTR_SZ);
	if (fd < 0)
		die("BPF_MAP_CREATE");
	return fd;
}

static inline int elem_update(int fd, const void *key, const void *value, __u64 flags)
{
	union bpf_attr a;
	memset(&a, 0, ELEM_ATTR_SZ);
	a.map_fd = (__u32)fd;
	a.key = PTR(key);
	a.value = PTR(value);
	a.flags = flags;
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a, ELEM_ATTR_SZ);
}

static inline long arg_long(int argc, char **argv, int i, long dflt)
{
	return argc > i ? strtol(argv[i], NULL, 10) : dflt;
}

#endif
