/* Outer-map (ARRAY_OF_MAPS) writes, the C baseline for rows 4-5. Every write to an outer map
 * waits for an RCU grace period in the kernel (synchronize_rcu), so these are milliseconds.
 *
 * usage: outer single ITERS
 *   ARRAY_OF_MAPS (max_entries 64, inner template ARRAY u32 -> u64, 16 entries); slot 0 is
 *   set alternately to inner map A and B with BPF_MAP_UPDATE_ELEM. Prints "update_ns" and
 *   the ITERS per-update times (one grace period each).
 * usage: outer store N
 *   N inner maps stored into slots 0..N-1 of a fresh outer map one update at a time
 *   ("seq_ns" total), then into another fresh outer map with one BPF_MAP_UPDATE_BATCH
 *   ("batch_ns" total). */
#include "bench_common.h"

#define INNER_ENTRIES 16

static int new_inner(void) { return map_create(BPF_MAP_TYPE_ARRAY, 4, 8, INNER_ENTRIES, 0, 0); }

static int new_outer(int tmpl, __u32 max_entries)
{
	return map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, max_entries, 0, tmpl);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s single ITERS | store N\n", argv[0]);
		return 2;
	}
	long n = arg_long(argc, argv, 2, 20);
	int tmpl = new_inner();

	if (strcmp(argv[1], "single") == 0) {
		int outer = new_outer(tmpl, 64);
		int inner[2] = {new_inner(), new_inner()};
		__u32 key = 0, val;
		val = (__u32)inner[1];
		if (elem_update(outer, &key, &val, BPF_ANY) < 0) /* warm-up */
			die("outer update");
		printf("update_ns");
		for (long i = 0; i < n; i++) {
			val = (__u32)inner[i & 1];
			uint64_t t0 = now_ns();
			if (elem_update(outer, &key, &val, BPF_ANY) < 0)
				die("outer update");
			printf(" %llu", (unsigned long long)(now_ns() - t0));
		}
		printf("\n");
		close(inner[0]); close(inner[1]); close(outer);
	} else {
		int *fds = malloc(sizeof(int) * (size_t)n);
		__u32 *keys = malloc(sizeof(__u32) * (size_t)n);
		__u32 *vals = malloc(sizeof(__u32) * (size_t)n);
		if (!fds || !keys || !vals)
			die("malloc");
		for (long i = 0; i < n; i++) {
			fds[i] = new_inner();
			keys[i] = (__u32)i;
			vals[i] = (__u32)fds[i];
		}
		int o1 = new_outer(tmpl, (__u32)n), o2 = new_outer(tmpl, (__u32)n);
		uint64_t t0 = now_ns();
		for (long i = 0; i < n; i++)
			if (elem_update(o1, &keys[i], &vals[i], BPF_ANY) < 0)
				die("outer update");
		uint64_t t1 = now_ns();
		union bpf_attr a;
		memset(&a, 0, BATCH_ATTR_SZ);
		a.batch.map_fd = (__u32)o2;
		a.batch.keys = PTR(keys);
		a.batch.values = PTR(vals);
		a.batch.count = (__u32)n;
		if (sys_bpf(BPF_MAP_UPDATE_BATCH, &a, BATCH_ATTR_SZ) < 0)
			die("BPF_MAP_UPDATE_BATCH (outer)");
		uint64_t t2 = now_ns();
		printf("seq_ns %llu\nbatch_ns %llu\n", (unsigned long long)(t1 - t0),
		       (unsigned long long)(t2 - t1));
		for (long i = 0; i < n; i++)
			close(fds[i]);
		close(o1); close(o2);
		free(fds); free(keys); free(vals);
	}
	close(tmpl);
	return 0;
}
