/* Single-element BPF_MAP_LOOKUP_ELEM / BPF_MAP_UPDATE_ELEM loop, the C baseline for rows 1-2.
 *
 * usage: elem hash|array ITERS [NKEYS]
 *   hash:  BPF_MAP_TYPE_HASH  u32 -> u64, max_entries 4*NKEYS, keys 0..NKEYS-1 prefilled
 *   array: BPF_MAP_TYPE_ARRAY u32 -> u64, max_entries NKEYS (plain, not mmapable)
 * Key i of the loop is i % NKEYS, like the Python side. One attr per command is filled
 * once (as purebpf's ElemIO does); each iteration writes the key (and value) buffers and
 * makes one syscall. Prints "lookup_ns X" and "update_ns Y" (ns per operation). */
#include "bench_common.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s hash|array ITERS [NKEYS]\n", argv[0]);
		return 2;
	}
	int is_hash = strcmp(argv[1], "hash") == 0;
	long iters = arg_long(argc, argv, 2, 200000);
	__u32 nkeys = (__u32)arg_long(argc, argv, 3, 1024);
	int fd = map_create(is_hash ? BPF_MAP_TYPE_HASH : BPF_MAP_TYPE_ARRAY, 4, 8,
			    is_hash ? 4 * nkeys : nkeys, 0, 0);
	volatile __u32 key = 0;
	volatile __u64 value = 0;
	for (__u32 k = 0; k < nkeys; k++) {
		key = k;
		value = k;
		if (elem_update(fd, (const void *)&key, (const void *)&value, BPF_ANY) < 0)
			die("prefill");
	}

	union bpf_attr look, upd;
	memset(&look, 0, sizeof(look));
	memset(&upd, 0, sizeof(upd));
	look.map_fd = upd.map_fd = (__u32)fd;
	look.key = upd.key = PTR(&key);
	look.value = upd.value = PTR(&value);
	upd.flags = BPF_ANY;

	__u64 sink = 0;
	long warm = iters / 10 + 1;
	for (long i = 0; i < warm; i++) {
		key = (__u32)(i % nkeys);
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &look, ELEM_ATTR_SZ) < 0)
			die("lookup");
		sink += value;
		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &upd, ELEM_ATTR_SZ) < 0)
			die("update");
	}

	uint64_t t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		key = (__u32)(i % nkeys);
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &look, ELEM_ATTR_SZ) < 0)
			die("lookup");
		sink += value;
	}
	uint64_t t1 = now_ns();
	for (long i = 0; i < iters; i++) {
		key = (__u32)(i % nkeys);
		value = (__u64)i;
		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &upd, ELEM_ATTR_SZ) < 0)
			die("update");
	}
	uint64_t t2 = now_ns();

	printf("lookup_ns %.2f\n", (double)(t1 - t0) / (double)iters);
	printf("update_ns %.2f\n", (double)(t2 - t1) / (double)iters);
	printf("sink %llu\n", (unsigned long long)sink);
	close(fd);
	return 0;
}
