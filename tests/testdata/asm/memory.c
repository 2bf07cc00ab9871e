/* Loads, stores, atomics, legacy packet loads and ld_imm64 (constants, globals, maps). */
#define SEC(name) __attribute__((section(name), used))

struct {
	int (*type)[2];         /* BPF_MAP_TYPE_ARRAY */
	int (*max_entries)[4];
	int *key;
	long *value;
} counters SEC(".maps");

static long (*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

long total = 3;
const volatile int limit = 100;

SEC("xdp") int loads(void *ctx)
{
	asm volatile(
		"r0 = *(u8 *)(r1 + 0)\n r0 = *(u16 *)(r1 + 2)\n r0 = *(u32 *)(r1 - 4)\n"
		"r0 = *(u64 *)(r10 - 8)\n r2 = *(s8 *)(r1 + 32767)\n r3 = *(s16 *)(r1 - 32768)\n"
		"r4 = *(s32 *)(r1 + 12)\n"
		"*(u8 *)(r10 - 1) = r1\n *(u16 *)(r10 - 2) = r2\n *(u32 *)(r10 - 4) = r3\n"
		"*(u64 *)(r10 - 16) = r4\n"
		"*(u8 *)(r10 - 1) = 1\n *(u16 *)(r10 - 2) = -2\n *(u32 *)(r10 - 4) = 2147483647\n"
		"*(u64 *)(r10 - 16) = -2147483648\n"
		"r0 = *(u8 *)skb[1]\n r0 = *(u16 *)skb[2]\n r0 = *(u32 *)skb[-4]\n"
		"r0 = *(u8 *)skb[r1]\n r0 = *(u16 *)skb[r2]\n r0 = *(u32 *)skb[r3]\n"
		"r1 = 0 ll\n r2 = -1 ll\n r3 = 0x123456789abcdef0 ll\n r4 = 2147483648 ll\n"
		::: "r0", "r1", "r2", "r3", "r4", "memory");
	return 0;
}

SEC("xdp") int atomics(void *ctx)
{
	asm volatile(
		"lock *(u64 *)(r1 + 0) += r2\n lock *(u32 *)(r1 + 8) += w2\n"
		"lock *(u64 *)(r1 + 0) |= r2\n lock *(u32 *)(r1 + 4) |= w2\n"
		"lock *(u64 *)(r1 + 0) &= r2\n lock *(u32 *)(r1 + 4) &= w2\n"
		"lock *(u64 *)(r1 + 0) ^= r2\n lock *(u32 *)(r1 - 4) ^= w2\n"
		"r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_add((u32 *)(r1 + 0), w2)\n"
		"r2 = atomic_fetch_or((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_or((u32 *)(r1 + 0), w2)\n"
		"r2 = atomic_fetch_and((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_and((u32 *)(r1 + 0), w2)\n"
		"r2 = atomic_fetch_xor((u64 *)(r1 + 0), r2)\n w2 = atomic_fetch_xor((u32 *)(r1 + 0), w2)\n"
		"r3 = xchg_64(r1 + 16, r3)\n w3 = xchg32_32(r1 + 16, w3)\n"
		"r0 = cmpxchg_64(r1 + 24, r0, r4)\n w0 = cmpxchg32_32(r1 + 24, w0, w4)\n"
		::: "r0", "r1", "r2", "r3", "r4", "memory");
	return 0;
}

/* What clang makes of C: a map lookup, globals, an atomic counter, sign-extending loads. */
SEC("xdp") int program(int *ctx)
{
	int key = ctx[0] & 3;
	long *v = (long *)bpf_map_lookup_elem(&counters, &key);
	signed char c = ((signed char *)ctx)[5];

	if (!v)
		return 0;
	__sync_fetch_and_add(v, 1);
	__sync_fetch_and_add(&total, c);
	return *v > limit ? 1 : (int)__sync_fetch_and_or(v, 2);
}
