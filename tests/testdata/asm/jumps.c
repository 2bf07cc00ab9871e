/* Jumps, calls and exit: every compare in both widths with an immediate and a register,
 * goto/gotol/may_goto, helper, subprogram and kfunc calls, callx. */
#define SEC(name) __attribute__((section(name), used))

extern void bpf_rcu_read_lock(void) __attribute__((section(".ksyms")));
extern void bpf_rcu_read_unlock(void) __attribute__((section(".ksyms")));

static __attribute__((noinline)) int triple(int x)
{
	return x * 3 + 1;
}

SEC("xdp") int compares(void *ctx)
{
	asm volatile(
		"if r1 == 1 goto +0\n if r1 == r2 goto +1\n if r1 != -2 goto +2\n if r1 != r2 goto +3\n"
		"if r1 > 3 goto +4\n if r1 > r2 goto +5\n if r1 >= 4 goto +6\n if r1 >= r2 goto +7\n"
		"if r1 < 5 goto +8\n if r1 < r2 goto +9\n if r1 <= 6 goto +10\n if r1 <= r2 goto +11\n"
		"if r1 & 7 goto +12\n if r1 & r2 goto +13\n if r1 s> -8 goto +14\n if r1 s> r2 goto +15\n"
		"if r1 s>= 9 goto +16\n if r1 s>= r2 goto +17\n if r1 s< -10 goto +18\n"
		"if r1 s< r2 goto +19\n if r1 s<= 11 goto +20\n if r1 s<= r2 goto +21\n"
		"if w1 == 1 goto -1\n if w1 == w2 goto -2\n if w1 != -2 goto -3\n if w1 != w2 goto -4\n"
		"if w1 > 3 goto -5\n if w1 > w2 goto -6\n if w1 >= 4 goto -7\n if w1 >= w2 goto -8\n"
		"if w1 < 5 goto -9\n if w1 < w2 goto -10\n if w1 <= 6 goto -11\n if w1 <= w2 goto -12\n"
		"if w1 & 7 goto -13\n if w1 & w2 goto -14\n if w1 s> -8 goto -15\n"
		"if w1 s> w2 goto -16\n if w1 s>= 9 goto -17\n if w1 s>= w2 goto -18\n"
		"if w1 s< -10 goto -19\n if w1 s< w2 goto -20\n if w1 s<= 11 goto -21\n"
		"if w1 s<= w2 goto -22\n"
		"goto +1\n goto -1\n gotol +2\n gotol -3\n may_goto +1\n may_goto -1\n"
		"call 1\n call 211\n callx r3\n"
		::: "r0", "r1", "r2", "r3", "r4", "r5");
	return 0;
}

SEC("xdp") int calls(int *ctx)
{
	int r;

	bpf_rcu_read_lock();
	r = triple(*ctx);
	bpf_rcu_read_unlock();
	return r;
}

/* A bounded loop and a switch, as clang lays them out. */
SEC("xdp") int control(unsigned int *ctx)
{
	unsigned int n = ctx[0], acc = 0;

	for (unsigned int i = 0; i < n && i < 64; i++)
		acc += (i & 1) ? i * 7 : i >> 1;
	switch (ctx[1]) {
	case 0: return acc;
	case 1: return acc + 11;
	case 2: return acc * 13;
	case 3: return (int)acc < 0 ? 17 : 19;
	default: return 2;
	}
}
