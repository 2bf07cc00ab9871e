/* Exercises every BTF kind clang 14 emits; built by the Makefile beside it. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))

typedef unsigned long long u64_t;
typedef int (*callback_t)(void *ctx, const char *fmt, ...);

enum color { RED, GREEN = 5, BLUE = -1 };
enum big { SMALL = 1, LARGE = 0x7fffffff };

struct node;		/* only ever used through a pointer: a FWD */
union opaque_u;

struct flags {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 12;
	unsigned long long d : 40;
	char tail;
};

struct __attribute__((packed)) packed_s {
	char c;
	int i;
	short s;
};

struct aligned_s {
	char c;
	long long x __attribute__((aligned(16)));
};

struct everything {
	int i;
	char name[16];
	int matrix[2][3];
	const volatile int *cvp;
	int *restrict rp;
	struct node *next;
	union opaque_u *opaque;
	struct flags fl;
	struct packed_s ps;
	struct aligned_s as;
	enum color col;
	enum big big;
	u64_t id;
	float f;
	double dbl;
	callback_t cb;
	void (*handlers[4])(int sig);
	int (*(*getter)(void))[8];
	struct {
		int x, y;
	} point;
	union {
		__u32 word;
		__u8 bytes[4];
	};
	struct {
		short lo;
		short hi;
	};
	char __user *uptr;
	int tagged __tag("field_tag");
	_Bool ok;
	signed char sc;
	unsigned char uc;
	long l;
	unsigned __int128 wide;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct everything);
} things SEC(".maps");

int global_counter = 1;
const volatile int config_value = 7;
static volatile __u64 hidden_total;
struct everything scratch;
char LICENSE[] SEC("license") = "GPL";

extern int bpf_kfunc_example(int x) __ksym __attribute__((weak));
extern unsigned int LINUX_KERNEL_VERSION __attribute__((section(".kconfig"), weak));

static __attribute__((noinline)) int helper(struct everything *e, int n __tag("param_tag"))
{
	return e->i + n + (int)e->fl.c;
}

__attribute__((noinline)) __tag("func_tag") int global_sub(int v)
{
	return v * 2 + config_value;
}

SEC("xdp")
int prog(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;
	struct everything *e = bpf_map_lookup_elem(&things, &key);

	if (!e)
		return XDP_PASS;
	global_counter++;
	hidden_total += e->id;
	if (&bpf_kfunc_example && LINUX_KERNEL_VERSION > 0)
		global_counter += bpf_kfunc_example(global_counter);
	return helper(e, global_sub(e->i)) > 0 ? XDP_DROP : XDP_PASS;
}
