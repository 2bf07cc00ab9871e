// Producers for the ring buffer and perf event array consumers (purebpf.events).
// XDP programs, run with Program.test_run(repeat=N): each run sends cfg[CFG_COUNT] records
// (at most 64). stats[] counts what was sent and what the kernel refused.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 seq;
	__u32 kind;
	__u64 value;
	char comm[16];
};

enum { CFG_COUNT = 0, CFG_DISCARD_EVERY = 1 };
enum { ST_SEQ = 0, ST_RB_FAIL = 1, ST_PERF_FAIL = 2, ST_DISCARDED = 3, ST_SENT = 4 };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 4096);
} events SEC(".maps");

// One page: fills after ~170 records of struct event.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} small SEC(".maps");

// Records of 8 bytes (16 with the header), for the benchmark; its size is set before load.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} bench SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} cfg SEC(".maps");

// A layout for the record decoders' tests: signed members, arrays of integers, char arrays
// and padding between members.
struct sample {
	__s16 delta;
	__u8 flags[3];
	char name[5];
	__s64 hist[2];
	unsigned char tag[4];
	__s32 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample);
} samples SEC(".maps");

// The last event rb_output sent (this also puts struct event in the object's BTF).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} last SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline __u64 *slot(void *map, __u32 k)
{
	return bpf_map_lookup_elem(map, &k);
}

static __always_inline __u64 setting(__u32 k)
{
	__u64 *v = slot(&cfg, k);
	return v ? *v : 0;
}

static __always_inline void bump(__u32 k)
{
	__u64 *v = slot(&stats, k);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 next_seq(void)
{
	__u64 *v = slot(&stats, ST_SEQ);
	return v ? (__u32)__sync_fetch_and_add(v, 1) : 0;
}

static __always_inline void fill(struct event *e, __u32 seq)
{
	e->seq = seq;
	e->kind = seq % 3;
	e->value = (__u64)seq * 1000003;
	__builtin_memcpy(e->comm, "purebpf-events", 15);
	e->comm[15] = 0;
}

// bpf_ringbuf_output of struct event into "events".
SEC("xdp")
int rb_output(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		struct event e = {};
		fill(&e, next_seq());
		if (bpf_ringbuf_output(&events, &e, sizeof(e), 0) < 0)
			bump(ST_RB_FAIL);
		else
			bump(ST_SENT);
		__u32 zero = 0;
		bpf_map_update_elem(&last, &zero, &e, BPF_ANY);
	}
	return XDP_PASS;
}

// bpf_ringbuf_output into the one-page ring "small"; failures (-ENOSPC) are counted.
SEC("xdp")
int rb_small(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		struct event e = {};
		fill(&e, next_seq());
		if (bpf_ringbuf_output(&small, &e, sizeof(e), 0) < 0)
			bump(ST_RB_FAIL);
		else
			bump(ST_SENT);
	}
	return XDP_PASS;
}

// bpf_ringbuf_reserve + submit into "events"; every cfg[CFG_DISCARD_EVERY]-th record
// (by seq) is discarded instead.
SEC("xdp")
int rb_reserve(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	__u64 every = setting(CFG_DISCARD_EVERY);
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			bump(ST_RB_FAIL);
			continue;
		}
		__u32 seq = next_seq();
		fill(e, seq);
		if (every && seq % every == 0) {
			bpf_ringbuf_discard(e, 0);
			bump(ST_DISCARDED);
		} else {
			bpf_ringbuf_submit(e, 0);
			bump(ST_SENT);
		}
	}
	return XDP_PASS;
}

// Records of 1..32 bytes into "events": byte j of record seq is (seq + j) & 0xff.
SEC("xdp")
int rb_varlen(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	__u8 buf[32];
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		__u32 seq = next_seq();
		for (int j = 0; j < 32; j++)
			buf[j] = (__u8)(seq + j);
		__u32 len = (seq & 31) + 1;
		if (bpf_ringbuf_output(&events, buf, len, 0) < 0)
			bump(ST_RB_FAIL);
		else
			bump(ST_SENT);
	}
	return XDP_PASS;
}

// The benchmark's producer: 8-byte records (the sequence number) into "bench", without
// a wakeup per record (the consumer drains a filled ring).
SEC("xdp")
int rb_bench(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	__u64 *seq = slot(&stats, ST_SEQ);
	if (!seq)
		return XDP_PASS;
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		__u64 v = (*seq)++;
		if (bpf_ringbuf_output(&bench, &v, sizeof(v), BPF_RB_NO_WAKEUP) < 0)
			bump(ST_RB_FAIL);
	}
	return XDP_PASS;
}

// bpf_perf_event_output of struct event on the current CPU's ring.
SEC("xdp")
int perf_output(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		struct event e = {};
		fill(&e, next_seq());
		if (bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &e, sizeof(e)) < 0)
			bump(ST_PERF_FAIL);
		else
			bump(ST_SENT);
	}
	return XDP_PASS;
}

// Perf samples of 1..32 bytes, as rb_varlen.
SEC("xdp")
int perf_varlen(struct xdp_md *ctx)
{
	__u64 n = setting(CFG_COUNT);
	__u8 buf[32];
	for (int i = 0; i < 64; i++) {
		if (i >= n)
			break;
		__u32 seq = next_seq();
		for (int j = 0; j < 32; j++)
			buf[j] = (__u8)(seq + j);
		__u32 len = (seq & 31) + 1;
		if (bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, buf, len) < 0)
			bump(ST_PERF_FAIL);
		else
			bump(ST_SENT);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
