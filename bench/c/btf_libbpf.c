/* libbpf baseline of bench/bench_load.py row 3: parse kernel BTF and find two types.
 *
 *   btf_libbpf [PATH] [STRUCT] [FUNC]
 *
 * Defaults: /sys/kernel/btf/vmlinux, task_struct, bpf_map_lookup_elem. Meant to run as a
 * fresh process each time (cold, like the purebpf side). Times btf__parse (read + parse)
 * and the two btf__find_by_name_kind lookups (a linear scan in libbpf) with
 * clock_gettime(CLOCK_MONOTONIC), and prints "parse_ns N", "find_ns N", "types N",
 * "struct_id N", "func_id N". Exits 2 on failure. */
#define _GNU_SOURCE
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/sys/kernel/btf/vmlinux";
	const char *sname = argc > 2 ? argv[2] : "task_struct";
	const char *fname = argc > 3 ? argv[3] : "bpf_map_lookup_elem";
	uint64_t t0 = now_ns();
	struct btf *btf = btf__parse(path, NULL);
	long err = libbpf_get_error(btf);
	if (err) {
		fprintf(stderr, "btf__parse(%s): %s\n", path, strerror((int)-err));
		return 2;
	}
	uint64_t t1 = now_ns();
	int sid = btf__find_by_name_kind(btf, sname, BTF_KIND_STRUCT);
	int fid = btf__find_by_name_kind(btf, fname, BTF_KIND_FUNC);
	uint64_t t2 = now_ns();
	if (sid < 0 || fid < 0) {
		fprintf(stderr, "not found: %s %d, %s %d\n", sname, sid, fname, fid);
		return 2;
	}
	printf("parse_ns %llu\nfind_ns %llu\ntypes %u\nstruct_id %d\nfunc_id %d\n",
	       (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
	       (unsigned)btf__type_cnt(btf) - 1, sid, fid);
	btf__free(btf);
	return 0;
}
