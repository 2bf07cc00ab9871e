// 64 inner maps declared as the initial contents of one ARRAY_OF_MAPS, for
// bench/bench_load.py. The loader must put all 64 in their slots at load time: libbpf does
// one BPF_MAP_UPDATE_ELEM per slot (each waits for an RCU grace period), purebpf one batch.
// The inner maps are m00 .. m77 (two octal digits: 8 x 8 = 64), slot 8*a+b holds m<a><b>.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

#define DECL8(a) struct inner m##a##0 SEC(".maps"), m##a##1 SEC(".maps"), \
	m##a##2 SEC(".maps"), m##a##3 SEC(".maps"), m##a##4 SEC(".maps"),  \
	m##a##5 SEC(".maps"), m##a##6 SEC(".maps"), m##a##7 SEC(".maps");
#define REF8(a) &m##a##0, &m##a##1, &m##a##2, &m##a##3, &m##a##4, &m##a##5, &m##a##6, &m##a##7

DECL8(0) DECL8(1) DECL8(2) DECL8(3) DECL8(4) DECL8(5) DECL8(6) DECL8(7)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 64);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { REF8(0), REF8(1), REF8(2), REF8(3), REF8(4), REF8(5), REF8(6), REF8(7) },
};

// Returns outer[slot][0] + 1 for the slot in the first packet word, 0 on a miss.
SEC("xdp")
int read_slot(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 *req = data;
	if ((void *)(req + 1) > end)
		return 0;
	__u32 slot = req[0], zero = 0;
	void *inner = bpf_map_lookup_elem(&outer, &slot);
	if (!inner)
		return 0;
	__u64 *v = bpf_map_lookup_elem(inner, &zero);
	return v ? (int)*v + 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
