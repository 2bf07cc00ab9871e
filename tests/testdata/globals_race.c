// Variables user space writes while the program runs: Variable.set() must write only the
// variable's own bytes, never the whole section (which loses the program's updates to the
// neighbours), and must take back what Variable.value returns (dicts, lists, signed ints).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct point {
	__s32 x;
	__s32 y;
	char tag[4];
};

volatile __u64 hits = 0;                          // .bss: the program counts its runs here
volatile __u64 knob = 0;                          // .bss: its neighbour, set from user space
volatile __s32 bias = -5;                         // .data: a signed int
volatile __u16 weights[4] = { 1, 2, 3, 4 };       // .data: an array
volatile struct point origin = { 1, -2, "ab" };   // .data: a struct

// Counts every run; returns the knob, so user-space writes are visible to the program.
SEC("xdp")
int count(struct xdp_md *ctx)
{
	hits++;
	return (int)knob;
}

// bias + origin.x + origin.y + the weights + the tag's first byte, as the program sees them.
SEC("xdp")
int sum(struct xdp_md *ctx)
{
	__s32 s = bias + origin.x + origin.y + origin.tag[0];
	for (int i = 0; i < 4; i++)
		s += weights[i];
	return s;
}

char LICENSE[] SEC("license") = "GPL";
