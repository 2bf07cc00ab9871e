// Network hook programs for tests/kernel/test_attach_{xdp,tc}.py: each counts the test's
// UDP frames (destination port 4242) in its own slot of `counts` and lets every packet pass.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 4242

enum { SLOT_XDP_A, SLOT_XDP_B, SLOT_TC_A, SLOT_TC_B, SLOT_ACT, NSLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int is_test_frame(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	return udp->dest == bpf_htons(TEST_PORT);
}

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_a(struct xdp_md *ctx)
{
	if (is_test_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		count(SLOT_XDP_A);
	return XDP_PASS;
}

SEC("xdp")
int xdp_b(struct xdp_md *ctx)
{
	if (is_test_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		count(SLOT_XDP_B);
	return XDP_PASS;
}

SEC("tc")
int tc_a(struct __sk_buff *skb)
{
	if (is_test_frame((void *)(long)skb->data, (void *)(long)skb->data_end))
		count(SLOT_TC_A);
	return TC_ACT_OK;
}

SEC("tc")
int tc_b(struct __sk_buff *skb)
{
	if (is_test_frame((void *)(long)skb->data, (void *)(long)skb->data_end))
		count(SLOT_TC_B);
	return TC_ACT_OK;
}

SEC("action")
int act(struct __sk_buff *skb)
{
	if (is_test_frame((void *)(long)skb->data, (void *)(long)skb->data_end))
		count(SLOT_ACT);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
