/* BPF_MAP_UPDATE_BATCH / BPF_MAP_LOOKUP_BATCH on HASH u32 -> u64, the C baseline for row 3.
 *
 * usage: batch N UPDATE_CHUNK LOOKUP_CHUNK
 * Creates a HASH with max_entries N, stores keys 0..N-1 (value = key) with UPDATE_BATCH in
 * chunks of UPDATE_CHUNK, then reads everything back with LOOKUP_BATCH, LOOKUP_CHUNK per
 * call. One untimed warm-up pass of each, then one timed pass of each (updates replace the
 * existing elements, as on the Python side). Prints "update_ns X" and "lookup_ns Y" per
 * element and "lookup_count N". */
#include "bench_common.h"

static long update_all(int fd, __u32 *keys, __u64 *vals, long n, long chunk)
{
	union bpf_attr a;
	for (long start = 0; start < n; start += chunk) {
		long cnt = n - start < chunk ? n - start : chunk;
		memset(&a, 0, BATCH_ATTR_SZ);
		a.batch.map_fd = (__u32)fd;
		a.batch.keys = PTR(keys + start);
		a.batch.values = PTR(vals + start);
		a.batch.count = (__u32)cnt;
		a.batch.elem_flags = BPF_ANY;
		if (sys_bpf(BPF_MAP_UPDATE_BATCH, &a, BATCH_ATTR_SZ) < 0)
			die("BPF_MAP_UPDATE_BATCH");
	}
	return n;
}

static long lookup_all(int fd, __u32 *keys, __u64 *vals, long cap, long chunk)
{
	union bpf_attr a;
	__u32 in_tok = 0, out_tok = 0;
	long total = 0;
	int first = 1;
	for (;;) {
		if (total + chunk > cap)
			chunk = cap - total;
		memset(&a, 0, BATCH_ATTR_SZ);
		a.batch.map_fd = (__u32)fd;
		a.batch.in_batch = first ? 0 : PTR(&in_tok);
		a.batch.out_batch = PTR(&out_tok);
		a.batch.keys = PTR(keys + total);
		a.batch.values = PTR(vals + total);
		a.batch.count = (__u32)chunk;
		long ret = sys_bpf(BPF_MAP_LOOKUP_BATCH, &a, BATCH_ATTR_SZ);
		total += a.batch.count;
		if (ret < 0 && errno == ENOENT)
			return total;
		if (ret < 0)
			die("BPF_MAP_LOOKUP_BATCH");
		in_tok = out_tok;
		first = 0;
	}
}

int main(int argc, char **argv)
{
	long n = arg_long(argc, argv, 1, 100000);
	long uchunk = arg_long(argc, argv, 2, 4096);
	long lchunk = arg_long(argc, argv, 3, 1024);
	int fd = map_create(BPF_MAP_TYPE_HASH, 4, 8, (__u32)n, 0, 0);
	__u32 *keys = malloc(sizeof(*keys) * (size_t)n);
	__u64 *vals = malloc(sizeof(*vals) * (size_t)n);
	/* room for a whole extra chunk: the kernel may return up to `chunk` per call */
	__u32 *okeys = malloc(sizeof(*okeys) * (size_t)(n + lchunk));
	__u64 *ovals = malloc(sizeof(*ovals) * (size_t)(n + lchunk));
	if (!keys || !vals || !okeys || !ovals)
		die("malloc");
	for (long i = 0; i < n; i++) {
		keys[i] = (__u32)i;
		vals[i] = (__u64)i;
	}

	update_all(fd, keys, vals, n, uchunk); /* warm-up: inserts */
	lookup_all(fd, okeys, ovals, n + lchunk, lchunk);

	uint64_t t0 = now_ns();
	update_all(fd, keys, vals, n, uchunk);
	uint64_t t1 = now_ns();
	long got = lookup_all(fd, okeys, ovals, n + lchunk, lchunk);
	uint64_t t2 = now_ns();

	printf("update_ns %.2f\n", (double)(t1 - t0) / (double)n);
	printf("lookup_ns %.2f\n", (double)(t2 - t1) / (double)n);
	printf("lookup_count %ld\n", got);
	free(keys); free(vals); free(okeys); free(ovals);
	close(fd);
	return got == n ? 0 : 3;
}
